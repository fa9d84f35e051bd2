"""The registry's audit trail: one registry tag as a `RegistryEvent` (action, model, version, stage,
commit, actor, date, message, trailers and the artifact digests it records). Pure."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mlops_bot.registry.git import TagRecord
from mlops_bot.registry.tags import Action, TagName, checksums_from_trailers, parse_message


class RegistryEvent(BaseModel):
    """One registry tag as an event of the audit trail."""

    action: Action
    name: str
    tag: str
    version: str | None = None
    stage: str | None = None
    commit: str
    actor: str
    actor_email: str = ""
    created_at: datetime
    message: str
    trailers: dict[str, str] = Field(default_factory=dict)
    checksums: dict[str, str] = Field(default_factory=dict)


def event_from_record(record: TagRecord, parsed: TagName, version: str | None) -> RegistryEvent:
    """The audit-trail event of one registry tag (its parsed name, the version it concerns)."""
    _first, trailers = parse_message(record.message)
    return RegistryEvent(
        action=parsed.action, name=parsed.name, tag=record.tag, version=version, stage=parsed.stage,
        commit=record.target, actor=record.tagger_name, actor_email=record.tagger_email,
        created_at=record.tagged_at, message=record.message.strip(),
        trailers={k: v for k, v in trailers if k != "Artifact-Sha256"},
        checksums=checksums_from_trailers(trailers),
    )
