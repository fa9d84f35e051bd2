"""The SQLite queue's files: files of older releases upgrade in place, the webhook answer's insert
never waits for a worker's write lock (it writes a file only it writes), and the worker holds its
own write lock as little as it can. Real files and processes; locks observed through other
connections and SQLite's own statement trace, no timings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.bot.handlers import Outcome
from mlops_bot.bot.queue import DURATION_BUCKETS, JobStats
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.worker import Worker

# The job table as the first release wrote it (payload inside the job row, no later columns), and as
# the release before the payloads table left it (every later column and index).
FIRST_RELEASE = """
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
    payload BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL, available_at REAL NOT NULL DEFAULT 0, started_at REAL, finished_at REAL,
    outcome TEXT, error TEXT);
CREATE INDEX jobs_status ON jobs(status, id);
"""
LAST_RELEASE = FIRST_RELEASE + """
ALTER TABLE jobs ADD COLUMN key TEXT;
ALTER TABLE jobs ADD COLUMN repo TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN duration REAL;
ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
CREATE TABLE cooldowns (key TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE shared (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE UNIQUE INDEX jobs_key ON jobs(key);
CREATE INDEX jobs_repo_running ON jobs(repo, status);
CREATE INDEX jobs_claim ON jobs(status, attempts, id, available_at, repo, received_at);
CREATE UNIQUE INDEX jobs_one_running ON jobs(repo) WHERE status = 'running' AND repo <> '';
"""


def recount(path: Path) -> tuple[dict[str, int], JobStats]:
    """counts() and stats() as a scan of every job row computes them (what the queue did before it
    kept tallies), read by a connection of its own; deliveries not imported yet count as pending."""
    db = sqlite3.connect(path)
    db.execute("ATTACH DATABASE ? AS inbox", (str(path.with_suffix(".inbox.sqlite3")),))
    counts = dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
    unseen = db.execute("SELECT COUNT(*) FROM inbox.deliveries WHERE id > (SELECT last FROM inbox_read)")
    counts["pending"] = counts.get("pending", 0) + unseen.fetchone()[0]
    finished = {(event, result): count for event, result, count in db.execute(
        "SELECT event, result, COUNT(*) FROM jobs WHERE status='done' AND result IS NOT NULL "
        "GROUP BY event, result")}
    failures = dict(db.execute("SELECT event, SUM(failures) FROM jobs WHERE failures > 0 GROUP BY event"))
    deferrals = dict(db.execute("SELECT event, SUM(deferrals) FROM jobs WHERE deferrals > 0 GROUP BY event"))
    durations = [row[0] for row in db.execute("SELECT duration FROM jobs WHERE duration IS NOT NULL")]
    db.close()
    buckets = tuple(sum(1 for value in durations if value <= bound) for bound in DURATION_BUCKETS)
    stats = JobStats(finished, failures, deferrals, buckets, len(durations), sum(durations))
    return {status: count for status, count in counts.items() if count}, stats


class Drop:
    """A handler that looks at a delivery and drops it (a comment on an issue)."""

    cooldowns = None

    def handle(self, event: str, payload: dict[str, Any], journal: Any = None, delivery: str = "") -> Outcome:
        return Outcome("ignored", f"comment {payload['n']}")


@pytest.mark.parametrize("layout", [FIRST_RELEASE, LAST_RELEASE], ids=["first-release", "last-release"])
def test_a_queue_file_of_an_older_release_upgrades_in_place(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "queue.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(layout)
    big = b'{"n": 1, "text": "' + b"x" * 20_000 + b'"}'
    rows = [("d-1", big, "done", 1), ("d-2", b'{"n": 2}', "running", 1), ("d-3", b'{"n": 3}', "pending", 0)]
    for delivery, payload, status, attempts in rows:
        old.execute("INSERT INTO jobs (delivery, event, payload, status, attempts, received_at) "
                    "VALUES (?, 'issue_comment', ?, ?, ?, 1.0)", (delivery, payload, status, attempts))
    old.commit()
    old.close()

    queue = SqliteQueue(path)
    assert (queue.counts(), queue.stats()) == recount(path)  # tallies of the jobs already there
    columns = {row[1] for row in queue._conn().execute("PRAGMA main.table_info(jobs)")}
    assert "payload" not in columns and {"key", "repo", "claimed_by", "deferrals"} <= columns
    tables = {row[0] for row in queue._conn().execute("SELECT name FROM main.sqlite_master")}
    assert "payloads" not in tables  # the payloads moved to the inbox, which only the answer writes
    assert queue.inbox_path.exists()
    assert queue.counts() == {"done": 1, "running": 1, "pending": 1}
    assert queue.recover(5.0) == 1  # the running job of the old process goes back in line
    first, second = queue.claim(10.0, "h:1"), queue.claim(10.0, "h:1")
    assert first is not None and (first.delivery, first.payload) == ("d-3", b'{"n": 3}')
    assert second is not None
    assert (second.delivery, second.payload, second.attempts) == ("d-2", b'{"n": 2}', 2)
    stored = queue._conn().execute("SELECT payload FROM inbox.payloads WHERE job_id=1").fetchone()
    assert stored == (big,)  # a finished job's payload is kept, as before
    # New deliveries and the dedup rules work on the upgraded files, old deliveries included;
    # reopening changes nothing.
    assert not queue.enqueue("d-1", "push", b'{"n": 1}', 11.0)
    assert queue.enqueue("d-4", "push", b'{"n": 4}', 11.0, key="k-4")
    assert not queue.enqueue("d-5", "push", b'{"n": 5}', 11.0, key="k-4")
    queue.close()
    again = SqliteQueue(path)
    assert again.counts() == {"done": 1, "running": 2, "pending": 1}
    assert [job["delivery"] for job in again.jobs()] == ["d-1", "d-2", "d-3", "d-4"]
    assert again.claim(12.0, "h:2") is not None and again.counts() == {"done": 1, "running": 3}
    assert (again.counts(), again.stats()) == recount(path)
    again.close()


def test_a_state_file_made_anew_does_not_run_the_inbox_history_again(tmp_path: Path) -> None:
    """An operator deleting queue.sqlite3 (the jobs' state) but not the inbox: the deliveries the
    inbox holds are history, not new work; they still count as seen for duplicates."""
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    for index in range(3):
        assert queue.enqueue(f"d-{index}", "push", b"{}", 1.0, key=f"k-{index}")
    while (job := queue.claim(2.0, "h:1")) is not None:
        queue.complete(job.id, "done", "ok", 0.1, 3.0)
    queue.close()
    for leftover in tmp_path.glob("queue.sqlite3*"):
        leftover.unlink()
    again = SqliteQueue(path)
    assert again.counts() == {} and again.claim(4.0, "h:1") is None
    assert not again.enqueue("d-1", "push", b"{}", 5.0)
    assert not again.enqueue("d-9", "push", b"{}", 5.0, key="k-2")
    assert again.enqueue("d-new", "push", b'{"n": 1}', 5.0)
    job = again.claim(6.0, "h:1")
    assert job is not None and (job.delivery, job.payload) == ("d-new", b'{"n": 1}')
    again.close()


def test_counts_and_stats_are_tallied_as_the_jobs_change(tmp_path: Path) -> None:
    """What /metrics and /healthz report comes from tallies the state file keeps as jobs change (a
    read of a few rows, however many jobs finished): after every kind of change they equal a scan
    of the job rows."""
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path, max_attempts=2, retry_seconds=0.0)
    for index in range(12):
        queue.enqueue(f"d-{index}", "push" if index % 3 else "issue_comment", b"{}", 1.0,
                      repo=f"o/r{index}")
    assert (queue.counts(), queue.stats()) == recount(path) and queue.counts() == {"pending": 12}
    jobs = [queue.claim(2.0, "h:1") for _ in range(8)]
    ids = [job.id for job in jobs if job is not None]
    assert len(ids) == 8
    queue.complete(ids[0], "done", "ok", 0.004, 3.0)
    queue.complete(ids[1], "ignored", "no", 70.0, 3.0)
    following = queue.complete_and_claim(ids[2], "done", "ok", 0.3, 3.0, "h:1")
    assert following is not None
    assert queue.fail(ids[3], "boom", 3.0) == "pending"
    queue.defer(ids[4], 50.0, "rate limit", 3.0)
    assert (queue.counts(), queue.stats()) == recount(path)
    taken = []
    while (job := queue.claim(4.0, "h:1")) is not None:
        taken.append(job.id)
    assert ids[3] in taken and ids[4] not in taken  # the failed one again; the deferred one waits
    assert queue.fail(ids[3], "boom", 4.0) == "failed"
    queue.enqueue("d-late", "push", b"{}", 5.0)
    running = queue.counts()["running"]
    assert queue.recover(6.0) == running == 7
    counts, stats = recount(path)
    assert (queue.counts(), queue.stats()) == (counts, stats)
    assert stats.finished == {("push", "ignored"): 1, ("issue_comment", "done"): 1, ("push", "done"): 1}
    assert stats.failures and stats.deferrals and stats.duration_count == 3
    assert queue.depth() == counts.get("pending", 0) + counts.get("running", 0) == 9
    queue.close()


# A worker process that stops inside its write transaction (the import of new deliveries, the claim
# and a finish, as `complete_and_claim` runs them), with the journal's write lock held too, until
# told to commit.
HOLDING_WORKER = """
import sys
from mlops_bot.bot import queue_sqlite
queue = queue_sqlite.SqliteQueue(sys.argv[1])
conn = queue._conn()
journal = queue_sqlite.sqlite3.connect(queue.journal_path, isolation_level=None)
journal.execute("BEGIN IMMEDIATE")
with queue._writing(conn):
    queue._import(conn)
    row = conn.execute(queue_sqlite._CLAIM, (5.0, "h:9", 5.0)).fetchone()
    conn.execute(queue_sqlite._COMPLETE, ("done", "done: ok", 0.1, 5.0, row[0]))
    print("holding", row[1], flush=True)
    sys.stdin.readline()
journal.execute("COMMIT")
print("committed", flush=True)
"""


def test_an_answer_never_waits_for_a_worker_write(tmp_path: Path) -> None:
    """While a worker process holds its write transaction (and the journal's) open, deliveries are
    stored, duplicates refused, and the health numbers read, on a connection that would fail at
    once if it had to wait for any lock; the worker then commits and takes the new deliveries."""
    queue = SqliteQueue(tmp_path / "queue.sqlite3", auto_checkpoint=False)  # as the server opens it
    assert queue.enqueue("d-1", "push", b'{"n": 1}', 1.0, key="k-1", repo="o/r")
    worker = subprocess.Popen([sys.executable, "-c", HOLDING_WORKER, str(queue.path)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().split() == ["holding", "d-1"]
        queue._conn().execute("PRAGMA busy_timeout=0")  # waiting for a lock would raise at once
        for index in range(2, 12):
            assert queue.enqueue(f"d-{index}", "push", b'{"n": %d}' % index, 6.0, key=f"k-{index}",
                                 repo="o/r")
        assert not queue.enqueue("d-5", "push", b"{}", 6.0)  # a redelivery
        assert not queue.enqueue("d-99", "push", b"{}", 6.0, key="k-3")  # a replay
        assert queue.depth() == 11 and queue.oldest_pending() == 1.0  # d-1 still pending: uncommitted
        assert worker.poll() is None  # all of it while the worker's transaction was open
        worker.stdin.write("commit\n")
        worker.stdin.flush()
        assert worker.stdout.readline().strip() == "committed"
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    queue._conn().execute("PRAGMA busy_timeout=30000")
    assert queue.counts() == {"done": 1, "pending": 10}
    claimed = [queue.claim(7.0, "h:1") for _ in range(2)]
    assert claimed[0] is not None and (claimed[0].delivery, claimed[0].payload) == ("d-2", b'{"n": 2}')
    assert claimed[1] is None  # one job per repository at a time, as before
    assert [job["delivery"] for job in queue.jobs()] == [f"d-{index}" for index in range(1, 12)]
    queue.close()


def test_an_idle_worker_takes_no_write_lock(tmp_path: Path) -> None:
    """With another connection holding the write lock (a webhook answer inserting), a claim that
    finds nothing returns at once instead of queueing for the lock: it only read."""
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    queue.enqueue("d-1", "push", b'{"n": 1}', 1.0, repo="o/r")
    queue.enqueue("d-2", "push", b'{"n": 2}', 1.0, repo="o/r")  # same repository: not claimable now
    queue.enqueue("d-3", "push", b'{"n": 3}', 1.0, repo="o/s")
    running = queue.claim(2.0, "h:1")
    assert running is not None and running.delivery == "d-1"
    limited = queue.claim(2.0, "h:1")
    assert limited is not None and limited.delivery == "d-3"
    queue.defer(limited.id, 100.0, "rate limit", 2.0)  # due later
    queue._conn().execute("PRAGMA busy_timeout=0")  # a write attempt would fail at once
    holder = sqlite3.connect(tmp_path / "queue.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert queue.claim(3.0, "h:2") is None
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            queue.complete(running.id, "done", "", 0.1, 3.0)  # a write does need the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    queue.close()


def test_an_answer_does_not_wait_for_the_journal(tmp_path: Path) -> None:
    """A worker journalling a step holds the journal file's write lock; storing a delivery only
    needs the queue file's, so it goes through (it used to queue behind the journal)."""
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    queue.enqueue("d-1", "push", b'{"n": 1}', 1.0, repo="o/r")
    queue._conn().execute("PRAGMA busy_timeout=0")  # waiting for a lock would fail at once
    holder = sqlite3.connect(queue.journal_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert queue.enqueue("d-2", "push", b'{"n": 2}', 2.0, repo="o/r")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert queue.enqueue("d-2", "push", b'{"n": 2}', 3.0, repo="o/r") is False  # stored once
    queue.close()


def test_a_busy_worker_takes_the_write_lock_once_per_job(tmp_path: Path) -> None:
    """Draining N jobs: N + 1 write transactions (the first claim, then each finish with the next
    claim), counted from the statements the worker's connection ran."""
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    for index in range(20):
        queue.enqueue(f"d-{index}", "issue_comment", b'{"n": %d}' % index, 1.0, repo=f"o/r{index % 3}")
    worker = Worker(queue, Drop(), clock=lambda: 5.0)  # type: ignore[arg-type]
    statements: list[str] = []
    queue._conn().set_trace_callback(statements.append)
    assert worker.drain() == 20
    queue._conn().set_trace_callback(None)
    transactions, depth = 0, 0
    # (A statement firing triggers is traced once more per trigger program.)
    statements = [s for index, s in enumerate(statements) if index == 0 or s != statements[index - 1]]
    for statement in statements:
        word = statement.split(None, 1)[0].upper()
        if word == "BEGIN":
            depth, transactions = 1, transactions + 1
        elif word in ("COMMIT", "ROLLBACK"):
            depth = 0
        elif word in ("UPDATE", "INSERT", "DELETE") and depth == 0:
            transactions += 1  # an autocommit write
    assert transactions == 21, statements
    assert queue.counts() == {"done": 20}
    outcomes = sorted(job["outcome"] for job in queue.jobs())
    assert outcomes == sorted(f"ignored: comment {i}" for i in range(20))
    queue.close()
