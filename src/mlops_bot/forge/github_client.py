"""The plumbing under `GitHubForge`: PyGithub at `GITHUB_API_URL` (GitHub Enterprise Server too),
lists through PyGithub's `PaginatedList` (100 per page), retries inside PyGithub's HTTP layer
(retry.py), failures as `ForgeError`s that name the missing permission, and with the bot's
replicas the shared rate-limit budget asked before every request (shared_quota.py).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from typing import Any

import requests
from github import Auth, Github, GithubException
from github.GithubObject import NonCompletableGithubObject
from github.PaginatedList import PaginatedList

from mlops_bot.errors import ForgeError, RateLimited
from mlops_bot.forge.github_json import text
from mlops_bot.forge.retry import ForgeRetry, RetryPolicy, explain_error
from mlops_bot.forge.shared_quota import RateLimitGate

DEFAULT_API_URL = "https://api.github.com"


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


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


class GitHubClient:
    """PyGithub for one repository, as every GitHub endpoint of the forge uses it: `_raw` and
    `_paginate` requests, retries, errors a person can act on, shared rate limits.

    `repo` is "owner/name"; `auth` a PyGithub auth (a token, or `auth.InstallationTokenAuth`).
    Writes are paced `seconds_between_writes` apart, as GitHub asks integrations to do to stay
    clear of secondary rate limits (none on loopback, where the emulator runs). With `limits` (the
    bot's replicas) every request first asks the shared rate-limit budget, every answer's limits
    are shared, a limit that holds past the retry policy's `max_wait` raises `RateLimited`, and
    writes are paced `seconds_between_writes` apart across all replicas, not per process."""

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
        if limits is not None:  # paced across replicas through the shared store instead
            limits.write_spacing, seconds_between_writes = seconds_between_writes, 0.0
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

    @contextlib.contextmanager
    def _call(self, method: str, path: str, what: str) -> Iterator[None]:
        if self.limits is not None and method != "GET":
            self.limits.before_write()
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
        return text(data.get("message")) or text(error.message)

    def _explain(self, error: GithubException, method: str, path: str, what: str) -> ForgeError:
        data = error.data if isinstance(error.data, dict) else {}
        message = self._message(error)
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = "; ".join(
                text(e.get("message")) or f"{e.get('field')} {e.get('code')}"
                if isinstance(e, dict)
                else text(e)
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
