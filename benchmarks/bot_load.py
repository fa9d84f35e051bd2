"""Load benchmark of the webhook bot against Probot 14 (run on demand, not a test).

Both receivers get the same signed deliveries: GitHub's `issue_comment` example payload from
`@octokit/webhooks-examples`, unique per delivery (bot_load_deliveries.py), 1 in 50 a `/drift`
command on a pull request of the local forge that our bot carries out. Probot 14 runs a no-op app
(benchmarks/probot_app, installed by `npm ci` when missing) that stores nothing; our bot verifies,
de-duplicates and durably inserts each delivery before its 202, and its worker process carries the
commands out. Latency is time to the answer, counted from each delivery's scheduled send time.

1. Interleaved rounds (`--rounds`, order alternating): `--count` deliveries at `--rate`/s, open loop,
   to ours (one SQLite queue file for all rounds) and to Probot.
2. The same rounds with one core kept busy by another process (`--busy-rounds`).
3. A burst: wrk (Debian's package) as fast as each receiver answers for `--burst-seconds`, every
   request a distinct signed delivery (bot_load_wrk.lua), interleaved.
4. kill -9 of our bot halfway through a round at `--kill-rate`/s (faster than its worker drains, so
   jobs are pending and requests in flight), restarted on the same port; deliveries that got no
   answer are redelivered (same X-GitHub-Delivery). Counted: deliveries acknowledged (2xx) but not
   stored (lost), deliveries not processed, commands carried out twice.
5. PostgreSQL (Debian's server on 127.0.0.1, started as the tests start it): one process's
   saturation rate S (a wrk burst), then open loop at 2 x S for `--replica-seconds` against one
   process and against two replicas on one database (the sender split across their ports).

Goals: our p99 <= Probot's in every round; nothing lost or doubled; two replicas p99 < 1 s at 2 x S.
The machine's load (1-minute load average, share of all cores busy) is recorded with every round.

The whole table of docs/performance.md (every part above, with the defaults) is one command; it
needs node/npm (Probot is installed by `npm ci` when missing), wrk and Debian's postgresql package
(`make postgres` installs it), and takes ~20 minutes on a loaded 2-core machine (most of it the
drains between rounds), less idle:

    .venv/bin/python benchmarks/bot_load.py --json bot_load.json
        [--rounds 3] [--busy-rounds 3] [--count 2000] [--rate 150] [--burst-seconds 10]
        [--burst-rounds 2] [--kill-rate 300] [--replica-seconds 10] [--no-kill] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot_load_deliveries import SignedDelivery, build_deliveries, example_payload, write_wrk_requests
from bot_load_send import SendResult, WrkResult, pct, run_wrk, send_open_loop, send_split, wrk_path
from bot_load_servers import (
    OUR_PATH,
    PROBOT_DIR,
    PROBOT_PATH,
    CpuMeter,
    LoadMeter,
    OurBot,
    busy_core,
    ensure_probot,
    free_port,
    probot_version,
    rsa_private_key,
    start_probot,
    stop,
)
from mlops_bot.forge.local import LocalForge

SECRET = "bench-secret"  # noqa: S105 (a throwaway webhook secret for loopback)
BOT_USER = "mlops-bot[bot]"


@dataclass
class Row:
    """One receiver in one round."""

    round: str
    receiver: str
    deliveries: int
    rate: float  # offered (open loop) or achieved (wrk), deliveries/s
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    load: str
    checks: dict[str, int] = field(default_factory=dict)  # ours: lost, not_processed, twice, ...
    cpu_ms: float = float("nan")  # CPU of the receiving process(es) per answered delivery
    worker_cpu_ms: float = float("nan")  # ours: CPU of the worker processes per delivery (drain included)


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.example = example_payload(PROBOT_DIR)
        repo = str(self.example["repository"]["full_name"])
        self.forge = LocalForge(root / "forge", repo=repo, actor=BOT_USER)
        self.pr = self.forge.create_pull_request("bench", "feature", "main").number
        self.forge.set_permission(str(self.example["comment"]["user"]["login"]), "write")
        self.commenter = str(self.example["comment"]["user"]["login"])
        self.next_comment = int(self.example["comment"]["id"])
        self.rows: list[Row] = []

    def deliveries(self, prefix: str, count: int, commands: bool = True) -> list[SignedDelivery]:
        first, self.next_comment = self.next_comment + 1, self.next_comment + count + 1
        return build_deliveries(
            self.example, SECRET, count, prefix=prefix, first_comment_id=first,
            command_every=self.args.command_every if commands else 0, pull_request=self.pr,
            command_comment=lambda: self.forge.create_comment(self.pr, "/drift", user=self.commenter).id)

    # -------------------------------------------------------------------------------- checks
    def check(self, bot: OurBot, items: list[SignedDelivery], result: SendResult | None,
              acknowledged: set[str] | None = None) -> dict[str, int]:
        """Wait for the queue to drain, then count: acknowledged but not stored (lost), stored but
        not done, commands not carried out, commands carried out twice."""
        drained = bot.wait_drained()
        jobs = bot.jobs()
        ids = {item.delivery for item in items}
        acked = acknowledged if acknowledged is not None else (result.acknowledged if result else set())
        lost = len(acked - jobs.keys())
        stored = [jobs[d] for d in ids if d in jobs]
        not_done = sum(1 for status, _ in stored if status != "done")
        retried = sum(1 for _, attempts in stored if attempts > 1)
        commands = [item.delivery for item in items if item.command and item.delivery in jobs]
        keys = Counter(d["client_payload"].get("delivery") for d in self.forge.dispatches()
                       if d["event_type"] == "mlops-drift")
        replies = Counter(c.body.rsplit("delivery=", 1)[-1].split(" ")[0]
                          for c in self.forge.list_comments(self.pr) if c.user == BOT_USER)
        return {"acknowledged": len(acked), "stored": len(stored), "lost": lost, "not_processed": not_done,
                "retried_after_kill": retried, "commands": len(commands),
                "commands_not_done": sum(1 for d in commands if keys[d] == 0 or replies[d] == 0),
                "commands_twice": sum(1 for d in commands if keys[d] > 1 or replies[d] > 1),
                "drained": int(drained)}

    def record(self, name: str, receiver: str, rate: float, result: SendResult, meter: LoadMeter,
               checks: dict[str, int] | None = None, cpu: CpuMeter | None = None) -> Row:
        row = Row(name, receiver, len(result.latencies), rate, pct(result.latencies, 0.5) * 1000,
                  pct(result.latencies, 0.99) * 1000, {str(k): v for k, v in sorted(result.statuses.items())},
                  str(meter.result), checks or {})
        return self._add(row, cpu)

    def record_wrk(self, name: str, receiver: str, result: WrkResult, meter: LoadMeter,
                   checks: dict[str, int] | None = None, cpu: CpuMeter | None = None) -> Row:
        row = Row(name, receiver, result.requests, result.rate, result.p50 * 1000, result.p99 * 1000,
                  {str(k): v for k, v in sorted(result.statuses.items())}, str(meter.result),
                  {**(checks or {}), **{f"wrk_{k}": v for k, v in result.errors.items() if v},
                   **({"wrk_pool_exhausted": 1} if result.exhausted else {})})
        return self._add(row, cpu)

    def _add(self, row: Row, cpu: CpuMeter | None) -> Row:
        if cpu is not None and row.deliveries:
            row.cpu_ms = cpu.receiver * 1000 / row.deliveries
            row.worker_cpu_ms = cpu.workers * 1000 / row.deliveries
        self.rows.append(row)
        print(f"  {row.round:<22} {row.receiver:<28} {row.rate:6.0f}/s  p50 {row.p50_ms:8.1f} ms  "
              f"p99 {row.p99_ms:8.1f} ms  cpu/delivery {row.cpu_ms:.2f} + {row.worker_cpu_ms:.2f} ms  "
              f"{row.statuses}  load {row.load}  {row.checks}", flush=True)
        return row

    def warm_up(self, ours: OurBot, our_port: int, probot_port: int) -> None:
        """A few hundred deliveries to each receiver first (not measured): imports done, caches and
        node's JIT warm, our worker process started and idle."""
        items = self.deliveries("warmup", 300)
        for port, path in ((our_port, OUR_PATH), (probot_port, PROBOT_PATH)):
            asyncio.run(send_open_loop([port], path, items, self.args.rate))
        ours.wait_drained()

    # -------------------------------------------------------------------------------- rounds
    def paired_rounds(self, label: str, rounds: int, ours: OurBot, our_port: int,
                      probot: subprocess.Popen[bytes], probot_port: int, busy: bool = False) -> None:
        spinner = busy_core() if busy else None
        try:
            for number in range(1, rounds + 1):
                items = self.deliveries(f"{label.replace(' ', '-')}{number}", self.args.count)
                order = ["ours", "probot"] if number % 2 else ["probot", "ours"]
                for who in order:
                    port, path = (our_port, OUR_PATH) if who == "ours" else (probot_port, PROBOT_PATH)
                    with CpuMeter(ours.pids() if who == "ours" else [probot.pid]) as cpu:
                        with LoadMeter() as meter:
                            result = asyncio.run(send_open_loop([port], path, items, self.args.rate))
                        checks = self.check(ours, items, result) if who == "ours" else None
                    receiver = "mlops-bot (SQLite)" if who == "ours" else f"Probot {probot_version()}"
                    self.record(f"{label} {number}", receiver, self.args.rate, result, meter, checks, cpu)
        finally:
            if spinner is not None:
                stop(spinner)

    def bursts(self, ours: OurBot, our_port: int, probot: subprocess.Popen[bytes], probot_port: int) -> None:
        for number in range(1, self.args.burst_rounds + 1):
            pool = self.deliveries(f"burst{number}", self.args.burst_pool, commands=False)
            requests = write_wrk_requests(pool, self.root / f"burst{number}.txt")
            order = ["ours", "probot"] if number % 2 else ["probot", "ours"]
            for who in order:
                port, path = (our_port, OUR_PATH) if who == "ours" else (probot_port, PROBOT_PATH)
                with CpuMeter(ours.pids() if who == "ours" else [probot.pid]) as cpu:
                    with LoadMeter() as meter:
                        result = run_wrk(port, path, requests, seconds=self.args.burst_seconds,
                                         connections=self.args.burst_connections)
                    checks = None
                    if who == "ours":
                        # wrk does not say which deliveries were answered: every 202 must be a stored row.
                        checks = self.check(ours, pool, None, acknowledged=set())
                        checks["lost"] = max(0, result.statuses.get(202, 0) - checks["stored"])
                receiver = "mlops-bot (SQLite)" if who == "ours" else f"Probot {probot_version()}"
                self.record_wrk(f"burst {number}", receiver, result, meter, checks, cpu)
            requests.unlink()

    def kill_round(self, ours: OurBot, our_port: int) -> None:
        """At `--kill-rate` (faster than the worker drains, so jobs are pending and requests in
        flight when the SIGKILL comes)."""
        items = self.deliveries("kill", self.args.count)
        pending: list[int] = []

        def kill_and_restart() -> list[int]:
            pending.append(ours.kill(0))
            return [ours.start(0)]

        with LoadMeter() as meter:
            result = asyncio.run(send_open_loop([our_port], OUR_PATH, items, self.args.kill_rate,
                                                kill_at=self.args.count // 2, kill=kill_and_restart))
        checks = self.check(ours, items, result)
        checks.update(pending_at_kill=pending[0], redelivered=result.redelivered,
                      unanswered_after_redelivery=len(result.failed))
        self.record("kill -9 + restart", "mlops-bot (SQLite)", self.args.kill_rate, result, meter, checks)

    def postgres_rounds(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bot"))
        from postgres_server import PostgresServer  # the tests' real server, same setup

        server = PostgresServer(free_port()).start()
        try:
            single = OurBot(self.root / "pg-single", SECRET, self.root / "forge", server.database())
            port = single.start(0)
            pool = self.deliveries("pgburst", self.args.burst_pool, commands=False)
            requests = write_wrk_requests(pool, self.root / "pgburst.txt")
            asyncio.run(send_open_loop([port], OUR_PATH, self.deliveries("pgwarmup", 300), self.args.rate))
            with CpuMeter(single.pids()) as cpu:
                with LoadMeter() as meter:
                    burst = run_wrk(port, OUR_PATH, requests, seconds=self.args.burst_seconds,
                                    connections=self.args.burst_connections)
                checks = self.check(single, pool, None, acknowledged=set())
                checks["lost"] = max(0, burst.statuses.get(202, 0) - checks["stored"])
            self.record_wrk("PostgreSQL saturation", "mlops-bot (PostgreSQL), 1", burst, meter, checks, cpu)
            requests.unlink()
            rate = 2 * burst.rate
            count = int(rate * self.args.replica_seconds)
            items = self.deliveries("pg1x", count)
            with CpuMeter(single.pids()) as cpu:
                with LoadMeter() as meter:
                    result = send_split([port, port], OUR_PATH, items, rate)
                checks = self.check(single, items, result)
            self.record("PostgreSQL at 2 x S", "mlops-bot (PostgreSQL), 1", rate, result, meter, checks, cpu)
            single.stop()

            pair = OurBot(self.root / "pg-pair", SECRET, self.root / "forge", server.database())
            ports = [pair.start(0), pair.start(1)]
            for warm in ports:
                warm_items = self.deliveries(f"pgwarm{warm}", 300)
                asyncio.run(send_open_loop([warm], OUR_PATH, warm_items, self.args.rate))
            items = self.deliveries("pg2x", count)
            with CpuMeter(pair.pids()) as cpu:
                with LoadMeter() as meter:
                    result = send_split(ports, OUR_PATH, items, rate)
                checks = self.check(pair, items, result)
            self.record("PostgreSQL at 2 x S", "mlops-bot (PostgreSQL), 2", rate, result, meter, checks, cpu)
            pair.stop()
        finally:
            server.stop()


def byte_compile() -> None:
    """A pip install byte-compiles what it installs; this environment may set PYTHONDONTWRITEBYTECODE
    and uv does not compile, so every bot start-up (the restart after the kill too) would compile
    each module it imports again. Compile mlops-bot and the packages the bot imports, once."""
    import importlib

    for name in ("mlops_bot.bot.app", "mlops_bot.bot.queue_postgres", "mlops_bot.cli"):
        importlib.import_module(name)
    roots = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None) or ""
        if "site-packages" in file or "/mlops_bot/" in file:
            path = Path(file)
            while path.parent.name not in ("site-packages", "src"):
                path = path.parent
            roots.add(str(path))
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sorted(roots)], check=False,
                   stdout=subprocess.DEVNULL)


def table(rows: list[Row]) -> str:
    lines = ["| round | receiver | deliveries | rate/s | p50 ms | p99 ms | answers | machine load | "
             "lost / not processed / twice |", "|---|---|---:|---:|---:|---:|---|---|---|"]
    for row in rows:
        checks = (f"{row.checks.get('lost', 0)} / {row.checks.get('not_processed', 0)} / "
                  f"{row.checks.get('commands_twice', 0)}" if row.checks else "(stores nothing)")
        answers = ", ".join(f"{k}: {v}" for k, v in row.statuses.items())
        lines.append(f"| {row.round} | {row.receiver} | {row.deliveries:,} | {row.rate:.0f} | "
                     f"{row.p50_ms:.1f} | {row.p99_ms:.1f} | {answers} | {row.load} | {checks} |")
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    by_round: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_round.setdefault(row.round, {})["ours" if row.receiver.startswith("mlops-bot") else "probot"] = row
    for name, pair in by_round.items():
        if "ours" in pair and "probot" in pair:
            ours, probot = pair["ours"].p99_ms, pair["probot"].p99_ms
            out.append(f"{name}: our p99 {ours:.1f} ms vs Probot {probot:.1f} ms ({ours / probot:.2f}x) -> "
                       f"{'met' if ours <= probot else 'NOT met'}")
    for row in rows:
        if row.checks:
            bad = row.checks.get("lost", 0) + row.checks.get("not_processed", 0) + \
                row.checks.get("commands_twice", 0) + row.checks.get("commands_not_done", 0)
            verdict = "nothing lost or doubled" if not bad else "LOST OR DOUBLED"
            out.append(f"{row.round} / {row.receiver}: {verdict} {row.checks}")
        if row.receiver.endswith(", 2"):
            out.append(f"two replicas at {row.rate:.0f}/s: p99 {row.p99_ms:.0f} ms -> "
                       f"{'met' if row.p99_ms < 1000 else 'NOT met'} (goal < 1 s)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy-rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--command-every", type=int, default=50,
                        help="every N-th delivery a /drift command (0: none); the local forge the "
                             "commands write to is one JSON file rewritten per change, so its cost grows "
                             "with every command carried out")
    parser.add_argument("--burst-rounds", type=int, default=2)
    parser.add_argument("--burst-seconds", type=int, default=10)
    parser.add_argument("--burst-connections", type=int, default=32)
    parser.add_argument("--burst-pool", type=int, default=40000,
                        help="distinct deliveries per burst (a wrk thread stops when its share is used up)")
    parser.add_argument("--replica-seconds", type=float, default=10.0)
    parser.add_argument("--kill-rate", type=float, default=300.0,
                        help="the kill round's rate: above what the worker drains, so jobs are pending")
    parser.add_argument("--no-kill", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    args = parser.parse_args()

    wrk_path()  # fails early with the install command
    ensure_probot()
    byte_compile()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="mlops-bot-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        probot_port = free_port()
        probot = start_probot(probot_port, SECRET, rsa_private_key())
        ours = OurBot(Path(tmp) / "sqlite", SECRET, Path(tmp) / "forge")
        try:
            our_port = ours.start(0)
            print(f"{args.count} deliveries at {args.rate:.0f}/s per round, 1 in {args.command_every} a "
                  f"/drift command; Probot {probot_version()} on :{probot_port}, mlops-bot on :{our_port}",
                  flush=True)
            bench.warm_up(ours, our_port, probot_port)
            bench.paired_rounds("round", args.rounds, ours, our_port, probot, probot_port)
            bench.paired_rounds("busy core", args.busy_rounds, ours, our_port, probot, probot_port, busy=True)
            bench.bursts(ours, our_port, probot, probot_port)
            if not args.no_kill:
                bench.kill_round(ours, our_port)
        finally:
            ours.stop()
            stop(probot)
        if not args.no_postgres:
            bench.postgres_rounds()
    print()
    print(table(bench.rows))
    print()
    for line in verdicts(bench.rows):
        print(line)
    print(f"\n{time.time() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in bench.rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
