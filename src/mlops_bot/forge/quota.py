"""What replicas decide about GitHub's limits together: pure functions over plain data (the clock,
the headers and the stored rows are passed in; `forge/shared_quota.py` is the I/O edge).

Two things are shared through the bot's database so that several replicas act as one client:

- the **rate-limit budget** of an installation, read from GitHub's `x-ratelimit-*` headers (GitHub
  counts per installation, whichever replica sends), and a block after a limit answer: a secondary
  limit's `retry-after`, or an exhausted primary limit until `x-ratelimit-reset`. Every replica
  consults it before each request and waits (or defers the job) instead of sending a request GitHub
  would refuse;
- the **installation token** (valid one hour): one replica mints it under a lease, the others wait
  for it and reuse it, so there is one mint per installation per expiry window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Requests the replicas keep in hand: each worker may have one request in flight that the shared
# budget does not show yet, so the budget counts as spent this far above zero.
RESERVE = 10
# Below this fraction of the limit every answer's budget is shared (above it, a replica's own
# headers are enough and the database is spared one write per request).
SHARE_BELOW = 0.25


# ---------------------------------------------------------------------------------- rate limits
@dataclass(frozen=True)
class Budget:
    """An installation's rate-limit window as last seen (`None`: not reported) and a block."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float = 0.0  # epoch seconds at which the window resets (0: unknown)
    blocked_until: float = 0.0  # no request before this (a limit answer said so)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Budget | None:
        if not data:
            return None
        return cls(_int(data.get("limit")), _int(data.get("remaining")), float(data.get("reset_at") or 0.0),
                   float(data.get("blocked_until") or 0.0))


def _int(value: object) -> int | None:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return None


def observe(status: int, headers: Mapping[str, str], message: str, now: float,
            secondary_wait: float = 60.0) -> Budget | None:
    """The budget an answer reports, with a block when it is a rate-limit answer: `retry-after`
    seconds, else until `x-ratelimit-reset` when nothing remains, else `secondary_wait` for a
    secondary limit named only in the message. None when the answer says nothing about limits."""
    lower = {k.lower(): str(v) for k, v in headers.items()}
    limit, remaining = _int(lower.get("x-ratelimit-limit")), _int(lower.get("x-ratelimit-remaining"))
    reset_at = float(_int(lower.get("x-ratelimit-reset")) or 0)
    blocked = 0.0
    if status in (403, 429):
        retry_after = _int(lower.get("retry-after"))
        if retry_after is not None:
            blocked = now + max(retry_after, 0)
        elif remaining == 0 and reset_at:
            blocked = max(reset_at + 1.0, now)  # the reset happens somewhere in that second
        elif "rate limit" in message.lower() or status == 429:
            blocked = now + secondary_wait
    if limit is None and remaining is None and not blocked:
        return None
    return Budget(limit, remaining, reset_at, blocked)


def merge(stored: Budget | None, seen: Budget) -> Budget:
    """The shared budget after one more answer. A later reset is a newer window (its counts win);
    within one window the lower `remaining` wins (answers arrive out of order); a block only grows."""
    if stored is None:
        return seen
    if seen.reset_at > stored.reset_at:
        window = (seen.limit, seen.remaining, seen.reset_at)
    elif seen.reset_at < stored.reset_at or seen.remaining is None:
        window = (stored.limit, stored.remaining, stored.reset_at)
    else:
        known = [r for r in (stored.remaining, seen.remaining) if r is not None]
        window = (seen.limit or stored.limit, min(known) if known else None, stored.reset_at)
    return Budget(*window, blocked_until=max(stored.blocked_until, seen.blocked_until))


def worth_sharing(seen: Budget, reserve: int = RESERVE) -> bool:
    """Whether an answer's budget must reach the other replicas: a block always, counts when the
    budget runs low."""
    if seen.blocked_until:
        return True
    if seen.remaining is None:
        return False
    low = max(reserve * 2, int((seen.limit or 0) * SHARE_BELOW))
    return seen.remaining <= low


def reserve_write(next_free: float, now: float, spacing: float) -> tuple[float, float]:
    """A write's slot when writes are paced `spacing` seconds apart across replicas (GitHub asks
    for a pause between mutating requests): (the next free slot after this write, seconds this
    write waits for its own)."""
    start = max(now, next_free)
    return start + spacing, start - now


def seconds_to_wait(budget: Budget | None, now: float, reserve: int = RESERVE) -> float:
    """How long before the next request may go: 0.0 now; else until the block ends or, with the
    budget down to `reserve`, until the window resets (one second later)."""
    if budget is None:
        return 0.0
    wait = max(0.0, budget.blocked_until - now)
    if budget.remaining is not None and budget.remaining <= reserve and budget.reset_at > now:
        wait = max(wait, budget.reset_at + 1.0 - now)
    return wait


# --------------------------------------------------------------------------- installation tokens
@dataclass(frozen=True)
class SharedToken:
    """The shared row of one installation's token: the (encrypted) token, its expiry, and who holds
    the lease to mint the next one until when."""

    token: str = ""
    expires_at: float = 0.0
    lease_owner: str = ""
    lease_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SharedToken | None:
        if not data:
            return None
        return cls(str(data.get("token") or ""), float(data.get("expires_at") or 0.0),
                   str(data.get("lease_owner") or ""), float(data.get("lease_until") or 0.0))


@dataclass(frozen=True)
class UseToken:
    token: str
    expires_at: float


@dataclass(frozen=True)
class MintToken:
    """This owner holds the lease: mint, then store with `minted`."""


@dataclass(frozen=True)
class WaitForToken:
    seconds: float


TokenStep = UseToken | MintToken | WaitForToken


def usable(row: SharedToken | None, now: float, margin: float) -> bool:
    """A token is used until `margin` seconds before it expires (then the next one is minted)."""
    return row is not None and bool(row.token) and row.expires_at - now > margin


def take_lease(row: SharedToken | None, owner: str, now: float, margin: float, lease_seconds: float
               ) -> SharedToken | None:
    """The row to store when `owner` wants a token: unchanged while the token is usable or another
    owner's lease is live; else with `owner`'s lease (a dead holder's lease runs out)."""
    if usable(row, now, margin):
        return row
    if row is not None and row.lease_owner not in ("", owner) and row.lease_until > now:
        return row
    current = row or SharedToken()
    return SharedToken(current.token, current.expires_at, owner, now + lease_seconds)


def next_token_step(row: SharedToken | None, owner: str, now: float, margin: float,
                    poll_seconds: float = 0.2) -> TokenStep:
    """After `take_lease`: use the shared token, mint one (our lease), or wait for the holder."""
    if row is not None and usable(row, now, margin):
        return UseToken(row.token, row.expires_at)
    if row is not None and row.lease_owner == owner and row.lease_until > now:
        return MintToken()
    until = row.lease_until if row is not None else now
    return WaitForToken(max(0.01, min(poll_seconds, until - now)))


def minted(token: str, expires_at: float) -> SharedToken:
    """The row after a mint: the new token, no lease."""
    return SharedToken(token, expires_at)


def released(row: SharedToken | None, owner: str) -> SharedToken | None:
    """The row after `owner` failed to mint: its lease dropped, so another replica may try."""
    if row is None or row.lease_owner != owner:
        return row
    return SharedToken(row.token, row.expires_at)
