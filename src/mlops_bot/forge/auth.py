"""Credentials for GitHub: a token from the environment, or a GitHub App.

A GitHub App authenticates in two steps: an RS256 JWT signed with the app's private key (valid at
most 10 minutes; `iat` is backdated 60 s against clock drift) buys a per-installation token that
expires after one hour. The long-running bot must never send an expired token, so the installation
token is cached and refreshed a few minutes before its expiry. The clock is injected so the
refresh logic is testable without waiting an hour.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jwt
from github import Auth

from mlops_bot import redaction
from mlops_bot.errors import ForgeError
from mlops_bot.forge import quota
from mlops_bot.forge.retry import RetryPolicy, explain_error
from mlops_bot.forge.shared_quota import SharedStore, TokenSeal, token_key

JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 540  # exp - iat = 600 s: GitHub's maximum
REFRESH_MARGIN_SECONDS = 300.0
MINT_LEASE_SECONDS = 60.0  # how long other replicas wait for a replica minting a token before trying


def token_from_env(environ: Mapping[str, str]) -> str | None:
    """`GITHUB_TOKEN` (what Actions provides), else `GH_TOKEN` (what the gh CLI uses)."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def app_jwt(app_id: int | str, private_key: str, now: float) -> str:
    """The JWT a GitHub App signs to call `/app/...` endpoints (pure: `now` is passed in)."""
    issued = int(now) - JWT_BACKDATE_SECONDS
    claims = {"iat": issued, "exp": issued + JWT_BACKDATE_SECONDS + JWT_LIFETIME_SECONDS, "iss": str(app_id)}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ForgeError(
            f"GitHub App private key cannot sign a JWT ({error}); set MLOPS_BOT_APP_PRIVATE_KEY to the PEM "
            "contents or MLOPS_BOT_APP_PRIVATE_KEY_FILE to the .pem file downloaded from the app's settings"
        ) from error


def _parse_expiry(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class InstallationToken:
    token: str
    expires_at: float


class AppInstallationAuth:
    """Installation tokens for one repository's installation of a GitHub App, cached until
    `refresh_margin` seconds before they expire. Thread-safe (the bot's worker threads share it).

    With a `shared` store (the bot's database) the token is shared by every replica: one of them
    mints it under a lease (`forge/quota.py` decides), the others wait for it and reuse it, so an
    installation costs one mint per expiry window however many replicas and processes serve it."""

    def __init__(
        self,
        app_id: int | str,
        private_key: str,
        *,
        api_url: str,
        repo: str | None = None,
        installation_id: int | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        shared: SharedStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if installation_id is None and repo is None:
            raise ForgeError("GitHub App auth needs an installation id or a repository (GITHUB_REPOSITORY)")
        self.app_id = app_id
        self._private_key = private_key
        self.api_url = api_url.rstrip("/")
        self.repo = repo
        self.installation_id = installation_id
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.retry = retry or RetryPolicy()
        self._cached: InstallationToken | None = None
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30.0, transport=transport)
        self.fetches = 0  # how many tokens were minted: tests and metrics read it
        self.shared = shared
        self.sleep = sleep
        self._owner = uuid.uuid4().hex  # this cache's name on a mint lease
        self._seal = TokenSeal(private_key) if shared is not None else None

    def jwt(self) -> str:
        return app_jwt(self.app_id, self._private_key, self.clock())

    def token(self) -> str:
        with self._lock:
            cached = self._cached
            if cached is None or cached.expires_at - self.clock() <= self.refresh_margin:
                cached = self._cached = self._mint() if self.shared is None else self._shared_token()
            return cached.token

    def _shared_token(self) -> InstallationToken:
        """The installation's token from the shared store, minted here when this cache wins the
        lease. A lease whose holder died runs out after `MINT_LEASE_SECONDS`; the wait is bounded
        by real time too (an injected clock may stand still)."""
        assert self.shared is not None and self._seal is not None
        installation = self.find_installation()
        key = token_key(self.api_url, installation)
        give_up = time.monotonic() + 2 * MINT_LEASE_SECONDS + 30
        while True:
            now = self.clock()
            row = quota.SharedToken.from_json(self.shared.update_shared(key, functools.partial(
                _leased, owner=self._owner, now=now, margin=self.refresh_margin)))
            step = quota.next_token_step(row, self._owner, now, self.refresh_margin)
            if isinstance(step, quota.UseToken):
                token = self._seal.open(step.token)
                if token is not None:
                    redaction.register(token)
                    return InstallationToken(token, step.expires_at)
                # sealed with another App key: mint over it
                self.shared.update_shared(key, lambda _data: None)
                continue
            if isinstance(step, quota.MintToken):
                try:
                    fresh = self._mint()
                except BaseException:
                    self.shared.update_shared(key, lambda data: _json(
                        quota.released(quota.SharedToken.from_json(data), self._owner)))
                    raise
                stored = quota.minted(self._seal.seal(fresh.token), fresh.expires_at).to_json()
                self.shared.update_shared(key, functools.partial(_replaced, row=stored))
                return fresh
            if time.monotonic() > give_up:
                raise ForgeError(f"no installation token for installation {installation}: another replica "
                                 f"has held the lease to mint it for over {int(2 * MINT_LEASE_SECONDS)} s")
            self.sleep(step.seconds)

    def find_installation(self) -> int:
        """The installation id (given, or looked up once from the repository)."""
        if self.installation_id is None:
            found = self._request(
                "GET", f"/repos/{self.repo}/installation", f"find the GitHub App installation on {self.repo}"
            )
            self.installation_id = int(found["id"])
        return self.installation_id

    def _request(self, method: str, path: str, what: str) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self.jwt()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        url = f"{self.api_url}{path}"
        attempt = 0
        while True:
            try:
                response = self._client.request(method, url, headers=headers)
            except httpx.TransportError as error:
                if attempt >= self.retry.total:
                    raise ForgeError(f"{what}: GitHub API at {self.api_url} unreachable ({error})") from error
                time.sleep(self.retry.backoff(attempt))
                attempt += 1
                continue
            delay = self.retry.delay_for(
                response.status_code, response.headers, _message(response), attempt, self.clock()
            )
            if delay is None:
                break
            time.sleep(delay)
            attempt += 1
        if response.status_code >= 400:
            raise explain_error(
                response.status_code, _message(response), response.headers, method, path, what=what
            )
        data = response.json()
        if not isinstance(data, dict):
            raise ForgeError(f"{what}: unexpected answer from {url}")
        return data

    def _mint(self) -> InstallationToken:
        installation = self.find_installation()
        data = self._request(
            "POST",
            f"/app/installations/{installation}/access_tokens",
            f"create an installation token for installation {installation}",
        )
        self.fetches += 1
        redaction.register(str(data["token"]))  # minted at run time: masked in every log and error
        return InstallationToken(token=str(data["token"]), expires_at=_parse_expiry(str(data["expires_at"])))


def _json(row: quota.SharedToken | None) -> dict[str, Any] | None:
    return row.to_json() if row is not None else None


def _replaced(_data: dict[str, Any] | None, *, row: dict[str, Any]) -> dict[str, Any]:
    return row


def _leased(data: dict[str, Any] | None, *, owner: str, now: float, margin: float) -> dict[str, Any] | None:
    return _json(quota.take_lease(quota.SharedToken.from_json(data), owner, now, margin, MINT_LEASE_SECONDS))


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message", "")) if isinstance(data, dict) else ""


class InstallationTokenAuth(Auth.Auth):
    """Plugs `AppInstallationAuth` into PyGithub: every request asks for the current token, so a
    refreshed token is used as soon as it is minted."""

    def __init__(self, source: AppInstallationAuth) -> None:
        self.source = source

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self.source.token()
