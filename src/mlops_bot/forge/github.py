"""The GitHub forge: `forge.base.Forge` as GitHub REST calls, at `GITHUB_API_URL` (GitHub
Enterprise Server too). Requests, retries, errors and shared rate limits are `github_client`'s; the
JSON both ways is `github_json`'s.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any, Literal

from github import GithubException

from mlops_bot.config import PERMISSION_ORDER, Permission
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
from mlops_bot.forge.github_client import DEFAULT_API_URL as DEFAULT_API_URL  # where callers look
from mlops_bot.forge.github_client import GitHubClient
from mlops_bot.forge.github_json import (
    ANNOTATIONS_PER_REQUEST,
    annotation_follow_ups,
    annotation_json,
    check_run_from,
    comment_from,
    deployment_from,
    deployment_status_from,
    issue_from,
    pull_request_from,
    release_from,
    text,
)


class GitHubForge(GitHubClient, Forge):
    """The forge's operations as GitHub REST calls (the plumbing is `GitHubClient`'s)."""

    # ------------------------------------------------------------------------ comments
    def list_comments(self, number: int) -> list[Comment]:
        path = f"{self._path}/issues/{number}/comments"
        return [comment_from(c) for c in self._paginate(path, f"list comments of #{number}")]

    def create_comment(self, number: int, body: str) -> Comment:
        path = f"{self._path}/issues/{number}/comments"
        return comment_from(self._raw("POST", path, f"comment on #{number}", {"body": body}))

    def update_comment(self, comment_id: int, body: str) -> Comment:
        path = f"{self._path}/issues/comments/{comment_id}"
        return comment_from(self._raw("PATCH", path, f"update comment {comment_id}", {"body": body}))

    def add_reaction(self, comment_id: int, content: Reaction) -> None:
        path = f"{self._path}/issues/comments/{comment_id}/reactions"
        self._raw("POST", path, f"react {content} to comment {comment_id}", {"content": content})

    # ------------------------------------------------------------------ issues and PRs
    def create_issue(self, title: str, body: str, labels: list[str] | None = None) -> Issue:
        data = {"title": title, "body": body, "labels": list(labels or [])}
        return issue_from(self._raw("POST", f"{self._path}/issues", f"create issue {title!r}", data))

    def update_issue(
        self, number: int, *, body: str | None = None, state: Literal["open", "closed"] | None = None
    ) -> Issue:
        patch: dict[str, Any] = {}
        if body is not None:
            patch["body"] = body
        if state is not None:
            patch["state"] = state
        path = f"{self._path}/issues/{number}"
        return issue_from(self._raw("PATCH", path, f"update issue #{number}", patch))

    def add_labels(self, number: int, labels: list[str]) -> None:
        path = f"{self._path}/issues/{number}/labels"
        self._raw("POST", path, f"label #{number}", {"labels": list(labels)})

    def list_issues(
        self, state: Literal["open", "closed", "all"] = "open", labels: list[str] | None = None
    ) -> list[Issue]:
        params: dict[str, Any] = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        rows = [issue_from(i) for i in self._paginate(f"{self._path}/issues", "list issues", params)]
        return [i for i in rows if not i.is_pull_request]

    def create_pull_request(self, title: str, head: str, base: str, body: str = "") -> PullRequest:
        data = {"title": title, "head": head, "base": base, "body": body}
        what = f"open a pull request from {head} into {base}"
        return pull_request_from(self._raw("POST", f"{self._path}/pulls", what, data))

    def get_pull_request(self, number: int) -> PullRequest:
        path = f"{self._path}/pulls/{number}"
        return pull_request_from(self._raw("GET", path, f"read pull request #{number}"))

    def list_pull_requests(self, state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        rows = self._paginate(f"{self._path}/pulls", "list pull requests", {"state": state})
        return [pull_request_from(p) for p in rows]

    # ------------------------------------------------------------- checks and statuses
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
            raise ForgeError(f"check run {name!r}: a completed check run needs a conclusion")
        notes = [annotation_json(a) for a in annotations or []]
        body: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status}
        if conclusion is not None:
            body["conclusion"] = conclusion
        if title or summary or notes:
            body["output"] = {
                "title": title or name,
                "summary": summary[:65535] or title or name,
                "annotations": notes[:ANNOTATIONS_PER_REQUEST],
            }
            if text:
                body["output"]["text"] = text[:65535]
        raw = self._raw("POST", f"{self._path}/check-runs", f"create check run {name!r}", body)
        run = check_run_from(raw)
        for follow_up in annotation_follow_ups(title or name, summary[:65535] or title or name, notes):
            run = self._patch_check(run.id, follow_up)
        return run

    def _patch_check(self, check_run_id: int, body: dict[str, Any]) -> CheckRun:
        path = f"{self._path}/check-runs/{check_run_id}"
        return check_run_from(self._raw("PATCH", path, f"update check run {check_run_id}", body))

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
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status
        if conclusion is not None:
            body["conclusion"] = conclusion
        notes = [annotation_json(a) for a in annotations or []]
        if title is not None or summary is not None or text is not None or notes:
            current = None
            if title is None or summary is None:
                current = check_run_from(
                    self._raw(
                        "GET", f"{self._path}/check-runs/{check_run_id}", f"read check run {check_run_id}"
                    )
                )
            output: dict[str, Any] = {
                "title": title if title is not None else (current.title if current else "") or "check",
                "summary": summary if summary is not None else (current.summary if current else "") or "-",
                "annotations": notes[:ANNOTATIONS_PER_REQUEST],
            }
            if text is not None:
                output["text"] = text
            body["output"] = output
        run = self._patch_check(check_run_id, body)
        if notes:
            for follow_up in annotation_follow_ups(body["output"]["title"], body["output"]["summary"], notes):
                run = self._patch_check(check_run_id, follow_up)
        return run

    def create_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", target_url: str = ""
    ) -> None:
        body: dict[str, Any] = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self._raw(
            "POST", f"{self._path}/statuses/{sha}", f"set commit status {context!r} on {sha[:12]}", body
        )

    # --------------------------------------------------------------- releases and assets
    def get_release(self, tag: str) -> Release | None:
        path = f"{self._path}/releases/tags/{urllib.parse.quote(tag, safe='')}"
        try:
            return release_from(self._raw("GET", path, f"read release {tag}"))
        except ForgeError as error:
            if isinstance(error.__cause__, GithubException) and error.__cause__.status == 404:
                return None
            raise

    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        data = {"tag_name": tag, "name": name or tag, "body": body, "prerelease": prerelease, "draft": draft}
        return release_from(self._raw("POST", f"{self._path}/releases", f"create release {tag}", data))

    def list_draft_releases(self) -> list[Release]:
        rows = self._paginate(f"{self._path}/releases", "list releases (drafts need write access)")
        return [release_from(row) for row in rows if row.get("draft")]

    def update_release(self, release_id: int, *, tag: str | None = None, name: str | None = None,
                       body: str | None = None, draft: bool | None = None) -> Release:
        data: dict[str, Any] = {}
        for key, value in (("tag_name", tag), ("name", name), ("body", body), ("draft", draft)):
            if value is not None:
                data[key] = value
        path = f"{self._path}/releases/{release_id}"
        return release_from(self._raw("PATCH", path, f"update release {release_id}", data))

    def delete_release(self, release_id: int) -> None:
        self._raw("DELETE", f"{self._path}/releases/{release_id}", f"delete release {release_id}")

    def upload_release_asset(self, release_id: int, path: Path, name: str | None = None) -> ReleaseAsset:
        name = name or Path(path).name
        api_path = f"{self._path}/releases/{release_id}/assets"
        with self._call("POST", api_path, f"upload {name} to release {release_id}"):
            release = self._repo.get_release(release_id)
            asset = release.upload_asset(str(path), name=name, content_type="application/octet-stream")
            raw = asset.raw_data
        return ReleaseAsset(
            id=raw["id"],
            name=raw["name"],
            size=raw["size"],
            browser_download_url=text(raw.get("browser_download_url")),
        )

    def download_release_asset(self, tag: str, name: str, dest: Path) -> Path:
        release = self.get_release(tag)
        if release is None:
            raise ForgeError(f"no release for tag {tag} on {self.repo}")
        asset = next((a for a in release.assets if a.name == name), None)
        if asset is None:
            raise ForgeError(f"release {tag} on {self.repo} has no asset named {name}")
        dest = Path(dest)
        target = dest / name if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        path = f"{self._path}/releases/assets/{asset.id}"
        with self._call("GET", path, f"download {name} from release {tag}"):
            self._repo.get_release_asset(asset.id).download_asset(str(target), chunk_size=1 << 16)
        return target

    # --------------------------------------------------------------------- tags and refs
    def get_ref_sha(self, ref: str) -> str | None:
        ref = ref.removeprefix("refs/")
        path = f"{self._path}/git/ref/{urllib.parse.quote(ref, safe='/')}"
        try:
            data = self._raw("GET", path, f"read ref {ref}")
        except ForgeError as error:
            if isinstance(error.__cause__, GithubException) and error.__cause__.status == 404:
                return None
            raise
        if isinstance(data, list):  # GitHub answers a list of matches for a partial ref
            return None
        return text(data["object"]["sha"]) or None

    # ----------------------------------------------------------------------- deployments
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
        body = {
            "ref": ref,
            "environment": environment,
            "description": description[:140],
            "payload": payload or {},
            "auto_merge": False,
            "required_contexts": [],
            "transient_environment": transient,
            "production_environment": production,
        }
        raw = self._raw(
            "POST", f"{self._path}/deployments", f"create a deployment of {ref} to {environment}", body
        )
        return deployment_from(raw)

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
        body: dict[str, Any] = {"state": state, "description": description, "auto_inactive": True}
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        path = f"{self._path}/deployments/{deployment_id}/statuses"
        return deployment_status_from(
            self._raw("POST", path, f"set deployment {deployment_id} {state}", body)
        )

    def list_deployments(self, environment: str | None = None) -> list[Deployment]:
        params = {"environment": environment} if environment else None
        rows = self._paginate(f"{self._path}/deployments", "list deployments", params)
        return [deployment_from(d) for d in rows]

    def list_deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]:
        path = f"{self._path}/deployments/{deployment_id}/statuses"
        rows = self._paginate(path, f"list statuses of deployment {deployment_id}")
        return [deployment_status_from(s) for s in rows]

    # ---------------------------------------------------------------- people and dispatch
    def get_permission(self, username: str) -> Permission:
        path = f"{self._path}/collaborators/{urllib.parse.quote(username, safe='')}/permission"
        try:
            data = self._raw("GET", path, f"read {username}'s permission")
        except ForgeError as error:
            if isinstance(error.__cause__, GithubException) and error.__cause__.status == 404:
                return "none"  # not a collaborator (or no such user)
            raise
        role = text(data.get("role_name"))
        if role in PERMISSION_ORDER:
            return role
        legacy = text(data.get("permission"))
        return legacy if legacy in PERMISSION_ORDER else "none"

    def repository_dispatch(self, event_type: str, client_payload: dict[str, Any] | None = None) -> None:
        body = {"event_type": event_type, "client_payload": client_payload or {}}
        self._raw("POST", f"{self._path}/dispatches", f"send repository_dispatch {event_type!r}", body)

    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str] | None = None) -> None:
        path = f"{self._path}/actions/workflows/{urllib.parse.quote(workflow, safe='')}/dispatches"
        self._raw(
            "POST", path, f"dispatch workflow {workflow!r} on {ref}", {"ref": ref, "inputs": inputs or {}}
        )
