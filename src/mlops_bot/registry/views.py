"""The registry's read views, straight from git: `show`, `show NAME`, `history`, `which`.

Kept apart from `registry.py` (writes, policy, release assets, pydantic events) so that the read
commands import nothing but git plumbing and the pure state machine: `mlops-bot registry show`
is one `git for-each-ref` plus a few milliseconds of Python, which is what makes it ~30x faster
than `gto show` on large registries. Output is exactly GTO's (see `state.py`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mlops_bot.errors import RegistryError
from mlops_bot.registry import git
from mlops_bot.registry.state import RegistryState
from mlops_bot.registry.tags import check_name, name_to_tag

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: `registry show` start-up
    from typing import Any


def patterns(name: str | None) -> list[str]:
    """The refs holding a model's registry events (`NAME@...`, `NAME#...`), or every tag."""
    if name is None:
        return ["refs/tags"]
    base = name_to_tag(name)
    # for-each-ref's `*` stops at `/`; stage names may contain `/` (`NAME#team/prod#3`): `*/**`.
    return [f"refs/tags/{base}@*", f"refs/tags/{base}#*", f"refs/tags/{base}#*/**"]


def read_records(repo: Path, name: str | None = None) -> list[git.TagRecord]:
    """The annotated registry tags of one model (only its refs are read), or of all models."""
    return git.read_tags(Path(repo), patterns(name))


def read_state(repo: Path, name: str | None = None, at: datetime | None = None) -> RegistryState:
    """The registry state now, or as it was at time `at` (tags dated after it are ignored)."""
    records = read_records(repo, name)
    if at is not None:
        records = [r for r in records if r.tagged_at <= at]
    return RegistryState(records)


def configured_stages(repo: Path) -> list[str] | None:
    """Stages from GTO's own `.gto` config, which `gto show` lists even when unused."""
    path = Path(repo) / ".gto"
    if not path.is_file():
        return None
    from mlops_bot.config_yaml import load_file  # the repository's file: parsed with bounds

    data = load_file(path).data or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    return list(stages) if stages else None


def show(repo: Path, name: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Exactly `gto show --json` (for `name`: the registry view restricted to that model)."""
    if name is not None:
        check_name(name)
    return read_state(repo, name, at).show(configured_stages(repo))


def show_versions(repo: Path, name: str) -> list[dict[str, Any]]:
    """Exactly `gto show NAME --json`: every version with its registrations and stages."""
    check_name(name)
    state = read_state(repo, name)
    if name not in state.artifacts:
        raise RegistryError(f"model {name!r} is not in the registry (no tags {name}@... or {name}#...)")
    return state.show_versions(name)


def history(repo: Path, name: str | None = None) -> list[dict[str, Any]]:
    """Exactly `gto history [NAME] --json`: the audit trail, newest first."""
    return read_state(repo, name).history(name)


def which(repo: Path, rev: str = "HEAD") -> list[dict[str, Any]]:
    """Which model versions (and their current stages) sit at a commit."""
    commit = git.resolve_commit(Path(repo), rev)
    state = read_state(repo)
    found = []
    for name, artifact in state.artifacts.items():
        in_stage = artifact.vstages(sort="timestamp")
        for version in artifact.get_versions(include_non_explicit=True):
            if version.commit_hexsha == commit:
                stages = sorted(s for s, bucket in in_stage.items()
                                if any(v.version == version.version for v in bucket))
                found.append({"name": name, "version": version.version, "commit": commit,
                              "stages": stages, "active": artifact.is_active})
    return found
