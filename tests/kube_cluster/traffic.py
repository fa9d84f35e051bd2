"""A bounded loopback load generator for the cluster end-to-end tests: the traffic a Service (or a
router) would spread over the versions, by the split the test reads back from the API server.

Bounded: at most `limit` requests in all, about `rate` per second in all, from `workers` senders (so
a loaded machine's slow answers do not starve a 10 % canary of the requests its gates need within a
hold: one slow request holds up one sender, not the traffic), each request with a timeout, every
thread joined on exit. Loopback only: every server URL must be on 127.0.0.1."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from kube_cluster.prometheus_server import oip_request

Split = dict[str, int]  # version -> its share (ready pods, or percent)


class SplitLoad:
    def __init__(self, read_split: Callable[[], Split], servers: Mapping[str, str],
                 rows: Sequence[dict[str, Any]], *, rate: float = 60.0, limit: int = 20_000,
                 workers: int = 4, seed: int = 5) -> None:
        for version, url in servers.items():
            if urlsplit(url).hostname != "127.0.0.1":
                raise ValueError(f"load for {version} would leave the machine: {url}")
        self.read_split = read_split
        self.servers = servers
        self.rows = rows
        self.limit = limit
        self.interval = 1.0 / rate  # between two requests, over all senders
        self.sent = 0
        self.served: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.splits: list[Split] = []  # the split, whenever it changed
        self._split: Split = {}
        self._next = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, name="load-split", daemon=True)] + [
            threading.Thread(target=self._send, args=(random.Random(seed + i),), name=f"load-{i}",
                             daemon=True) for i in range(workers)]

    def __enter__(self) -> SplitLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fresh = {v: n for v, n in self.read_split().items() if n > 0}
            except Exception:  # the object may not exist yet; keep the last split
                fresh = self._split
            if fresh != self._split or not self.splits:
                self.splits.append(fresh)
                self._split = fresh
            self._stop.wait(0.3)

    def _ticket(self, pick: random.Random) -> tuple[str, dict[str, Any]] | None:
        """The next request (version, row), paced to `rate` over all senders; None when done."""
        with self._lock:
            if self.sent >= self.limit:
                return None
            split = self._split
            if not split:
                return "", {}
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
            versions = sorted(split)
            version = pick.choices(versions, weights=[split[v] for v in versions])[0]
            row = self.rows[self.sent % len(self.rows)]
            self.sent += 1
        if wait > 0:
            self._stop.wait(wait)
        return version, row

    def _send(self, pick: random.Random) -> None:
        with httpx.Client(trust_env=False, timeout=10) as http:
            while not self._stop.is_set():
                ticket = self._ticket(pick)
                if ticket is None:
                    return
                version, row = ticket
                if not version:
                    self._stop.wait(0.1)
                    continue
                try:
                    ok = http.post(self.servers[version], json=oip_request(row)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    (self.served if ok else self.failed)[version] += 1
