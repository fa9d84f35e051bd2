"""The routing contract between the rollout controller, the targets and the model server: which
versions a server holds (`RoutingRequest`, `VersionRef`) and how one request picks a side (`route`).

Pure: no model, no I/O. The controller and the targets import this module, never the server."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from mlops_bot.registry.tags import SemVer


def route(weight: int, request_key: str | None, draw: float) -> Literal["stable", "canary"]:
    """Pick a side. With a request key the choice is a pure function of the key (sticky: the same
    client stays on the same version while the weight holds); otherwise `draw` in [0, 1) decides."""
    if weight <= 0:
        return "stable"
    if weight >= 100:
        return "canary"
    if request_key:
        bucket = int.from_bytes(hashlib.sha256(request_key.encode()).digest()[:8], "big") % 10_000
        return "canary" if bucket < weight * 100 else "stable"
    return "canary" if draw * 100 < weight else "stable"


class VersionRef(BaseModel):
    """A version label (the registry's grammar: `v` + semver) and where its model files are."""

    version: str
    path: str

    @field_validator("version")
    @classmethod
    def _registry_version(cls, value: str) -> str:
        if not SemVer.is_valid(value):
            raise ValueError(f"version {value!r} is not a registry version ('v' + semver, e.g. v1.2.3)")
        return value


class RoutingRequest(BaseModel):
    """`POST /admin/versions`: what the server should hold next."""

    stable: VersionRef
    canary: VersionRef | None = None
    weight: int = Field(default=0, ge=0, le=100)
    shadow: bool = False

    @model_validator(mode="after")
    def _distinct_versions(self) -> RoutingRequest:
        if self.canary is not None and self.canary.version == self.stable.version:
            raise ValueError(f"the canary has stable's version label {self.stable.version!r}; a canary "
                             "is another version")
        return self
