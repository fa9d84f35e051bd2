"""The SQLite queue's claim and health queries read an index, never the job rows: a row's payload
(kilobytes, stored before the small columns) would be read through its overflow pages, making every
claim cost a read of the whole backlog; new deliveries are found in the inbox by id, and imported
by id range, not by a scan of everything ever received. Checked on the query plans SQLite makes
for the statements the queue really runs (captured with a trace callback), not on timings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mlops_bot.bot.queue_sqlite import SqliteQueue


def test_claim_and_oldest_pending_use_a_covering_index(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    for index in range(50):
        queue.enqueue(f"d{index}", "issue_comment", b"x" * 20_000, 1.0, key=f"k{index}",
                      repo=f"o/r{index}")
    statements: list[str] = []
    queue._conn().set_trace_callback(statements.append)
    assert queue.claim(2.0, "host:1") is not None  # imports the 50 deliveries, claims the first
    assert queue.claim(2.0, "host:1") is not None  # nothing new in the inbox: looks at pending jobs
    queue.enqueue("d-new", "issue_comment", b"x" * 20_000, 1.0, repo="o/new")
    assert queue.claim(2.0, "host:1") is not None  # imports the new one
    assert queue.oldest_pending() is not None
    queue._conn().set_trace_callback(None)
    claim = next(s for s in statements if s.startswith("UPDATE jobs SET status='running'"))
    oldest = next(s for s in statements if "MIN(MAX(received_at" in s)
    look = next(s for s in statements if s.startswith("SELECT id FROM jobs WHERE status='pending'"))
    new = next(s for s in statements if s.startswith("SELECT id FROM inbox.deliveries"))
    imported = next(s for s in statements if s.startswith("INSERT INTO jobs"))
    peek = sqlite3.connect(tmp_path / "queue.sqlite3")
    peek.execute("ATTACH DATABASE ? AS inbox", (str(queue.inbox_path),))
    for statement in (claim, oldest, look, new, imported):
        plan = [row[3] for row in peek.execute("EXPLAIN QUERY PLAN " + statement)]
        # (`inbox_read` is the one row holding the last imported id.)
        reads = [step for step in plan if step.startswith(("SCAN ", "SEARCH "))
                 and step not in ("SCAN CONSTANT ROW", "SCAN inbox_read")]
        assert reads, plan
        # The outer UPDATE finds its one row by primary key; every search of pending or running
        # jobs is answered from the index alone, in claim order (no sort of the backlog).
        assert all("COVERING INDEX" in step or "INTEGER PRIMARY KEY" in step for step in reads), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan
    peek.close()
    queue.close()
