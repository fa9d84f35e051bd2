"""The PostgreSQL queue's own paths (the semantics both backends share are in test_bot_queue.py):
the webhook server's inserts on its event loop, against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest


def _queue(postgres: Any, **options: Any) -> Any:
    from mlops_bot.bot.queue_postgres import PostgresQueue

    return PostgresQueue(postgres.database(), **options)


def test_deliveries_sent_at_once_on_the_event_loop_are_stored_once_each(postgres: Any) -> None:
    """120 deliveries, each sent twice at the same moment (a redelivery racing the original), every
    third one a replay of the one before (same key, new id): exactly one request per key wins,
    whichever insert each request's delivery went into."""
    queue = _queue(postgres, inserts_in_flight=3)
    sends = [(f"d-{i}", f"k-{i - 1 if i % 3 == 2 else i}") for i in range(120)]

    async def run() -> list[tuple[str, bool]]:
        async def one(delivery: str, key: str) -> tuple[str, bool]:
            return key, await queue.enqueue_async(delivery, "issue_comment", b"{}", 1.0, key=key, repo="o/r")

        return await asyncio.gather(*(one(d, k) for d, k in sends for _ in range(2)))

    results = asyncio.run(run())
    wins = Counter(key for key, stored in results if stored)
    assert set(wins.values()) == {1} and set(wins) == {key for _d, key in sends}
    assert queue.counts() == {"pending": len(wins)}
    job = queue.claim(2.0, "h:1")  # (which first: whichever insert committed first)
    assert job is not None and job.event == "issue_comment" and job.payload == b"{}"
    queue.close()


def test_deliveries_waiting_on_the_event_loop_go_in_one_statement(postgres: Any) -> None:
    """The group commit: while the one insert allowed in flight waits (another session locks the
    table), five more requests arrive; the next insert takes all five, one transaction (one xmin),
    and each request learns its own answer (a stored id, a replayed key in the same statement)."""
    import psycopg

    queue = _queue(postgres, inserts_in_flight=1)
    assert asyncio.run(queue.enqueue_async("d-0", "push", b"{}", 1.0, key="k-0"))
    arrivals = [("d-1", "k-1"), ("d-2", "k-2"), ("d-0", "k-x"), ("d-3", "k-1"), ("d-4", "k-4")]
    with psycopg.connect(queue.url, autocommit=True) as other, \
            psycopg.connect(queue.url, autocommit=True) as peek:

        async def run() -> dict[str, bool]:
            with other.transaction():
                other.execute("LOCK TABLE mlops_bot_jobs IN SHARE MODE")  # inserts wait for it
                first = asyncio.ensure_future(queue.enqueue_async("d-5", "push", b"{}", 2.0, key="k-5"))
                await _until(lambda: _waiting_for_lock(peek))  # (outside `other`'s snapshot)
                rest = [asyncio.ensure_future(queue.enqueue_async(d, "push", b"{}", 2.0, key=k))
                        for d, k in arrivals]
                await asyncio.sleep(0.2)  # every request queued behind the insert in flight
                assert not first.done()
            answers = await asyncio.gather(first, *rest)
            return dict(zip(["d-5", *(d for d, _ in arrivals)], answers, strict=True))

        answers = asyncio.run(run())
        assert answers == {"d-5": True, "d-1": True, "d-2": True, "d-0": False, "d-3": False, "d-4": True}
        transactions = {str(delivery): str(xmin) for delivery, xmin in other.execute(
            "SELECT delivery, xmin::text FROM mlops_bot_jobs")}
    assert transactions["d-1"] == transactions["d-2"] == transactions["d-4"] != transactions["d-5"]
    queue.close()


def test_a_connection_cut_fails_only_the_deliveries_in_its_insert(postgres: Any) -> None:
    """The database drops the inserting connection (a restart, a failover): the requests of that
    insert get the error (the webhook answers them 500, GitHub may redeliver), the next delivery is
    stored over a new connection. That next request arrives while the failed insert's writer is
    ending: it must start a writer of its own, not wait for that one (it hung forever once)."""
    import psycopg

    queue = _queue(postgres, inserts_in_flight=1)

    async def run() -> None:
        assert await queue.enqueue_async("d-1", "push", b"{}", 1.0)
        with psycopg.connect(queue.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                          "AND query LIKE 'INSERT INTO mlops_bot_jobs%%'")
        async with asyncio.timeout(120):  # (not wait_for: its extra task would hide the ordering)
            with pytest.raises(psycopg.OperationalError):
                await queue.enqueue_async("d-2", "push", b"{}", 2.0)
            assert await queue.enqueue_async("d-2", "push", b"{}", 3.0)

    asyncio.run(run())
    assert [job["delivery"] for job in queue.jobs()] == ["d-1", "d-2"]
    queue.close()


def test_the_event_loop_inserts_survive_a_second_event_loop(postgres: Any) -> None:
    """Connections opened on one event loop are not used on another (a server restarted in the same
    process, a test's second asyncio.run): they are opened again there."""
    queue = _queue(postgres)
    assert asyncio.run(queue.enqueue_async("d-1", "push", b"{}", 1.0))
    assert asyncio.run(queue.enqueue_async("d-2", "push", b"{}", 1.0))
    assert not asyncio.run(queue.enqueue_async("d-1", "push", b"{}", 1.0))
    assert queue.counts() == {"pending": 2}
    queue.close()


def _waiting_for_lock(conn: Any) -> bool:
    row = conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


async def _until(condition: Any, seconds: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.01)


def test_the_one_running_index_is_built_while_deliveries_go_on_being_inserted(postgres: Any) -> None:
    """The index is built CONCURRENTLY: while the build waits out a transaction that is writing
    the table (a replica's insert in flight), other inserts go on. A plain CREATE INDEX would queue
    its lock behind that transaction and every insert behind the CREATE INDEX."""
    import threading

    import psycopg

    from mlops_bot.bot.queue_postgres import PostgresQueue

    url = postgres.database()
    PostgresQueue(url).close()
    with psycopg.connect(url, autocommit=True) as writing, psycopg.connect(url, autocommit=True) as other:
        other.execute("DROP INDEX mlops_bot_jobs_one_running")  # a database of an older release
        started: list[Any] = []
        with writing.transaction():
            writing.execute("INSERT INTO mlops_bot_jobs (delivery, event, payload, received_at) "
                            "VALUES ('d-open', 'push', '{}', 1.0)")
            thread = threading.Thread(target=lambda: started.append(PostgresQueue(url)))
            thread.start()
            deadline = time.monotonic() + 120
            while not other.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE UNIQUE INDEX%%' "
                                    "AND wait_event_type IS NOT NULL").fetchone():
                assert time.monotonic() < deadline, "the index build never started"
                time.sleep(0.05)
            other.execute("SET lock_timeout = '60s'")  # (a plain CREATE INDEX: LockNotAvailable)
            other.execute("INSERT INTO mlops_bot_jobs (delivery, event, payload, received_at) "
                          "VALUES ('d-during', 'push', '{}', 2.0)")
            assert thread.is_alive()  # the build still waits for `writing`
        thread.join(120)
        assert started and not thread.is_alive()
        row = other.execute("SELECT indisvalid FROM pg_index "
                            "WHERE indexrelid = to_regclass('mlops_bot_jobs_one_running')").fetchone()
        assert row == (True,)
        started[0].close()


def test_replicas_starting_at_once_on_a_new_database_all_come_up(postgres: Any) -> None:
    """Four replicas start together on a database without the tables: one creates the schema (the
    index concurrently), the others wait for it without a statement that the build would wait out."""
    import threading

    from mlops_bot.bot.queue_postgres import PostgresQueue

    url = postgres.database()
    queues: list[Any] = []
    threads = [threading.Thread(target=lambda: queues.append(PostgresQueue(url))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert len(queues) == 4
    assert all(queue._indexed for queue in queues)
    for queue in queues:
        queue.close()


def test_a_claim_lost_to_another_replica_is_retried_quietly(postgres: Any, caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    """Two replicas claim jobs of one repository at the same moment: the second claim to commit
    breaks the one-running-job index. Its replica takes another repository's job instead, keeps the
    job it was finishing in the same transaction recorded as done, and logs nothing (a lost race,
    not an error). (Recording that job once threw a TypeError: the worker logged a loop error.)"""
    import logging
    import threading

    import psycopg

    queue = _queue(postgres, orphan_check_seconds=3600.0)
    for delivery, repo in (("c-1", "o/c"), ("a-1", "o/a"), ("a-2", "o/a"), ("b-1", "o/b")):
        queue.enqueue(delivery, "push", b"{}", 1.0, repo=repo)
    caplog.set_level(logging.INFO, logger="mlops_bot")
    claimed: list[Any] = []
    go = threading.Event()

    def worker() -> None:  # one thread, one connection: as a worker claims and finishes
        finishing = queue.claim(2.0, "h:1")
        claimed.append(finishing)
        go.wait(120)
        claimed.append(queue.complete_and_claim(finishing.id, "done", "ok", 0.1, 3.0, "h:1"))

    with psycopg.connect(queue.url, autocommit=True) as other, \
            psycopg.connect(queue.url, autocommit=True) as peek:
        thread = threading.Thread(target=worker)
        thread.start()
        deadline = time.monotonic() + 120
        while not claimed:
            assert time.monotonic() < deadline and thread.is_alive(), "no first claim"
            time.sleep(0.02)
        assert claimed[0] is not None and claimed[0].delivery == "c-1"
        with other.transaction():  # the other replica's claim of a-1, not committed yet
            other.execute("UPDATE mlops_bot_jobs SET status='running', attempts=1 WHERE delivery='a-1'")
            go.set()
            while not _waiting_for_lock(peek):  # our claim of a-2 waits on the index entry of a-1
                assert time.monotonic() < deadline and thread.is_alive(), "the claims never met"
                time.sleep(0.02)
        thread.join(120)
    assert len(claimed) == 2 and claimed[1] is not None and claimed[1].delivery == "b-1"
    assert {job["delivery"]: job["status"] for job in queue.jobs()} == {
        "c-1": "done", "a-1": "running", "a-2": "pending", "b-1": "running"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    with psycopg.connect(queue.url, autocommit=True) as peek:  # only b-1 is held (a session lock)
        held = peek.execute("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchall()
    assert [row[0] for row in held] == [claimed[1].id]
    queue.close()
