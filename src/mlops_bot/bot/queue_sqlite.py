"""The embedded queue backend: SQLite in WAL mode, one connection per thread (semantics in queue.py).

The webhook handler only inserts here and answers 202; workers drain it. The `delivery` and `key`
columns are unique, so a redelivery (same `X-GitHub-Delivery`) or a replay (same body, new id) is
detected by the insert itself.

The answer waits for the file's write lock, which the worker process takes too; a worker preempted
while holding it stalls answers (the tail under CPU shortage), so the worker holds it as little as
it can: a job's payload lives in its own table (`payloads`), so a claim or a finish rewrites a
row of ~100 bytes, not the 10+ KB delivery in overflow pages; a worker finishing a job claims the
next in the same transaction (one write transaction per job); and it looks for a job with a read
(which never blocks a writer in WAL mode) before it takes the lock to claim one, so an idle worker
polling takes no lock at all. Jobs left `running` by a dead worker go back to `pending` when the
server recovers them (at start, and before it restarts a dead worker process): one server process
owns one queue file. A job's side effects are journalled step by step (`steps`, in a second file
`<queue>.steps.sqlite3`), so a resumed job skips what it already did.
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
from mlops_bot.errors import MlopsError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    available_at REAL NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    outcome TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
CREATE TABLE IF NOT EXISTS payloads (
    job_id INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cooldowns (
    key TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shared (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal.steps (
    job_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'done',
    PRIMARY KEY (job_id, step)
);
"""


# Columns added after the first release: added to an existing file when it is opened.
_ADDED_COLUMNS = (
    ("key", "TEXT"), ("repo", "TEXT NOT NULL DEFAULT ''"), ("result", "TEXT"), ("duration", "REAL"),
    ("failures", "INTEGER NOT NULL DEFAULT 0"), ("claimed_by", "TEXT"),
    ("deferrals", "INTEGER NOT NULL DEFAULT 0"),
)
# jobs_claim holds every column the claim and `oldest_pending` read, so they never read a row (when
# the payload was a column of `jobs`, reading a row past it went through its overflow pages: each
# claim cost O(backlog) page reads, 42 ms with 2,000 pending; 0.02 ms from the index).
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs(key);
CREATE INDEX IF NOT EXISTS jobs_repo_running ON jobs(repo, status);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(status, attempts, id, available_at, repo, received_at);
"""


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
CLAIM_TRIES = 8  # reads that saw a job another worker then took, before this poll gives up


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


class SqliteQueue:
    """A queue in one SQLite file. Thread-safe: each thread gets its own connection."""

    def __init__(self, path: str | Path, *, max_attempts: int = 3, retry_seconds: float = 5.0,
                 auto_checkpoint: bool = True) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_suffix(".steps" + self.path.suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.auto_checkpoint = auto_checkpoint
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; another opening meanwhile waits
        try:
            self._migrate(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the tables, or bring a file of an older release up to date in place."""
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        present = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in present:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
        if "payload" in present:  # before the payloads table: move them out of the job rows
            conn.execute("INSERT OR IGNORE INTO payloads (job_id, payload) SELECT id, payload FROM jobs")
            try:
                conn.execute("ALTER TABLE jobs DROP COLUMN payload")
            except sqlite3.OperationalError as error:
                raise MlopsError(f"{self.path}: cannot move the job payloads to their own table with "
                                 f"SQLite {sqlite3.sqlite_version} ({error}); SQLite 3.35 or newer "
                                 "upgrades this queue file") from None
        for statement in _statements(_INDEXES):
            conn.execute(statement)
        # The rule as a constraint, as in queue_postgres (the claim below never breaks it); a file
        # from before the index with such jobs gets it once they are over.
        with contextlib.suppress(sqlite3.IntegrityError):
            conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_running ON jobs(repo) "
                         "WHERE status = 'running' AND repo <> ''")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            # The step journal is a separate file: a worker journalling effects then never holds
            # the write lock the webhook handler needs to insert a delivery.
            conn.execute("ATTACH DATABASE ? AS journal", (str(self.journal_path),))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA journal.journal_mode=WAL")
            conn.execute("PRAGMA journal.synchronous=NORMAL")
            # NORMAL in WAL mode survives a process crash (the case we design for); only an OS crash
            # or power loss can drop the last transactions.
            conn.execute("PRAGMA synchronous=NORMAL")
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

    # ------------------------------------------------------------------------------ producer
    def enqueue(self, delivery: str, event: str, payload: bytes, received_at: float, *,
                key: str | None = None, repo: str = "") -> bool:
        """Store a delivery; False when its delivery id or idempotency key was already stored."""
        conn = self._conn()
        # A deferred BEGIN whose first statement writes `jobs`: it takes the queue file's write lock
        # and no other. BEGIN IMMEDIATE would also take the attached journal's, so an answer would
        # wait while a worker journals a step.
        conn.execute("BEGIN")
        try:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO jobs (delivery, event, received_at, key, repo) VALUES (?, ?, ?, ?, ?)",
                (delivery, event, received_at, key, repo),
            )
            stored = cursor.rowcount == 1
            if stored:
                conn.execute("INSERT INTO payloads (job_id, payload) VALUES (?, ?)",
                             (cursor.lastrowid, payload))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
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
        never get the same one. The write lock is taken only when a read saw a job to take."""
        conn = self._conn()
        for _ in range(CLAIM_TRIES):
            if conn.execute(_PEEK, (now, 0)).fetchone() is None:
                return None
            row = conn.execute(_CLAIM, (now, owner, now)).fetchone()
            if row is not None:
                return self._job(row)
        return None  # other workers kept taking what we saw: the next poll tries again

    def complete_and_claim(self, job_id: int, result: str, detail: str, seconds: float, now: float,
                           owner: str) -> Job | None:
        """`complete`, then `claim` for `owner`, in one write transaction (one lock per job)."""
        conn = self._conn()
        if conn.execute(_PEEK, (now, job_id)).fetchone() is None:
            self.complete(job_id, result, detail, seconds, now)
            return None
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_COMPLETE, (result, f"{result}: {detail}"[:500], seconds, now, job_id))
            row = conn.execute(_CLAIM, (now, owner, now)).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return self._job(row) if row is not None else None

    def _job(self, row: tuple[Any, ...]) -> Job:
        """A claimed job with its payload, read after the claim's commit (outside the write lock)."""
        found = self._conn().execute("SELECT payload FROM payloads WHERE job_id=?", (row[0],)).fetchone()
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
        conn.execute("BEGIN IMMEDIATE")  # the write lock: no other process updates meanwhile
        try:
            row = conn.execute("SELECT value FROM shared WHERE key=?", (key,)).fetchone()
            after, text, write = changed_row(row[0] if row is not None else None, change)
            if text is None:
                conn.execute("DELETE FROM shared WHERE key=?", (key,))
            elif write:
                conn.execute("INSERT OR REPLACE INTO shared (key, value) VALUES (?, ?)", (key, text))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return after

    def take(self, key: str, now: float, seconds: float) -> float:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT until FROM cooldowns WHERE key=?", (key,)).fetchone()
            if row is not None and float(row[0]) > now:
                return float(row[0]) - now
            conn.execute("INSERT OR REPLACE INTO cooldowns (key, until) VALUES (?, ?)", (key, now + seconds))
            return 0.0
        finally:
            conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Move the WAL into the database without blocking writers (PASSIVE)."""
        conn = self._conn()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.execute("PRAGMA journal.wal_checkpoint(PASSIVE)")

    # ------------------------------------------------------------------------------ inspection
    def depth(self) -> int:
        row = self._conn().execute(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('pending','running')"
        ).fetchone()
        return int(row[0])

    def oldest_pending(self) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(MAX(received_at, available_at)) FROM jobs WHERE status='pending'"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def running_since(self, owner: str | None = None) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(started_at) FROM jobs WHERE status='running' AND (? IS NULL OR claimed_by = ?)",
            (owner, owner)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def stats(self) -> JobStats:
        conn = self._conn()
        finished = {(str(event), str(result)): int(count) for event, result, count in conn.execute(
            "SELECT event, result, COUNT(*) FROM jobs WHERE status='done' AND result IS NOT NULL "
            "GROUP BY event, result")}
        failures = {str(event): int(count) for event, count in conn.execute(
            "SELECT event, SUM(failures) FROM jobs WHERE failures > 0 GROUP BY event")}
        deferrals = {str(event): int(count) for event, count in conn.execute(
            "SELECT event, SUM(deferrals) FROM jobs WHERE deferrals > 0 GROUP BY event")}
        buckets = ", ".join("SUM(duration <= ?)" for _ in DURATION_BUCKETS)
        row = conn.execute(
            "SELECT COUNT(*), TOTAL(duration), " + buckets + " FROM jobs WHERE duration IS NOT NULL",  # noqa: S608
            DURATION_BUCKETS,
        ).fetchone()
        return JobStats(finished, failures, deferrals, tuple(int(v or 0) for v in row[2:]), int(row[0]),
                        float(row[1]))

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

    def jobs(self) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT id, delivery, event, status, attempts, outcome, error FROM jobs ORDER BY id"
        ).fetchall()
        return [dict(zip(JOB_FIELDS, row, strict=True)) for row in rows]
