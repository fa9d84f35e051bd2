"""The processes of the bot benchmark (bot_load.py): our bot (SQLite or PostgreSQL queue, one or
more replicas), Probot 14 (installed from npm into benchmarks/probot_app by `npm ci`), a process
keeping one core busy, and the machine's load recorded around each round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PROBOT_DIR = Path(__file__).with_name("probot_app")
PROBOT_PATH = "/api/github/webhooks"  # Probot's default webhook path
OUR_PATH = "/webhook"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited during start-up ({proc.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}: the server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------------------- Probot
def ensure_probot() -> None:
    """`npm ci` from the committed package-lock.json when the app's node_modules are missing."""
    if (PROBOT_DIR / "node_modules" / "probot" / "package.json").is_file():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PROBOT_DIR, check=True, timeout=600)


def probot_version() -> str:
    import json

    return str(json.loads((PROBOT_DIR / "node_modules" / "probot" / "package.json").read_text())["version"])


def start_probot(port: int, secret: str, private_key: str) -> subprocess.Popen[bytes]:
    """`probot run ./app.js` as an app is deployed: production mode, warnings only in the log (our bot
    logs errors only here), an App id and a private key (never used: the app calls no API)."""
    env = {**os.environ, "APP_ID": "1", "PRIVATE_KEY": private_key, "WEBHOOK_SECRET": secret,
           "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warn", "NODE_ENV": "production"}
    proc = subprocess.Popen([str(PROBOT_DIR / "node_modules" / ".bin" / "probot"), "run", "./app.js"],
                            cwd=PROBOT_DIR, env=env)
    wait_up(f"http://127.0.0.1:{port}/ping", proc)
    return proc


def rsa_private_key() -> str:
    """A throwaway App key for Probot's start-up checks, made by node's crypto."""
    script = ("const {privateKey} = require('crypto').generateKeyPairSync('rsa', {modulusLength: 2048});"
              "process.stdout.write(privateKey.export({type: 'pkcs1', format: 'pem'}))")
    return subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout


# ------------------------------------------------------------------------------------ our bot
class OurBot:
    """`mlops-bot bot serve` processes (one worker child each) on one queue: the SQLite file of
    replica 0's state directory, or the PostgreSQL database `database_url`."""

    def __init__(self, root: Path, secret: str, forge_dir: Path, database_url: str = "", workers: int = 1
                 ) -> None:
        self.root = root
        self.workers = workers
        self.secret = secret
        self.forge_dir = forge_dir
        self.database_url = database_url
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.ports: dict[int, int] = {}

    def start(self, index: int = 0) -> int:
        port = self.ports.setdefault(index, free_port())
        env = {**os.environ, "MLOPS_BOT_WEBHOOK_SECRET": self.secret,
               "MLOPS_BOT_LOCAL_FORGE": str(self.forge_dir),
               "MLOPS_BOT_STATE_DIR": str(self.root / f"state-{index}"), "MLOPS_BOT_LOG_LEVEL": "ERROR"}
        if self.database_url:
            env["MLOPS_BOT_DATABASE_URL"] = self.database_url
        proc = subprocess.Popen([sys.executable, "-m", "mlops_bot", "bot", "serve", "--port", str(port),
                                 "--workers", str(self.workers)], env=env)
        wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        self.procs[index] = proc
        return port

    def kill(self, index: int = 0) -> int:
        """SIGKILL replica `index` (its worker child dies with it); the jobs pending or running then."""
        depth = self.depth()
        proc = self.procs.pop(index)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return depth

    def depth(self) -> int:
        """Jobs pending or running, read from the queue itself (a server past its connection cap
        answers /healthz 503 too)."""
        query = "SELECT COUNT(*) FROM {} WHERE status IN ('pending', 'running')"
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as db:
                row = db.execute(query.format("mlops_bot_jobs")).fetchone()
        else:  # the queue's own count: deliveries its worker has not imported yet are pending too
            queue = self._sqlite()
            try:
                return queue.depth()
            finally:
                queue.close()
        return int(row[0]) if row else 0

    def wait_drained(self, timeout: float = 300.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.depth() == 0:
                return True
            time.sleep(0.5)
        return False

    def jobs(self) -> dict[str, tuple[str, int]]:
        """delivery id -> (status, attempts) of every stored delivery."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as db:
                query = "SELECT delivery, status, attempts FROM mlops_bot_jobs"
                rows: list[Any] = db.execute(query).fetchall()
        else:
            queue = self._sqlite()
            try:
                rows = [(job["delivery"], job["status"], job["attempts"]) for job in queue.jobs()]
            finally:
                queue.close()
        return {delivery: (status, attempts) for delivery, status, attempts in rows}

    def _sqlite(self) -> Any:
        from mlops_bot.bot.queue_sqlite import SqliteQueue

        return SqliteQueue(self.root / "state-0" / "queue.sqlite3")

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs.values()]

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)
        self.procs.clear()


# --------------------------------------------------------------------------------- the machine
def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return out


class CpuMeter:
    """CPU time used by `pids` (the receiving processes) and by their children (our worker
    processes) between enter and exit."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def _read(self) -> tuple[float, float]:
        kids = [kid for pid in self.pids for kid in children(pid)]
        return sum(cpu_seconds(p) for p in self.pids), sum(cpu_seconds(k) for k in kids)

    def __enter__(self) -> CpuMeter:
        self.start = self._read()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self._read()
        self.receiver, self.workers = end[0] - self.start[0], end[1] - self.start[1]


def busy_core() -> subprocess.Popen[bytes]:
    """Another process keeping one core busy (a pure-Python spin loop)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _cpu() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass(frozen=True)
class MachineLoad:
    """The 1-minute load average at the start and end of a round and the share of all cores busy
    during it (every process on the machine, ours and the other engineers')."""

    load_start: float
    load_end: float
    busy: float

    def __str__(self) -> str:
        return f"{self.load_start:.1f}-{self.load_end:.1f}, {self.busy:.0%} busy"


class LoadMeter:
    def __enter__(self) -> LoadMeter:
        self.load_start = os.getloadavg()[0]
        self.cpu_start = _cpu()
        return self

    def __exit__(self, *_exc: object) -> None:
        busy, total = _cpu()
        spent = total - self.cpu_start[1]
        self.result = MachineLoad(self.load_start, os.getloadavg()[0],
                                  (busy - self.cpu_start[0]) / spent if spent else 0.0)
