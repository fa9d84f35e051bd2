"""How the bot benchmark (bot_load.py) sends: an open-loop sender at a fixed rate, and a wrk burst.

Open loop: delivery i leaves at t0 + i/rate whatever the answers, and its latency is counted from
that scheduled time (so a receiver that falls behind cannot hide it by slowing the sender down: no
coordinated omission). A lean keep-alive HTTP/1.1 client over asyncio streams opens another
connection when none is idle; httpx would cost a few ms of CPU per request, which on 2 shared cores
would measure the load generator instead of the receiver.

The burst is wrk (Debian's package) with bot_load_wrk.lua: closed loop, as fast as the receiver
answers, each request a distinct signed delivery.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_load_deliveries import SignedDelivery

WRK_SCRIPT = Path(__file__).with_name("bot_load_wrk.lua")


@dataclass
class SendResult:
    latencies: list[float] = field(default_factory=list)  # seconds, sorted, answered deliveries only
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)  # delivery ids answered 2xx
    failed: list[int] = field(default_factory=list)  # indexes with no answer (connection refused/cut)
    elapsed: float = 0.0
    redelivered: int = 0

    def merge(self, other: SendResult) -> None:
        self.latencies = sorted(self.latencies + other.latencies)
        self.statuses.update(other.statuses)
        self.acknowledged |= other.acknowledged
        self.failed += other.failed
        self.elapsed = max(self.elapsed, other.elapsed)
        self.redelivered += other.redelivered


def pct(values: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank), NaN when empty."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


class Connections:
    """Keep-alive HTTP/1.1 connections to one port, opened on demand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn = self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = conn
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n"
                     .encode() + body)
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        length, chunked, close = 0, False, False
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode().partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")
        else:
            await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self.idle.append(conn)
        return int(status_line.split()[1])

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def send_open_loop(ports: list[int], path: str, items: list[SignedDelivery], rate: float,
                         kill_at: int | None = None, kill: Callable[[], list[int]] | None = None
                         ) -> SendResult:
    """Deliveries alternate between `ports` (a round-robin balancer). At `kill_at`, `kill()` runs
    (with requests in flight: those fail) and returns the ports to go on with; sending resumes on
    schedule. Deliveries that got no answer are redelivered at the end with the same
    X-GitHub-Delivery (an operator's "Redeliver"; GitHub never redelivers on its own)."""
    result = SendResult()
    clients = [Connections(port) for port in ports]

    async def one(index: int, scheduled: float) -> None:
        item = items[index]
        try:
            status = await clients[index % len(clients)].post(path, item.body, item.headers())
        except (OSError, asyncio.IncompleteReadError, ValueError):
            result.failed.append(index)
            return
        result.latencies.append(time.perf_counter() - scheduled)
        result.statuses[status] += 1
        if 200 <= status < 300:
            result.acknowledged.add(item.delivery)

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter()
    for index in range(len(items)):
        if index == kill_at and kill is not None:
            alive = await asyncio.to_thread(kill)
            await asyncio.gather(*tasks)
            tasks.clear()
            for client in clients:
                client.close()
            clients = [Connections(port) for port in alive]
            t0 = time.perf_counter() - index / rate
        scheduled = t0 + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - t0
    redeliver, result.failed = result.failed, []
    result.redelivered = len(redeliver)
    for index in redeliver:
        await one(index, time.perf_counter())
    for client in clients:
        client.close()
    result.latencies.sort()
    return result


def _send_in_child(args: tuple[int, str, list[SignedDelivery], float]) -> SendResult:
    port, path, items, rate = args
    return asyncio.run(send_open_loop([port], path, items, rate))


def send_split(ports: list[int], path: str, items: list[SignedDelivery], rate: float) -> SendResult:
    """The sender split across processes, one per port, each at rate/len(ports) with its share
    of the deliveries (for rates one Python sender process cannot keep on schedule)."""
    shares = [(port, path, items[i::len(ports)], rate / len(ports)) for i, port in enumerate(ports)]
    with multiprocessing.get_context("fork").Pool(len(ports)) as pool:
        parts = pool.map(_send_in_child, shares)
    result = SendResult()
    for part in parts:
        result.merge(part)
    return result


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50: float
    p99: float
    statuses: dict[int, int]
    errors: dict[str, int]
    exhausted: bool

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    raise FileNotFoundError("wrk is not installed: apt-get install wrk (Debian's package)")


def run_wrk(port: int, path: str, requests_file: Path, *, seconds: int, connections: int,
            threads: int = 1) -> WrkResult:
    command = [wrk_path(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}{path}",
               "--", str(requests_file), str(threads), path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True)
    match = re.search(r"^WRK-RESULT (.*)$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    data: dict[str, Any] = json.loads(match.group(1))
    return WrkResult(data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1e6, data["p99_us"] / 1e6,
                     {int(k): v for k, v in data["statuses"].items()}, data["errors"],
                     bool(data["exhausted_threads"]))
