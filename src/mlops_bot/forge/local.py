"""A file-backed forge: what the offline demo and local runs use in place of GitHub.

State is one JSON document (`forge.json`) guarded by an exclusive `flock`, written atomically
(temp file + rename) so a crash never leaves it half-written and several processes (the bot's
worker, a CLI run, the deploy controller) can share it. Release assets are plain files under
`releases/<release id>/`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlops_bot.config import Permission
from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import (
    Annotation,
    CheckConclusion,
    CheckRun,
    CheckStatus,
    Comment,
    CommitState,
    Deployment,
    DeploymentState,
    DeploymentStatus,
    Forge,
    Issue,
    PullRequest,
    Reaction,
    Release,
    ReleaseAsset,
)

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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalForge(Forge):
    """A forge in a directory. `actor` is who the local user is; collaborators default to 'none'
    unless set with `set_permission` (the demo makes its user an admin)."""

    def __init__(self, root: str | Path, repo: str = "local/example", actor: str = "local-user") -> None:
        self.root = Path(root)
        self.repo = repo
        self.actor = actor
        self.own_login = actor
        self.root.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / "forge.json"
        self._lock_path = self.root / ".lock"

    # --------------------------------------------------------------------------- storage
    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict[str, Any]]:
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                if self._state_path.exists():
                    state = json.loads(self._state_path.read_text(encoding="utf-8"))
                else:
                    state = json.loads(json.dumps(_EMPTY))
                yield state
                if write:
                    fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".forge.", suffix=".json")
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        json.dump(state, handle, indent=1, sort_keys=True)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(tmp, self._state_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

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

    # -------------------------------------------------------------------------- comments
    def list_comments(self, number: int) -> list[Comment]:
        with self._state(write=False) as state:
            self._require_issue(state, number)
            rows = [c for c in state["comments"].values() if c["issue_number"] == number]
        return [Comment.model_validate(c) for c in sorted(rows, key=lambda c: c["id"])]

    def create_comment(self, number: int, body: str, user: str | None = None) -> Comment:
        with self._state() as state:
            self._require_issue(state, number)
            cid = self._next_id(state)
            now = _now()
            row = {
                "id": cid, "issue_number": number, "body": body, "user": user or self.actor,
                "user_type": "User", "html_url": self._url("issues", number, "comments", cid),
                "created_at": now, "updated_at": now,
            }
            state["comments"][str(cid)] = row
        return Comment.model_validate(row)

    def update_comment(self, comment_id: int, body: str) -> Comment:
        with self._state() as state:
            row = state["comments"].get(str(comment_id))
            if row is None:
                raise ForgeError(f"local forge: comment {comment_id} not found")
            row["body"] = body
            row["updated_at"] = _now()
        return Comment.model_validate(row)

    def add_reaction(self, comment_id: int, content: Reaction) -> None:
        with self._state() as state:
            if str(comment_id) not in state["comments"]:
                raise ForgeError(f"local forge: comment {comment_id} not found")
            state["reactions"].append({"comment_id": comment_id, "content": content, "user": self.actor})

    def reactions(self, comment_id: int) -> list[str]:
        with self._state(write=False) as state:
            return [r["content"] for r in state["reactions"] if r["comment_id"] == comment_id]

    # ---------------------------------------------------------------------- issues and PRs
    @staticmethod
    def _require_issue(state: dict[str, Any], number: int) -> dict[str, Any]:
        row = state["issues"].get(str(number))
        if row is None:
            raise ForgeError(f"local forge: issue or pull request #{number} not found")
        return row

    def create_issue(self, title: str, body: str, labels: list[str] | None = None) -> Issue:
        with self._state() as state:
            number = len(state["issues"]) + 1
            row = {
                "number": number, "title": title, "body": body, "state": "open",
                "labels": list(labels or []), "html_url": self._url("issues", number),
                "is_pull_request": False,
            }
            state["issues"][str(number)] = row
        return Issue.model_validate(row)

    def update_issue(
        self, number: int, *, body: str | None = None, state: Literal["open", "closed"] | None = None
    ) -> Issue:
        with self._state() as data:
            row = self._require_issue(data, number)
            if body is not None:
                row["body"] = body
            if state is not None:
                row["state"] = state
        return Issue.model_validate({k: row[k] for k in Issue.model_fields if k in row})

    def add_labels(self, number: int, labels: list[str]) -> None:
        with self._state() as data:
            row = self._require_issue(data, number)
            row["labels"] = [*row["labels"], *(label for label in labels if label not in row["labels"])]

    def list_issues(self, state: Literal["open", "closed", "all"] = "open", labels: list[str] | None = None
                    ) -> list[Issue]:
        with self._state(write=False) as data:
            rows = [r for r in data["issues"].values() if not r["is_pull_request"]]
        rows = [r for r in rows if state == "all" or r["state"] == state]
        if labels:
            rows = [r for r in rows if set(labels) <= set(r["labels"])]
        return [Issue.model_validate(r) for r in sorted(rows, key=lambda r: r["number"])]

    def create_pull_request(self, title: str, head: str, base: str, body: str = "", head_sha: str = ""
                            ) -> PullRequest:
        with self._state() as state:
            number = len(state["issues"]) + 1
            row = {
                "number": number, "title": title, "body": body, "state": "open", "labels": [],
                "html_url": self._url("pull", number), "is_pull_request": True, "head_ref": head,
                "head_sha": head_sha, "base_ref": base, "merged": False, "user": self.actor,
            }
            state["issues"][str(number)] = row
        return PullRequest.model_validate(row)

    def get_pull_request(self, number: int) -> PullRequest:
        with self._state(write=False) as state:
            row = self._require_issue(state, number)
        if not row["is_pull_request"]:
            raise ForgeError(f"local forge: #{number} is an issue, not a pull request")
        return PullRequest.model_validate(row)

    def update_pull_request(self, number: int, **fields: Any) -> PullRequest:
        """Local-only: record a new head sha, a merge, a close (what GitHub does on push/merge)."""
        with self._state() as state:
            row = self._require_issue(state, number)
            row.update(fields)
        return PullRequest.model_validate(row)

    def list_pull_requests(self, state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        with self._state(write=False) as data:
            rows = [r for r in data["issues"].values() if r["is_pull_request"]]
        rows = [r for r in rows if state == "all" or r["state"] == state]
        return [PullRequest.model_validate(r) for r in sorted(rows, key=lambda r: r["number"])]

    # -------------------------------------------------------------------- checks, statuses
    def create_check_run(
        self,
        head_sha: str,
        name: str,
        *,
        status: CheckStatus = "completed",
        conclusion: CheckConclusion | None = None,
        title: str = "",
        summary: str = "",
        text: str = "",
        annotations: list[Annotation] | None = None,
    ) -> CheckRun:
        if status == "completed" and conclusion is None:
            raise ForgeError("local forge: a completed check run needs a conclusion")
        with self._state() as state:
            cid = self._next_id(state)
            row = {
                "id": cid, "name": name, "head_sha": head_sha, "status": status, "conclusion": conclusion,
                "title": title, "summary": summary, "text": text, "html_url": self._url("checks", cid),
                "annotations": [a.model_dump() for a in annotations or []],
            }
            state["check_runs"][str(cid)] = row
        return CheckRun.model_validate(row)

    def update_check_run(
        self,
        check_run_id: int,
        *,
        status: CheckStatus | None = None,
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        annotations: list[Annotation] | None = None,
    ) -> CheckRun:
        with self._state() as state:
            row = state["check_runs"].get(str(check_run_id))
            if row is None:
                raise ForgeError(f"local forge: check run {check_run_id} not found")
            for key, value in (("status", status), ("conclusion", conclusion), ("title", title),
                               ("summary", summary), ("text", text)):
                if value is not None:
                    row[key] = value
            if conclusion is not None:
                row["status"] = "completed"
            if annotations:
                row["annotations"].extend(a.model_dump() for a in annotations)
        return CheckRun.model_validate(row)

    def list_check_runs(self, head_sha: str) -> list[CheckRun]:
        with self._state(write=False) as state:
            rows = [r for r in state["check_runs"].values() if r["head_sha"] == head_sha]
        return [CheckRun.model_validate(r) for r in rows]

    def create_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", target_url: str = ""
    ) -> None:
        with self._state() as data:
            data["statuses"].append({
                "sha": sha, "state": state, "context": context, "description": description[:140],
                "target_url": target_url, "created_at": _now(),
            })

    # ---------------------------------------------------------------------------- releases
    def get_release(self, tag: str) -> Release | None:
        with self._state(write=False) as state:
            for row in state["releases"].values():
                if row["tag_name"] == tag and not row.get("draft"):
                    return Release.model_validate(row)
        return None

    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        with self._state() as state:
            if any(r["tag_name"] == tag and not r.get("draft") for r in state["releases"].values()):
                raise ForgeError(f"local forge: a release for tag {tag} already exists")
            rid = self._next_id(state)
            row = {
                "id": rid, "tag_name": tag, "name": name or tag, "body": body, "prerelease": prerelease,
                "draft": draft, "html_url": self._url("releases", tag), "assets": [],
            }
            state["releases"][str(rid)] = row
        return Release.model_validate(row)

    def list_draft_releases(self) -> list[Release]:
        with self._state(write=False) as state:
            return [Release.model_validate(r) for r in state["releases"].values() if r.get("draft")]

    def update_release(self, release_id: int, *, tag: str | None = None, name: str | None = None,
                       body: str | None = None, draft: bool | None = None) -> Release:
        with self._state() as state:
            row = state["releases"].get(str(release_id))
            if row is None:
                raise ForgeError(f"local forge: release {release_id} not found")
            new_tag = row["tag_name"] if tag is None else tag
            publishing = not (row.get("draft") if draft is None else draft)
            if publishing and any(r["tag_name"] == new_tag and not r.get("draft") and r["id"] != row["id"]
                                  for r in state["releases"].values()):
                raise ForgeError(f"local forge: a release for tag {new_tag} already exists")
            row["tag_name"] = new_tag
            row["html_url"] = self._url("releases", new_tag)
            for key, value in (("name", name), ("body", body), ("draft", draft)):
                if value is not None:
                    row[key] = value
        return Release.model_validate(row)

    def delete_release(self, release_id: int) -> None:
        with self._state() as state:
            if state["releases"].pop(str(release_id), None) is None:
                raise ForgeError(f"local forge: release {release_id} not found")
        shutil.rmtree(self.root / "releases" / str(release_id), ignore_errors=True)

    def upload_release_asset(self, release_id: int, path: Path, name: str | None = None) -> ReleaseAsset:
        name = name or Path(path).name
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            # GitHub stores asset names, not paths; here a name becomes a file under the release.
            raise ForgeError(f"local forge: {name!r} is not a valid release asset name")
        folder = self.root / "releases" / str(release_id)
        with self._state() as state:
            row = state["releases"].get(str(release_id))
            if row is None:
                raise ForgeError(f"local forge: release {release_id} not found")
            if any(a["name"] == name for a in row["assets"]):
                raise ForgeError(f"local forge: release {row['tag_name']} already has an asset named {name}")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / name)
            aid = self._next_id(state)
            asset = {
                "id": aid, "name": name, "size": (folder / name).stat().st_size,
                "browser_download_url": (folder / name).resolve().as_uri(),
            }
            row["assets"].append(asset)
        return ReleaseAsset.model_validate(asset)

    def download_release_asset(self, tag: str, name: str, dest: Path) -> Path:
        release = self.get_release(tag)
        if release is None:
            raise ForgeError(f"local forge: no release for tag {tag}")
        if not any(a.name == name for a in release.assets):
            raise ForgeError(f"local forge: release {tag} has no asset named {name}")
        dest = Path(dest)
        target = dest / name if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / "releases" / str(release.id) / name, target)
        return target

    # -------------------------------------------------------------------------------- refs
    def get_ref_sha(self, ref: str) -> str | None:
        with self._state(write=False) as state:
            value = state["refs"].get(ref)
        return value if isinstance(value, str) else None

    def set_ref(self, ref: str, sha: str) -> None:
        with self._state() as state:
            state["refs"][ref] = sha

    # ------------------------------------------------------------------------- deployments
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
                "description": description[:140], "payload": payload or {}, "created_at": _now(),
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
                "log_url": log_url, "created_at": _now(),
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
                "client_payload": client_payload or {}, "created_at": _now(),
            })

    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str] | None = None) -> None:
        with self._state() as state:
            state["dispatches"].append({
                "kind": "workflow_dispatch", "workflow": workflow, "ref": ref, "inputs": inputs or {},
                "created_at": _now(),
            })

    def dispatches(self) -> list[dict[str, Any]]:
        with self._state(write=False) as state:
            return list(state["dispatches"])
