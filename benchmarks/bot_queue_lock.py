"""How long the webhook answer's queue insert waits for the queue's write lock while a worker
process drains the same queue (issue 17: the answer path's tail under CPU shortage).

The answer path is only the insert here (no HTTP): one process inserts GitHub's `issue_comment`
example (12.7 KB, from `benchmarks/probot_app`'s `@octokit/webhooks-examples`, one comment id per
delivery) into the queue at a fixed rate, open loop, timing each `enqueue` as the server calls it
(SQLite: server mode, no auto-checkpoint). Side by side in one run, rounds interleaved:

- **alone**: nobody else touches the queue (the anchor);
- **with a worker**: `mlops-bot bot work`'s `Worker` (niced by 5, as `serve` starts it) drains the
  same queue with a handler that parses the payload and drops it (what the bot does with a comment
  on an issue, minus the forge), checkpointing after each batch as the real worker does.

With `--database-url` the queue is PostgreSQL; `--senders N` inserts from N threads (the server
waits for a remote database in a pool of threads), latency then counted from each delivery's
scheduled time, and the database server's CPU per delivery is recorded too.

For SQLite the inserting connection has no busy timeout: each time an insert meets a write lock
another connection holds, it fails at once, is counted (`lock_busy`) and retried after 0.1 ms.
`stalls_1ms` / `stalls_5ms` count inserts that took 1 / 5 ms or more.

A `--busy` process spins on one core during every round (the machine short of CPU, where the tail
came from). Run it against older code with `PYTHONPATH=<old checkout>/src` to compare.

    .venv/bin/python benchmarks/bot_queue_lock.py --count 1500 --rate 150 --rounds 2 --busy
    .venv/bin/python benchmarks/bot_queue_lock.py --database-url postgresql://...   # PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bot_load_deliveries import example_payload  # noqa: E402


def _open(path: str, url: str, server: bool) -> Any:
    environ = {"MLOPS_BOT_DATABASE_URL": url} if url else {}
    from mlops_bot.bot.queue import open_queue

    return open_queue(Path(path), environ, server=server)


class DropHandler:
    """The bot's handling of a comment on an issue, without the forge: parse, look, drop."""

    cooldowns = None

    def handle(self, event: str, payload: dict[str, Any], journal: Any = None, delivery: str = "") -> Any:
        from mlops_bot.bot.handlers import Outcome

        issue = payload.get("issue") or {}
        if not issue.get("pull_request"):
            return Outcome("ignored", "comment on an issue")
        return Outcome("ignored", "not a command")


def _worker(path: str, url: str, stop: Any, ready: Any, cpu: Any) -> None:
    from mlops_bot.bot.worker import Worker, lower_priority

    lower_priority("idle")  # as the worker `bot serve` starts

    queue = _open(path, url, server=False)
    worker = Worker(queue, DropHandler(), poll_seconds=0.05)  # type: ignore[arg-type]
    started = time.process_time()
    worker.start(1)
    ready.set()
    stop.wait()
    worker.stop()
    queue.close()
    cpu.value = time.process_time() - started


def _spin(stop: Any) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def _database_cpu(queue: Any) -> float:
    """CPU seconds of the PostgreSQL server so far (postmaster, reaped and live backends)."""
    folder = queue._conn().execute("SHOW data_directory").fetchone()[0]
    postmaster = int(Path(folder, "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster:
            total += sum(int(v) for v in fields[11:15]) / tick
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _round(path: str, url: str, bodies: list[bytes], rate: float, with_worker: bool, prefix: str,
           senders: int = 1) -> dict[str, Any]:
    queue = _open(path, url, server=True)
    context = multiprocessing.get_context("spawn")
    stop, ready = context.Event(), context.Event()
    worker = None
    worker_cpu = context.Value("d", 0.0)
    if with_worker:
        worker = context.Process(target=_worker, args=(path, url, stop, ready, worker_cpu))
        worker.start()
        ready.wait(60)
    cpu = time.process_time()
    database_cpu = _database_cpu(queue) if url else 0.0
    seconds: list[float] = []
    start = time.perf_counter() + 0.2

    busy = 0
    if not url:
        # SQLite: no busy handler, so each time the insert meets a lock someone else holds it fails
        # at once and is counted here (then retried after 0.1 ms) instead of sleeping in SQLite.
        queue._conn().execute("PRAGMA busy_timeout=0")

    def insert(index: int, body: bytes, due: float) -> None:
        nonlocal busy
        while True:
            try:
                assert queue.enqueue(f"{prefix}-{index}", "issue_comment", body, time.time(),
                                     key=f"{prefix}-k{index}", repo="octo-org/octo-repo")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise
                busy += 1
                time.sleep(0.0001)
        seconds.append(time.perf_counter() - due)  # from its scheduled time: waiting for a sender counts

    with ThreadPoolExecutor(senders) as pool:
        for index, body in enumerate(bodies):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            if senders == 1:
                insert(index, body, max(due, time.perf_counter()))
            else:
                pool.submit(insert, index, body, due)
    cpu = time.process_time() - cpu
    database_cpu = _database_cpu(queue) - database_cpu if url else 0.0
    drained_at = time.monotonic() + 120
    while with_worker and queue.depth() and time.monotonic() < drained_at:
        time.sleep(0.05)
    left = queue.depth() if with_worker else 0
    stop.set()
    if worker is not None:
        worker.join(30)
    queue.close()
    ordered = sorted(seconds)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"worker": with_worker, "count": len(seconds), "p50_ms": at(0.50), "p99_ms": at(0.99),
            "p999_ms": at(0.999), "max_ms": round(ordered[-1] * 1000, 3),
            "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
            "lock_busy": busy,
            "stalls_1ms": sum(1 for value in seconds if value >= 0.001),
            "stalls_5ms": sum(1 for value in seconds if value >= 0.005),
            "insert_cpu_ms": round(cpu / len(seconds) * 1000, 3),
            "database_cpu_ms": round(database_cpu / len(seconds) * 1000, 3),
            "worker_cpu_ms_per_job": round(worker_cpu.value / len(seconds) * 1000, 3),
            "left_pending": left}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy", action="store_true",
                        help="one process spinning on a core during the rounds")
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of a SQLite file")
    parser.add_argument("--senders", type=int, default=1,
                        help="threads inserting (the server's thread pool for a remote database)")
    parser.add_argument("--no-worker", action="store_true", help="only the rounds without a worker")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    example = example_payload(HERE / "probot_app")
    bodies = []
    for index in range(args.count * 2 * args.rounds):
        example["comment"]["id"] = 10_000_000 + index
        bodies.append(json.dumps(example).encode())
    context = multiprocessing.get_context("spawn")
    busy_stop = context.Event()
    busy = context.Process(target=_spin, args=(busy_stop,)) if args.busy else None
    if busy is not None:
        busy.start()
    results = []
    with tempfile.TemporaryDirectory(prefix="bot-queue-lock-") as folder:
        path = folder  # SQLite: open_queue puts queue.sqlite3 under this state directory
        used = 0
        for number in range(args.rounds):
            order = (False, True) if number % 2 == 0 else (True, False)
            if args.no_worker:
                order = (False,)
            for with_worker in order:
                chunk = bodies[used:used + args.count]
                used += args.count
                load = os.getloadavg()[0]
                prefix = f"r{number}{int(with_worker)}"
                result = _round(path, args.database_url, chunk, args.rate, with_worker, prefix, args.senders)
                result.update(round=number + 1, load=round(load, 1))
                results.append(result)
                print(json.dumps(result), flush=True)
    if busy is not None:
        busy_stop.set()
        busy.join(10)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
