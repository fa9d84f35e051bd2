"""Signalling a running rollout (abort, rollback, manual promote) through the forge.

The signal is a deployment status on the rollout's own GitHub deployment that keeps the current
state and carries a marker in its description (`mlops-bot:abort by @alice`). It needs nothing but
the deployments API, so it works across processes and machines: the bot writes it, the controller
(wherever it runs) reads its deployment's statuses on every tick and acts on markers it has not
handled yet.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from mlops_bot.errors import MlopsError
from mlops_bot.forge.base import Deployment, DeploymentState, Forge

Action = Literal["abort", "rollback", "promote"]
ACTIVE_STATES: frozenset[str] = frozenset({"queued", "pending", "in_progress"})
_MARKER = re.compile(r"^mlops-bot:(abort|rollback|promote) by @([A-Za-z0-9_.\-\[\]]+)")


class ControlRequest(BaseModel):
    status_id: int
    action: Action
    actor: str


def marker(action: Action, actor: str) -> str:
    return f"mlops-bot:{action} by @{actor}"


def parse_marker(description: str) -> tuple[Action, str] | None:
    match = _MARKER.match(description)
    if not match:
        return None
    action: Action = match.group(1)  # type: ignore[assignment]
    return action, match.group(2)


def _state_of(forge: Forge, deployment: Deployment) -> DeploymentState | None:
    statuses = forge.list_deployment_statuses(deployment.id)
    return statuses[0].state if statuses else None


def running_rollout(forge: Forge, environment: str) -> tuple[Deployment, DeploymentState | None] | None:
    """The rollout running in `environment`, with its state: the newest deployment there, when it
    has no status yet (created, the controller not started) or an active one. The one answer to
    "is a rollout running" (the bot's /promote and the control signals both ask here)."""
    for deployment in forge.list_deployments(environment):
        state = _state_of(forge, deployment)
        if state is None or state in ACTIVE_STATES:
            return deployment, state
        return None  # only the newest deployment can be a running rollout
    return None


def request_action(forge: Forge, environment: str, action: Action, actor: str) -> None:
    """Ask the rollout running in `environment` to abort, roll back or proceed past a manual step.
    Raises MlopsError when no rollout is running there (a rollback then is a plain re-deploy)."""
    if action not in ("abort", "rollback", "promote"):
        raise MlopsError(f"unknown rollout action {action!r}; use abort, rollback or promote")
    running = running_rollout(forge, environment)
    if running is not None:
        deployment, state = running
        forge.create_deployment_status(
            deployment.id, state if state in ACTIVE_STATES else "queued",
            description=marker(action, actor)[:140],
        )
        return
    if action == "rollback":
        return  # nothing running: the re-deploy of the earlier version does the rollback
    raise MlopsError(f"no rollout is running in environment {environment!r}: nothing to {action}")


def pending_requests(forge: Forge, deployment_id: int, after_status_id: int) -> list[ControlRequest]:
    """Control markers on a deployment newer than `after_status_id`, oldest first."""
    found = []
    for status in forge.list_deployment_statuses(deployment_id):
        if status.id <= after_status_id:
            continue
        parsed = parse_marker(status.description)
        if parsed:
            found.append(ControlRequest(status_id=status.id, action=parsed[0], actor=parsed[1]))
    return sorted(found, key=lambda r: r.status_id)
