"""The local forge's issues and pull requests (one number space, as on GitHub), their comments and
reactions."""

from __future__ import annotations

from typing import Any, Literal

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Comment, Issue, PullRequest, Reaction
from mlops_bot.forge.local.store import LocalStore, utc_now


class LocalIssues(LocalStore):
    """Issues and pull requests share one number space; a comment belongs to either."""

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
            now = utc_now()
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
            row["updated_at"] = utc_now()
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
