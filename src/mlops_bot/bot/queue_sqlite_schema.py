"""The SQLite queue's three files, their tables, and the upgrade of older files in place.

- `queue.sqlite3` (attached as `main`): the jobs' mutable state, written by the workers (and by the
  server's `recover`, never on the answer's path): `jobs` (status, attempts, claims, results),
  `cooldowns`, `shared`, `inbox_read` (the last inbox row the workers have imported), and
  `tallies` (jobs per status and the job metrics, kept by triggers as jobs change).
- `queue.inbox.sqlite3` (`inbox`): the deliveries as they arrived, written only by the process
  answering webhooks: `deliveries` (the unique delivery id and idempotency key, so the insert
  detects a duplicate itself) and `payloads`.
- `queue.steps.sqlite3` (`journal`): the step journal, written by the workers.

A file of an older release (one `queue.sqlite3` holding the deliveries, their payloads and their
state) becomes the state file: its delivery rows and payloads are copied to a new inbox, counted as
imported, and its payloads leave it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from mlops_bot.bot.queue import DURATION_BUCKETS
from mlops_bot.errors import MlopsError

VERSION = 3  # PRAGMA user_version of each file once it has this layout (2: before `tallies`)

STATE = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    delivery TEXT NOT NULL,
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
CREATE TABLE IF NOT EXISTS cooldowns (
    key TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shared (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_read (
    one INTEGER PRIMARY KEY CHECK (one = 0),
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tallies (
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    result TEXT NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, event, result)
) WITHOUT ROWID
"""
# `tallies` keeps what `stats`, `counts` and `depth` report (jobs per status, finished jobs per event
# and result, failures and deferrals per event, durations per histogram bucket), kept by triggers
# as the jobs change, so reading them costs the same with ten jobs or a million finished (a scan
# of every job was 33 ms at 12,000, on the server's event loop at each /metrics scrape).
_BUCKET = ("CASE " + " ".join(f"WHEN {{d}} <= {bound!r} THEN '{index}'" for index, bound in
                              enumerate(DURATION_BUCKETS)) + f" ELSE '{len(DURATION_BUCKETS)}' END")
_ADD = ("INSERT INTO tallies (kind, event, result, n, total) SELECT {kind}, {event}, {result}, {n}, "
        "{total} WHERE {when} ON CONFLICT (kind, event, result) DO UPDATE SET n = n + excluded.n, "
        "total = total + excluded.total;")


def _add(kind: str, event: str, result: str, n: str, total: str = "0", when: str = "1") -> str:
    return _ADD.format(kind=f"'{kind}'", event=event, result=result, n=n, total=total, when=when)


def _trigger(name: str, on: str, when: str, *body: str) -> str:
    return f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {on} ON jobs WHEN {when} BEGIN {' '.join(body)} END"


TRIGGERS = (
    _trigger("tally_new", "INSERT", "1", _add("status", "''", "new.status", "1")),
    _trigger("tally_status", "UPDATE OF status", "old.status IS NOT new.status",
             _add("status", "''", "old.status", "-1"), _add("status", "''", "new.status", "1")),
    _trigger("tally_finished", "UPDATE OF status, result",
             "(old.status, old.result) IS NOT (new.status, new.result)",
             _add("finished", "old.event", "old.result", "-1",
                  when="old.status = 'done' AND old.result IS NOT NULL"),
             _add("finished", "new.event", "new.result", "1",
                  when="new.status = 'done' AND new.result IS NOT NULL")),
    _trigger("tally_failures", "UPDATE OF failures", "old.failures IS NOT new.failures",
             _add("failures", "new.event", "''", "new.failures - old.failures")),
    _trigger("tally_deferrals", "UPDATE OF deferrals", "old.deferrals IS NOT new.deferrals",
             _add("deferrals", "new.event", "''", "new.deferrals - old.deferrals")),
    _trigger("tally_duration", "UPDATE OF duration", "old.duration IS NOT new.duration",
             _add("duration", "''", _BUCKET.format(d="old.duration"), "-1", "-old.duration",
                  when="old.duration IS NOT NULL"),
             _add("duration", "''", _BUCKET.format(d="new.duration"), "1", "new.duration",
                  when="new.duration IS NOT NULL")),
)
# The tallies of jobs already there when `tallies` is created (a file of an older release).
RECOUNT = (
    "INSERT INTO tallies (kind, event, result, n, total) "
    "SELECT 'status', '', status, COUNT(*), 0 FROM jobs GROUP BY status",
    "INSERT INTO tallies (kind, event, result, n, total) SELECT 'finished', event, result, COUNT(*), 0 "
    "FROM jobs WHERE status = 'done' AND result IS NOT NULL GROUP BY event, result",
    "INSERT INTO tallies (kind, event, result, n, total) SELECT 'failures', event, '', SUM(failures), 0 "
    "FROM jobs WHERE failures > 0 GROUP BY event",
    "INSERT INTO tallies (kind, event, result, n, total) SELECT 'deferrals', event, '', SUM(deferrals), 0 "
    "FROM jobs WHERE deferrals > 0 GROUP BY event",
    "INSERT INTO tallies (kind, event, result, n, total) SELECT 'duration', '', bucket, "  # noqa: S608
    "COUNT(*), TOTAL(duration) FROM (SELECT duration, " + _BUCKET.format(d="duration") + " AS bucket "
    "FROM jobs WHERE duration IS NOT NULL) GROUP BY bucket",
)
INBOX = """
CREATE TABLE IF NOT EXISTS inbox.deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery TEXT NOT NULL UNIQUE,
    key TEXT UNIQUE,
    event TEXT NOT NULL,
    repo TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox.payloads (
    job_id INTEGER PRIMARY KEY,
    payload BLOB NOT NULL
)
"""
JOURNAL = """
CREATE TABLE IF NOT EXISTS journal.steps (
    job_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'done',
    PRIMARY KEY (job_id, step)
)
"""
# Columns added to `jobs` after the first release: added to an existing file when it is opened.
ADDED_COLUMNS = (
    ("key", "TEXT"), ("repo", "TEXT NOT NULL DEFAULT ''"), ("result", "TEXT"), ("duration", "REAL"),
    ("failures", "INTEGER NOT NULL DEFAULT 0"), ("claimed_by", "TEXT"),
    ("deferrals", "INTEGER NOT NULL DEFAULT 0"),
)
# jobs_claim holds every column the claim and `oldest_pending` read, so they never read a row.
STATE_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, id);
CREATE INDEX IF NOT EXISTS jobs_repo_running ON jobs(repo, status);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(status, attempts, id, available_at, repo, received_at)
"""
FILES = ("main", "inbox", "journal")


def statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def current(conn: sqlite3.Connection) -> bool:
    """Whether all three files have this release's layout (a read: no lock taken)."""
    return all(conn.execute(f"PRAGMA {name}.user_version").fetchone()[0] >= VERSION for name in FILES)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the files' tables, or bring files of an older release up to date, under every file's
    write lock (one process migrates; another opening meanwhile waits). Two transactions, each safe
    to run again: a crash between them (or between the files' commits of one, which WAL mode does
    not make atomic) leaves nothing lost; the payloads leave the state file only after the inbox
    holding their copies has committed."""
    with transaction(conn):
        _create(conn, path)
    with transaction(conn):
        _finish(conn, path)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """`begin`, then COMMIT, or ROLLBACK when the block raises (the connection autocommits otherwise)."""
    conn.execute(begin)
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create(conn: sqlite3.Connection, path: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")}
    for statement in statements(STATE) + statements(INBOX) + statements(JOURNAL):
        conn.execute(statement)
    present = {row[1] for row in conn.execute("PRAGMA main.table_info(jobs)")}
    for name, kind in ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
    if "tallies" not in tables:
        for statement in RECOUNT:
            conn.execute(statement)
    for trigger in TRIGGERS:
        conn.execute(trigger)
    for statement in statements(STATE_INDEXES):
        conn.execute(statement)
    # The rule as a constraint, as in queue_postgres (the claim never breaks it); a file from
    # before the index with such jobs gets it once they are over.
    with contextlib.suppress(sqlite3.IntegrityError):
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_running ON jobs(repo) "
                     "WHERE status = 'running' AND repo <> ''")
    # Deliveries of an older release: into the inbox, so its unique indexes keep refusing them.
    conn.execute(
        "INSERT OR IGNORE INTO inbox.deliveries (id, delivery, key, event, repo, received_at) "
        "SELECT id, delivery, key, event, repo, received_at FROM main.jobs "
        "WHERE id > COALESCE((SELECT MAX(id) FROM inbox.deliveries), 0) ORDER BY id")
    if "payloads" in tables:
        conn.execute("INSERT OR IGNORE INTO inbox.payloads (job_id, payload) "
                     "SELECT job_id, payload FROM main.payloads")
    if "payload" in present:  # the first release kept the payload in the job row
        conn.execute("INSERT OR IGNORE INTO inbox.payloads (job_id, payload) "
                     "SELECT id, payload FROM main.jobs")
    conn.execute(f"PRAGMA inbox.user_version = {VERSION}")
    conn.execute(f"PRAGMA journal.user_version = {VERSION}")


def _finish(conn: sqlite3.Connection, path: Path) -> None:
    # Every delivery the inbox has now counts as imported: after an upgrade those are the state
    # file's own jobs (copied above); next to a state file made anew (the old one deleted) they are
    # history, which must not run again. Anything newer is the workers' to take.
    conn.execute("INSERT OR IGNORE INTO inbox_read (one, last) SELECT 0, MAX("
                 "COALESCE((SELECT MAX(id) FROM main.jobs), 0), "
                 "COALESCE((SELECT MAX(id) FROM inbox.deliveries), 0))")
    conn.execute("DROP TABLE IF EXISTS main.payloads")
    if "payload" in {row[1] for row in conn.execute("PRAGMA main.table_info(jobs)")}:
        try:
            conn.execute("ALTER TABLE jobs DROP COLUMN payload")
        except sqlite3.OperationalError as error:
            raise MlopsError(f"{path}: cannot move the job payloads out of the job rows with SQLite "
                             f"{sqlite3.sqlite_version} ({error}); SQLite 3.35 or newer upgrades "
                             "this queue file") from None
    conn.execute(f"PRAGMA main.user_version = {VERSION}")
