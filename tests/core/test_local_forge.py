"""The file-backed forge: the demo and local runs depend on it behaving like GitHub's API."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import sticky_marker
from mlops_bot.forge.local import LocalForge


def test_sticky_comment_is_updated_in_place(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    pr = forge.create_pull_request("Change model", head="feature", base="main", head_sha="a" * 40)
    marker = sticky_marker("mlops-pr", "credit")
    first = forge.upsert_sticky_comment(pr.number, marker, "first report")
    forge.create_comment(pr.number, "an unrelated human comment")
    second = forge.upsert_sticky_comment(pr.number, marker, "second report")
    assert first.id == second.id
    bodies = [c.body for c in forge.list_comments(pr.number)]
    assert len(bodies) == 2
    assert bodies[0].startswith(marker) and bodies[0].endswith("second report")
    # Another model gets its own sticky comment on the same PR.
    other = forge.upsert_sticky_comment(pr.number, sticky_marker("mlops-pr", "churn"), "x")
    assert other.id != first.id


def test_unknown_objects_are_clear_errors(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    with pytest.raises(ForgeError, match="#7 not found"):
        forge.create_comment(7, "hello")
    with pytest.raises(ForgeError, match="comment 99 not found"):
        forge.add_reaction(99, "eyes")
    with pytest.raises(ForgeError, match="no release"):
        forge.download_release_asset("m@v1.0.0", "model.skops", tmp_path)


def test_release_assets_round_trip(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    release = forge.create_release("credit@v1.0.0", body="notes")
    src = tmp_path / "model.skops"
    src.write_bytes(b"\x00model-bytes")
    asset = forge.upload_release_asset(release.id, src)
    assert asset.size == len(b"\x00model-bytes")
    with pytest.raises(ForgeError, match="already has an asset"):
        forge.upload_release_asset(release.id, src)
    with pytest.raises(ForgeError, match="already exists"):
        forge.create_release("credit@v1.0.0")
    out = forge.download_release_asset("credit@v1.0.0", "model.skops", tmp_path / "dl")
    assert out.read_bytes() == b"\x00model-bytes"
    for bad in ("../escape", "a/b", "..", "x\\y"):
        with pytest.raises(ForgeError, match="not a valid release asset name"):
            forge.upload_release_asset(release.id, src, name=bad)
    assert not (tmp_path / "forge" / "releases" / "escape").exists()


def test_deployment_statuses_newest_first_and_description_limit(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    dep = forge.create_deployment("credit@v1.1.0", "production-canary", payload={"weight": 10})
    forge.create_deployment_status(dep.id, "in_progress", description="weight 10%")
    forge.create_deployment_status(dep.id, "success", description="promoted")
    states = [s.state for s in forge.list_deployment_statuses(dep.id)]
    assert states == ["success", "in_progress"]
    with pytest.raises(ForgeError, match="140"):
        forge.create_deployment_status(dep.id, "failure", description="x" * 141)
    assert [d.id for d in forge.list_deployments("production-canary")] == [dep.id]
    assert forge.list_deployments("staging") == []


def test_permissions_default_to_none(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    assert forge.get_permission("mallory") == "none"
    forge.set_permission("alice", "admin")
    assert forge.get_permission("alice") == "admin"


def _add_comments(root: str, count: int) -> None:
    forge = LocalForge(root)
    for i in range(count):
        forge.create_comment(1, f"comment {i}")


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    forge.create_issue("shared", "body")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_add_comments, args=(str(tmp_path), 20)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    comments = forge.list_comments(1)
    assert len(comments) == 60
    assert len({c.id for c in comments}) == 60


def test_completed_check_run_needs_conclusion(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    with pytest.raises(ForgeError, match="conclusion"):
        forge.create_check_run("a" * 40, "mlops-bot")
    run = forge.create_check_run("a" * 40, "mlops-bot", status="in_progress")
    done = forge.update_check_run(run.id, conclusion="failure", summary="gate failed")
    assert done.status == "completed" and done.conclusion == "failure"
