"""The one interface mlops-bot needs from a forge (GitHub, or the file-backed local forge).

Domain code (registry, pipeline, bot, deploy, monitor) talks only to `Forge`; only the
implementation changes between production (GitHub through PyGithub, at `GITHUB_API_URL`), the
tests (GitHub at the emulator's URL) and the offline demo (local files).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlops_bot.config import Permission
from mlops_bot.report.escape import comment_text

Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
CheckConclusion = Literal[
    "success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required"
]
CheckStatus = Literal["queued", "in_progress", "completed"]
CommitState = Literal["error", "failure", "pending", "success"]
DeploymentState = Literal["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]

STICKY_MARKER_PREFIX = "<!-- mlops-bot:sticky"


def sticky_marker(workflow: str, model: str) -> str:
    """Hidden HTML marker identifying the one sticky comment per workflow and model on a PR."""
    return f"{STICKY_MARKER_PREFIX} workflow={comment_text(workflow)} model={comment_text(model)} -->"


class Comment(BaseModel):
    id: int
    body: str
    user: str
    user_type: str = "User"
    html_url: str = ""
    created_at: str = ""
    updated_at: str = ""


class Annotation(BaseModel):
    path: str
    start_line: int = 1
    end_line: int = 1
    annotation_level: Literal["notice", "warning", "failure"] = "failure"
    message: str
    title: str | None = None


class CheckRun(BaseModel):
    id: int
    name: str
    head_sha: str
    status: CheckStatus
    conclusion: CheckConclusion | None = None
    title: str = ""
    summary: str = ""
    html_url: str = ""


class Issue(BaseModel):
    number: int
    title: str
    body: str = ""
    state: Literal["open", "closed"] = "open"
    labels: list[str] = Field(default_factory=list)
    html_url: str = ""
    is_pull_request: bool = False


class PullRequest(BaseModel):
    number: int
    title: str
    body: str = ""
    state: Literal["open", "closed"] = "open"
    head_ref: str
    head_sha: str = ""
    base_ref: str
    merged: bool = False
    user: str = ""
    html_url: str = ""


class ReleaseAsset(BaseModel):
    id: int
    name: str
    size: int
    browser_download_url: str = ""


class Release(BaseModel):
    id: int
    tag_name: str
    name: str = ""
    body: str = ""
    prerelease: bool = False
    draft: bool = False
    html_url: str = ""
    assets: list[ReleaseAsset] = Field(default_factory=list)


class Deployment(BaseModel):
    id: int
    ref: str
    sha: str = ""
    environment: str
    description: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""


class DeploymentStatus(BaseModel):
    id: int
    state: DeploymentState
    description: str = ""
    environment: str = ""
    environment_url: str = ""
    log_url: str = ""
    created_at: str = ""


class Forge(abc.ABC):
    """What mlops-bot needs from a forge. Every method either succeeds or raises ForgeError with a
    message that names the missing permission or the failing request."""

    repo: str  # "owner/name"

    # ------------------------------------------------------------------ issue and PR comments
    @abc.abstractmethod
    def list_comments(self, number: int) -> list[Comment]: ...

    @abc.abstractmethod
    def create_comment(self, number: int, body: str) -> Comment: ...

    @abc.abstractmethod
    def update_comment(self, comment_id: int, body: str) -> Comment: ...

    @abc.abstractmethod
    def add_reaction(self, comment_id: int, content: Reaction) -> None: ...

    # The login this forge writes comments as, when known (`MLOPS_BOT_LOGIN`, the local forge's actor).
    own_login: str | None = None

    def is_own_comment(self, comment: Comment) -> bool:
        """Written by us: by `own_login` when known, else by a bot account (an App or
        github-actions[bot]); a person's comment never is, whatever it quotes."""
        if self.own_login:
            return comment.user == self.own_login
        return comment.user_type == "Bot"

    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment:
        """Create the comment carrying `marker`, or update it in place. Comments belong to the PR
        number, not to a commit, so the sticky comment survives rebases and force-pushes. Only our
        own comments are candidates: a user's comment quoting the marker is left alone."""
        text = body if marker in body else f"{marker}\n{body}"
        for comment in self.list_comments(number):
            if marker in comment.body and self.is_own_comment(comment):
                return self.update_comment(comment.id, text)
        return self.create_comment(number, text)

    # ------------------------------------------------------------------------ issues and PRs
    @abc.abstractmethod
    def create_issue(self, title: str, body: str, labels: list[str] | None = None) -> Issue: ...

    @abc.abstractmethod
    def update_issue(
        self, number: int, *, body: str | None = None, state: Literal["open", "closed"] | None = None
    ) -> Issue: ...

    @abc.abstractmethod
    def add_labels(self, number: int, labels: list[str]) -> None:
        """Add labels to an issue or pull request (keeping the ones it has)."""

    @abc.abstractmethod
    def list_issues(self, state: Literal["open", "closed", "all"] = "open", labels: list[str] | None = None
                    ) -> list[Issue]: ...

    @abc.abstractmethod
    def create_pull_request(self, title: str, head: str, base: str, body: str = "") -> PullRequest: ...

    @abc.abstractmethod
    def get_pull_request(self, number: int) -> PullRequest: ...

    @abc.abstractmethod
    def list_pull_requests(self, state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]: ...

    # ------------------------------------------------------------------- checks and statuses
    @abc.abstractmethod
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
    ) -> CheckRun: ...

    @abc.abstractmethod
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
    ) -> CheckRun: ...

    @abc.abstractmethod
    def create_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", target_url: str = ""
    ) -> None: ...

    # ------------------------------------------------------------------ releases and assets
    @abc.abstractmethod
    def get_release(self, tag: str) -> Release | None:
        """The published release of `tag` (drafts are not found by tag, as on GitHub)."""

    @abc.abstractmethod
    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        """A draft may name a tag that does not exist (yet); publishing binds it to the tag."""

    @abc.abstractmethod
    def list_draft_releases(self) -> list[Release]:
        """Every draft release of the repository (visible to writers only, as on GitHub)."""

    @abc.abstractmethod
    def update_release(self, release_id: int, *, tag: str | None = None, name: str | None = None,
                       body: str | None = None, draft: bool | None = None) -> Release:
        """Change a release; `draft=False` publishes it (its tag must then exist)."""

    @abc.abstractmethod
    def delete_release(self, release_id: int) -> None: ...

    @abc.abstractmethod
    def upload_release_asset(self, release_id: int, path: Path, name: str | None = None) -> ReleaseAsset: ...

    @abc.abstractmethod
    def download_release_asset(self, tag: str, name: str, dest: Path) -> Path: ...

    # ----------------------------------------------------------------------- tags and refs
    @abc.abstractmethod
    def get_ref_sha(self, ref: str) -> str | None:
        """`ref` like 'tags/NAME@v1.0.0' or 'heads/main'; None when it does not exist."""

    # ------------------------------------------------------------------------- deployments
    @abc.abstractmethod
    def create_deployment(
        self,
        ref: str,
        environment: str,
        *,
        description: str = "",
        payload: dict[str, Any] | None = None,
        transient: bool = False,
        production: bool = False,
    ) -> Deployment: ...

    @abc.abstractmethod
    def create_deployment_status(
        self,
        deployment_id: int,
        state: DeploymentState,
        *,
        description: str = "",
        environment_url: str = "",
        log_url: str = "",
    ) -> DeploymentStatus: ...

    @abc.abstractmethod
    def list_deployments(self, environment: str | None = None) -> list[Deployment]: ...

    @abc.abstractmethod
    def list_deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]: ...

    # ------------------------------------------------------------------ people and dispatch
    @abc.abstractmethod
    def get_permission(self, username: str) -> Permission:
        """The user's permission on the repository (collaborator-permission API); 'none' if not one."""

    @abc.abstractmethod
    def repository_dispatch(self, event_type: str, client_payload: dict[str, Any] | None = None) -> None: ...

    @abc.abstractmethod
    def workflow_dispatch(self, workflow: str, ref: str, inputs: dict[str, str] | None = None) -> None: ...
