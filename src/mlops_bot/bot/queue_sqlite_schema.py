"""The SQLite queue's three files, their tables, and the upgrade of older files in place.

- `queue.sqlite3` (attached as `main`): the jobs' mutable state, written by the workers (and by the
  server's `recover`, never on the answer's path): `jobs` (status, attempts, claims, results),
  `cooldowns`, `shared`, and `inbox_read` (the last inbox row the workers have imported).
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

from mlops_bot.errors import MlopsError

VERSION = 2  # PRAGMA user_version of each file once it has this layout

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
)
"""
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
    with _transaction(conn):
        _create(conn, path)
    with _transaction(conn):
        _finish(conn, path)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create(conn: sqlite3.Connection, path: Path) -> None:
    for statement in statements(STATE) + statements(INBOX) + statements(JOURNAL):
        conn.execute(statement)
    present = {row[1] for row in conn.execute("PRAGMA main.table_info(jobs)")}
    for name, kind in ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
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
    tables = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")}
    if "payloads" in tables:
        conn.execute("INSERT OR IGNORE INTO inbox.payloads (job_id, payload) "
                     "SELECT job_id, payload FROM main.payloads")
    if "payload" in present:  # the first release kept the payload in the job row
        conn.execute("INSERT OR IGNORE INTO inbox.payloads (job_id, payload) "
                     "SELECT id, payload FROM main.jobs")
    conn.execute(f"PRAGMA inbox.user_version = {VERSION}")
    conn.execute(f"PRAGMA journal.user_version = {VERSION}")


def _finish(conn: sqlite3.Connection, path: Path) -> None:
    # Every job the state file has is imported; anything newer in the inbox is the workers' to take.
    conn.execute("INSERT OR IGNORE INTO inbox_read (one, last) SELECT 0, COALESCE(MAX(id), 0) FROM main.jobs")
    conn.execute("DROP TABLE IF EXISTS main.payloads")
    if "payload" in {row[1] for row in conn.execute("PRAGMA main.table_info(jobs)")}:
        try:
            conn.execute("ALTER TABLE jobs DROP COLUMN payload")
        except sqlite3.OperationalError as error:
            raise MlopsError(f"{path}: cannot move the job payloads out of the job rows with SQLite "
                             f"{sqlite3.sqlite_version} ({error}); SQLite 3.35 or newer upgrades "
                             "this queue file") from None
    conn.execute(f"PRAGMA main.user_version = {VERSION}")
