"""The local forge's deployments and their statuses (newest first, as GitHub lists them)."""

from __future__ import annotations

from typing import Any

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Deployment, DeploymentState, DeploymentStatus
from mlops_bot.forge.local.store import LocalStore, utc_now


class LocalDeployments(LocalStore):
    """Deployments by id, each with its list of statuses."""

    def create_deployment(
        self,
        ref: str,
        environment: str,
        *,
        description: str = "",
        payload: dict[str, Any] | None = None,
        transient: bool = False,
        production: bool = False,
    ) -> Deployment:
        with self._state() as state:
            did = self._next_id(state)
            row = {
                "id": did, "ref": ref, "sha": "", "environment": environment,
                "description": description[:140], "payload": payload or {}, "created_at": utc_now(),
                "transient": transient, "production": production,
            }
            state["deployments"][str(did)] = row
            state["deployment_statuses"][str(did)] = []
        return Deployment.model_validate(row)

    def create_deployment_status(
        self,
        deployment_id: int,
        state: DeploymentState,
        *,
        description: str = "",
        environment_url: str = "",
        log_url: str = "",
    ) -> DeploymentStatus:
        if len(description) > 140:
            raise ForgeError("deployment status description must be at most 140 characters")
        with self._state() as data:
            deployment = data["deployments"].get(str(deployment_id))
            if deployment is None:
                raise ForgeError(f"local forge: deployment {deployment_id} not found")
            sid = self._next_id(data)
            row = {
                "id": sid, "state": state, "description": description,
                "environment": deployment["environment"], "environment_url": environment_url,
                "log_url": log_url, "created_at": utc_now(),
            }
            data["deployment_statuses"][str(deployment_id)].append(row)
        return DeploymentStatus.model_validate(row)

    def list_deployments(self, environment: str | None = None) -> list[Deployment]:
        with self._state(write=False) as state:
            rows = list(state["deployments"].values())
        rows = [r for r in rows if environment is None or r["environment"] == environment]
        # Newest first, as GitHub lists them.
        return [Deployment.model_validate(r) for r in sorted(rows, key=lambda r: -r["id"])]

    def list_deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]:
        with self._state(write=False) as state:
            rows = state["deployment_statuses"].get(str(deployment_id), [])
        return [DeploymentStatus.model_validate(r) for r in sorted(rows, key=lambda r: -r["id"])]
