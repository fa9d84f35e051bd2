"""The I/O edge of `forge/quota.py`: GitHub's limits and installation tokens kept in a store every
replica shares (the bot's queue database: `SharedStore`), consulted before each request.

The store is two calls over small JSON rows: read one, and update one under a lock (the change is a
pure function from `quota.py`), so SQLite and PostgreSQL keep the same semantics with no policy in
SQL. Tokens are stored sealed (Fernet, with a key derived from the App's private key, which every
replica has and the database does not): a copy of the database alone holds no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken

from mlops_bot.errors import RateLimited
from mlops_bot.forge.quota import (
    RESERVE,
    Budget,
    merge,
    observe,
    reserve_write,
    seconds_to_wait,
    worth_sharing,
)

Row = dict[str, Any]


class SharedStore(Protocol):
    """Small JSON rows by key, shared by every replica (implemented by the queue backends)."""

    def shared(self, key: str) -> Row | None:
        """The row stored under `key`, None when there is none."""

    def update_shared(self, key: str, change: Callable[[Row | None], Row | None]) -> Row | None:
        """Replace the row under `key` by `change(row)` while holding its lock (no other replica
        updates it meanwhile); None from `change` deletes it. Returns the new row."""


def limits_key(api_url: str, who: str) -> str:
    """The store key of one client's rate-limit budget (`who`: `installation:ID` or a token's hash)."""
    return f"github-rate-limit:{api_url.rstrip('/')}:{who}"


def token_key(api_url: str, installation: int) -> str:
    return f"github-installation-token:{api_url.rstrip('/')}:{installation}"


def static_token_id(token: str) -> str:
    """Who a static token is in the store: a digest, never the token."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


class RateLimitGate:
    """Before each request: wait (up to `inline_wait` seconds) or raise `RateLimited` while the
    shared budget says GitHub would refuse; after each answer: share what it says of the limits."""

    def __init__(self, store: SharedStore, key: str | Callable[[], str], *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 inline_wait: float = 10.0, reserve: int = RESERVE, secondary_wait: float = 60.0) -> None:
        self.store = store
        self._key = key
        self.clock = clock
        self.sleep = sleep
        self.inline_wait = inline_wait
        self.reserve = reserve
        self.secondary_wait = secondary_wait
        self.write_spacing = 0.0  # seconds between writes across replicas (GitHubClient sets it)

    @property
    def key(self) -> str:
        return self._key() if callable(self._key) else self._key

    def before_request(self) -> None:
        now = self.clock()
        wait = seconds_to_wait(Budget.from_json(self.store.shared(self.key)), now, self.reserve)
        if wait <= 0:
            return
        if wait <= self.inline_wait:
            self.sleep(wait)
            return
        raise RateLimited(f"GitHub rate limit: no request before {_when(now + wait)} "
                          f"(in {wait:.0f} s; shared by every replica)", now + wait)

    def before_write(self) -> None:
        """Wait for this write's slot: writes of every replica are paced `write_spacing` apart
        (one shared row per client: its next free slot)."""
        if self.write_spacing <= 0:
            return
        now = self.clock()
        waits: list[float] = []

        def reserve(row: Row | None) -> Row:
            stored = float((row or {}).get("next_write") or 0.0)
            next_free, wait = reserve_write(stored, now, self.write_spacing)
            waits.append(wait)
            return {"next_write": next_free}

        self.store.update_shared(self.key + ":writes", reserve)
        if waits and waits[-1] > 0:
            self.sleep(waits[-1])

    def after_answer(self, status: int, headers: Mapping[str, str], message: str = "") -> float:
        """Share the answer's budget when it matters; the seconds it blocks requests (0.0: none)."""
        now = self.clock()
        seen = observe(status, headers, message, now, self.secondary_wait)
        if seen is None:
            return 0.0
        if worth_sharing(seen, self.reserve):
            self.store.update_shared(self.key, lambda row: merge(Budget.from_json(row), seen).to_json())
        return max(0.0, seen.blocked_until - now)


class TokenSeal:
    """Seals installation tokens for the shared store with a key only the App's holders derive."""

    def __init__(self, private_key: str) -> None:
        digest = hashlib.sha256(b"mlops-bot shared installation token\0" + private_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The token, or None when it was sealed with another key (the App key was rotated)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None
