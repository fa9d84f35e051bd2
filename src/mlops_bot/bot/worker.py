"""Drains the delivery queue in background threads, so the webhook answer never waits for GitHub
API calls, git fetches or registry work."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from mlops_bot.bot.handlers import EventHandler, Outcome
from mlops_bot.bot.metrics import BotMetrics
from mlops_bot.bot.queue import DeliveryQueue, Job

log = logging.getLogger("mlops_bot.bot")


class Worker:
    """Claims jobs one at a time per thread. `wake()` is called after each enqueue; the poll
    interval only matters for jobs enqueued by another process."""

    def __init__(
        self,
        queue: DeliveryQueue,
        handler: EventHandler,
        metrics: BotMetrics | None = None,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 1.0,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.metrics = metrics
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------------------- one job
    def process(self, job: Job) -> Outcome | None:
        started = time.perf_counter()
        try:
            payload = json.loads(job.payload)
            outcome = self.handler.handle(
                job.event, payload, journal=lambda step, action: self.queue.step(job.id, step, action)
            )
        except Exception as error:  # the job records it; the worker keeps going
            status = self.queue.fail(job.id, f"{type(error).__name__}: {error}", self.clock())
            log.warning("job %s (%s, delivery %s) failed: %s; now %s",
                        job.id, job.event, job.delivery, type(error).__name__, status)
            if self.metrics:
                self.metrics.failures.labels(job.event).inc()
                self.metrics.jobs.labels(job.event, "error").inc()
            return None
        self.queue.complete(job.id, f"{outcome.status}: {outcome.detail}"[:500], self.clock())
        if self.metrics:
            self.metrics.jobs.labels(job.event, outcome.status).inc()
            self.metrics.job_seconds.observe(time.perf_counter() - started)
        log.info("job %s (%s, delivery %s): %s %s", job.id, job.event, job.delivery, outcome.status,
                 outcome.detail)
        return outcome

    def drain(self) -> int:
        """Process jobs until none is pending (in this thread); returns how many were taken."""
        count = 0
        while (job := self.queue.claim(self.clock())) is not None:
            self.process(job)
            count += 1
        return count

    # ---------------------------------------------------------------------------- threads
    def start(self, threads: int = 1) -> None:
        for index in range(threads):
            thread = threading.Thread(target=self._loop, name=f"mlops-bot-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # a broken database must not kill the thread silently
                log.exception("worker loop error")
            self._wake.wait(self.poll_seconds)
