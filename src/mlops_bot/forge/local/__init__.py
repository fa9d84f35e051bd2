"""A file-backed forge: what the offline demo and local runs use in place of GitHub.

`LocalForge` is the `forge.base.Forge` interface over a directory, one module per concern: `store`
(the state document `forge.json` under `flock`, written atomically; release assets as plain files),
`issues` (issues, pull requests, comments, reactions), `checks` (check runs, commit statuses),
`releases` (releases and their assets), `deployments`; refs, permissions and dispatches are here.
"""

from __future__ import annotations

from typing import Any

from mlops_bot.config import Permission
from mlops_bot.forge.local.checks import LocalChecks
from mlops_bot.forge.local.deployments import LocalDeployments
from mlops_bot.forge.local.issues import LocalIssues
from mlops_bot.forge.local.releases import LocalReleases
from mlops_bot.forge.local.store import utc_now


class LocalForge(LocalIssues, LocalChecks, LocalReleases, LocalDeployments):
    """A forge in a directory. `actor` is who the local user is; collaborators default to 'none'
    unless set with `set_permission` (the demo makes its user an admin)."""

    # -------------------------------------------------------------------------------- refs
    def get_ref_sha(self, ref: str) -> str | None:
        with self._state(write=False) as state:
            value = state["refs"].get(ref)
        return value if isinstance(value, str) else None

    def set_ref(self, ref: str, sha: str) -> None:
        with self._state() as state:
            state["refs"][ref] = sha

    # -------------------------------------------------------------------- people, dispatch
    def get_permission(self, username: str) -> Permission:
        with self._state(write=False) as state:
            value = state["collaborators"].get(username, "none")
        return value

    def set_permission(self, username: str, permission: Permission) -> None:
        with self._state() as state:
            state["collaborators"][username] = permission

    def repository_dispatch(self, event_type: str, client_payload: dict[str, Any] | None = None) -> None:
        with self._state() as state:
            state["dispatches"].append({
                "kind": "repository_dispatch", "event_type": event_type,
                "client_payload": client_payload or {}, "created_at": utc_now(),
            })

    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str] | None = None) -> None:
        with self._state() as state:
            state["dispatches"].append({
                "kind": "workflow_dispatch", "workflow": workflow, "ref": ref, "inputs": inputs or {},
                "created_at": utc_now(),
            })

    def dispatches(self) -> list[dict[str, Any]]:
        with self._state(write=False) as state:
            return list(state["dispatches"])
