"""`register --artifact` is atomic from the user's view: assets go to a draft release, the tag is
pushed once they are all there, then the release is published. A registration stopped at any step is
finished (or its stale draft rolled back) by running the same command again; concurrent registrations
from one clone re-plan instead of failing on "tag already exists"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_bot.errors import IntegrityError, RegistryError
from mlops_bot.forge.base import Release, ReleaseAsset
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_file import save_model
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import commit, run_git


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no `except Exception` cleanup of ours runs."""


class DyingForge(LocalForge):
    """The real local forge, whose process 'dies' at the n-th call of one method: right after an
    upload is stored, right before a release is created or published."""

    def __init__(self, root: Path, method: str, after: int) -> None:
        super().__init__(root)
        self.method, self.left = method, after

    def _tick(self, method: str) -> None:
        if method == self.method:
            self.left -= 1
            if self.left == 0:
                raise Killed(method)

    def upload_release_asset(self, release_id: int, path: Path, name: str | None = None) -> ReleaseAsset:
        asset = super().upload_release_asset(release_id, path, name)
        self._tick("upload_release_asset")
        return asset

    def update_release(self, release_id: int, **changes: Any) -> Release:
        self._tick("update_release")
        return super().update_release(release_id, **changes)

    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        self._tick("create_release")
        return super().create_release(tag, name, body, prerelease, draft)


def _files(folder: Path, model: bytes = b"model-bytes") -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in {"model.skops": model, "report.json": b"{}", "model_card.md": b"# card"}.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


def remote_tags(origin: Path) -> list[str]:
    return run_git(origin, "tag", "-l").split()


def test_assets_are_in_place_before_the_tag_exists(repo: Path, origin: Path, tmp_path: Path) -> None:
    """Killed after the last upload: nothing is registered yet (no tag anywhere), a draft holds every
    file; the re-run adopts that draft instead of uploading again, tags and publishes."""
    files = _files(tmp_path / "src")
    dying = DyingForge(tmp_path / "forge", "upload_release_asset", after=4)  # 3 files + SHA256SUMS
    with pytest.raises(Killed):
        Registry(repo, forge=dying).register("m", artifacts=files, push=True)
    assert remote_tags(origin) == [] and run_git(repo, "tag", "-l") == ""
    forge = LocalForge(tmp_path / "forge")
    (draft,) = forge.list_draft_releases()
    assert sorted(a.name for a in draft.assets) == [
        "SHA256SUMS", "model.skops", "model_card.md", "report.json"]
    assert forge.get_release("m@v0.0.1") is None  # a draft is not a release anyone can download

    event = Registry(repo, forge=forge).register("m", artifacts=files, push=True)
    assert event.version == "v0.0.1" and remote_tags(origin) == ["m@v0.0.1"]
    release = forge.get_release("m@v0.0.1")
    assert release is not None and release.id == draft.id and not release.draft
    assert forge.list_draft_releases() == []
    got = Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got")
    assert (got / "model.skops").read_bytes() == b"model-bytes"


@pytest.mark.parametrize(("method", "after"), [("create_release", 1), ("upload_release_asset", 2),
                                               ("update_release", 1)])
def test_a_registration_killed_at_any_step_is_finished_by_the_same_command(
        repo: Path, origin: Path, tmp_path: Path, method: str, after: int) -> None:
    files = _files(tmp_path / "src")
    with pytest.raises(Killed):
        Registry(repo, forge=DyingForge(tmp_path / "forge", method, after)).register(
            "m", bump="patch", artifacts=files, push=True)
    forge = LocalForge(tmp_path / "forge")
    if method == "update_release":  # killed while publishing: the tag is pushed, the draft complete
        assert remote_tags(origin) == ["m@v0.0.1"]
        assert forge.get_release("m@v0.0.1") is None
    event = Registry(repo, forge=forge).register("m", bump="patch", artifacts=files, push=True)
    assert event.version == "v0.0.1"  # no version burnt
    assert remote_tags(origin) == ["m@v0.0.1"]
    assert forge.list_draft_releases() == []
    Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got")
    # Once complete, the same command is refused like any second registration of a commit.
    with pytest.raises(RegistryError, match="already registered"):
        Registry(repo, forge=forge).register("m", bump="patch", artifacts=files, push=True)


def test_changed_files_roll_the_stale_draft_back(repo: Path, origin: Path, tmp_path: Path) -> None:
    """Killed mid-upload, then re-run with a retrained model: the old draft (same model and commit,
    other files) is deleted, the new files registered; no asset of the old attempt survives."""
    with pytest.raises(Killed):
        Registry(repo, forge=DyingForge(tmp_path / "forge", "upload_release_asset", 2)).register(
            "m", artifacts=_files(tmp_path / "old", b"old-model"), push=True)
    forge = LocalForge(tmp_path / "forge")
    assert len(forge.list_draft_releases()) == 1
    Registry(repo, forge=forge).register("m", artifacts=_files(tmp_path / "new", b"new-model"), push=True)
    assert forge.list_draft_releases() == []
    got = Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got")
    assert (got / "model.skops").read_bytes() == b"new-model"


def test_a_pushed_tag_with_other_digests_is_not_resumed(repo: Path, origin: Path, tmp_path: Path) -> None:
    """Killed while publishing, then re-run with different files: the tag already records the old
    digests, so the run is refused with the reason, never published with files the tag does not vouch for."""
    with pytest.raises(Killed):
        Registry(repo, forge=DyingForge(tmp_path / "forge", "update_release", 1)).register(
            "m", artifacts=_files(tmp_path / "old", b"old-model"), push=True)
    forge = LocalForge(tmp_path / "forge")
    with pytest.raises(RegistryError, match="already registered"):
        Registry(repo, forge=forge).register("m", artifacts=_files(tmp_path / "new", b"new-model"), push=True)
    with pytest.raises(RegistryError, match="no release"):
        Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got")
    # The original files finish it.
    Registry(repo, forge=forge).register("m", artifacts=_files(tmp_path / "old", b"old-model"), push=True)
    assert (Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got") / "model.skops"
            ).read_bytes() == b"old-model"


def test_a_half_uploaded_release_of_the_old_order_is_completed(repo: Path, origin: Path,
                                                               tmp_path: Path) -> None:
    """Before drafts, the tag was pushed first and a published release got the files one by one; a
    failure in between left a version without SHA256SUMS. The same command now completes it."""
    from mlops_bot.registry import artifacts
    from mlops_bot.registry.tags import Action, gto_message

    files = _files(tmp_path / "src")
    forge = LocalForge(tmp_path / "forge")
    registry = Registry(repo, forge=forge)
    # The old order, step by step: the tag with the digests, pushed; a release with one file; failure.
    message = Registry._message(gto_message(Action.REGISTER, "m", version="v0.0.1"), None, None,
                                artifacts.checksums(files))
    run_git(repo, "tag", "-a", "--cleanup=verbatim", "-m", message, "m@v0.0.1")
    run_git(repo, "push", "-q", "origin", "m@v0.0.1")
    release = forge.create_release("m@v0.0.1", name="m@v0.0.1")
    forge.upload_release_asset(release.id, files["model.skops"], name="model.skops")
    with pytest.raises(IntegrityError, match="no SHA256SUMS"):
        registry.download("m", "v0.0.1", tmp_path / "before")

    assert registry.register("m", artifacts=files, push=True).version == "v0.0.1"
    got = registry.download("m", "v0.0.1", tmp_path / "got")
    assert sorted(p.name for p in got.iterdir()) == [
        "SHA256SUMS", "model.skops", "model_card.md", "report.json"]


def test_drafts_of_other_registrations_are_left_alone(repo: Path, tmp_path: Path) -> None:
    """A stopped registration of another commit keeps its draft while this one registers; its own
    re-run then finishes it."""
    first = run_git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(Killed):
        Registry(repo, forge=DyingForge(tmp_path / "forge", "upload_release_asset", 2)).register(
            "m", ref=first, artifacts=_files(tmp_path / "a", b"model a"))
    second = commit(repo, "second model")
    forge = LocalForge(tmp_path / "forge")
    (draft,) = forge.list_draft_releases()
    assert Registry(repo, forge=forge).register("m", ref=second, artifacts=_files(tmp_path / "b", b"model b")
                                                ).version == "v0.0.1"
    assert [d.id for d in forge.list_draft_releases()] == [draft.id]
    assert Registry(repo, forge=forge).register("m", ref=first, artifacts=_files(tmp_path / "a", b"model a")
                                                ).version == "v0.0.2"
    assert forge.list_draft_releases() == []


@pytest.mark.slow
def test_concurrent_bump_registrations_in_one_clone(repo: Path, origin: Path, tmp_path: Path) -> None:
    """8 `register --bump patch --push --artifact` processes at once in one clone, each for its own
    commit: every one succeeds, versions v0.0.1..v0.0.8 each exactly once, none burnt, every release
    published with its own model."""
    shas = [commit(repo, f"model {i}") for i in range(8)]
    forge_dir = tmp_path / "forge"
    env = {**os.environ, "MLOPS_BOT_LOCAL_FORGE": str(forge_dir), "GITHUB_REPOSITORY": "acme/m"}
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID"):
        env.pop(key, None)
    processes = []
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    for i, sha in enumerate(shas):
        model = tmp_path / f"model{i}.skops"  # a real model: registering reads its signature off it
        save_model(LogisticRegression(C=i + 1.0).fit(frame, [0, 0, 1, 1]), model)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "mlops_bot", "registry", "register", "m", "--bump", "patch", "--ref", sha,
             "--push", "--artifact", f"model.skops={model}", "--repo", str(repo)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=300), p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "")
               for p in processes]
    assert [code for code, _, _ in results] == [0] * 8, results
    assert sorted(remote_tags(origin)) == [f"m@v0.0.{n}" for n in range(1, 9)]
    forge = LocalForge(forge_dir)
    assert forge.list_draft_releases() == []
    registry = Registry(repo, forge=forge)
    by_commit = {}
    for n in range(1, 9):
        got = registry.download("m", f"v0.0.{n}", tmp_path / f"got{n}")
        tag_commit = run_git(repo, "rev-list", "-n", "1", f"m@v0.0.{n}").strip()
        by_commit[tag_commit] = (got / "model.skops").read_bytes()
    assert by_commit == {sha: (tmp_path / f"model{i}.skops").read_bytes() for i, sha in enumerate(shas)}


def test_github_forge_draft_then_tag_then_publish(repo: Path, origin: Path, tmp_path: Path) -> None:
    """Through PyGithub against the emulator: the release is created as a draft, every asset uploaded
    into it, then published under the pushed tag; a publish that fails (GitHub down) leaves no
    downloadable release, and the same command finishes it."""
    from github import Auth

    from github_emulator import Emulator
    from mlops_bot.errors import ForgeError
    from mlops_bot.forge.github import GitHubForge
    from mlops_bot.forge.retry import RetryPolicy

    fast = RetryPolicy(total=2, backoff_factor=0.01, secondary_wait=0.2, max_wait=2.0)
    files = _files(tmp_path / "src")
    with Emulator() as gh:
        gh.add_repo("acme/m")
        forge = GitHubForge("acme/m", Auth.Token("ghp_test"), api_url=gh.url, retry=fast)
        gh.inject(r"/releases/\d+$", status=502, times=20, method="PATCH")
        with pytest.raises(ForgeError):
            Registry(repo, forge=forge).register("m", artifacts=files, push=True)
        assert remote_tags(origin) == ["m@v0.0.1"] and forge.get_release("m@v0.0.1") is None
        (stored,) = gh.state["releases"]
        assert stored["draft"] is True and stored["published_at"] is None
        assert len([a for a in gh.state["assets"] if a["_release_id"] == stored["id"]]) == 4
        gh.faults.clear()
        event = Registry(repo, forge=forge).register("m", artifacts=files, push=True)
        assert event.version == "v0.0.1"
        release = forge.get_release("m@v0.0.1")
        assert release is not None and not release.draft
        assert sorted(a.name for a in release.assets) == ["SHA256SUMS", "model.skops", "model_card.md",
                                                          "report.json"]
        assert len([r for r in gh.requests if r["upload"]]) == 4  # nothing uploaded twice
        got = Registry(repo, forge=forge).download("m", "v0.0.1", tmp_path / "got")
        assert (got / "model.skops").read_bytes() == b"model-bytes"
