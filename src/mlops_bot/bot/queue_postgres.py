"""The shared queue backend: PostgreSQL (`MLOPS_BOT_DATABASE_URL=postgresql://...`), so several
bot replicas on different machines share one queue. Semantics as in queue.py.

Claiming uses `FOR UPDATE SKIP LOCKED`, so concurrent workers of any replica never wait on each
other or take the same job. A claimed job is also held by a session-level advisory lock on the
claiming connection (taken in the claim's transaction, so no one sees the job `running` before
it is held): when a worker or a whole replica dies, PostgreSQL drops its connection and the lock
with it, and any replica's next claim finds the orphan (`running`, lock free) and puts it back in
line. Nobody has to decide that a replica is dead by a timeout. Every statement autocommits: a
delivery is durable before the webhook answers 202, a journal step before the next effect.

Deliveries are inserted together: every delivery waiting at that moment in one statement, one
round trip and one WAL flush, up to `INSERTS_IN_FLIGHT` such inserts at a time per process (one
connection each); each request answers only after the commit that holds its own delivery. The
webhook server does it on its event loop (`enqueue_async`, queue_postgres_insert.py), other callers
from their threads (`enqueue`). Measured on the 2 shared cores at load ~24
(`benchmarks/bot_queue_lock.py --senders 6 --rate 600`): with one insert in flight the database's
CPU per delivery fell from 0.47-0.51 ms to 0.17 ms, but the latency rose (p50 130-500 ms against
11-60 ms), because fewer backend processes got less of a starved CPU; with six in flight p50
2.6-13 ms, p99 59-273 ms, database CPU 0.26-0.34 ms against 0.39-0.51 ms (lz4). Payloads are
compressed with lz4 where the server has it (pglz took ~0.2 ms of backend CPU per 12.7 KB
payload). A payload over ~2 KB compressed is stored out of line (TOAST), so a claim or a finish,
which rewrites the job row, copies a pointer, not the payload: no separate payload table as in
SQLite.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
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
from mlops_bot.bot.queue_postgres_insert import (
    BATCH_MAX,
    INSERTS_IN_FLIGHT,
    AsyncInserter,
    Row,
    insert_statement,
    parameters,
    stored_flags,
)
from mlops_bot.bot.queue_postgres_schema import (
    LOCK_CLASS,
    create_or_upgrade,
    one_running_per_repository,
    schema_lock,
    schema_unlock,
)
from mlops_bot.errors import MlopsError

T = TypeVar("T")

CLAIM_TRIES = 8  # claims lost to another replica's claim of the same repository before giving up
# The claim: the oldest pending job of a repository with nothing running, taken with its advisory
# lock (in RETURNING, so before the commit: no one sees it `running` and unheld).
_CLAIM = (
    "UPDATE mlops_bot_jobs SET status='running', attempts=attempts+1, started_at=%s, claimed_by=%s "
    "WHERE id = (SELECT id FROM mlops_bot_jobs WHERE status='pending' AND available_at <= %s "
    "AND (repo = '' OR repo NOT IN (SELECT repo FROM mlops_bot_jobs WHERE status='running')) "
    "ORDER BY attempts, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, delivery, event, payload, attempts, received_at, pg_advisory_lock(%s, id::integer)::text"
)
_COMPLETE = ("UPDATE mlops_bot_jobs SET status='done', result=%s, outcome=%s, duration=%s, finished_at=%s, "
             "error=NULL WHERE id=%s")


class _Arrival:
    """One delivery waiting for the group commit, and what became of it."""

    __slots__ = ("error", "finished", "row", "stored", "taken")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.taken = False  # in an insert under way
        self.finished = False
        self.stored = False
        self.error: Exception | None = None


class PostgresQueue:
    """A queue in PostgreSQL tables `mlops_bot_*`. One connection per thread (a job's advisory lock
    lives on the connection of the thread that claimed it), and the webhook server's inserts on
    async connections of its event loop."""

    def __init__(self, url: str, *, max_attempts: int = 3, retry_seconds: float = 5.0,
                 orphan_check_seconds: float = 2.0, inserts_in_flight: int = INSERTS_IN_FLIGHT) -> None:
        try:
            import psycopg  # noqa: F401  (the `bot-postgres` extra)
        except ImportError:
            raise MlopsError("MLOPS_BOT_DATABASE_URL needs psycopg: "
                             "pip install 'mlops-bot[bot-postgres]'") from None
        self.url = url
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.orphan_check_seconds = orphan_check_seconds
        self._local = threading.local()
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self._next_orphan_check = 0.0
        self._arrivals = threading.Condition()  # the group commit's waiting deliveries
        self._waiting: list[_Arrival] = []
        self._inserting = 0  # inserts in flight
        self.inserts_in_flight = inserts_in_flight
        self._inserter = AsyncInserter(url, inserts_in_flight)
        self._indexed: bool | None = None  # whether mlops_bot_jobs_one_running exists (None: not tried)
        with self._guard:
            self._admin = self._connect()
        self._admin_lock = threading.Lock()
        with self._admin_lock:
            # One schema writer at a time, waited for by polling: a statement waiting for the lock
            # would hold a snapshot, which the holder's CREATE INDEX CONCURRENTLY waits out (deadlock).
            while not schema_lock(self._admin):
                time.sleep(0.05)
            try:
                self._indexed = create_or_upgrade(self._admin)
            finally:
                schema_unlock(self._admin)

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise MlopsError(f"cannot connect to the queue database (MLOPS_BOT_DATABASE_URL): "
                             f"{str(error).strip().splitlines()[0]}") from None
        self._connections.append(conn)
        return conn

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            with self._guard:
                conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._inserter.close()

    # ------------------------------------------------------------------------------ producer
    async def enqueue_async(self, delivery: str, event: str, payload: bytes, received_at: float, *,
                            key: str | None = None, repo: str = "") -> bool:
        """`enqueue` for the webhook server's event loop: no thread per request (see the module doc)."""
        return await self._inserter.enqueue((delivery, event, payload, received_at, key, repo))

    def enqueue(self, delivery: str, event: str, payload: bytes, received_at: float, *,
                key: str | None = None, repo: str = "") -> bool:
        """Store a delivery (committed before this returns), inserted with whatever other
        deliveries wait at the same moment (see the module doc)."""
        arrival = _Arrival((delivery, event, payload, received_at, key, repo))
        with self._arrivals:
            self._waiting.append(arrival)
        while True:
            with self._arrivals:
                while not arrival.finished and (arrival.taken or self._inserting >= self.inserts_in_flight):
                    self._arrivals.wait()
                if arrival.finished:
                    break
                self._inserting += 1  # this thread inserts what waits now, its own delivery too
                batch = self._waiting[:BATCH_MAX]
                del self._waiting[:BATCH_MAX]
                for taken in batch:
                    taken.taken = True
            try:
                self._insert(batch)
            finally:
                with self._arrivals:
                    for done in batch:
                        done.finished = True
                    self._inserting -= 1
                    self._arrivals.notify_all()
        if arrival.error is not None:
            raise arrival.error
        return arrival.stored

    def _insert(self, batch: list[_Arrival]) -> None:
        """One statement for the batch; each arrival learns whether its delivery was new."""
        rows = [arrival.row for arrival in batch]
        try:
            returned = self._conn().execute(insert_statement(len(rows)), parameters(rows)).fetchall()
        except Exception as error:  # every request of the batch gets it (answered as a failure)
            for arrival in batch:
                arrival.error = error
            return
        for arrival, stored in zip(batch, stored_flags(rows, returned), strict=True):
            arrival.stored = stored

    # ------------------------------------------------------------------------------ consumer
    def recover(self, now: float = 0.0) -> int:
        """Jobs `running` without a live holder back in line (or `failed` after max_attempts).
        Safe to call from any replica at any time: a live worker's job is locked and skipped."""
        recovered = 0
        with self._admin_lock:
            if not self._indexed and schema_lock(self._admin):  # (else another replica is at it)
                try:
                    self._indexed = one_running_per_repository(self._admin, self._indexed)
                finally:
                    schema_unlock(self._admin)
            admin = self._admin
            # Row first (skipping rows a claim or a finish is writing right now), then the job's
            # advisory lock, tried, never waited for: a claim takes the two in the same order and
            # waits for the advisory lock only, so the two can never wait for each other.
            with admin.transaction():
                rows = admin.execute("SELECT id FROM mlops_bot_jobs WHERE status='running' "
                                     "FOR UPDATE SKIP LOCKED").fetchall()
                for (job_id,) in rows:
                    got = admin.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                                        (LOCK_CLASS, job_id)).fetchone()
                    if not got or not got[0]:
                        continue  # held: its worker lives
                    cursor = admin.execute(
                        "UPDATE mlops_bot_jobs SET "
                        "status = CASE WHEN attempts >= %s THEN 'failed' ELSE 'pending' END, "
                        "error = CASE WHEN attempts >= %s THEN REPLACE(%s, '{attempts}', attempts::text) "
                        "ELSE error END, "
                        "failures = failures + 1, finished_at = %s WHERE id = %s AND status = 'running'",
                        (self.max_attempts, self.max_attempts, WORKER_DIED, now, job_id),
                    )
                    recovered += cursor.rowcount
        return recovered

    def claim(self, now: float, owner: str = "", finished: tuple[Any, ...] | None = None) -> Job | None:
        if time.monotonic() >= self._next_orphan_check:
            self._next_orphan_check = time.monotonic() + self.orphan_check_seconds
            self.recover(now)
        import psycopg

        conn = self._conn()
        for _ in range(CLAIM_TRIES):
            try:
                row = self._claim_one(conn, now, owner, finished)
            except psycopg.errors.UniqueViolation:
                # Another replica's claim of the same repository committed first (the
                # mlops_bot_jobs_one_running index): the next try skips that repository.
                if finished is not None:  # the rollback undid the finish: record it on its own
                    # (`finished` holds _COMPLETE's parameters; the job's advisory unlock took
                    # effect anyway: a session-level lock ignores the rollback, as tested)
                    conn.execute(_COMPLETE, finished)
                    finished = None
                continue
            if row is None:
                return None
            return job_from_row(row)
        return None

    def _claim_one(self, conn: Any, now: float, owner: str, finished: tuple[Any, ...] | None = None) -> Any:
        """One claim: a single statement (its own transaction, one round trip) that also takes the
        job's advisory lock before it commits. With `finished` (a `complete`'s parameters), that
        job is recorded done and released in the same transaction, pipelined (one round trip)."""
        if finished is None:
            return conn.execute(_CLAIM, (now, owner, now, LOCK_CLASS)).fetchone()
        with conn.pipeline(), conn.transaction():
            conn.execute(_COMPLETE, finished)
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, finished[-1]))
            cursor = conn.execute(_CLAIM, (now, owner, now, LOCK_CLASS))
        return cursor.fetchone()

    def _release(self, job_id: int) -> None:
        self._conn().execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, job_id))

    def complete(self, job_id: int, result: str, detail: str, seconds: float, now: float) -> None:
        self._conn().execute(_COMPLETE, (result, f"{result}: {detail}"[:500], seconds, now, job_id))
        self._release(job_id)

    def complete_and_claim(self, job_id: int, result: str, detail: str, seconds: float, now: float,
                           owner: str) -> Job | None:
        """`complete` and the next `claim` in one transaction. The job's advisory lock goes before
        the commit: a `recover` that takes it meanwhile waits for the row, then sees it `done`."""
        finished = (result, f"{result}: {detail}"[:500], seconds, now, job_id)
        return self.claim(now, owner, finished)

    def fail(self, job_id: int, error: str, now: float) -> str:
        conn = self._conn()
        row = conn.execute("SELECT attempts FROM mlops_bot_jobs WHERE id=%s", (job_id,)).fetchone()
        attempts = int(row[0]) if row is not None else self.max_attempts
        status, retry_at = after_failure(attempts, self.max_attempts, self.retry_seconds, now)
        conn.execute(
            "UPDATE mlops_bot_jobs SET status=%s, error=%s, finished_at=%s, available_at=%s, "
            "failures=failures+1 WHERE id=%s",
            (status, error[:2000], now, retry_at, job_id),
        )
        self._release(job_id)
        return status

    def defer(self, job_id: int, until: float, reason: str, now: float) -> None:
        conn = self._conn()
        conn.execute(
            "UPDATE mlops_bot_jobs SET status='pending', attempts=GREATEST(attempts-1, 0), "
            "available_at=%s, error=%s, finished_at=%s, deferrals=deferrals+1 WHERE id=%s",
            (until, reason[:2000], now, job_id),
        )
        self._release(job_id)

    # ------------------------------------------------------------------------------ journal
    def step(self, job_id: int, name: str, action: Callable[[], T],
             verify: Callable[[], T | None] | None = None) -> T:
        row = self._conn().execute(
            "SELECT result, state FROM mlops_bot_steps WHERE job_id=%s AND step=%s", (job_id, name)
        ).fetchone()
        return journal_step(row, lambda result, state: self._record(job_id, name, result, state),
                            action, verify)

    def _record(self, job_id: int, name: str, result: object, state: str) -> None:
        self._conn().execute(
            "INSERT INTO mlops_bot_steps (job_id, step, result, state) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (job_id, step) DO UPDATE SET result = EXCLUDED.result, state = EXCLUDED.state",
            (job_id, name, json.dumps(result), state),
        )

    # ------------------------------------------------------------------------------ shared rows
    def shared(self, key: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT value FROM mlops_bot_shared WHERE key=%s", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else None

    def update_shared(self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
                      ) -> dict[str, Any] | None:
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS + 1, key))
            row = conn.execute("SELECT value FROM mlops_bot_shared WHERE key=%s", (key,)).fetchone()
            after, text, write = changed_row(row[0] if row is not None else None, change)
            if text is None:
                conn.execute("DELETE FROM mlops_bot_shared WHERE key=%s", (key,))
            elif write:
                conn.execute("INSERT INTO mlops_bot_shared (key, value) VALUES (%s, %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, text))
        return after

    def take(self, key: str, now: float, seconds: float) -> float:
        row = self._conn().execute(
            "INSERT INTO mlops_bot_cooldowns AS c (key, until) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE c.until <= %s RETURNING until",
            (key, now + seconds, now),
        ).fetchone()
        if row is not None:
            return 0.0
        held = self._conn().execute("SELECT until FROM mlops_bot_cooldowns WHERE key=%s", (key,)).fetchone()
        return max(0.0, float(held[0]) - now) if held is not None else 0.0

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""

    # ------------------------------------------------------------------------------ inspection
    def depth(self) -> int:
        row = self._conn().execute(
            "SELECT COUNT(*) FROM mlops_bot_jobs WHERE status IN ('pending','running')").fetchone()
        return int(row[0])

    def oldest_pending(self) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(GREATEST(received_at, available_at)) FROM mlops_bot_jobs WHERE status='pending'"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def running_since(self, owner: str | None = None) -> float | None:
        row = self._conn().execute(
            "SELECT MIN(started_at) FROM mlops_bot_jobs WHERE status='running' "
            "AND (%s::text IS NULL OR claimed_by = %s)", (owner, owner)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def stats(self) -> JobStats:
        conn = self._conn()
        finished = {(str(event), str(result)): int(count) for event, result, count in conn.execute(
            "SELECT event, result, COUNT(*) FROM mlops_bot_jobs WHERE status='done' AND result IS NOT NULL "
            "GROUP BY event, result").fetchall()}
        failures = {str(event): int(count) for event, count in conn.execute(
            "SELECT event, SUM(failures) FROM mlops_bot_jobs WHERE failures > 0 GROUP BY event").fetchall()}
        deferrals = {str(event): int(count) for event, count in conn.execute(
            "SELECT event, SUM(deferrals) FROM mlops_bot_jobs WHERE deferrals > 0 GROUP BY event").fetchall()}
        buckets = ", ".join("COUNT(*) FILTER (WHERE duration <= %s)" for _ in DURATION_BUCKETS)
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(duration), 0), " + buckets  # noqa: S608 - placeholders only
            + " FROM mlops_bot_jobs WHERE duration IS NOT NULL", DURATION_BUCKETS,
        ).fetchone()
        return JobStats(finished, failures, deferrals, tuple(int(v or 0) for v in row[2:]), int(row[0]),
                        float(row[1]))

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute(
            "SELECT status, COUNT(*) FROM mlops_bot_jobs GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}

    def jobs(self) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT id, delivery, event, status, attempts, outcome, error FROM mlops_bot_jobs ORDER BY id"
        ).fetchall()
        return [dict(zip(JOB_FIELDS, row, strict=True)) for row in rows]
