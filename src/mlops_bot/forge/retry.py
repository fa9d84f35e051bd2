"""Surviving GitHub's failures, and saying clearly what is wrong when retrying cannot help.

Retried: 5xx answers (with exponential backoff), secondary rate limits (403/429 with `Retry-After`
or GitHub's "secondary rate limit" message) and primary rate limits (`x-ratelimit-remaining: 0`,
wait until `x-ratelimit-reset`). A wait longer than `max_wait` is not slept through: the caller gets
an error saying when the limit resets. Permanent 401/403/404 become a `ForgeError` that names the
token permission the request needs (from GitHub's `X-Accepted-GitHub-Permissions` header when sent,
else from our table of the endpoints mlops-bot calls).

`RetryPolicy` holds the decisions as pure functions (time passed in); `ForgeRetry` adapts them to
PyGithub's `GithubRetry` (a urllib3 `Retry`), which already handles 403 secondary limits by message.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from github.GithubException import RateLimitExceededExceedsMaxWait
from github.GithubRetry import GithubRetry

from mlops_bot.errors import ForgeError

RETRY_STATUSES = (500, 502, 503, 504)
DOCS = (
    "https://docs.github.com/rest/authentication/permissions-required-for-fine-grained-personal-access-tokens"
)


@dataclass(frozen=True)
class RetryPolicy:
    total: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    secondary_wait: float = 60.0
    max_wait: float = 900.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.backoff_max, self.backoff_factor * (2**attempt)))

    def rate_limit_wait(
        self, status: int, headers: Mapping[str, str], message: str, now: float
    ) -> float | None:
        """Seconds to wait when the answer is a rate limit, else None."""
        lower = {k.lower(): v for k, v in headers.items()}
        if status not in (403, 429):
            return None
        retry_after = lower.get("retry-after", "")
        if retry_after.strip().isdigit():
            return float(retry_after)
        if lower.get("x-ratelimit-remaining") == "0" and lower.get("x-ratelimit-reset", "").isdigit():
            return max(0.0, float(lower["x-ratelimit-reset"]) - now) + 1.0
        if "rate limit" in message.lower():
            return self.secondary_wait
        return None if status == 403 else self.secondary_wait

    def delay_for(
        self, status: int, headers: Mapping[str, str], message: str, attempt: int, now: float
    ) -> float | None:
        """How long to wait before retrying attempt `attempt` (0-based), or None: do not retry."""
        if attempt >= self.total:
            return None
        wait = self.rate_limit_wait(status, headers, message, now)
        if wait is not None:
            return wait if wait <= self.max_wait else None
        if status in RETRY_STATUSES:
            retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
            return float(retry_after) if retry_after.isdigit() else self.backoff(attempt)
        return None


class ForgeRetry(GithubRetry):
    """PyGithub's retry, widened to 429 (primary/secondary limits as GitHub now sends them, waiting
    for `x-ratelimit-reset`) and PATCH, and returning the last answer instead of raising so the
    caller can explain it."""

    def __init__(self, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        self.policy = policy or RetryPolicy()
        kwargs.setdefault("total", self.policy.total)
        kwargs.setdefault("backoff_factor", self.policy.backoff_factor)
        kwargs.setdefault("backoff_max", self.policy.backoff_max)
        kwargs.setdefault("status_forcelist", [429, *RETRY_STATUSES])
        kwargs.setdefault("allowed_methods", frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"}))
        kwargs.setdefault("raise_on_status", False)
        kwargs.setdefault("respect_retry_after_header", True)
        kwargs.setdefault("secondary_rate_wait", self.policy.secondary_wait)
        kwargs.setdefault("max_rate_limit_wait", self.policy.max_wait)
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> ForgeRetry:
        kw["policy"] = self.policy
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Any:
        if response is not None and response.status in (403, 429):
            # urllib3 sleeps a Retry-After of any length: past `max_wait` the caller decides instead
            # (the bot defers the job; see forge/shared_quota.py).
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.strip().isdigit() and float(retry_after) > self.policy.max_wait:
                raise _too_long(response, float(retry_after), self.policy.max_wait)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and response.status == 429 and "Retry-After" not in response.headers:
            wait = self.policy.rate_limit_wait(429, dict(response.headers), "", time.time())
            if wait is not None:
                if wait > self.policy.max_wait:
                    raise _too_long(response, wait, self.policy.max_wait)
                retry.get_backoff_time = lambda: wait  # type: ignore[method-assign]
        return retry


def _too_long(response: Any, wait: float, max_wait: float) -> RateLimitExceededExceedsMaxWait:
    """PyGithub's own error for a rate-limit wait past the limit, with the answer's headers (the
    forge reads the limit from them)."""
    with contextlib.suppress(Exception):  # read the rest of the answer: the connection stays usable
        response.drain_conn()
    message = (f"GitHub rate limit: the limit resets in {int(wait)} s, longer than the "
               f"{int(max_wait)} s we are willing to wait; retry later")
    return RateLimitExceededExceedsMaxWait(response.status, {"message": message}, dict(response.headers),
                                           wait=wait)


# (method, path regex) -> the fine-grained permission the endpoint needs, as written in a workflow's
# `permissions:` block. GitHub docs: "Permissions required for GitHub Apps / fine-grained tokens".
_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("POST", r"/issues/\d+/comments$", "pull-requests: write (or issues: write)"),
    ("PATCH", r"/issues/comments/\d+$", "pull-requests: write (or issues: write)"),
    ("POST", r"/issues/comments/\d+/reactions$", "pull-requests: write (or issues: write)"),
    ("GET", r"/issues", "issues: read"),
    ("POST", r"/issues$", "issues: write"),
    ("PATCH", r"/issues/\d+$", "issues: write"),
    ("POST", r"/pulls$", "pull-requests: write"),
    ("GET", r"/pulls", "pull-requests: read"),
    ("", r"/check-runs", "checks: write"),
    ("POST", r"/statuses/", "statuses: write"),
    ("POST", r"/releases", "contents: write"),
    ("GET", r"/releases", "contents: read"),
    ("POST", r"/git/refs", "contents: write"),
    ("GET", r"/git/", "contents: read"),
    ("POST", r"/deployments", "deployments: write"),
    ("GET", r"/deployments", "deployments: read"),
    ("GET", r"/collaborators/", "metadata: read"),
    ("POST", r"/dispatches$", "contents: write"),
    ("POST", r"/actions/workflows/[^/]+/dispatches$", "actions: write"),
    ("", r"^/app/", "a valid GitHub App JWT (check the app id and private key)"),
    ("", r"/installation$", "a valid GitHub App JWT (check the app id and private key)"),
)


def required_permission(method: str, path: str, headers: Mapping[str, str] | None = None) -> str | None:
    """What the request needs: GitHub's own `X-Accepted-GitHub-Permissions` header when present
    (`pull_requests=write; issues=write` = either), else our table."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    accepted = lower.get("x-accepted-github-permissions", "").strip()
    if accepted:
        options = []
        for option in accepted.split(";"):
            parts = [p.strip() for p in option.split(",") if "=" in p]
            if parts:
                options.append(
                    " and ".join(
                        f"{k.strip().replace('_', '-')}: {v.strip()}"
                        for k, v in (p.split("=", 1) for p in parts)
                    )
                )
        if options:
            return " (or ".join(options) + ")" * (len(options) - 1)
    for want, pattern, permission in _PERMISSIONS:
        if (not want or want == method.upper()) and re.search(pattern, path):
            return permission
    return None


def explain_error(
    status: int, message: str, headers: Mapping[str, str], method: str, path: str, *, what: str | None = None
) -> ForgeError:
    """A `ForgeError` a person can act on, for a failed GitHub request."""
    doing = what or f"{method.upper()} {path}"
    need = required_permission(method, path, headers)
    detail = f" (GitHub said: {message})" if message else ""
    lower = {k.lower(): v for k, v in headers.items()}
    if status == 401:
        return ForgeError(
            f"{doing}: GitHub rejected the credentials (401 Bad credentials){detail}; check that "
            "GITHUB_TOKEN is set and not expired, or the GitHub App id and private key"
        )
    if status in (403, 429) and (
        lower.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
    ):
        reset = lower.get("x-ratelimit-reset", "")
        when = f" (resets at epoch {reset})" if reset else ""
        return ForgeError(f"{doing}: GitHub rate limit still exceeded after retrying{when}{detail}")
    if status == 403:
        hint = f"the token needs `{need}`" if need else "the token lacks a permission for this endpoint"
        return ForgeError(
            f"{doing}: forbidden (403){detail}; {hint}. In a workflow add it under "
            f"`permissions:`; for a GitHub App grant it in the app settings. See {DOCS}"
        )
    if status == 404:
        hint = (
            f"; if it exists, the token may lack `{need}` (GitHub answers 404 when it cannot see a resource)"
            if need
            else ""
        )
        return ForgeError(f"{doing}: not found (404){detail}{hint}")
    if status == 422:
        return ForgeError(f"{doing}: GitHub refused the request as invalid (422){detail}")
    if status >= 500:
        return ForgeError(
            f"{doing}: GitHub answered {status} and kept failing after retries{detail}; "
            "try again later (https://www.githubstatus.com)"
        )
    return ForgeError(f"{doing}: GitHub answered {status}{detail}")
