"""A small load generator for the demo and the benchmarks: steady `/predict` requests over loopback
from a few threads, counting successes, failures and which version answered."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import httpx


class Traffic:
    """Run with `with Traffic(url, records) as load: ...`; `load.failures` must stay 0."""

    def __init__(self, endpoint: str, records: list[dict[str, Any]], *, threads: int = 2,
                 rate: float | None = None, seed: int = 0, limit: int | None = None) -> None:
        self.url = endpoint.rstrip("/") + "/predict"
        self.records = records
        self.threads = threads
        self.delay = 0.0 if not rate else threads / rate
        self.limit = limit
        self.sent = 0
        self.failures = 0
        self.errors: list[str] = []
        self.versions: Counter[str] = Counter()
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._random = random.Random(seed)

    def _work(self) -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while not self._stop.is_set():
                with self._lock:
                    if self.limit is not None and self.sent >= self.limit:
                        return
                    self.sent += 1
                    record = self._random.choice(self.records)
                started = time.perf_counter()
                try:
                    response = client.post(self.url, json={"records": [record]})
                    ok = response.status_code == 200
                    detail = "" if ok else f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail, response = False, f"{type(exc).__name__}: {exc}", None
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.latencies.append(elapsed)
                    if ok and response is not None:
                        self.versions[response.headers.get("X-Model-Version", "?")] += 1
                    else:
                        self.failures += 1
                        self.errors.append(detail)
                if self.delay:
                    self._stop.wait(self.delay)

    def start(self) -> Traffic:
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
