"""The registry state computed from tag records, with GTO's exact semantics (pure).

`gto show --json` and `gto history --json` must print what we print for the same repository, so
this module mirrors GTO 1.10's state machine (gto/base.py, gto/tag.py, gto/api.py): the same event
priorities, the same "latest event wins" rules, the same stable sorts (ties at one-second tag
resolution resolve exactly as GTO resolves them). What it does not copy is GTO's cost: it takes the
records of one `for-each-ref` call instead of opening every tag and commit separately.

Not covered: GTO's `artifacts.yaml` annotations (artifacts declared in a file, without tags).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from operator import attrgetter

from mlops_bot.registry.git import TagRecord
from mlops_bot.registry.tags import Action, SemVer, parse_tag_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: `registry show` start-up
    from typing import Any, TypeVar

    _T = TypeVar("_T")

# GTO's event priorities (gto/base.py): ties on timestamp in `history` sort by them.
PRIORITY = {"commit": 0, "creation": 1, "deprecation": 2, "registration": 3, "deregistration": 4,
            "assignment": 5, "unassignment": 6}
ADDITION = {"commit": True, "creation": True, "deprecation": False, "registration": True,
            "deregistration": False, "assignment": True, "unassignment": False}

_BY_TIME = attrgetter("created_at")


class Event:
    """One event of GTO's state: a registry tag, or the commit ("enrichment") a version sits on."""

    __slots__ = (
        "artifact",
        "author",
        "author_email",
        "commit_hexsha",
        "committer",
        "committer_email",
        "created_at",
        "kind",
        "message",
        "stage",
        "tag",
        "version",
    )

    def __init__(self, kind: str, artifact: str, created_at: datetime, author: str, author_email: str,
                 message: str, commit_hexsha: str, tag: str | None = None, version: str | None = None,
                 stage: str | None = None, committer: str = "", committer_email: str = "") -> None:
        self.kind = kind  # registration, deregistration, assignment, unassignment, deprecation, commit
        self.artifact = artifact
        self.created_at = created_at
        self.author = author
        self.author_email = author_email
        self.message = message
        self.commit_hexsha = commit_hexsha
        self.tag = tag
        self.version = version
        self.stage = stage
        self.committer = committer
        self.committer_email = committer_email

    def __repr__(self) -> str:
        return f"Event({self.kind} {self.artifact} {self.version or ''} {self.stage or ''} {self.ref})"

    @property
    def priority(self) -> int:
        return PRIORITY[self.kind]

    @property
    def addition(self) -> bool:
        return ADDITION[self.kind]

    @property
    def ref(self) -> str:
        return self.tag if self.tag is not None else self.commit_hexsha

    def as_dict(self) -> dict[str, Any]:
        """GTO's `model_dump()` of the event, field order included."""
        out: dict[str, Any] = {
            "priority": PRIORITY[self.kind], "addition": ADDITION[self.kind], "artifact": self.artifact,
            "created_at": self.created_at.isoformat(), "author": self.author,
            "author_email": self.author_email, "message": self.message,
            "commit_hexsha": self.commit_hexsha,
        }
        if self.kind == "commit":
            out.update(version=self.version, enrichments=[], committer=self.committer,
                       committer_email=self.committer_email)
            return out
        out["tag"] = self.tag
        if self.kind in ("registration", "deregistration", "assignment", "unassignment"):
            out["version"] = self.version
        if self.kind in ("assignment", "unassignment"):
            out["stage"] = self.stage
        return out


def _desc(events: Iterable[Event], ascending: bool = False) -> list[Event]:
    # Stable ascending sort, reversed for "newest first": ties come out exactly as in GTO.
    ordered = sorted(events, key=_BY_TIME)
    return ordered if ascending else ordered[::-1]


def _authoring(direct: list[Event], indirect: list[Event]) -> Event:
    additions = [e for e in direct if e.addition]
    if additions:
        return additions[0]
    return indirect[0]


class _Memo:
    """Derived views (sorted events, active versions, stages) computed once per state change.

    GTO recomputes and re-sorts them on every property access, which is most of its cost; here
    every `add` clears the memo, so answers are identical and each is computed at most once.
    """

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, ...], Any] = {}

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
        memo = self._memo
        if key in memo:
            return memo[key]
        value = memo[key] = compute()
        return value

    def _changed(self) -> None:
        self._memo.clear()


class VStage(_Memo):
    """One version in one stage, with the assignments and unassignments that put it there."""

    __slots__ = ("artifact", "assignments", "commit_hexsha", "stage", "unassignments", "version")

    def __init__(self, artifact: str, version: str, stage: str, commit_hexsha: str) -> None:
        super().__init__()
        self.artifact = artifact
        self.version = version
        self.stage = stage
        self.commit_hexsha = commit_hexsha
        self.assignments: list[Event] = []
        self.unassignments: list[Event] = []

    def add(self, event: Event) -> None:
        target = self.assignments if event.kind == "assignment" else self.unassignments
        target.append(event)
        target.sort(key=_BY_TIME)
        self._changed()

    def events(self, ascending: bool = False) -> list[Event]:
        return self._cached(("events", ascending),
                            lambda: _desc(self.assignments + self.unassignments, ascending))

    @property
    def is_active(self) -> bool:
        return self.events()[0].kind == "assignment"

    @property
    def activated_at(self) -> datetime | None:
        first = self.events()[0]
        return first.created_at if first.kind == "assignment" else None

    @property
    def created_at(self) -> datetime:
        return _authoring(self.events(), []).created_at

    def as_dict(self) -> dict[str, Any]:
        authoring = _authoring(self.events(), [])
        activated = self.activated_at
        return {
            "artifact": self.artifact, "commit_hexsha": self.commit_hexsha, "version": self.version,
            "stage": self.stage,
            "assignments": [e.as_dict() | {"event": "assignment"} for e in self.assignments],
            "unassignments": [e.as_dict() | {"event": "unassignment"} for e in self.unassignments],
            "is_active": self.is_active,
            "activated_at": activated.isoformat() if activated else None,
            "created_at": authoring.created_at.isoformat(), "author": authoring.author,
            "author_email": authoring.author_email, "message": authoring.message, "ref": authoring.ref,
        }


class Version(_Memo):
    """One version of an artifact: its registrations, deregistrations, commit and stages."""

    __slots__ = (
        "artifact",
        "commit_hexsha",
        "deregistrations",
        "enrichments",
        "registrations",
        "stages",
        "version",
    )

    def __init__(self, artifact: str, version: str, commit_hexsha: str) -> None:
        super().__init__()
        self.artifact = artifact
        self.version = version
        self.commit_hexsha = commit_hexsha
        self.enrichments: list[Event] = []
        self.registrations: list[Event] = []
        self.deregistrations: list[Event] = []
        self.stages: dict[str, VStage] = {}

    def add(self, event: Event) -> None:
        self._changed()
        if event.kind in ("registration", "deregistration", "commit"):
            target = {"registration": self.registrations, "deregistration": self.deregistrations,
                      "commit": self.enrichments}[event.kind]
            target.append(event)
            target.sort(key=_BY_TIME)
            return
        assert event.stage is not None
        if event.stage not in self.stages:
            self.stages[event.stage] = VStage(self.artifact, self.version, event.stage, self.commit_hexsha)
        self.stages[event.stage].add(event)

    def events(self, direct: bool = True, indirect: bool = True, ascending: bool = False) -> list[Event]:
        def compute() -> list[Event]:
            chosen: list[Event] = []
            if direct:
                chosen += self.registrations + self.deregistrations
            if indirect:
                chosen += self.enrichments + [e for s in self.stages.values() for e in s.events()]
            return _desc(chosen, ascending)

        return self._cached(("events", direct, indirect, ascending), compute)

    @property
    def is_active(self) -> bool:
        direct = self.events(indirect=False)
        if direct:
            return direct[0].kind == "registration"
        return bool(self.events(direct=False))

    @property
    def activated_at(self) -> datetime:
        if self.registrations:
            return self.registrations[0].created_at
        return self.events(ascending=True)[0].created_at

    @property
    def is_registered(self) -> bool:
        return bool(self.registrations)

    @property
    def discovered(self) -> bool:
        return not (self.registrations or self.deregistrations)

    @property
    def created_at(self) -> datetime:
        return self.authoring.created_at

    @property
    def authoring(self) -> Event:
        direct = self.events(indirect=False)
        additions = [e for e in direct if e.addition]
        if additions:
            return additions[0]
        indirect = self.events(direct=False)
        non_commit = [e for e in indirect if e.kind != "enrichment"]
        return non_commit[0] if non_commit else indirect[0]

    def vstages(self, active_only: bool = True, ascending: bool = False) -> list[VStage]:
        def compute() -> list[VStage]:
            chosen = [s for s in self.stages.values() if not active_only or s.is_active]
            ordered = sorted(chosen, key=attrgetter("activated_at"))
            return ordered if ascending else ordered[::-1]

        return self._cached(("vstages", active_only, ascending), compute)

    def as_dict(self) -> dict[str, Any]:
        authoring = self.authoring
        return {
            "artifact": self.artifact, "commit_hexsha": self.commit_hexsha, "version": self.version,
            "enrichments": [e.as_dict() for e in self.enrichments],
            "registrations": [e.as_dict() for e in self.registrations],
            "deregistrations": [e.as_dict() for e in self.deregistrations],
            "stages": [s.as_dict() for s in self.vstages()],
            "is_active": self.is_active, "activated_at": self.activated_at.isoformat(),
            "created_at": authoring.created_at.isoformat(), "author": authoring.author,
            "author_email": authoring.author_email, "message": authoring.message, "ref": authoring.ref,
            "discovered": self.discovered,
        }


_SEMVERS: dict[str, SemVer | None] = {}


def _semver(text: str) -> SemVer | None:
    """The parsed version, None when not semver; memoized (every view sorts the same versions)."""
    if text not in _SEMVERS:
        _SEMVERS[text] = SemVer.parse(text) if SemVer.is_valid(text) else None
    return _SEMVERS[text]


def sort_versions(versions: Sequence[Version], by: str) -> list[Version]:
    """GTO's sort_versions, descending: semver (valid ones first) or by creation time."""
    if by == "semver":
        parsed = [(v, _semver(v.version)) for v in versions]
        valid = [v for v, _key in sorted(((v, k) for v, k in parsed if k is not None),
                                         key=lambda vk: vk[1])][::-1]
        other = sorted((v for v, k in parsed if k is None), key=attrgetter("version"))[::-1]
        return valid + other
    return sorted(versions, key=attrgetter("created_at"))[::-1]


class Artifact(_Memo):
    """One model: its versions and deprecations."""

    __slots__ = ("artifact", "deprecations", "versions")

    def __init__(self, artifact: str) -> None:
        super().__init__()
        self.artifact = artifact
        self.versions: list[Version] = []
        self.deprecations: list[Event] = []

    def find_version(self, name: str | None = None, commit: str | None = None, create: bool = False,
                     include_discovered: bool = False) -> Version | None:
        found = [v for v in self.versions
                 if (name is None or v.version == name) and (commit is None or v.commit_hexsha == commit)
                 and (include_discovered or not v.discovered)]
        if create and not found:
            self._changed()
            version = Version(self.artifact, name or commit or "", commit or "")
            self.versions.append(version)
            found = [version]
        return found[0] if found else None

    def add(self, event: Event) -> None:
        self._changed()
        if event.kind == "deprecation":
            self.deprecations.append(event)
            self.deprecations.sort(key=_BY_TIME)
            return
        version = self.find_version(event.version, event.commit_hexsha, create=True)
        assert version is not None
        version.add(event)

    def enrich(self, version: Version, event: Event) -> None:
        """Add the commit event of one of this artifact's versions."""
        self._changed()
        version.add(event)

    def events(self, ascending: bool = False) -> list[Event]:
        return self._cached(("events", ascending), lambda: _desc(
            self.deprecations + [e for v in self.versions for e in v.events()], ascending))

    @property
    def is_active(self) -> bool:
        events = self.events()
        return bool(events) and events[0].kind != "deprecation"

    @property
    def is_registered(self) -> bool:
        return not all(e.kind == "commit" for e in self.events())

    def get_versions(self, include_non_explicit: bool = False, include_discovered: bool = False,
                     active_only: bool = True, sort: str = "semver") -> list[Version]:
        def compute() -> list[Version]:
            chosen = [v for v in self.versions
                      if not active_only or (v.is_active and (
                          (v.is_registered and not v.discovered) or (include_discovered and v.discovered)
                          or (include_non_explicit and not v.is_registered)))]
            return sort_versions(chosen, sort)

        return self._cached(("versions", include_non_explicit, include_discovered, active_only, sort),
                            compute)

    def latest_version(self, registered_only: bool = True, sort: str = "semver") -> Version | None:
        versions = self.get_versions(include_non_explicit=not registered_only, sort=sort)
        return versions[0] if versions else None

    def vstages(self, registered_only: bool = False, versions_per_stage: int = 1,
                sort: str = "semver") -> dict[str, list[VStage]]:
        """Which versions sit in each stage (GTO's Artifact.get_vstages, all assignments per version)."""
        def compute() -> dict[str, list[VStage]]:
            versions = self.get_versions(include_non_explicit=not registered_only, sort=sort)
            assignments = [a for v in versions for a in v.vstages(ascending=True)]
            if sort == "timestamp":
                assignments = sorted(assignments, key=attrgetter("created_at"))[::-1]
            stages: dict[str, list[VStage]] = {}
            for a in assignments:
                bucket = stages.setdefault(a.stage, [])
                if versions_per_stage > -1 and len(bucket) >= versions_per_stage:
                    continue
                if a.version not in [i.version for i in bucket]:
                    bucket.append(a)
            return stages

        return self._cached(("vstages", registered_only, versions_per_stage, sort), compute)


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
