"""CPU per delivery of the bot's answering path, piece by piece (run on demand, not a test).

The same signed `issue_comment` deliveries as bot_load.py (GitHub's example payload, 12.7 KB), and
CPU time (user + system), not wall time, so a loaded machine moves the figures little. The
in-process figures run with the garbage collector as `serve` sets it (`serving.settle_heap`):

- `parse`: signature check + JSON parse + idempotency key (`events.parse_delivery`), in process;
- `insert`: the SQLite queue insert (`SqliteQueue.enqueue`), in process;
- `app`: the whole ASGI app for `POST /webhook` (routing, body, parse, insert, answer), called in
  process with in-memory receive/send (no HTTP parsing, no socket);
- `server`: a real `mlops-bot bot serve --workers 0` process over loopback: its CPU time per delivery
  as read from /proc (HTTP parsing, event loop, sockets: everything the answering process does).
  Sent closed loop on `--connections` keep-alive connections by bot_load_send's lean client.

With `--worker-rounds N`: the answer's latency at `--rate`/s open loop (bot_load.py's sender), N
rounds alternating between a server whose worker process drains the same SQLite file and one
without a worker (`--workers 0`): how much of the tail is the worker's share of the machine and of
the file's write lock. `--memory-rounds N`: the same with a worker, the queue file alternating
between the disk and /dev/shm: how much of it is the write to disk.

    .venv/bin/python benchmarks/bot_ingress_cpu.py [--count 3000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from bot_load_deliveries import SignedDelivery, build_deliveries, example_payload
from bot_load_send import Connections, pct, send_open_loop
from bot_load_servers import OUR_PATH, PROBOT_DIR, CpuMeter, OurBot
from mlops_bot.bot.app import BotConfig, WebhookBot
from mlops_bot.bot.events import parse_delivery
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.serving import settle_heap
from mlops_bot.bot.wiring import handler_from_env

SECRET = "bench-secret"  # noqa: S105 (a throwaway webhook secret for loopback)
TOOLS_EXAMPLES = Path(__file__).resolve().parents[1] / ".cache" / "tools"


def deliveries(count: int, prefix: str, first: int) -> list[SignedDelivery]:
    try:
        example = example_payload(PROBOT_DIR)
    except FileNotFoundError:
        example = example_payload(TOOLS_EXAMPLES)  # the test tools' copy of the same npm package
    return build_deliveries(example, SECRET, count, prefix=prefix, first_comment_id=first)


def cpu_ms_per(count: int, run: Callable[[], object]) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) * 1000 / count


def in_process(items: list[SignedDelivery], root: Path) -> dict[str, float]:
    secrets = [SECRET]
    settle_heap()
    out = {"parse": cpu_ms_per(len(items), lambda: [parse_delivery(i.headers(), i.body, secrets)
                                                    for i in items])}
    queue = SqliteQueue(root / "insert.sqlite3", auto_checkpoint=False)
    parsed = [parse_delivery(i.headers(), i.body, secrets) for i in items]
    out["insert"] = cpu_ms_per(len(items), lambda: [
        queue.enqueue(p.delivery, p.event, p.body, 0.0, key=p.key, repo="octo/repo") for p in parsed])
    config = BotConfig(secrets, root / "app-state", workers=0)
    handler = handler_from_env({"MLOPS_BOT_LOCAL_FORGE": str(root / "forge")}, config.state_dir)
    bot = WebhookBot(config, handler)
    again = deliveries(len(items), "app", 10_000_000)
    statuses: list[int] = []

    async def call_all() -> None:
        for item in again:
            headers = [(k.lower().encode(), v.encode()) for k, v in item.headers().items()]
            headers.append((b"content-length", str(len(item.body)).encode()))
            scope: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                                     "http_version": "1.1", "method": "POST", "scheme": "http",
                                     "path": OUR_PATH, "raw_path": OUR_PATH.encode(), "query_string": b"",
                                     "root_path": "", "headers": headers, "server": ("127.0.0.1", 1),
                                     "client": ("127.0.0.1", 2), "state": {}}
            async def receive(body: bytes = item.body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(int(message["status"]))

            await bot.app(scope, receive, send)

    out["app"] = cpu_ms_per(len(again), lambda: asyncio.run(call_all()))
    if set(statuses) != {202}:
        raise RuntimeError(f"the in-process app answered {sorted(set(statuses))}, expected 202")
    return out


async def closed_loop(port: int, items: list[SignedDelivery], connections: int) -> list[int]:
    statuses: list[int] = []
    lanes = [Connections(port) for _ in range(connections)]

    async def lane(number: int) -> None:
        for item in items[number::connections]:
            statuses.append(await lanes[number].post(OUR_PATH, item.body, item.headers()))

    await asyncio.gather(*(lane(n) for n in range(connections)))
    for client in lanes:
        client.close()
    return statuses


def server_process(batches: list[list[SignedDelivery]], root: Path, connections: int
                   ) -> list[tuple[float, float]]:
    """(CPU ms per delivery, deliveries/s) of each batch, one after the other on one server."""
    bot = OurBot(root / "server", SECRET, root / "forge", workers=0)
    port = bot.start(0)
    out = []
    try:
        asyncio.run(closed_loop(port, deliveries(300, "warm", 20_000_000), connections))
        for items in batches:
            with CpuMeter(bot.pids()) as cpu:
                started = time.perf_counter()
                statuses = asyncio.run(closed_loop(port, items, connections))
                wall = time.perf_counter() - started
            if set(statuses) != {202}:
                raise RuntimeError(f"the server answered {sorted(set(statuses))}, expected 202")
            out.append((cpu.receiver * 1000 / len(items), len(items) / wall))
    finally:
        bot.stop()
    return out


def worker_rounds(rounds: int, rate: float, count: int, root: Path, memory_root: Path | None = None
                  ) -> list[str]:
    """With `memory_root` (a tmpfs folder) the rounds alternate between the queue file on `root`'s
    disk and in memory, both with a worker, instead of with and without a worker."""
    lines = []
    for number in range(1, rounds + 1):
        for variant in ((1, 0) if number % 2 else (0, 1)):
            workers = 1 if memory_root is not None else variant
            where = memory_root if memory_root is not None and variant == 0 else root
            if memory_root is None:
                label = ("with" if workers else "no") + " worker"
            else:
                label = "queue in memory" if where is memory_root else "queue on disk"
            bot = OurBot(where / f"rounds-{number}-{variant}", SECRET, root / "forge", workers=workers)
            port = bot.start(0)
            try:
                warm = deliveries(300, f"w{number}{variant}", 40_000_000)
                asyncio.run(send_open_loop([port], OUR_PATH, warm, rate))
                items = deliveries(count, f"r{number}{variant}", 50_000_000)  # each round has its own queue
                load = os.getloadavg()[0]
                result = asyncio.run(send_open_loop([port], OUR_PATH, items, rate))
            finally:
                bot.stop()
            p50, p99 = pct(result.latencies, 0.5) * 1000, pct(result.latencies, 0.99) * 1000
            lines.append(f"  round {number}, {label}: p50 {p50:.1f} ms, "
                         f"p99 {p99:.1f} ms, answers {dict(result.statuses)}, load {load:.1f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="batches of --count sent to the server")
    parser.add_argument("--worker-rounds", type=int, default=0)
    parser.add_argument("--memory-rounds", type=int, default=0,
                        help="rounds alternating the queue file on disk and in /dev/shm (tmpfs)")
    parser.add_argument("--rate", type=float, default=150.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bot-ingress-") as tmp:
        root = Path(tmp)
        figures = in_process(deliveries(args.count, "inproc", 1_000_000), root)
        batches = [deliveries(args.count, f"server{n}", 30_000_000 + n * args.count)
                   for n in range(args.repeat)]
        server = server_process(batches, root, args.connections)
        rounds = worker_rounds(args.worker_rounds, args.rate, args.count, root)
        if args.memory_rounds:
            with tempfile.TemporaryDirectory(prefix="mlops-bot-ingress-", dir="/dev/shm") as memory:
                rounds += worker_rounds(args.memory_rounds, args.rate, args.count, root, Path(memory))
    print(f"{args.count} deliveries of {len(deliveries(1, 'size', 1)[0].body):,} bytes, load average "
          f"{os.getloadavg()[0]:.1f}; CPU ms per delivery:")
    for name in ("parse", "insert", "app"):
        print(f"  {name:<7} {figures[name]:.3f}")
    cpus = " / ".join(f"{cpu:.3f}" for cpu, _ in server)
    rates = " / ".join(f"{rate:.0f}" for _, rate in server)
    print(f"  server  {cpus} (batches of {args.count}, closed loop on {args.connections} connections: "
          f"{rates} deliveries/s)")
    if rounds:
        print(f"answer latency at {args.rate:.0f}/s, {args.count} deliveries per round:")
        print("\n".join(rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
