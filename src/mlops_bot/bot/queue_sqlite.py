"""The embedded queue backend: SQLite in WAL mode, one connection per thread (semantics in queue.py).

The webhook answer never waits for a worker: the file it writes, the inbox
(`queue.inbox.sqlite3`), is written by nobody else. The answer inserts the delivery there (its
unique delivery id and idempotency key detect a redelivery or a replay in the insert itself) and
answers 202. The workers keep the jobs' state (status, attempts, claims, results, cool-downs,
shared rows) in `queue.sqlite3` and the step journal in `queue.steps.sqlite3`, which the answer
never writes; a worker imports the inbox rows it has not seen yet (by id: a read, which in WAL mode
never blocks the inbox's writer) into the state file inside its own write transaction, then claims
as before. What `depth`, `counts` and `stats` report is read from tallies the state file keeps as
jobs change, not from a scan of every job ever received (they are read on the server's event loop,
at each /healthz and /metrics). Layout and upgrade of older files: queue_sqlite_schema.py.

Before this split the answer and the workers took one file's write lock, and an answer meeting a
worker's write slept in SQLite's busy handler (1, 2, 5, 10... ms) with the event loop.

Workers still hold the state file's lock as little as they can: a finished job and the next claim
are one write transaction, and a worker reads before it takes the lock, so an idle worker polling
takes none. Jobs left `running` by a dead worker go back to `pending` when the server recovers them
(at start, and before it restarts a dead worker process): one server process owns one queue.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlops_bot.bot.queue import (
    DURATION_BUCKETS,
    JOB_FIELDS,
    WORKER_DIED,
    Job,
    JobStats,
    after_failure,
    changed_row,
    job_from_row,
    journal_step,
)
from mlops_bot.bot.queue_sqlite_schema import current, migrate, transaction

T = TypeVar("T")

# Inbox rows no worker has imported yet (a read of both files; never a lock).
_UNSEEN = "inbox.deliveries WHERE id > (SELECT last FROM inbox_read)"
_NEW = "SELECT id FROM " + _UNSEEN + " LIMIT 1"  # noqa: S608 - constant SQL
# The import, the first statement of a worker's write transaction: it takes the state file's write
# lock (a write to `main`) and only reads the inbox.
_IMPORT = (
    "INSERT INTO jobs (id, delivery, event, received_at, key, repo) "  # noqa: S608 - constant SQL
    "SELECT id, delivery, event, received_at, key, repo FROM " + _UNSEEN)
_IMPORTED = ("UPDATE inbox_read SET last = (SELECT MAX(id) FROM jobs) "
             "WHERE (SELECT MAX(id) FROM jobs) > last")
# A pending job one could take now (repositories with a running job excepted; `?2`: a job about
# to finish, whose repository is then free). A read: it never waits for, nor holds, the write lock.
_CANDIDATE = ("status='pending' AND available_at <= ?1 AND (repo = '' OR repo NOT IN "
              "(SELECT repo FROM jobs WHERE status='running' AND id <> ?2))")
_PEEK = "SELECT id FROM jobs WHERE " + _CANDIDATE + " LIMIT 1"  # noqa: S608 - constant SQL
_CLAIM = (
    "UPDATE jobs SET status='running', attempts=attempts+1, started_at=?, claimed_by=? "
    "WHERE id = (SELECT id FROM jobs WHERE status='pending' AND available_at <= ? "
    "AND (repo = '' OR repo NOT IN (SELECT repo FROM jobs WHERE status='running')) "
    "ORDER BY attempts, id LIMIT 1) "
    "AND status='pending' "
    "RETURNING id, delivery, event, attempts, received_at"
)
_COMPLETE = ("UPDATE jobs SET status='done', result=?, outcome=?, duration=?, finished_at=?, error=NULL "
             "WHERE id=?")
# Deliveries not imported yet are pending jobs too. One statement reads both files: an import that
# commits between its two snapshots moved rows the inbox still has, so none counts twice.
# Jobs per status come from `tallies`, kept by triggers (queue_sqlite_schema.py).
_DEPTH = (
    "SELECT (SELECT TOTAL(n) FROM tallies WHERE kind='status' AND event='' "  # noqa: S608 - constant SQL
    "AND result IN ('pending','running')) + (SELECT COUNT(*) FROM " + _UNSEEN + ")")
_OLDEST = (
    "SELECT (SELECT MIN(MAX(received_at, available_at)) FROM jobs WHERE status='pending'), "  # noqa: S608
    "(SELECT MIN(received_at) FROM " + _UNSEEN + ")")
_COUNTS = (
    "SELECT result, n FROM tallies WHERE kind='status' AND event='' "  # noqa: S608 - constant SQL
    "UNION ALL SELECT 'pending', COUNT(*) FROM " + _UNSEEN)
CLAIM_TRIES = 8  # reads that saw a job another worker then took, before this poll gives up


class SqliteQueue:
    """A queue in three SQLite files next to `path`. Thread-safe: each thread gets its own
    connection, with the inbox and the journal attached."""

    def __init__(self, path: str | Path, *, max_attempts: int = 3, retry_seconds: float = 5.0,
                 auto_checkpoint: bool = True) -> None:
        self.path = Path(path)
        self.inbox_path = self.path.with_suffix(".inbox" + self.path.suffix)
        self.journal_path = self.path.with_suffix(".steps" + self.path.suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.auto_checkpoint = auto_checkpoint
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        conn = self._conn()
        # Checked with a read first: a worker process starting beside a serving server must not
        # take the inbox's write lock when there is nothing to migrate.
        if not current(conn):
            migrate(conn, self.path)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("ATTACH DATABASE ? AS inbox", (str(self.inbox_path),))
            conn.execute("ATTACH DATABASE ? AS journal", (str(self.journal_path),))
            for name in ("main", "inbox", "journal"):
                conn.execute(f"PRAGMA {name}.journal_mode=WAL")
                # NORMAL in WAL mode survives a process crash (the case we design for); only an OS
                # crash or power loss can drop the last transactions.
                conn.execute(f"PRAGMA {name}.synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            if not self.auto_checkpoint:
                # A checkpoint fsyncs the database; done by the committing connection it would
                # stall a webhook answer for as long as the disk takes. Workers call checkpoint().
                conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @staticmethod
    def _writing(conn: sqlite3.Connection) -> contextlib.AbstractContextManager[None]:
        """A write transaction of the state file. Deferred, and its first statement must write
        `main`: BEGIN IMMEDIATE would take the write lock of every attached file, the inbox too."""
        return transaction(conn, "BEGIN")

    # ------------------------------------------------------------------------------ producer
    def enqueue(self, delivery: str, event: str, payload: bytes, received_at: float, *,
                key: str | None = None, repo: str = "") -> bool:
        """Store a delivery; False when its delivery id or idempotency key was already stored.
        Writes only the inbox, which no worker writes: this never waits for a worker."""
        conn = self._conn()
        with transaction(conn, "BEGIN"):  # deferred: the INSERT takes the inbox's write lock and no other
            cursor = conn.execute(
                "INSERT OR IGNORE INTO inbox.deliveries (delivery, event, received_at, key, repo) "
                "VALUES (?, ?, ?, ?, ?)",
                (delivery, event, received_at, key, repo),
            )
            stored = cursor.rowcount == 1
            if stored:
                conn.execute("INSERT INTO inbox.payloads (job_id, payload) VALUES (?, ?)",
                             (cursor.lastrowid, payload))
        return stored

    # ------------------------------------------------------------------------------ consumer
    def recover(self, now: float = 0.0) -> int:
        """Put jobs a dead worker left `running` back in line; returns how many. The attempt the
        dead worker made counts: a job that reached `max_attempts` this way is `failed`."""
        cursor = self._conn().execute(
            "UPDATE jobs SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END, "
            "error = CASE WHEN attempts >= ? THEN REPLACE(?, '{attempts}', attempts) ELSE error END, "
            "failures = failures + 1, finished_at = ? WHERE status='running'",
            (self.max_attempts, self.max_attempts, WORKER_DIED, now),
        )
        return cursor.rowcount

    def claim(self, now: float, owner: str = "") -> Job | None:
        """Take the oldest pending job of a repository with no job running, jobs never tried
        before first (a job that killed its worker goes to the back); atomically, so two workers
        never get the same one. The write lock is taken only when a read saw a job to take or
        deliveries to import."""
        conn = self._conn()
        for _ in range(CLAIM_TRIES):
            fresh = conn.execute(_NEW).fetchone() is not None
            if not fresh and conn.execute(_PEEK, (now, 0)).fetchone() is None:
                return None
            if fresh:
                with self._writing(conn):
                    self._import(conn)
                    row = conn.execute(_CLAIM, (now, owner, now)).fetchone()
            else:
                row = conn.execute(_CLAIM, (now, owner, now)).fetchone()
            if row is not None:
                return self._job(row)
        return None  # other workers kept taking what we saw: the next poll tries again

    def _import(self, conn: sqlite3.Connection) -> None:
        """The inbox's new deliveries into `jobs`, inside the caller's write transaction."""
        if conn.execute(_IMPORT).rowcount:
            conn.execute(_IMPORTED)

    def complete_and_claim(self, job_id: int, result: str, detail: str, seconds: float, now: float,
                           owner: str) -> Job | None:
        """`complete`, then `claim` for `owner`, in one write transaction (one lock per job)."""
        conn = self._conn()
        fresh = conn.execute(_NEW).fetchone() is not None
        if not fresh and conn.execute(_PEEK, (now, job_id)).fetchone() is None:
            self.complete(job_id, result, detail, seconds, now)
            return None
        with self._writing(conn):
            conn.execute(_COMPLETE, (result, f"{result}: {detail}"[:500], seconds, now, job_id))
            if fresh:
                self._import(conn)
            row = conn.execute(_CLAIM, (now, owner, now)).fetchone()
        return self._job(row) if row is not None else None

    def _job(self, row: tuple[Any, ...]) -> Job:
        """A claimed job with its payload, read after the claim's commit (outside the write lock)."""
        found = self._conn().execute("SELECT payload FROM inbox.payloads WHERE job_id=?",
                                     (row[0],)).fetchone()
        return job_from_row((row[0], row[1], row[2], found[0] if found is not None else b"", row[3], row[4]))

    def complete(self, job_id: int, result: str, detail: str, seconds: float, now: float) -> None:
        """Record a finished job: `result` is the handler's outcome status (done, ignored, ...)."""
        self._conn().execute(_COMPLETE, (result, f"{result}: {detail}"[:500], seconds, now, job_id))

    def fail(self, job_id: int, error: str, now: float) -> str:
        """Record a failure: back to `pending` (after an exponential backoff) while attempts remain,
        else `failed`. Returns the new status."""
        conn = self._conn()
        row = conn.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
        attempts = int(row[0]) if row is not None else self.max_attempts
        status, retry_at = after_failure(attempts, self.max_attempts, self.retry_seconds, now)
        conn.execute(
            "UPDATE jobs SET status=?, error=?, finished_at=?, available_at=?, failures=failures+1 "
            "WHERE id=?",
            (status, error[:2000], now, retry_at, job_id),
        )
        return status

    def defer(self, job_id: int, until: float, reason: str, now: float) -> None:
        """Put a job back in line until `until` without counting the attempt (it did not fail: GitHub
        asked us to wait)."""
        self._conn().execute(
            "UPDATE jobs SET status='pending', attempts=MAX(attempts-1, 0), available_at=?, error=?, "
            "finished_at=?, deferrals=deferrals+1 WHERE id=?",
            (until, reason[:2000], now, job_id),
        )

    # ------------------------------------------------------------------------------ journal
    def step(self, job_id: int, name: str, action: Callable[[], T],
             verify: Callable[[], T | None] | None = None) -> T:
        """Run a side effect once per job: a resumed job gets the recorded result instead of
        repeating it. The intent is recorded first; if a crash came between the effect and its
        record, `verify` (when given) finds the effect instead of repeating it. Results must be
        JSON-serialisable."""
        row = self._conn().execute(
            "SELECT result, state FROM journal.steps WHERE job_id=? AND step=?", (job_id, name)
        ).fetchone()
        return journal_step(row, lambda result, state: self._record(job_id, name, result, state),
                            action, verify)

    def _record(self, job_id: int, name: str, result: object, state: str) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO journal.steps (job_id, step, result, state) VALUES (?, ?, ?, ?)",
            (job_id, name, json.dumps(result), state),
        )

    # ------------------------------------------------------------------------------ shared rows
    def shared(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM shared WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def update_shared(self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
                      ) -> dict[str, Any] | None:
        conn = self._conn()
        with self._writing(conn):
            # A write first takes the state file's lock (no other process updates meanwhile) before
            # the read the change is made from.
            conn.execute("UPDATE shared SET value=value WHERE key=?", (key,))
            row = conn.execute("SELECT value FROM shared WHERE key=?", (key,)).fetchone()
            after, text, write = changed_row(row[0] if row is not None else None, change)
            if text is None:
                conn.execute("DELETE FROM shared WHERE key=?", (key,))
            elif write:
                conn.execute("INSERT OR REPLACE INTO shared (key, value) VALUES (?, ?)", (key, text))
        return after

    def take(self, key: str, now: float, seconds: float) -> float:
        conn = self._conn()
        with self._writing(conn):
            started = conn.execute(
                "INSERT INTO cooldowns (key, until) VALUES (?1, ?2 + ?3) "
                "ON CONFLICT (key) DO UPDATE SET until = ?2 + ?3 WHERE until <= ?2", (key, now, seconds))
            if started.rowcount == 1:
                return 0.0
            row = conn.execute("SELECT until FROM cooldowns WHERE key=?", (key,)).fetchone()
        return float(row[0]) - now

    def checkpoint(self) -> None:
        """Move the WALs into their databases without blocking writers (PASSIVE)."""
        conn = self._conn()
        for name in ("main", "inbox", "journal"):
            conn.execute(f"PRAGMA {name}.wal_checkpoint(PASSIVE)")

    # ------------------------------------------------------------------------------ inspection
    def depth(self) -> int:
        row = self._conn().execute(_DEPTH).fetchone()
        return int(row[0])

    def oldest_pending(self) -> float | None:
        row = self._conn().execute(_OLDEST).fetchone()
        found = [float(value) for value in row if value is not None]
        return min(found) if found else None

    def running_since(self, owner: str | None = None) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(started_at) FROM jobs WHERE status='running' AND (? IS NULL OR claimed_by = ?)",
            (owner, owner)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def stats(self) -> JobStats:
        finished: dict[tuple[str, str], int] = {}
        failures: dict[str, int] = {}
        deferrals: dict[str, int] = {}
        buckets = [0] * (len(DURATION_BUCKETS) + 1)
        seconds = 0.0
        for kind, event, result, count, total in self._conn().execute(
                "SELECT kind, event, result, n, total FROM tallies WHERE kind <> 'status' AND n > 0"):
            if kind == "finished":
                finished[(str(event), str(result))] = int(count)
            elif kind == "failures":
                failures[str(event)] = int(count)
            elif kind == "deferrals":
                deferrals[str(event)] = int(count)
            else:  # duration: jobs per histogram bucket (the last: above every bound)
                buckets[int(result)] += int(count)
                seconds += float(total)
        cumulative = tuple(sum(buckets[:index + 1]) for index in range(len(DURATION_BUCKETS)))
        return JobStats(finished, failures, deferrals, cumulative, sum(buckets), seconds)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for status, count in self._conn().execute(_COUNTS):
            if count:
                found[str(status)] = found.get(str(status), 0) + int(count)
        return found

    def jobs(self) -> list[dict[str, Any]]:
        conn = self._conn()
        last = int(conn.execute("SELECT last FROM inbox_read").fetchone()[0])
        rows = conn.execute(
            "SELECT id, delivery, event, status, attempts, outcome, error FROM jobs WHERE id <= ?1 "
            "UNION ALL SELECT id, delivery, event, 'pending', 0, NULL, NULL FROM inbox.deliveries "
            "WHERE id > ?1 ORDER BY id", (last,)).fetchall()
        return [dict(zip(JOB_FIELDS, row, strict=True)) for row in rows]
