"""One model's versions and stages as GTO computes them (`Artifact` -> `Version` -> `VStage`), from
the events `state.RegistryState` adds: the same "latest event wins" rules and stable sorts as GTO
1.10 (gto/base.py), with derived views memoized per state change. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter

from mlops_bot.registry.event import BY_TIME, Event, authoring_event, ordered_events
from mlops_bot.registry.tags import SemVer

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: `registry show` start-up
    from typing import Any, TypeVar

    _T = TypeVar("_T")


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
        target.sort(key=BY_TIME)
        self._changed()

    def events(self, ascending: bool = False) -> list[Event]:
        return self._cached(("events", ascending),
                            lambda: ordered_events(self.assignments + self.unassignments, ascending))

    @property
    def is_active(self) -> bool:
        return self.events()[0].kind == "assignment"

    @property
    def activated_at(self) -> datetime | None:
        first = self.events()[0]
        return first.created_at if first.kind == "assignment" else None

    @property
    def created_at(self) -> datetime:
        return authoring_event(self.events(), []).created_at

    def as_dict(self) -> dict[str, Any]:
        authoring = authoring_event(self.events(), [])
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
            target.sort(key=BY_TIME)
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
            return ordered_events(chosen, ascending)

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
            self.deprecations.sort(key=BY_TIME)
            return
        version = self.find_version(event.version, event.commit_hexsha, create=True)
        assert version is not None
        version.add(event)

    def enrich(self, version: Version, event: Event) -> None:
        """Add the commit event of one of this artifact's versions."""
        self._changed()
        version.add(event)

    def events(self, ascending: bool = False) -> list[Event]:
        return self._cached(("events", ascending), lambda: ordered_events(
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
