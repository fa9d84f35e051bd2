"""Registry operations against real git repositories with a bare origin."""

from __future__ import annotations

import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from mlops_bot.config import RegistrySection, StagePolicy
from mlops_bot.errors import IntegrityError, PolicyError, RegistryError
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import clone, commit, run_git


def remote_tags(origin: Path) -> list[str]:
    return run_git(origin, "tag", "-l").split()


def test_register_bump_and_explicit_versions(repo: Path, origin: Path) -> None:
    reg = Registry(repo)
    first = reg.register("churn", push=True, actor="alice", trailers={"Pull-Request": "12"})
    assert (first.tag, first.version, first.actor) == ("churn@v0.0.1", "v0.0.1", "alice")
    assert first.trailers == {"Actor": "alice", "Pull-Request": "12"}
    commit(repo, "second")
    assert reg.register("churn", bump="minor", push=True).version == "v0.1.0"
    commit(repo, "third")
    assert reg.register("churn", bump="major").version == "v1.0.0"
    commit(repo, "fourth")
    assert reg.register("churn").version == "v1.0.1"
    commit(repo, "fifth")
    assert reg.register("churn", version="v3.0.0-rc.1").version == "v3.0.0-rc.1"
    assert reg.latest_version("churn") == "v3.0.0-rc.1"
    assert remote_tags(origin) == ["churn@v0.0.1", "churn@v0.1.0"]  # only the pushed ones
    # GTO's rules: one version per commit, no duplicate versions.
    with pytest.raises(RegistryError, match=r"already registered as churn v3\.0\.0-rc\.1"):
        reg.register("churn")
    commit(repo, "sixth")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("churn", version="v1.0.0")
    with pytest.raises(RegistryError, match="invalid model name"):
        reg.register("-bad")
    # A lightweight tag that looks like a registry tag is ignored.
    run_git(repo, "tag", "churn@v9.9.9")
    assert reg.latest_version("churn") == "v3.0.0-rc.1"


def test_assign_unassign_deregister_deprecate_and_history(repo: Path) -> None:
    reg = Registry(repo)
    reg.register("churn")
    assigned = reg.assign("churn", "dev", version="v0.0.1", actor="bob")
    assert assigned.tag == "churn#dev#1" and assigned.version == "v0.0.1"
    with pytest.raises(RegistryError, match="already in stage dev"):
        reg.assign("churn", "dev", version="v0.0.1")
    commit(repo, "new model")
    # Assigning an unregistered commit registers it on the fly (as GTO does).
    on_the_fly = reg.assign("churn", "staging")
    assert on_the_fly.version == "v0.0.2" and on_the_fly.tag == "churn#staging#2"
    assert reg.stage_version("churn", "staging") == "v0.0.2"
    assert reg.show() == {"churn": {"version": "v0.0.2", "stage": {"dev": "v0.0.1", "staging": "v0.0.2"},
                                    "registered": True, "active": True}}
    assert reg.unassign("churn", "dev").tag == "churn#dev!#3"
    assert reg.stage_version("churn", "dev") is None
    assert reg.deregister("churn", "v0.0.1").tag == "churn@v0.0.1!"
    with pytest.raises(RegistryError, match="was deregistered"):
        reg.assign("churn", "dev", version="v0.0.1")
    assert [r["version"] for r in reg.which("HEAD")] == ["v0.0.2"]
    assert reg.which("HEAD")[0]["stages"] == ["staging"]
    deprecated = reg.deprecate("churn")
    assert deprecated.tag == "churn@deprecated"
    with pytest.raises(RegistryError, match="deprecated already"):
        reg.deprecate("churn")
    events = reg.history("churn")
    # Same-second events order by GTO's priority; the set of events is the audit trail.
    assert sorted(e.tag for e in events) == sorted([
        "churn@v0.0.1", "churn#dev#1", "churn@v0.0.2", "churn#staging#2", "churn#dev!#3", "churn@v0.0.1!",
        "churn@deprecated"])
    dev = next(e for e in events if e.tag == "churn#dev#1")
    assert dev.actor == "bob" and dev.commit == next(e for e in events if e.tag == "churn@v0.0.1").commit
    assert all(e.message.startswith(("Registering", "Assigning", "Unassigning", "Deregistering",
                                     "Deprecating")) for e in events)


def test_what_was_in_production_at_time_t(repo: Path) -> None:
    reg = Registry(repo)
    env = {"GIT_COMMITTER_DATE": "2024-01-01T10:00:00+00:00"}
    import os

    old = dict(os.environ)
    try:
        os.environ.update(env)
        commit(repo, "v1")
        reg.register("m")
        reg.assign("m", "production", version="v0.0.1")
        commit(repo, "v2")
        os.environ["GIT_COMMITTER_DATE"] = "2024-02-01T10:00:00+00:00"
        reg.register("m")
        reg.assign("m", "production", version="v0.0.2")
    finally:
        os.environ.clear()
        os.environ.update(old)
    first = reg.history("m")[0].created_at
    assert reg.stage_version("m", "production", at=first + timedelta(days=10)) == "v0.0.1"
    assert reg.stage_version("m", "production", at=first + timedelta(days=40)) == "v0.0.2"
    assert reg.stage_version("m", "production", at=first - timedelta(days=1)) is None


POLICY = RegistrySection(
    stages=["dev", "staging", "production"], allow_skip=False,
    policy={"production": StagePolicy(permission="maintain", require_gates=True, approvers=["carol"]),
            "dev": StagePolicy(permission="write", require_gates=False),
            "staging": StagePolicy(permission="write", require_gates=True)},
)


def test_policy_is_enforced_on_assign(repo: Path) -> None:
    reg = Registry(repo, policy=POLICY)
    reg.register("m", trailers={"Verdict": "pass"})
    with pytest.raises(PolicyError, match="before staging"):
        reg.assign("m", "production", version="v0.0.1", actor="carol", actor_permission="admin")
    with pytest.raises(PolicyError, match="'read' permission; promoting to dev needs 'write'"):
        reg.assign("m", "dev", version="v0.0.1", actor="eve", actor_permission="read")
    with pytest.raises(PolicyError, match="not one of the configured stages"):
        reg.assign("m", "qa", version="v0.0.1")
    reg.assign("m", "dev", version="v0.0.1", actor="dan", actor_permission="write")
    reg.assign("m", "staging", version="v0.0.1", actor="dan", actor_permission="write")
    with pytest.raises(PolicyError, match="only carol may approve"):
        reg.assign("m", "production", version="v0.0.1", actor="dan", actor_permission="admin")
    assert reg.assign("m", "production", version="v0.0.1", actor="carol", actor_permission="maintain").stage \
        == "production"
    commit(repo, "failing model")
    reg.register("m", trailers={"Verdict": "fail"})
    reg.assign("m", "dev", version="v0.0.2")  # dev does not require gates
    with pytest.raises(PolicyError, match="gates failed"):
        reg.assign("m", "staging", version="v0.0.2")
    # Nothing was written by refused promotions.
    assert [e.stage for e in reg.history("m") if e.stage] == ["dev", "staging", "production", "dev"]


def test_gates_verdict_from_report_asset(repo: Path, tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    report = tmp_path / "report.json"
    report.write_text('{"model": "m", "verdict": "pass"}')
    reg = Registry(repo, forge=forge, policy=RegistrySection(stages=["production"]))
    reg.register("m", artifacts={"report.json": report})
    assert reg.assign("m", "production", version="v0.0.1").stage == "production"
    commit(repo, "no report")
    reg.register("m")
    with pytest.raises(PolicyError, match="no recorded verdict"):
        reg.assign("m", "production", version="v0.0.2")


def _artifacts(tmp_path: Path) -> dict[str, Path]:
    files = {"model.skops": b"model-bytes", "report.json": b'{"verdict": "pass"}',
             "model_card.md": b"# card\n", "reference_profile.json": b"{}"}
    out = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    return out


def test_artifacts_upload_download_and_tamper(repo: Path, tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    reg = Registry(repo, forge=forge)
    src = tmp_path / "src"
    src.mkdir()
    event = reg.register("m", artifacts=_artifacts(src), push=True)
    assert set(event.checksums) == {"model.skops", "report.json", "model_card.md", "reference_profile.json"}
    release = forge.get_release("m@v0.0.1")
    assert release is not None
    assert sorted(a.name for a in release.assets) == sorted([*event.checksums, "SHA256SUMS"])
    reg.assign("m", "production", version="v0.0.1")
    out = reg.download("m", "production", tmp_path / "out")
    assert (out / "model.skops").read_bytes() == b"model-bytes"
    sums = (out / "SHA256SUMS").read_text()
    assert f"{event.checksums['model.skops']}  model.skops\n" in sums

    stored = tmp_path / "forge" / "releases" / str(release.id)
    (stored / "model.skops").write_bytes(b"evil-bytes")
    with pytest.raises(IntegrityError, match=r"model\.skops has sha256"):
        reg.download("m", "v0.0.1", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    # Rewriting SHA256SUMS to match the tampered file is caught by the digests in the tag.
    import hashlib

    text = sums.replace(event.checksums["model.skops"], hashlib.sha256(b"evil-bytes").hexdigest())
    (stored / "SHA256SUMS").write_text(text)
    with pytest.raises(IntegrityError, match="disagrees with the registry tag"):
        reg.download("m", "v0.0.1", tmp_path / "out3")
    with pytest.raises(RegistryError, match="no version of m is in stage 'staging'"):
        reg.download("m", "staging", tmp_path / "out4")


def test_download_refuses_files_the_tag_does_not_record(repo: Path, tmp_path: Path) -> None:
    import hashlib

    forge = LocalForge(tmp_path / "forge")
    reg = Registry(repo, forge=forge)
    src = tmp_path / "src"
    src.mkdir()
    reg.register("m", artifacts=_artifacts(src), push=True)
    release = forge.get_release("m@v0.0.1")
    assert release is not None
    extra = tmp_path / "extra.pkl"
    extra.write_bytes(b"not-registered")
    forge.upload_release_asset(release.id, extra, name="extra.pkl")
    stored = tmp_path / "forge" / "releases" / str(release.id) / "SHA256SUMS"
    stored.write_text(stored.read_text() + f"{hashlib.sha256(b'not-registered').hexdigest()}  extra.pkl\n")
    with pytest.raises(IntegrityError, match=r"lists extra\.pkl, which the registry tag does not record"):
        reg.download("m", "v0.0.1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../model.skops", "sub/model.skops", "..", "a\\b"])
def test_sha256sums_names_must_be_plain_file_names(name: str) -> None:
    from mlops_bot.checksums import parse_sums as parse_sha256sums

    with pytest.raises(IntegrityError, match="not a plain file name"):
        parse_sha256sums(f"{'0' * 64}  {name}\n")
    assert parse_sha256sums(f"{'0' * 64}  model.skops\n") == {"model.skops": "0" * 64}


def _assign_in(path: Path, stage: str, results: list[object], barrier: threading.Barrier) -> None:
    reg = Registry(path)
    barrier.wait()
    try:
        results.append(reg.assign("m", stage, version="v0.0.1", push=True).tag)
    except RegistryError as error:
        results.append(error)


def test_racing_promotions_get_distinct_counters(repo: Path, origin: Path, tmp_path: Path) -> None:
    Registry(repo).register("m", push=True)
    stages = ["dev", "staging", "production", "canary"]
    clones = [clone(origin, tmp_path / f"clone{i}") for i in range(len(stages))]
    results: list[object] = []
    barrier = threading.Barrier(len(stages))
    threads = [threading.Thread(target=_assign_in, args=(c, s, results, barrier))
               for c, s in zip(clones, stages, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, str) for r in results), results
    tags = [t for t in remote_tags(origin) if "#" in t]
    counters = sorted(int(t.rsplit("#", 1)[1]) for t in tags)
    assert counters == [1, 2, 3, 4]  # nothing lost, nothing duplicated
    assert sorted(t.split("#")[1] for t in tags) == sorted(stages)
    fresh = Registry(clone(origin, tmp_path / "check"))
    fresh_state = fresh.show()
    assert fresh_state["m"]["stage"] == dict.fromkeys(sorted(stages), "v0.0.1")


def _hook(origin: Path, script: str) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\n" + script)
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)


def test_lost_race_retries_after_refetch(repo: Path, origin: Path, tmp_path: Path) -> None:
    """The origin accepts someone else's tag first: our push is rejected, we refetch and retry."""
    Registry(repo).register("m", push=True)
    other = clone(origin, tmp_path / "other")
    # Each time our clone pushes, the hook lets the other writer win the counter first (once).
    _hook(origin, f"""
if [ ! -f "{tmp_path}/raced" ]; then
  touch "{tmp_path}/raced"
  unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  cd "{other}" && git tag -a -m "Assigning stage dev to artifact m version v0.0.1" 'm#dev#1' 'm@v0.0.1^{{}}' \
    && git push -q origin 'refs/tags/m#dev#1' >/dev/null 2>&1
  exit 1
fi
exit 0
""")
    event = Registry(repo).assign("m", "production", version="v0.0.1", push=True)
    assert event.tag == "m#production#2"
    assert sorted(t for t in remote_tags(origin) if "#" in t) == ["m#dev#1", "m#production#2"]
    assert "m#production#1" not in run_git(repo, "tag", "-l").split()


def test_push_always_rejected_fails_clearly_and_leaves_no_local_tag(repo: Path, origin: Path) -> None:
    Registry(repo).register("m", push=True)
    _hook(origin, "exit 1\n")
    with pytest.raises(RegistryError, match="lost the race"):
        Registry(repo).assign("m", "dev", version="v0.0.1", push=True)
    assert [t for t in run_git(repo, "tag", "-l").split() if "#" in t] == []


def test_push_needs_a_remote(tmp_path: Path) -> None:
    work = tmp_path / "solo"
    work.mkdir()
    run_git(work, "init", "-q")
    run_git(work, "config", "user.name", "x")
    run_git(work, "config", "user.email", "x@x")
    commit(work, "c")
    with pytest.raises(RegistryError, match="no remote named 'origin'"):
        Registry(work).register("m", push=True)
    with pytest.raises(RegistryError, match="not a git repository"):
        Registry(tmp_path / "nowhere")
