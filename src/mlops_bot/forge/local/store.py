"""The local forge's storage: one JSON document (`forge.json`) guarded by an exclusive `flock`,
written atomically (temp file + rename) so a crash never leaves it half-written and several
processes (the bot's worker, a CLI run, the deploy controller) can share it. `LocalStore` is the
base of each resource's operations (`issues`, `checks`, `releases`, `deployments`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_bot.forge.base import Forge
from mlops_bot.locked_files import file_lock, replace_atomically

_EMPTY: dict[str, Any] = {
    "next_id": 1,
    "issues": {},  # number -> issue or PR (shared number space, as on GitHub)
    "comments": {},  # id -> comment with "issue_number"
    "reactions": [],
    "check_runs": {},
    "statuses": [],
    "releases": {},
    "refs": {},
    "deployments": {},
    "deployment_statuses": {},
    "collaborators": {},
    "dispatches": [],
}


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalStore(Forge):
    """A forge's state in a directory: `forge.json`, its lock, and release assets under
    `releases/<release id>/`. `actor` is who the local user is."""

    def __init__(self, root: str | Path, repo: str = "local/example", actor: str = "local-user") -> None:
        self.root = Path(root)
        self.repo = repo
        self.actor = actor
        self.own_login = actor
        self.root.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / "forge.json"
        self._lock_path = self.root / ".lock"

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict[str, Any]]:
        with file_lock(self._lock_path, shared=not write):
            if self._state_path.exists():
                state = json.loads(self._state_path.read_text(encoding="utf-8"))
            else:
                state = json.loads(json.dumps(_EMPTY))
            yield state
            if write:
                replace_atomically(self._state_path, json.dumps(state, indent=1, sort_keys=True),
                                   prefix=".forge.")

    @staticmethod
    def _next_id(state: dict[str, Any]) -> int:
        value = int(state["next_id"])
        state["next_id"] = value + 1
        return value

    def _url(self, *parts: object) -> str:
        return f"file://{self.root.resolve()}#" + "/".join(str(p) for p in parts)

    def snapshot(self) -> dict[str, Any]:
        """The whole state, for the demo's summary and for tests."""
        with self._state(write=False) as state:
            return json.loads(json.dumps(state))
