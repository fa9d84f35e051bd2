"""The SQLite queue's claim and health queries read an index, never the job rows: a row's payload
(kilobytes, stored before the small columns) would be read through its overflow pages, making every
claim cost a read of the whole backlog. Checked on the query plans SQLite makes for the statements
the queue really runs (captured with a trace callback), not on timings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mlops_bot.bot.queue_sqlite import SqliteQueue


def test_claim_and_oldest_pending_use_a_covering_index(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    for index in range(50):
        queue.enqueue(f"d{index}", "issue_comment", b"x" * 20_000, 1.0, key=f"k{index}", repo="o/r")
    statements: list[str] = []
    queue._conn().set_trace_callback(statements.append)
    assert queue.claim(2.0, "host:1") is not None
    assert queue.oldest_pending() is not None
    queue._conn().set_trace_callback(None)
    claim = next(s for s in statements if s.startswith("UPDATE jobs SET status='running'"))
    oldest = next(s for s in statements if "MIN(MAX(received_at" in s)
    look = next(s for s in statements if s.startswith("SELECT id FROM jobs WHERE status='pending'"))
    peek = sqlite3.connect(tmp_path / "queue.sqlite3")
    for statement in (claim, oldest, look):
        plan = [row[3] for row in peek.execute("EXPLAIN QUERY PLAN " + statement)]
        reads = [step for step in plan if step.startswith(("SCAN jobs", "SEARCH jobs"))]
        assert reads, plan
        # The outer UPDATE finds its one row by primary key; every search of pending or running
        # jobs is answered from the index alone, in claim order (no sort of the backlog).
        assert all("COVERING INDEX" in step or "INTEGER PRIMARY KEY" in step for step in reads), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan
    peek.close()
    queue.close()
