"""Drains the delivery queue in background threads, so the webhook answer never waits for GitHub
API calls, git fetches or registry work."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from mlops_bot.bot.effects import Journal
from mlops_bot.bot.handlers import EventHandler, Outcome
from mlops_bot.bot.queue import Job, JobQueue
from mlops_bot.errors import MlopsError, RateLimited
from mlops_bot.redaction import redact

log = logging.getLogger("mlops_bot.bot")
T = TypeVar("T")


class Worker:
    """Claims jobs one at a time per thread. `wake()` is called after each enqueue; the poll
    interval only matters for jobs enqueued by another process."""

    def __init__(
        self,
        queue: JobQueue,
        handler: EventHandler,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 1.0,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.owner = worker_id(os.getpid())  # recorded with each claimed job
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------------------- one job
    def process(self, job: Job) -> Outcome | None:
        return self._process(job, claim_next=False)[0]

    def _process(self, job: Job, claim_next: bool) -> tuple[Outcome | None, Job | None]:
        """Run one job and record how it ended; with `claim_next`, also the next job this worker
        takes (claimed in the transaction that records a success)."""
        started = time.perf_counter()
        try:
            payload = json.loads(job.payload)
            outcome = self.handler.handle(job.event, payload, self._journal(job), job.delivery)
        except RateLimited as limited:  # not the job's fault: again when the limit lifts
            self.queue.defer(job.id, limited.until, redact(f"deferred: {limited}"), self.clock())
            log.info("job %s (%s, delivery %s) deferred: %s", job.id, job.event, job.delivery, limited)
            return None, self._claim() if claim_next else None
        except Exception as error:  # the job records it; the worker keeps going
            status = self.queue.fail(job.id, redact(f"{type(error).__name__}: {error}"), self.clock())
            log.warning("job %s (%s, delivery %s) failed: %s; now %s",
                        job.id, job.event, job.delivery, type(error).__name__, status)
            return None, self._claim() if claim_next else None
        seconds = time.perf_counter() - started
        finished = (job.id, outcome.status, redact(outcome.detail), seconds, self.clock())
        following = None
        if claim_next:
            following = self.queue.complete_and_claim(*finished, self.owner)
        else:
            self.queue.complete(*finished)
        log.info("job %s (%s, delivery %s): %s %s", job.id, job.event, job.delivery, outcome.status,
                 outcome.detail)
        return outcome, following

    def _journal(self, job: Job) -> Journal:
        def journal(step: str, action: Callable[[], T], verify: Callable[[], T | None] | None = None) -> T:
            return self.queue.step(job.id, step, action, verify)

        return journal

    def _claim(self) -> Job | None:
        return None if self._stop.is_set() else self.queue.claim(self.clock(), self.owner)

    def drain(self) -> int:
        """Process jobs until none is pending (in this thread); returns how many were taken."""
        count = 0
        job = self._claim()
        while job is not None:
            count += 1
            _outcome, job = self._process(job, claim_next=not self._stop.is_set())
        return count

    # ---------------------------------------------------------------------------- threads
    def start(self, threads: int = 1) -> None:
        for index in range(threads):
            thread = threading.Thread(target=self._loop, name=f"mlops-bot-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def alive(self) -> bool:
        """Whether every started thread still runs (False before start)."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

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
                if self.drain():
                    self.queue.checkpoint()
            except Exception:  # a broken database must not kill the thread silently
                log.exception("worker loop error")
            self._wake.wait(self.poll_seconds)


def worker_id(pid: int) -> str:
    """How a worker process is named on its jobs: `host:pid` (unique among replicas)."""
    return f"{socket.gethostname()}:{pid}"


def die_with_parent(parent_pid: int) -> bool:
    """Make the kernel kill this process when its parent dies (Linux), so a worker never outlives
    a crashed server and races the restarted one. Returns False when the parent is already gone."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent check in the loop still applies
        pass
    return os.getppid() == parent_pid


# How `bot work` yields the CPU to the process answering GitHub (`MLOPS_BOT_WORKER_PRIORITY`).
WORKER_PRIORITIES = ("idle", "batch", "normal")


def lower_priority(priority: str) -> str:
    """Lower this process's CPU class before its threads start (threads and the git processes it
    runs inherit it); returns what was applied, for the log.

    `idle` (the default of a worker `serve` starts): Linux's SCHED_IDLE. A task of that class loses
    every wake-up to a normal one (an arriving webhook preempts the worker at once, and a CPU
    running only idle-class tasks counts as free for placing it), yet it is not starved: the kernel
    gives it the smallest weight (3, against 1,024 for nice 0 and 15 for nice 19), so on a machine
    saturated by other work its jobs still progress, slowly. Where SCHED_IDLE is missing (not
    Linux) it falls back to nice 19. `batch`: SCHED_BATCH and nice 19 (5x the idle share under
    saturation; no wake-up preemption of others). `normal`: unchanged."""
    if priority not in WORKER_PRIORITIES:
        raise MlopsError(f"MLOPS_BOT_WORKER_PRIORITY / --priority: {priority!r} is not one of "
                         f"{', '.join(WORKER_PRIORITIES)}")
    if priority == "normal":
        return "normal"
    policy = getattr(os, "SCHED_IDLE" if priority == "idle" else "SCHED_BATCH", None)
    applied = f"nice {_nice_19()}"
    if policy is not None:
        try:
            os.sched_setscheduler(0, policy, os.sched_param(0))
            applied = f"SCHED_{priority.upper()}, {applied}"
        except OSError as error:  # a container's seccomp profile may refuse it: nice 19 still holds
            log.warning("cannot set the worker's CPU class to SCHED_%s (%s): running at %s",
                        priority.upper(), error, applied)
    return applied


def _nice_19() -> int:
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)
    return os.getpriority(os.PRIO_PROCESS, 0)


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space: a job that tries to hold more (one repository's huge
    config or data) gets MemoryError, which fails that job only; the worker goes on."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def run_worker_process(worker: Worker, threads: int, parent_pid: int | None, check_seconds: float = 0.5
                       ) -> None:
    """The body of `mlops-bot bot work`: drain the queue until the parent (if any) goes away or a
    SIGTERM arrives."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start(threads)
    try:
        while not stop.wait(check_seconds):
            if parent_pid is not None and os.getppid() != parent_pid:
                break
    finally:
        worker.stop()
