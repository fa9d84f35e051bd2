"""The routing contract between the rollout controller, the targets and the model server: which
versions a server holds (`RoutingRequest`, `VersionRef`) and how one request picks a side (`route`).

Pure: no model, no I/O. The controller and the targets import this module, never the server."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field


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
    version: str
    path: str


class RoutingRequest(BaseModel):
    """`POST /admin/versions`: what the server should hold next."""

    stable: VersionRef
    canary: VersionRef | None = None
    weight: int = Field(default=0, ge=0, le=100)
    shadow: bool = False
