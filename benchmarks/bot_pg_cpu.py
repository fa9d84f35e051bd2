"""Where the CPU goes when the bot answers on a PostgreSQL queue (run on demand, not a test).

Every figure is CPU time per delivery, read from /proc, so it holds on a loaded machine where
latencies do not. PostgreSQL is Debian's server started as the tests start it
(tests/bot/postgres_server.py); its CPU is the postmaster's, its live backends' and its exited
processes' (the postmaster's cutime/cstime).

1. Answering only: `--replicas` `mlops-bot bot serve --workers 0` processes (they verify,
   de-duplicate, insert and answer; no worker), sent `--count` deliveries open loop at `--rate`/s
   (bot_load_send.py, one sender process per replica). Per delivery: the answering processes'
   CPU, PostgreSQL's CPU (the inserts), the senders' CPU.
2. A wrk burst (`--burst-seconds`) against replica 0, still answering only: the saturation rate
   S of one process, and the same CPU split with wrk's own CPU.
3. The drain: one `mlops-bot bot work` process claims and runs every job stored above. Per job:
   the worker's CPU and PostgreSQL's CPU (claim, journal, finish).

The arithmetic of docs/performance.md's "Replicas on 2 cores" uses these: two replicas at 2 x S
fit on the machine only if 2 S x (answer + PostgreSQL insert + sender + worker + PostgreSQL job)
stays under the cores there are.

    .venv/bin/python benchmarks/bot_pg_cpu.py [--replicas 1] [--rate 400] [--count 4000]
        [--burst-seconds 5] [--no-drain] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot_load_deliveries import build_deliveries, example_payload, write_wrk_requests
from bot_load_send import pct, run_wrk, send_open_loop, send_split
from bot_load_servers import (
    OUR_PATH,
    PROBOT_DIR,
    CpuMeter,
    LoadMeter,
    OurBot,
    children,
    cpu_seconds,
    free_port,
)

SECRET = "bench-secret"  # noqa: S105 (a throwaway webhook secret for loopback)


def _postmaster_cpu(pid: int) -> float:
    """The postmaster's CPU, its exited children's (reaped: cutime + cstime) and its live ones'."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return cpu_seconds(pid) + reaped + sum(cpu_seconds(kid) for kid in children(pid))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU of the answering processes (and their workers), of PostgreSQL and of this process's
    reaped children (senders, wrk) between enter and exit."""

    def __init__(self, bot: OurBot, postmaster: int) -> None:
        self.bot, self.postmaster = bot, postmaster

    def __enter__(self) -> Meter:
        self.cpu = CpuMeter(self.bot.pids()).__enter__()
        self.load = LoadMeter().__enter__()
        self.pg, self.senders, self.wall = _postmaster_cpu(self.postmaster), _children_cpu(), time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cpu.__exit__()
        self.load.__exit__()
        self.wall = time.monotonic() - self.wall
        self.pg = _postmaster_cpu(self.postmaster) - self.pg
        self.senders = _children_cpu() - self.senders

    def per(self, count: int) -> dict[str, float]:
        """ms of CPU per delivery."""
        return {"answer_ms": self.cpu.receiver * 1000 / count, "worker_ms": self.cpu.workers * 1000 / count,
                "postgres_ms": self.pg * 1000 / count, "client_ms": self.senders * 1000 / count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--burst-seconds", type=int, default=5)
    parser.add_argument("--burst-connections", type=int, default=32)
    parser.add_argument("--no-drain", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--py-spy", type=Path, default=None,
                        help="a py-spy (on PATH) profile of replica 0 during the open loop: folded stacks")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bot"))
    from postgres_server import PostgresServer  # the tests' real server, same setup

    example = example_payload(PROBOT_DIR)
    rows: dict[str, Any] = {"uptime": os.getloadavg()}
    server = PostgresServer(free_port()).start()
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        url = server.database()
        with tempfile.TemporaryDirectory(prefix="mlops-bot-pgcpu-") as tmp:
            root = Path(tmp)
            forge = root / "forge"
            from mlops_bot.forge.local import LocalForge

            LocalForge(forge, repo=str(example["repository"]["full_name"]), actor="mlops-bot[bot]")
            bot = OurBot(root / "bots", SECRET, forge, url, workers=0)
            ports = [bot.start(i) for i in range(args.replicas)]
            first = 10_000_000

            def deliveries(prefix: str, count: int) -> list[Any]:
                nonlocal first
                first += count + 1
                return build_deliveries(example, SECRET, count, prefix=prefix, first_comment_id=first,
                                        command_every=0, pull_request=1, command_comment=lambda: 0)

            for port in ports:
                asyncio.run(send_open_loop([port], OUR_PATH, deliveries(f"warm{port}", 300), 200))
            items = deliveries("open", args.count)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(["py-spy", "record", "--pid", str(bot.pids()[0]), "--format", "raw",
                                        "--rate", "250", "--nonblocking", "--gil", "-o", str(args.py_spy)],
                                       stdout=subprocess.DEVNULL)
            with Meter(bot, postmaster) as meter:
                result = send_split(ports, OUR_PATH, items, args.rate)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(60)
            answered = len(result.latencies)
            rows["open_loop"] = {"rate": args.rate, "answered": answered, "statuses": dict(result.statuses),
                                 "p50_ms": pct(result.latencies, 0.5) * 1000,
                                 "p99_ms": pct(result.latencies, 0.99) * 1000, "load": str(meter.load.result),
                                 **meter.per(answered)}
            print("open loop", json.dumps(rows["open_loop"]), flush=True)
            if args.burst_seconds:
                pool = deliveries("burst", 40000)
                requests = write_wrk_requests(pool, root / "burst.txt")
                with Meter(bot, postmaster) as meter:
                    burst = run_wrk(ports[0], OUR_PATH, requests, seconds=args.burst_seconds,
                                    connections=args.burst_connections)
                rows["burst"] = {"rate": burst.rate, "answered": burst.requests, "statuses": burst.statuses,
                                 "p50_ms": burst.p50 * 1000, "p99_ms": burst.p99 * 1000,
                                 "load": str(meter.load.result), **meter.per(burst.requests)}
                print("wrk burst", json.dumps(rows["burst"]), flush=True)
            bot.stop()
            if not args.no_drain:
                stored = bot_depth = OurBot(root / "bots", SECRET, forge, url).depth()
                env = {**os.environ, "MLOPS_BOT_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_LOCAL_FORGE": str(forge),
                       "MLOPS_BOT_STATE_DIR": str(root / "drain"), "MLOPS_BOT_DATABASE_URL": url,
                       "MLOPS_BOT_LOG_LEVEL": "ERROR"}
                pg, started = _postmaster_cpu(postmaster), time.monotonic()
                worker = subprocess.Popen([sys.executable, "-m", "mlops_bot", "bot", "work"], env=env)
                try:
                    while bot_depth and time.monotonic() - started < 600:
                        time.sleep(0.5)
                        bot_depth = OurBot(root / "bots", SECRET, forge, url).depth()
                    spent = cpu_seconds(worker.pid)
                finally:
                    worker.terminate()
                    worker.wait(30)
                jobs = max(1, stored - bot_depth)
                rows["drain"] = {"jobs": stored - bot_depth, "seconds": time.monotonic() - started,
                                 "worker_ms": spent * 1000 / jobs,
                                 "postgres_ms": (_postmaster_cpu(postmaster) - pg) * 1000 / jobs}
                print("drain", json.dumps(rows["drain"]), flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
