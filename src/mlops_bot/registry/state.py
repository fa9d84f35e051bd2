"""The registry state computed from tag records, with GTO's exact semantics (pure).

`gto show --json` and `gto history --json` must print what we print for the same repository, so
this module mirrors GTO 1.10's state machine (gto/base.py, gto/tag.py, gto/api.py): the same event
priorities, the same "latest event wins" rules, the same stable sorts (ties at one-second tag
resolution resolve exactly as GTO resolves them). What it does not copy is GTO's cost: it takes the
records of one `for-each-ref` call instead of opening every tag and commit separately.

The events and their order live in `event.py`, one model's versions and stages in `versions.py`;
this module builds them from the tag records and renders GTO's views.

Not covered: GTO's `artifacts.yaml` annotations (artifacts declared in a file, without tags).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mlops_bot.registry.event import Event
from mlops_bot.registry.git import TagRecord
from mlops_bot.registry.tags import Action, parse_tag_name
from mlops_bot.registry.versions import Artifact

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: `registry show` start-up
    from typing import Any


def _event(record: TagRecord, kind: str, name: str, version: str | None = None,
           stage: str | None = None) -> Event:
    return Event(kind=kind, artifact=name, created_at=record.tagged_at, author=record.tagger_name,
                 author_email=record.tagger_email, message=record.message.strip(),
                 commit_hexsha=record.target, tag=record.tag, version=version, stage=stage)


_KINDS = {Action.REGISTER: "registration", Action.DEREGISTER: "deregistration",
          Action.ASSIGN: "assignment", Action.UNASSIGN: "unassignment", Action.DEPRECATE: "deprecation"}


class RegistryState:
    """All artifacts, in the order GTO discovers them (deprecations, then versions, then stages)."""

    def __init__(self, records: Iterable[TagRecord]) -> None:
        self.artifacts: dict[str, Artifact] = {}
        parsed = [(r, p) for r in sorted(records, key=lambda r: r.tag) if (p := parse_tag_name(r.tag))]
        groups = (
            (Action.DEPRECATE,), (Action.REGISTER, Action.DEREGISTER), (Action.ASSIGN, Action.UNASSIGN),
        )
        commits: dict[str, TagRecord] = {}
        for actions in groups:
            chosen = sorted(((r, p) for r, p in parsed if p.action in actions), key=lambda rp: rp[0].tag_time)
            for record, tag in chosen:
                artifact = self.artifacts.get(tag.name)
                if artifact is None:
                    artifact = self.artifacts[tag.name] = Artifact(tag.name)
                commits.setdefault(record.target, record)
                kind = _KINDS[tag.action]
                if tag.action in (Action.ASSIGN, Action.UNASSIGN):
                    version = artifact.find_version(commit=record.target, create=True)
                    assert version is not None
                    artifact.add(_event(record, kind, tag.name, version.version, tag.stage))
                else:
                    artifact.add(_event(record, kind, tag.name, tag.version))
        # GTO's enrichment pass: one "commit" event per version, dated by the commit.
        for artifact in self.artifacts.values():
            for version in artifact.versions:
                commit = commits[version.commit_hexsha]
                artifact.enrich(version, Event(
                    kind="commit", artifact=artifact.artifact, created_at=commit.committed_at,
                    author=commit.commit_author_name, author_email=commit.commit_author_email,
                    message=commit.commit_message, commit_hexsha=version.commit_hexsha,
                    version=version.version, committer=commit.committer_name,
                    committer_email=commit.committer_email,
                ))

    # ------------------------------------------------------------------------------ views
    def used_stages(self) -> list[str]:
        # GTO takes the keys of `vstages()` (semver order); the keys do not depend on the order,
        # and the timestamp-ordered view is the one `show` computes (memoized) anyway.
        return sorted({s for a in self.artifacts.values() for s in a.vstages(sort="timestamp")})

    def show(self, stages: Sequence[str] | None = None, deprecated: bool = False) -> dict[str, Any]:
        """`gto show --json` for the whole registry."""
        names = list(stages) if stages is not None else self.used_stages()
        out: dict[str, Any] = {}
        for artifact in self.artifacts.values():
            if not (artifact.is_active or deprecated):
                continue
            latest = artifact.latest_version(registered_only=True)
            in_stage = artifact.vstages(sort="timestamp")
            out[artifact.artifact] = {
                "version": latest.version if latest else None,
                "stage": {s: ", ".join(v.version for v in in_stage.get(s, [])) or None for s in names},
                "registered": artifact.is_registered,
                "active": artifact.is_active,
            }
        return out

    def show_versions(self, name: str, deprecated: bool = False) -> list[dict[str, Any]]:
        """`gto show NAME --json`: every version with its events and current stages."""
        artifact = self.artifacts.get(name)
        if artifact is None:
            return []
        in_stage = artifact.vstages(sort="timestamp")
        versions = []
        for version in artifact.get_versions(active_only=not deprecated, include_non_explicit=True,
                                             include_discovered=True):
            row = version.as_dict()
            row["stages"] = [s.as_dict() for bucket in in_stage.values() for s in bucket
                             if s.version == row["version"]]
            if artifact.is_active or deprecated:
                versions.append(row)
        return versions

    def history(self, name: str | None = None, ascending: bool = False) -> list[dict[str, Any]]:
        """`gto history --json`: every tag event, newest first."""
        rows: list[dict[str, Any]] = [
            {
                "timestamp": e.created_at, "artifact": e.artifact,
                "event": e.kind, "priority": e.priority, "version": e.version, "stage": e.stage,
                "commit": e.commit_hexsha, "author": e.author, "author_email": e.author_email,
                "message": e.message, "ref": e.ref,
            }
            for a in self.artifacts.values() for e in a.events() if e.kind != "commit"
        ]
        rows.sort(key=lambda r: (r["timestamp"], r["priority"]))
        if not ascending:
            rows.reverse()
        if name:
            rows = [r for r in rows if r["artifact"] == name]
        for row in rows:
            row["timestamp"] = row["timestamp"].isoformat()
        return rows
