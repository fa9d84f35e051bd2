"""The durable delivery queue: what the webhook handler and the workers need of it.

Two backends keep the same semantics: `queue_sqlite.SqliteQueue` (files under the state
directory, the embedded default: an inbox only the answering process writes, the jobs' state and
the step journal the workers write) and `queue_postgres.PostgresQueue` (`MLOPS_BOT_DATABASE_URL`, so
several bot replicas share one queue). Semantics every backend keeps:

- a delivery id is stored once, and so is an idempotency key (`events.event_key`): a redelivery or a
  replay under a new delivery id is answered `duplicate`;
- a claim hands each job to one worker, oldest first, and never two jobs of one repository at once
  (one repository's flood cannot occupy every worker): a partial unique index on the running
  repository holds the rule across replicas, whose concurrent claims each see only committed rows;
- a failure goes back to `pending` with exponential backoff until `max_attempts`, then `failed`;
  a job whose worker died counts that attempt too, so a job that kills its worker every time stops;
- side effects are journalled per job (`step`), so a resumed job skips what it already did;
- a job GitHub's rate limit stops is deferred (`defer`) until the limit lifts, its attempt uncounted;
- small shared rows (`shared`, `update_shared` under a lock) hold what replicas share of GitHub: the
  rate-limit budget and the installation tokens (`forge/shared_quota.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 300.0)


@dataclass(frozen=True)
class Job:
    id: int
    delivery: str
    event: str
    payload: bytes
    attempts: int
    received_at: float


@dataclass(frozen=True)
class JobStats:
    """Job outcomes as Prometheus counters want them, read from the queue itself, so they are right
    whichever process (or replica) ran the jobs."""

    finished: dict[tuple[str, str], int] = field(default_factory=dict)  # (event, result) -> jobs
    failures: dict[str, int] = field(default_factory=dict)  # event -> attempts that raised
    deferrals: dict[str, int] = field(default_factory=dict)  # event -> times a rate limit deferred a job
    duration_buckets: tuple[int, ...] = ()  # cumulative counts per DURATION_BUCKETS bound
    duration_count: int = 0
    duration_sum: float = 0.0


class JobQueue(Protocol):
    max_attempts: int

    def enqueue(self, delivery: str, event: str, payload: bytes, received_at: float, *,
                key: str | None = None, repo: str = "") -> bool:
        """Store a delivery; False when its delivery id or idempotency key was stored before."""

    def recover(self, now: float) -> int:
        """Jobs whose worker is gone back in line (or `failed` after max_attempts); how many."""

    def claim(self, now: float, owner: str = "") -> Job | None:
        """The next job for the worker `owner` (`host:pid`, recorded with the job)."""

    def complete(self, job_id: int, result: str, detail: str, seconds: float, now: float) -> None: ...
    def complete_and_claim(self, job_id: int, result: str, detail: str, seconds: float, now: float,
                           owner: str) -> Job | None:
        """`complete` then `claim(now, owner)` in one transaction: a busy worker takes the queue's
        write lock once per job, not twice."""

    def fail(self, job_id: int, error: str, now: float) -> str: ...
    def defer(self, job_id: int, until: float, reason: str, now: float) -> None:
        """Back in line until `until` (GitHub's rate limit), the attempt not counted."""

    def step(self, job_id: int, name: str, action: Callable[[], T],
             verify: Callable[[], T | None] | None = None) -> T: ...
    def checkpoint(self) -> None: ...
    def depth(self) -> int: ...
    def oldest_pending(self) -> float | None:
        """Since when the longest-waiting pending job could have run (received, or due again after
        a backoff); None when nothing is pending."""

    def running_since(self, owner: str | None = None) -> float | None:
        """`started_at` of the longest-running job (of worker `owner` when given), None when none runs."""

    def take(self, key: str, now: float, seconds: float) -> float:
        """A cool-down shared by every worker and replica: 0.0 (and the cool-down starts) when
        `key` is free, else the seconds left."""

    def shared(self, key: str) -> dict[str, Any] | None:
        """A row replicas share (rate limits, installation tokens: `forge/shared_quota.py`)."""

    def update_shared(self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
                      ) -> dict[str, Any] | None: ...
    def counts(self) -> dict[str, int]: ...
    def stats(self) -> JobStats: ...
    def jobs(self) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


# ------------------------------------------------------------------ what both backends share
JOB_FIELDS = ("id", "delivery", "event", "status", "attempts", "outcome", "error")  # jobs() rows
WORKER_DIED = ("the worker died during this job {attempts} time(s) "
               "(killed, out of memory or past its time limit)")
DONE, STARTED = "done", "started"  # journal step states


def job_from_row(row: Sequence[Any]) -> Job:
    """A claimed job from `RETURNING id, delivery, event, payload, attempts, received_at`."""
    return Job(id=int(row[0]), delivery=str(row[1]), event=str(row[2]), payload=bytes(row[3]),
               attempts=int(row[4]), received_at=float(row[5]))


def after_failure(attempts: int, max_attempts: int, retry_seconds: float, now: float) -> tuple[str, float]:
    """A failed attempt's next status and when the job may run again: back to `pending` with an
    exponential backoff (`retry_seconds`, doubled per attempt) while attempts remain, else `failed`."""
    status = "pending" if attempts < max_attempts else "failed"
    return status, now + retry_seconds * 2 ** max(attempts - 1, 0)


def journal_step(found: tuple[str, str] | None, record: Callable[[object, str], None],
                 action: Callable[[], T], verify: Callable[[], T | None] | None) -> T:
    """One journalled side effect, given its recorded (result JSON, state) row: the recorded result
    when done; else, when a crash came between an effect and its record, what `verify` finds; else
    the intent recorded first, the effect, then its result. Results must be JSON-serialisable."""
    if found is not None and found[1] == DONE:
        value: T = json.loads(found[0])
        return value
    if found is not None and verify is not None:
        seen = verify()
        if seen is not None:
            record(seen, DONE)
            return seen
    record(None, STARTED)
    result = action()
    record(result, DONE)
    return result


def changed_row(stored: str | None, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
                ) -> tuple[dict[str, Any] | None, str | None, bool]:
    """`update_shared`'s decision from the stored JSON: the new row, its JSON (None: delete) and
    whether anything is to be written."""
    before = json.loads(stored) if stored is not None else None
    after = change(before)
    return after, (json.dumps(after) if after is not None else None), after != before


def open_queue(state_dir: Path, environ: Mapping[str, str], *, server: bool = False) -> JobQueue:
    """The queue the environment names: PostgreSQL when `MLOPS_BOT_DATABASE_URL` is set, else the
    SQLite files under the state directory. `server`: opened by the process answering webhooks
    (SQLite then leaves WAL checkpoints to the workers)."""
    url = environ.get("MLOPS_BOT_DATABASE_URL", "").strip()
    if url:
        from mlops_bot.bot.queue_postgres import PostgresQueue

        return PostgresQueue(url)
    from mlops_bot.bot.queue_sqlite import SqliteQueue

    return SqliteQueue(state_dir / "queue.sqlite3", auto_checkpoint=not server)
