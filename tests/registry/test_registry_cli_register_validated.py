"""`registry register --if-verdict-pass REPORT --skip-if-registered`: what the PR comment workflow runs
after a validation, so the PR's head commit carries a registered version exactly once, and only when
its gates passed. Real git (a clone pushing to a bare origin) and the file-backed forge."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import clone, commit, run_git


def register(repo: Path, *args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["registry", "register", "churn", "--repo", str(repo), *args])
    return code, buffer.getvalue()


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "model.skops").write_bytes(b"weights")
    (folder / "report.json").write_text(json.dumps({"model": "churn", "verdict": "pass"}))
    return folder


def test_registers_the_validated_head_once_with_its_assets(repo: Path, origin: Path, report_dir: Path,
                                                           tmp_path: Path) -> None:
    head = commit(repo, "the PR's model")
    run_git(repo, "push", "-q", "origin", "main")
    main_ref = commit(repo, "unrelated work on main")
    other = clone(origin, tmp_path / "other")  # cloned before the tag exists
    args = ("--bump", "patch", "--ref", head, "--push", "--if-verdict-pass", str(report_dir / "report.json"),
            "--skip-if-registered", "--artifact", f"model.skops={report_dir / 'model.skops'}",
            "--artifact", f"report.json={report_dir / 'report.json'}")
    code, out = register(repo, *args)
    assert code == 0 and "churn@v0.0.1" in out
    assert run_git(origin, "rev-list", "-n", "1", "churn@v0.0.1").strip() == head
    assert Registry(repo).trailers_of("churn", "v0.0.1")["Verdict"] == "pass"
    # A re-run (from another clone that has not fetched the tag) is a no-op, not an error.
    code, out = register(other, *args)
    assert code == 0 and out.startswith("Not registering:") and "already registered as churn v0.0.1" in out
    assert sorted(run_git(origin, "tag", "--list").split()) == ["churn@v0.0.1"]
    assert main_ref != head


def test_a_failed_or_missing_verdict_registers_nothing(repo: Path, origin: Path, report_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    report = report_dir / "report.json"
    report.write_text(json.dumps({"verdict": "fail"}))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out = register(repo, "--push", "--if-verdict-pass", str(report), "--skip-if-registered")
    assert code == 0 and out.startswith("::notice::Not registering: the validation verdict is 'fail'")
    report.write_text("[1, 2]")
    code, out = register(repo, "--push", "--if-verdict-pass", str(report))
    assert code == 0 and "'missing'" in out
    assert run_git(origin, "tag", "--list").strip() == ""
    report.write_text("{not json")
    assert register(repo, "--push", "--if-verdict-pass", str(report))[0] == 2
    assert register(repo, "--push", "--if-verdict-pass", str(report_dir / "absent.json"))[0] == 2
    assert run_git(origin, "tag", "--list").strip() == ""
