"""The PostgreSQL queue's tables (queue_postgres.py): created, or brought up to date, safely on a big
live table that other replicas insert into and claim from meanwhile.

Every replica runs `create_or_upgrade` at start under the schema lock (an advisory lock, taken by
polling: a statement waiting for the lock would hold a snapshot, which the holder's CREATE INDEX
CONCURRENTLY waits out, a deadlock). Columns and indexes are added only when missing, looked up
first: ALTER TABLE and CREATE INDEX lock the table even when there is nothing to do, queueing every
insert behind any open transaction.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mlops_bot.bot")

# Advisory locks share one key space per database: jobs use (class, job id) with our own class,
# shared rows (class + 1, hash of the key) for the length of an update's transaction.
LOCK_CLASS = 0x6D6C6F70  # "mlop"

SCHEMA = """
CREATE TABLE IF NOT EXISTS mlops_bot_jobs (
    id BIGSERIAL PRIMARY KEY,
    delivery TEXT NOT NULL UNIQUE,
    key TEXT UNIQUE,
    repo TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL,
    payload BYTEA NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    received_at DOUBLE PRECISION NOT NULL,
    available_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    result TEXT,
    duration DOUBLE PRECISION,
    outcome TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS mlops_bot_steps (
    job_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    result TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'done',
    PRIMARY KEY (job_id, step)
);
CREATE TABLE IF NOT EXISTS mlops_bot_cooldowns (
    key TEXT PRIMARY KEY,
    until DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS mlops_bot_shared (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# Built CONCURRENTLY (outside a transaction: the admin connection autocommits), so a big live table
# takes inserts and claims meanwhile; a build that fails leaves an invalid index, dropped again.
# Added to the schema when missing (looked up first: ALTER TABLE and CREATE INDEX lock the table even
# when there is nothing to do, queueing every insert behind any open transaction on a live table).
_COLUMNS = {"claimed_by": "ALTER TABLE mlops_bot_jobs ADD COLUMN IF NOT EXISTS claimed_by TEXT",
            "deferrals": "ALTER TABLE mlops_bot_jobs ADD COLUMN IF NOT EXISTS deferrals INTEGER NOT NULL "
                         "DEFAULT 0"}
_STATUS_INDEX = "CREATE INDEX IF NOT EXISTS mlops_bot_jobs_status ON mlops_bot_jobs (status, attempts, id)"
_ONE_RUNNING = ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS mlops_bot_jobs_one_running ON mlops_bot_jobs "
                "(repo) WHERE status = 'running' AND repo <> ''")
_ONE_RUNNING_VALID = ("SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = to_regclass('mlops_bot_jobs_one_running')")
_ONE_RUNNING_DROP = "DROP INDEX CONCURRENTLY IF EXISTS mlops_bot_jobs_one_running"


def schema_lock(admin: Any) -> bool:
    """Take the schema lock if free (True), without waiting."""
    row = admin.execute("SELECT pg_try_advisory_lock(%s, 0)", (LOCK_CLASS,)).fetchone()
    return bool(row and row[0])


def schema_unlock(admin: Any) -> None:
    admin.execute("SELECT pg_advisory_unlock(%s, 0)", (LOCK_CLASS,))


def create_or_upgrade(admin: Any) -> bool:
    """Tables, missing columns and indexes, the one-running-job index, lz4 payloads; with the schema
    lock held on `admin` (an autocommit connection). Returns whether the one-running-job index exists."""
    admin.execute(SCHEMA)
    _add_what_is_missing(admin)
    indexed = one_running_per_repository(admin, None)
    _compress_payloads_with_lz4(admin)
    return indexed


def _add_what_is_missing(admin: Any) -> None:
    columns = {str(row[0]) for row in admin.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'mlops_bot_jobs'::regclass "
        "AND NOT attisdropped")}
    for name, statement in _COLUMNS.items():
        if name not in columns:
            admin.execute(statement)
    if admin.execute("SELECT to_regclass('mlops_bot_jobs_status')").fetchone() == (None,):
        admin.execute(_STATUS_INDEX)


def one_running_per_repository(admin: Any, indexed: bool | None) -> bool:
    """The rule "one running job per repository" as a constraint, so concurrent claims of
    different replicas cannot both win (each sees only committed rows). A database where the
    rule was broken before this index existed (replicas of an older release still running
    during a rolling upgrade) gets it once those jobs are over: each orphan check tries again.
    `indexed`: the previous answer (None: never tried). Returns whether the index exists now."""
    import psycopg

    valid = admin.execute(_ONE_RUNNING_VALID).fetchone()
    if valid is not None and valid[0]:
        return True
    try:
        if valid is not None:  # an earlier build's invalid leftover (IF NOT EXISTS would keep it)
            admin.execute(_ONE_RUNNING_DROP)
        admin.execute(_ONE_RUNNING)
        return True
    except psycopg.errors.UniqueViolation:
        admin.execute(_ONE_RUNNING_DROP)
        if indexed is None:
            log.info("one repository has several running jobs (replicas of an older release?): "
                     "the one-running-job index is created once they are over")
        return False


def _compress_payloads_with_lz4(admin: Any) -> None:
    """lz4 for new payloads (PostgreSQL 14+ built with lz4; else the default pglz stays)."""
    import psycopg

    method = admin.execute(
        "SELECT attcompression FROM pg_attribute WHERE attrelid = 'mlops_bot_jobs'::regclass "
        "AND attname = 'payload'").fetchone()
    if method is None or method[0] == "l":
        return
    try:
        admin.execute("ALTER TABLE mlops_bot_jobs ALTER COLUMN payload SET COMPRESSION lz4")
    except psycopg.Error as error:
        log.info("payloads stay compressed with pglz: %s", str(error).strip().splitlines()[0])
