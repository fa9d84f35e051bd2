"""One event of GTO's registry state (`Event`: a registry tag, or the commit a version sits on), its
priority and the order events sort in, exactly as GTO 1.10 sorts them (gto/base.py). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from operator import attrgetter

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: `registry show` start-up
    from typing import Any

# GTO's event priorities (gto/base.py): ties on timestamp in `history` sort by them.
PRIORITY = {"commit": 0, "creation": 1, "deprecation": 2, "registration": 3, "deregistration": 4,
            "assignment": 5, "unassignment": 6}
ADDITION = {"commit": True, "creation": True, "deprecation": False, "registration": True,
            "deregistration": False, "assignment": True, "unassignment": False}

BY_TIME = attrgetter("created_at")


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


def ordered_events(events: Iterable[Event], ascending: bool = False) -> list[Event]:
    """Newest first (or oldest first): a stable ascending sort, reversed, so ties come out exactly
    as in GTO."""
    ordered = sorted(events, key=BY_TIME)
    return ordered if ascending else ordered[::-1]


def authoring_event(direct: list[Event], indirect: list[Event]) -> Event:
    """The event that authored a version or stage: its newest addition, else the newest indirect one."""
    additions = [e for e in direct if e.addition]
    if additions:
        return additions[0]
    return indirect[0]
