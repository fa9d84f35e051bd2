"""The GitHub forge: `forge.base.Forge` over PyGithub, at `GITHUB_API_URL` (GitHub Enterprise Server
too). Lists go through PyGithub's `PaginatedList` (100 per page); failures become `ForgeError`s
that name the missing permission (see retry.py); retries happen inside PyGithub's HTTP layer.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import requests
from github import Auth, Github, GithubException
from github.GithubObject import NonCompletableGithubObject
from github.PaginatedList import PaginatedList

from mlops_bot.config import PERMISSION_ORDER, Permission
from mlops_bot.errors import ForgeError, RateLimited
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
from mlops_bot.forge.retry import ForgeRetry, RetryPolicy, explain_error
from mlops_bot.forge.shared_quota import RateLimitGate

DEFAULT_API_URL = "https://api.github.com"
ANNOTATIONS_PER_REQUEST = 50  # GitHub refuses more in one request


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class _RawItem(NonCompletableGithubObject):
    """A list element kept as GitHub's JSON (PyGithub's typed objects re-fetch themselves when
    their `raw_data` is read, one request per element)."""

    def _initAttributes(self) -> None:
        return None

    def _useAttributes(self, attributes: dict[str, Any]) -> None:
        return None


class _GatedAuth(Auth.Auth):
    """PyGithub asks its auth for headers before every request (each page and each retry of a
    page too): the place to consult the shared rate-limit budget."""

    def __init__(self, inner: Auth.Auth, gate: RateLimitGate) -> None:
        self.inner = inner
        self.gate = gate

    @property
    def token_type(self) -> str:
        return self.inner.token_type

    @property
    def token(self) -> str:
        return self.inner.token

    def authentication(self, headers: dict[str, str]) -> None:
        self.inner.authentication(headers)  # first: an App's token names its installation
        self.gate.before_request()

    def mask_authentication(self, headers: dict[str, str]) -> None:
        self.inner.mask_authentication(headers)


class GitHubForge(Forge):
    """`repo` is "owner/name"; `auth` a PyGithub auth (a token, or `auth.InstallationTokenAuth`).
    Writes are paced `seconds_between_writes` apart, as GitHub asks integrations to do to stay
    clear of secondary rate limits (none on loopback, where the emulator runs). With `limits` (the
    bot's replicas) every request first asks the shared rate-limit budget, every answer's limits
    are shared, and a limit that holds past the retry policy's `max_wait` raises `RateLimited`."""

    def __init__(
        self,
        repo: str,
        auth: Auth.Auth,
        *,
        api_url: str = DEFAULT_API_URL,
        retry: RetryPolicy | None = None,
        seconds_between_writes: float | None = None,
        timeout: float = 30.0,
        own_login: str | None = None,
        limits: RateLimitGate | None = None,
    ) -> None:
        self.own_login = own_login or None
        self.limits = limits
        if limits is not None:
            auth = _GatedAuth(auth, limits)
        if repo.count("/") != 1:
            raise ForgeError(f"GitHub repository must be 'owner/name', got {repo!r} (GITHUB_REPOSITORY)")
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.policy = retry or RetryPolicy()
        if seconds_between_writes is None:
            seconds_between_writes = 0.0 if _is_loopback(self.api_url) else 1.0
        self.github = Github(
            base_url=self.api_url,
            auth=auth,
            per_page=100,
            retry=ForgeRetry(self.policy),
            lazy=True,
            timeout=int(timeout),
            seconds_between_requests=None,
            seconds_between_writes=seconds_between_writes,
        )
        self._repo = self.github.get_repo(repo)
        self._path = f"/repos/{repo}"

    # ------------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _call(self, method: str, path: str, what: str) -> Iterator[None]:
        try:
            yield
        except GithubException as error:
            if self.limits is not None:
                blocked = self.limits.after_answer(error.status, error.headers or {}, self._message(error))
                if blocked > 0:
                    until = self.limits.clock() + blocked
                    raise RateLimited(f"{what}: GitHub rate limit (HTTP {error.status}); no request "
                                      f"before {int(blocked)} s from now", until) from error
            raise self._explain(error, method, path, what) from error
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ForgeError(f"{what}: GitHub API at {self.api_url} unreachable ({error})") from error
        if self.limits is not None:
            remaining, limit = self.github.requester.rate_limiting
            if limit >= 0:
                self.limits.after_answer(200, {
                    "x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
                    "x-ratelimit-reset": str(self.github.requester.rate_limiting_resettime)})

    @staticmethod
    def _message(error: GithubException) -> str:
        data = error.data if isinstance(error.data, dict) else {}
        return _text(data.get("message")) or _text(error.message)

    def _explain(self, error: GithubException, method: str, path: str, what: str) -> ForgeError:
        data = error.data if isinstance(error.data, dict) else {}
        message = self._message(error)
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(
                _text(e.get("message")) or f"{e.get('field')} {e.get('code')}"
                if isinstance(e, dict)
                else _text(e)
                for e in errors
            )
            message = f"{message}: {details}"
        return explain_error(error.status, message, error.headers or {}, method, path, what=what)

    def _raw(
        self,
        method: str,
        path: str,
        what: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        with self._call(method, path, what):
            _, data = self.github.requester.requestJsonAndCheck(method, path, parameters=params, input=body)
        return data

    def _paginate(self, path: str, what: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every element of a listing, following GitHub's `Link` headers 100 at a time."""
        with self._call("GET", path, what):
            pages = PaginatedList(_RawItem, self.github.requester, path, params or None)
            return [item.raw_data for item in pages]

    # ------------------------------------------------------------------------ comments
    @staticmethod
    def _comment(raw: dict[str, Any]) -> Comment:
        user = raw.get("user") or {}
        return Comment(
            id=raw["id"],
            body=_text(raw.get("body")),
            user=_text(user.get("login")),
            user_type=_text(user.get("type")) or "User",
            html_url=_text(raw.get("html_url")),
            created_at=_text(raw.get("created_at")),
            updated_at=_text(raw.get("updated_at")),
        )

    def list_comments(self, number: int) -> list[Comment]:
        path = f"{self._path}/issues/{number}/comments"
        return [self._comment(c) for c in self._paginate(path, f"list comments of #{number}")]

    def create_comment(self, number: int, body: str) -> Comment:
        path = f"{self._path}/issues/{number}/comments"
        return self._comment(self._raw("POST", path, f"comment on #{number}", {"body": body}))

    def update_comment(self, comment_id: int, body: str) -> Comment:
        path = f"{self._path}/issues/comments/{comment_id}"
        return self._comment(self._raw("PATCH", path, f"update comment {comment_id}", {"body": body}))

    def add_reaction(self, comment_id: int, content: Reaction) -> None:
        path = f"{self._path}/issues/comments/{comment_id}/reactions"
        self._raw("POST", path, f"react {content} to comment {comment_id}", {"content": content})

    # ------------------------------------------------------------------ issues and PRs
    @staticmethod
    def _issue(raw: dict[str, Any]) -> Issue:
        return Issue(
            number=raw["number"],
            title=_text(raw.get("title")),
            body=_text(raw.get("body")),
            state=raw.get("state", "open"),
            labels=[_text(x.get("name")) for x in raw.get("labels") or []],
            html_url=_text(raw.get("html_url")),
            is_pull_request="pull_request" in raw,
        )

    def create_issue(self, title: str, body: str, labels: list[str] | None = None) -> Issue:
        data = {"title": title, "body": body, "labels": list(labels or [])}
        return self._issue(self._raw("POST", f"{self._path}/issues", f"create issue {title!r}", data))

    def update_issue(
        self, number: int, *, body: str | None = None, state: Literal["open", "closed"] | None = None
    ) -> Issue:
        patch: dict[str, Any] = {}
        if body is not None:
            patch["body"] = body
        if state is not None:
            patch["state"] = state
        path = f"{self._path}/issues/{number}"
        return self._issue(self._raw("PATCH", path, f"update issue #{number}", patch))

    def add_labels(self, number: int, labels: list[str]) -> None:
        path = f"{self._path}/issues/{number}/labels"
        self._raw("POST", path, f"label #{number}", {"labels": list(labels)})

    def list_issues(
        self, state: Literal["open", "closed", "all"] = "open", labels: list[str] | None = None
    ) -> list[Issue]:
        params: dict[str, Any] = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        rows = [self._issue(i) for i in self._paginate(f"{self._path}/issues", "list issues", params)]
        return [i for i in rows if not i.is_pull_request]

    @staticmethod
    def _pull(raw: dict[str, Any]) -> PullRequest:
        return PullRequest(
            number=raw["number"],
            title=_text(raw.get("title")),
            body=_text(raw.get("body")),
            state=raw.get("state", "open"),
            head_ref=raw["head"]["ref"],
            head_sha=_text(raw["head"].get("sha")),
            base_ref=raw["base"]["ref"],
            merged=bool(raw.get("merged") or raw.get("merged_at")),
            user=_text((raw.get("user") or {}).get("login")),
            html_url=_text(raw.get("html_url")),
        )

    def create_pull_request(self, title: str, head: str, base: str, body: str = "") -> PullRequest:
        data = {"title": title, "head": head, "base": base, "body": body}
        what = f"open a pull request from {head} into {base}"
        return self._pull(self._raw("POST", f"{self._path}/pulls", what, data))

    def get_pull_request(self, number: int) -> PullRequest:
        path = f"{self._path}/pulls/{number}"
        return self._pull(self._raw("GET", path, f"read pull request #{number}"))

    def list_pull_requests(self, state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        rows = self._paginate(f"{self._path}/pulls", "list pull requests", {"state": state})
        return [self._pull(p) for p in rows]

    # ------------------------------------------------------------- checks and statuses
    @staticmethod
    def _check(raw: dict[str, Any]) -> CheckRun:
        output = raw.get("output") or {}
        return CheckRun(
            id=raw["id"],
            name=raw["name"],
            head_sha=raw["head_sha"],
            status=raw["status"],
            conclusion=raw.get("conclusion"),
            title=_text(output.get("title")),
            summary=_text(output.get("summary")),
            html_url=_text(raw.get("html_url")),
        )

    @staticmethod
    def _annotation(note: Annotation) -> dict[str, Any]:
        data = note.model_dump(exclude_none=True)
        data["message"] = data["message"][: 64 * 1024]
        return data

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
        notes = [self._annotation(a) for a in annotations or []]
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
        run = self._check(raw)
        # GitHub takes at most 50 annotations per request: send the rest in follow-up updates.
        for start in range(ANNOTATIONS_PER_REQUEST, len(notes), ANNOTATIONS_PER_REQUEST):
            run = self._patch_check(
                run.id,
                {
                    "output": {
                        "title": title or name,
                        "summary": summary[:65535] or title or name,
                        "annotations": notes[start : start + ANNOTATIONS_PER_REQUEST],
                    }
                },
            )
        return run

    def _patch_check(self, check_run_id: int, body: dict[str, Any]) -> CheckRun:
        path = f"{self._path}/check-runs/{check_run_id}"
        return self._check(self._raw("PATCH", path, f"update check run {check_run_id}", body))

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
        notes = [self._annotation(a) for a in annotations or []]
        if title is not None or summary is not None or text is not None or notes:
            current = None
            if title is None or summary is None:
                current = self._check(
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
        for start in range(ANNOTATIONS_PER_REQUEST, len(notes), ANNOTATIONS_PER_REQUEST):
            run = self._patch_check(
                check_run_id,
                {
                    "output": {
                        "title": body["output"]["title"],
                        "summary": body["output"]["summary"],
                        "annotations": notes[start : start + ANNOTATIONS_PER_REQUEST],
                    }
                },
            )
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
    @staticmethod
    def _release(raw: dict[str, Any]) -> Release:
        return Release(
            id=raw["id"],
            tag_name=raw["tag_name"],
            name=_text(raw.get("name")),
            body=_text(raw.get("body")),
            prerelease=bool(raw.get("prerelease")),
            draft=bool(raw.get("draft")),
            html_url=_text(raw.get("html_url")),
            assets=[
                ReleaseAsset(
                    id=a["id"],
                    name=a["name"],
                    size=a["size"],
                    browser_download_url=_text(a.get("browser_download_url")),
                )
                for a in raw.get("assets") or []
            ],
        )

    def get_release(self, tag: str) -> Release | None:
        path = f"{self._path}/releases/tags/{urllib.parse.quote(tag, safe='')}"
        try:
            return self._release(self._raw("GET", path, f"read release {tag}"))
        except ForgeError as error:
            if isinstance(error.__cause__, GithubException) and error.__cause__.status == 404:
                return None
            raise

    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        data = {"tag_name": tag, "name": name or tag, "body": body, "prerelease": prerelease, "draft": draft}
        return self._release(self._raw("POST", f"{self._path}/releases", f"create release {tag}", data))

    def list_draft_releases(self) -> list[Release]:
        rows = self._paginate(f"{self._path}/releases", "list releases (drafts need write access)")
        return [self._release(row) for row in rows if row.get("draft")]

    def update_release(self, release_id: int, *, tag: str | None = None, name: str | None = None,
                       body: str | None = None, draft: bool | None = None) -> Release:
        data: dict[str, Any] = {}
        for key, value in (("tag_name", tag), ("name", name), ("body", body), ("draft", draft)):
            if value is not None:
                data[key] = value
        path = f"{self._path}/releases/{release_id}"
        return self._release(self._raw("PATCH", path, f"update release {release_id}", data))

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
            browser_download_url=_text(raw.get("browser_download_url")),
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
        return _text(data["object"]["sha"]) or None

    # ----------------------------------------------------------------------- deployments
    @staticmethod
    def _deployment(raw: dict[str, Any]) -> Deployment:
        payload = raw.get("payload")
        return Deployment(
            id=raw["id"],
            ref=_text(raw.get("ref")),
            sha=_text(raw.get("sha")),
            environment=_text(raw.get("environment")),
            description=_text(raw.get("description")),
            payload=payload if isinstance(payload, dict) else {},
            created_at=_text(raw.get("created_at")),
        )

    @staticmethod
    def _deployment_status(raw: dict[str, Any]) -> DeploymentStatus:
        return DeploymentStatus(
            id=raw["id"],
            state=raw["state"],
            description=_text(raw.get("description")),
            environment=_text(raw.get("environment")),
            environment_url=_text(raw.get("environment_url")),
            log_url=_text(raw.get("log_url") or raw.get("target_url")),
            created_at=_text(raw.get("created_at")),
        )

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
        return self._deployment(raw)

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
        return self._deployment_status(
            self._raw("POST", path, f"set deployment {deployment_id} {state}", body)
        )

    def list_deployments(self, environment: str | None = None) -> list[Deployment]:
        params = {"environment": environment} if environment else None
        rows = self._paginate(f"{self._path}/deployments", "list deployments", params)
        return [self._deployment(d) for d in rows]

    def list_deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]:
        path = f"{self._path}/deployments/{deployment_id}/statuses"
        rows = self._paginate(path, f"list statuses of deployment {deployment_id}")
        return [self._deployment_status(s) for s in rows]

    # ---------------------------------------------------------------- people and dispatch
    def get_permission(self, username: str) -> Permission:
        path = f"{self._path}/collaborators/{urllib.parse.quote(username, safe='')}/permission"
        try:
            data = self._raw("GET", path, f"read {username}'s permission")
        except ForgeError as error:
            if isinstance(error.__cause__, GithubException) and error.__cause__.status == 404:
                return "none"  # not a collaborator (or no such user)
            raise
        role = _text(data.get("role_name"))
        if role in PERMISSION_ORDER:
            return role
        legacy = _text(data.get("permission"))
        return legacy if legacy in PERMISSION_ORDER else "none"

    def repository_dispatch(self, event_type: str, client_payload: dict[str, Any] | None = None) -> None:
        body = {"event_type": event_type, "client_payload": client_payload or {}}
        self._raw("POST", f"{self._path}/dispatches", f"send repository_dispatch {event_type!r}", body)

    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str] | None = None) -> None:
        path = f"{self._path}/actions/workflows/{urllib.parse.quote(workflow, safe='')}/dispatches"
        self._raw(
            "POST", path, f"dispatch workflow {workflow!r} on {ref}", {"ref": ref, "inputs": inputs or {}}
        )
