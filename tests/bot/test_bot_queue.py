"""The durable queue: de-duplication, atomic claims across threads, crash recovery, the journal.

One suite, run against both backends: the SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.bot.queue import JobQueue
from mlops_bot.bot.queue_sqlite import SqliteQueue

MakeQueue = Callable[..., Any]


@pytest.fixture(params=["sqlite", "postgres"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> MakeQueue:
    """Opens the test's queue (the same one each call, like reopening a file after a restart)."""
    if request.param == "sqlite":
        return lambda **kwargs: SqliteQueue(tmp_path / "q.sqlite3", **kwargs)
    from mlops_bot.bot.queue_postgres import PostgresQueue

    url = request.getfixturevalue("postgres").database()
    return lambda **kwargs: PostgresQueue(url, **kwargs)


def test_both_backends_keep_the_interface(make_queue: MakeQueue) -> None:
    queue: JobQueue = make_queue()
    assert queue.max_attempts == 3


def test_redelivery_is_not_queued_twice(make_queue: MakeQueue) -> None:
    queue = make_queue()
    assert queue.enqueue("d-1", "push", b"{}", 1.0)
    assert not queue.enqueue("d-1", "push", b'{"other": 1}', 2.0)
    assert queue.enqueue("d-2", "push", b"{}", 3.0)
    assert queue.depth() == 2
    job = queue.claim(4.0)
    assert job is not None and (job.delivery, job.payload, job.attempts) == ("d-1", b"{}", 1)


def test_state_survives_reopening_and_running_jobs_are_resumed(make_queue: MakeQueue) -> None:
    first = make_queue()
    for i in range(3):
        first.enqueue(f"d-{i}", "issue_comment", b"{}", float(i))
    running = first.claim(10.0)
    assert running is not None
    first.complete(running.id, "done", "", 0.1, 11.0)
    assert first.claim(12.0) is not None  # left running: the process "dies" here
    first.close()

    second = make_queue()
    assert second.counts() == {"done": 1, "running": 1, "pending": 1}
    assert second.recover() == 1
    claimed = [second.claim(20.0), second.claim(20.0), second.claim(20.0)]
    # never-tried jobs first: a job whose worker died goes to the back
    assert [j.delivery if j else None for j in claimed] == ["d-2", "d-1", None]
    assert claimed[1] is not None and claimed[1].attempts == 2


def test_concurrent_claims_hand_out_each_job_once(make_queue: MakeQueue) -> None:
    queue = make_queue()
    for i in range(200):
        queue.enqueue(f"d-{i}", "push", b"{}", float(i))
    taken: list[str] = []
    lock = threading.Lock()

    def drain() -> None:
        while (job := queue.claim(0.0)) is not None:
            with lock:
                taken.append(job.delivery)
            queue.complete(job.id, "done", "", 0.0, 0.0)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"d-{i}" for i in range(200))
    assert queue.counts() == {"done": 200}


def test_failures_retry_until_max_attempts(make_queue: MakeQueue) -> None:
    queue = make_queue(max_attempts=2, retry_seconds=10.0)
    queue.enqueue("d", "push", b"{}", 0.0)
    job = queue.claim(0.0)
    assert job is not None and queue.fail(job.id, "boom", 1.0) == "pending"
    assert queue.claim(10.9) is None  # backing off
    job = queue.claim(11.0)
    assert job is not None and job.attempts == 2
    assert queue.fail(job.id, "boom again", 12.0) == "failed"
    assert queue.claim(1000.0) is None
    assert queue.jobs()[0]["error"] == "boom again"


def test_journal_runs_each_step_once_per_job(make_queue: MakeQueue) -> None:
    queue = make_queue()
    calls: list[str] = []

    def effect(name: str) -> int:
        calls.append(name)
        return len(calls)

    assert queue.step(1, "react", lambda: effect("react")) == 1
    assert queue.step(1, "react", lambda: effect("react")) == 1  # resumed: recorded result
    assert queue.step(2, "react", lambda: effect("react")) == 2  # another job
    assert calls == ["react", "react"]
    reopened = make_queue()
    assert reopened.step(1, "react", lambda: effect("react")) == 1
    assert calls == ["react", "react"]


def test_journal_verifies_a_step_interrupted_between_effect_and_record(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue._record(3, "reply", None, "started")  # crashed after starting the effect
    assert queue.step(3, "reply", lambda: 99, verify=lambda: 41) == 41  # it had happened
    assert queue.step(3, "reply", lambda: 99, verify=lambda: None) == 41  # now recorded as done
    queue._record(4, "reply", None, "started")
    assert queue.step(4, "reply", lambda: 99, verify=lambda: None) == 99  # it had not: do it


def test_worker_retries_a_job_after_a_forge_outage_with_backoff(make_queue: MakeQueue, tmp_path: Path
                                                                ) -> None:
    import json

    from mlops_bot.bot.handlers import EventHandler
    from mlops_bot.bot.worker import Worker
    from mlops_bot.errors import ForgeError
    from mlops_bot.forge.local import LocalForge

    forge = LocalForge(tmp_path / "forge", repo="acme/churn")
    outage = {"left": 1}

    def forge_for(repo: str, installation: int | None) -> LocalForge:
        if outage["left"]:
            outage["left"] -= 1
            raise ForgeError("GitHub answered 503 five times")
        return forge

    now = {"t": 1000.0}
    queue = make_queue(retry_seconds=30.0)
    worker = Worker(queue, EventHandler(forge_for), clock=lambda: now["t"])
    payload = {"action": "opened", "number": 3, "repository": {"full_name": "acme/churn"},
               "pull_request": {"head": {"sha": "abc", "ref": "f"}, "base": {"ref": "main"}}}
    queue.enqueue("d-1", "pull_request", json.dumps(payload).encode(), now["t"])
    assert worker.drain() == 1
    assert queue.jobs()[0]["status"] == "pending" and "503" in queue.jobs()[0]["error"]
    now["t"] += 29
    assert worker.drain() == 0  # still backing off
    now["t"] += 1
    assert worker.drain() == 1
    assert queue.jobs()[0]["status"] == "done"
    assert [d["client_payload"]["delivery"] for d in forge.dispatches()] == ["d-1"]


def test_one_running_job_per_repository_across_replicas(make_queue: MakeQueue) -> None:
    """Two replicas (two queue connections), four workers each, claiming at once: a repository
    never has two jobs running, however the claims interleave; every job is still handed out once."""
    replicas = [make_queue(), make_queue()]
    repos = ("acme/a", "acme/b", "acme/c")
    for i in range(90):
        replicas[0].enqueue(f"d-{i}", "issue_comment", b"{}", float(i), repo=repos[i % 3])
    lock = threading.Lock()
    running: Counter[str] = Counter()
    overlaps: list[str] = []
    taken: list[str] = []
    repo_of = {f"d-{i}": repos[i % 3] for i in range(90)}

    def work(queue: Any) -> None:
        idle = 0
        while idle < 50:
            job = queue.claim(1000.0)
            if job is None:
                idle += 1
                time.sleep(0.005)
                continue
            idle = 0
            repo = repo_of[job.delivery]
            with lock:
                running[repo] += 1
                if running[repo] > 1:
                    overlaps.append(repo)
                taken.append(job.delivery)
            time.sleep(0.002)  # the job's work: long enough for the others to try this repository
            with lock:
                running[repo] -= 1
            queue.complete(job.id, "done", "", 0.0, 1000.0)

    threads = [threading.Thread(target=work, args=(queue,)) for queue in replicas for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert sorted(taken) == sorted(repo_of)
    assert replicas[1].counts() == {"done": 90}


def test_a_job_whose_worker_keeps_dying_fails_saying_so(make_queue: MakeQueue) -> None:
    queue = make_queue(max_attempts=2)
    queue.enqueue("d", "push", b"{}", 0.0)
    for attempt in (1, 2):
        job = queue.claim(float(attempt))
        assert job is not None and job.attempts == attempt
        queue.close()  # the worker dies with its job running
        queue = make_queue(max_attempts=2)
        assert queue.recover(float(attempt)) == 1
    row = queue.jobs()[0]
    assert row["status"] == "failed"
    assert row["error"] == ("the worker died during this job 2 time(s) "
                            "(killed, out of memory or past its time limit)")


def test_a_deferred_job_waits_without_spending_an_attempt(make_queue: MakeQueue) -> None:
    queue = make_queue(max_attempts=1)
    queue.enqueue("d", "issue_comment", b"{}", 0.0, repo="acme/a")
    job = queue.claim(1.0)
    assert job is not None and job.attempts == 1
    queue.defer(job.id, 100.0, "deferred: GitHub rate limit", 2.0)
    assert queue.claim(99.0) is None  # not before the limit lifts
    assert queue.jobs()[0]["status"] == "pending"
    again = queue.claim(100.0)
    assert again is not None and again.attempts == 1  # the deferral was not an attempt
    queue.complete(again.id, "done", "", 0.1, 101.0)
    assert queue.stats().deferrals == {"issue_comment": 1} and queue.stats().failures == {}


def test_finishing_a_job_claims_the_next_in_the_same_step(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.enqueue("d-1", "push", b'{"n": 1}', 1.0, repo="o/a")
    queue.enqueue("d-2", "push", b'{"n": 2}', 2.0, repo="o/a")
    queue.enqueue("d-3", "push", b'{"n": 3}', 3.0, repo="o/b")
    first = queue.claim(5.0, "h:1")
    assert first is not None and first.delivery == "d-1"
    # o/a's next job waits for d-1; finishing d-1 frees o/a, and the oldest job goes first.
    second = queue.complete_and_claim(first.id, "done", "one", 0.1, 6.0, "h:1")
    assert second is not None and (second.delivery, second.payload) == ("d-2", b'{"n": 2}')
    third = queue.complete_and_claim(second.id, "ignored", "two", 0.1, 7.0, "h:1")
    assert third is not None and third.delivery == "d-3"
    assert queue.complete_and_claim(third.id, "done", "three", 0.1, 8.0, "h:1") is None
    assert queue.counts() == {"done": 3}
    assert [job["outcome"] for job in queue.jobs()] == ["done: one", "ignored: two", "done: three"]
    assert queue.running_since() is None


def test_the_one_running_index_arrives_once_older_replicas_jobs_are_over(postgres: Any) -> None:
    """A rolling upgrade: replicas of a release before the index still run two jobs of one
    repository. The new replica starts anyway, and its orphan checks create the index as soon as
    the rule holds again, without a restart."""
    import psycopg

    from mlops_bot.bot.queue_postgres import PostgresQueue
    from mlops_bot.bot.queue_postgres_schema import LOCK_CLASS

    url = postgres.database()
    PostgresQueue(url).close()  # the tables of this release...
    with psycopg.connect(url, autocommit=True) as old:
        old.execute("DROP INDEX mlops_bot_jobs_one_running")  # ...as the older release had them
        for delivery in ("d-1", "d-2"):
            old.execute("INSERT INTO mlops_bot_jobs (delivery, event, payload, received_at, repo, status, "
                        "attempts) VALUES (%s, 'push', '{}', 1.0, 'o/r', 'running', 1)", (delivery,))
        ids = [row[0] for row in old.execute("SELECT id FROM mlops_bot_jobs ORDER BY id")]
        for job_id in ids:  # the older replica's workers hold their jobs
            old.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, job_id))
        queue = PostgresQueue(url, orphan_check_seconds=0.0)

        def indexed() -> bool:
            return bool(old.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'mlops_bot_jobs_one_running'")
                        .fetchone())

        assert not indexed()
        assert queue.recover(2.0) == 0 and not indexed()  # both jobs' workers live
        old.execute("UPDATE mlops_bot_jobs SET status='done' WHERE id=%s", (ids[0],))
        old.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, ids[0]))
        assert queue.recover(3.0) == 0
        assert indexed()
        queue.close()


def test_concurrent_deliveries_are_stored_once_each(make_queue: MakeQueue) -> None:
    """Eight threads send 120 deliveries, each twice (a redelivery racing the original), and every
    third pair of deliveries is a replay (same key, new id): exactly one send per request wins."""
    queue = make_queue()
    sends = [(f"d-{i}", f"k-{i - 1 if i % 3 == 2 else i}") for i in range(120)]  # d-2 replays d-1, ...
    work = [send for send in sends for _ in range(2)]
    results: list[tuple[str, str, bool]] = []
    lock = threading.Lock()

    def send(part: list[tuple[str, str]]) -> None:
        for delivery, key in part:
            stored = queue.enqueue(delivery, "issue_comment", b"{}", 1.0, key=key)
            with lock:
                results.append((delivery, key, stored))

    threads = [threading.Thread(target=send, args=(work[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wins = Counter(key for _delivery, key, stored in results if stored)
    assert set(wins.values()) == {1} and set(wins) == {key for _d, key in sends}
    assert queue.counts() == {"pending": len(wins)}


def test_deliveries_waiting_together_are_inserted_in_one_statement(postgres: Any) -> None:
    """The group commit, made deterministic: five requests arrive while the inserts allowed in
    flight are taken; the next insert takes all five (one statement), each learns its own answer."""
    from mlops_bot.bot.queue_postgres import PostgresQueue

    queue = PostgresQueue(postgres.database(), inserts_in_flight=1)
    assert queue.enqueue("d-0", "push", b"{}", 1.0, key="k-0")
    batches: list[int] = []
    insert = queue._insert

    def counted(batch: list[Any]) -> None:
        batches.append(len(batch))
        insert(batch)

    queue._insert = counted  # type: ignore[method-assign]
    answers: dict[str, bool] = {}
    with queue._arrivals:
        queue._inserting = 1  # an insert in flight: as many as allowed
    arrivals = [("d-1", "k-1"), ("d-2", "k-2"), ("d-0", "k-x"), ("d-3", "k-1"), ("d-4", "k-4")]

    def send(delivery: str, key: str) -> None:
        answers[delivery] = queue.enqueue(delivery, "push", b"{}", 2.0, key=key)

    threads = [threading.Thread(target=send, args=arrival) for arrival in arrivals]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(queue._waiting) < len(arrivals):
        assert time.monotonic() < deadline, "the requests never queued up"
        time.sleep(0.01)
    with queue._arrivals:
        queue._inserting = 0
        queue._arrivals.notify_all()
    for thread in threads:
        thread.join()
    assert batches == [5]
    # d-0 was stored before; d-3 replays d-1's key within the same statement.
    assert answers == {"d-1": True, "d-2": True, "d-0": False, "d-3": False, "d-4": True}
    assert queue.counts() == {"pending": 4}
    queue.close()


def test_recovery_never_waits_for_a_row_another_transaction_is_writing(postgres: Any) -> None:
    """An orphan (running, its worker gone) whose row another transaction is writing right now (a
    claim or a finish in flight) is skipped, not waited for: waiting there while holding the job's
    advisory lock could deadlock with a claim that waits for that lock. It is recovered next time."""
    import psycopg

    from mlops_bot.bot.queue_postgres import PostgresQueue

    url = postgres.database()
    queue = PostgresQueue(url)
    queue.enqueue("d-1", "push", b"{}", 1.0)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("UPDATE mlops_bot_jobs SET status='running', attempts=1")  # an orphan
        with other.transaction():
            other.execute("UPDATE mlops_bot_jobs SET claimed_by='someone'")  # its row being written
            result: list[int] = []
            thread = threading.Thread(target=lambda: result.append(queue.recover(2.0)))
            thread.start()
            thread.join(120)
            assert not thread.is_alive() and result == [0]
        assert queue.recover(3.0) == 1
    assert queue.counts() == {"pending": 1}
    queue.close()
