"""The webhook server (Starlette on uvicorn); `wiring.py` builds its handler from the environment.

`POST /webhook` does only what must happen before answering GitHub: size check, signature check
against the raw body, JSON check, de-duplication (delivery id and idempotency key) and a durable
insert; then it answers 202 and a worker does the rest. `GET /healthz` and `GET /metrics` are for
operators.

The workers run in a child process by default (`mlops-bot bot work`), supervised: a dead child is
restarted with backoff after its running jobs are put back in line, a child whose job runs past
`job_seconds` is killed (the job's attempt counts, so a job that never finishes stops after
`max_attempts`), and `/healthz` answers 503 while no worker lives or a job waits too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mlops_bot.bot.connection_limits import ConnectionLimits, guarded_protocol
from mlops_bot.bot.events import Delivery, DeliveryRejected, parse_delivery
from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.metrics import CONTENT_TYPE, BotMetrics
from mlops_bot.bot.queue import JobQueue, open_queue
from mlops_bot.bot.routing import HANDLED_EVENTS
from mlops_bot.bot.signature import parse_secrets
from mlops_bot.bot.worker import Worker, worker_id
from mlops_bot.errors import MlopsError

log = logging.getLogger("mlops_bot.bot")

MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
# The event label of the delivery metrics: these names, else `other` (`unknown` when absent). The
# header is not signed, so any name a client sends would otherwise be a new series, kept forever.
_EVENT_LABELS = HANDLED_EVENTS | {"ping"}
# The request headers the answer reads (events.parse_delivery and the size check).
_READ_HEADERS = tuple((name.encode(), name) for name in (
    "x-hub-signature-256", "x-github-event", "x-github-delivery", "content-type", "content-length"))


@dataclass
class BotConfig:
    """`workers` threads drain the queue: in this process, or with `worker_process` in a child
    process (`mlops-bot bot work`), which keeps job work off the GIL of the process answering
    GitHub. `database_url` (`MLOPS_BOT_DATABASE_URL`) puts the queue in PostgreSQL instead of
    the state directory. `job_seconds` bounds one job (child-process mode: the child is killed and
    restarted); `stale_seconds` is how long a job may wait before `/healthz` says unhealthy."""

    secrets: list[str]
    state_dir: Path
    workers: int = 1
    max_body: int = MAX_BODY
    worker_process: bool = False
    database_url: str = ""
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    job_seconds: float = 900.0
    stale_seconds: float = 300.0
    restart_backoff: tuple[float, float] = (1.0, 60.0)  # first and longest wait before a restart

    def __post_init__(self) -> None:
        if not self.secrets:
            raise MlopsError(
                "MLOPS_BOT_WEBHOOK_SECRET is not set: the bot refuses to accept unsigned webhooks "
                "(set it to the GitHub App's webhook secret; comma-separate several to rotate)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], state_dir: str | Path | None = None, workers: int = 1,
                 worker_process: bool = False) -> BotConfig:
        directory = state_dir or environ.get("MLOPS_BOT_STATE_DIR") or ".mlops-bot"
        return cls(parse_secrets(environ.get("MLOPS_BOT_WEBHOOK_SECRET")), Path(directory), workers,
                   worker_process=worker_process,
                   database_url=environ.get("MLOPS_BOT_DATABASE_URL", "").strip())

    def queue_environ(self) -> dict[str, str]:
        return {"MLOPS_BOT_DATABASE_URL": self.database_url} if self.database_url else {}


# ---------------------------------------------------------------------------------------- app
def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class WebhookBot:
    """The app's state: queue, metrics, workers and their supervisor. `app` is the ASGI application."""

    def __init__(self, config: BotConfig, handler: EventHandler, clock: Callable[[], float] = time.time,
                 queue: JobQueue | None = None) -> None:
        self.config = config
        self.clock = clock
        self.queue = queue or open_queue(config.state_dir, config.queue_environ(), server=True)
        self.metrics = BotMetrics(lambda: float(self.queue.depth()), self.queue.stats)
        if handler.cooldowns is None:
            handler.cooldowns = self.queue
        self.worker = Worker(self.queue, handler, clock)
        # Per delivery only what must be: the secrets' bytes, whether the insert is awaited on the
        # event loop, whether a worker of this process waits to be woken, the metric children.
        self._secrets = [secret.encode("utf-8") for secret in config.secrets]
        self._enqueue_async = getattr(self.queue, "enqueue_async", None)  # a remote queue's, on this loop
        self._wake_here = config.workers > 0 and not config.worker_process
        self._counted: dict[tuple[str, str], Any] = {}
        self.recovered = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._child_lock = threading.Lock()
        self.starlette = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )
        self.app: ASGIApp = self  # `__call__`: a callable object, so uvicorn sees an ASGI 3 app

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def http_protocol(self) -> type[asyncio.Protocol]:
        """uvicorn's protocol with this bot's connection limits (see connection_limits.py)."""
        return guarded_protocol(self.config.limits, lambda reason: self._count("", reason))

    # ------------------------------------------------------------------------------ workers
    def start(self) -> None:
        # Recovery happens here, before any worker of this server runs: a job still `running` now
        # belonged to a process that is gone (workers die with their server, see worker.py).
        self.recovered = self.queue.recover(self.clock())
        if self.recovered:
            log.warning("resuming %d job(s) left running by a previous process", self.recovered)
        if self.config.workers <= 0:
            return
        self._stopping.clear()
        if self.config.worker_process:
            self._spawn()
            self._supervisor = threading.Thread(target=self._supervise, name="mlops-bot-supervisor",
                                                daemon=True)
            self._supervisor.start()
        else:
            self.worker.start(self.config.workers)

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "mlops_bot", "bot", "work",
                   "--state-dir", str(self.config.state_dir), "--threads", str(self.config.workers),
                   "--parent-pid", str(os.getpid())]
        env = {**os.environ, **self.config.queue_environ()}
        with self._child_lock:
            self._child = subprocess.Popen(command, env=env)

    def worker_pid(self) -> int | None:
        with self._child_lock:
            return self._child.pid if self._child is not None else None

    def _supervise(self, check_seconds: float = 0.5) -> None:
        """Restart a dead worker process (after putting its jobs back in line), with exponential
        backoff that resets once a worker has lived a minute; kill a worker whose job has run past
        `job_seconds`."""
        first, longest = self.config.restart_backoff
        wait = first
        started = time.monotonic()
        while not self._stopping.wait(check_seconds):
            with self._child_lock:
                child = self._child
            if child is None:
                return
            if child.poll() is None:
                # Only this worker's jobs: with a shared database other replicas' are there too.
                since = self.queue.running_since(worker_id(child.pid))
                if since is not None and self.clock() - since > self.config.job_seconds:
                    log.error("a job has run for more than %.0f s: killing the worker process %d",
                              self.config.job_seconds, child.pid)
                    child.kill()
                    child.wait()
                else:
                    continue
            log.error("the worker process %d exited (%s); restarting it in %.1f s", child.pid,
                      child.returncode, wait)
            if self._stopping.wait(wait):
                return
            recovered = self.queue.recover(self.clock())
            if recovered:
                log.warning("put %d job(s) of the dead worker back in line", recovered)
            self.metrics.worker_restarts.inc()
            lived = time.monotonic() - started
            wait = first if lived > 60 else min(wait * 2, longest)
            started = time.monotonic()
            self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None
        with self._child_lock:
            child, self._child = self._child, None
        if child is not None:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.worker.stop()

    def worker_alive(self) -> bool:
        if self.config.workers <= 0:
            return True  # accept-only: another process (`mlops-bot bot work`) drains the queue
        if self.config.worker_process:
            with self._child_lock:
                return self._child is not None and self._child.poll() is None
        return self.worker.alive()

    # ------------------------------------------------------------------------------ endpoints
    async def healthz(self, _request: Request) -> Response:
        """503 while no worker lives or the longest-waiting job has waited past `stale_seconds`."""
        depth = self.queue.depth()
        waiting_since = self.queue.oldest_pending()
        waited = max(0.0, self.clock() - waiting_since) if waiting_since is not None else 0.0
        problems = []
        if not self.worker_alive():
            problems.append("no worker process is running")
        if waited > self.config.stale_seconds:
            problems.append(f"a job has waited {waited:.0f} s (limit {self.config.stale_seconds:.0f} s)")
        body: dict[str, Any] = {"status": "unhealthy" if problems else "ok", "queue_depth": depth}
        if problems:
            body["problems"] = problems
        return _json(503 if problems else 200, body)

    async def prometheus(self, _request: Request) -> Response:
        # Job outcomes live in the queue database, so they are right whichever process ran the jobs.
        for status, count in self.queue.counts().items():
            self.metrics.jobs_by_status.labels(status).set(count)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    # ---------------------------------------------------------------------- POST /webhook
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: `POST /webhook` on a lean path (no middleware, no request objects), the
        rest (`/healthz`, `/metrics`, lifespan) through Starlette."""
        if scope["type"] == "http" and scope["path"] == "/webhook":
            if scope["method"] == "POST":
                await self.webhook(scope, receive, send)
            else:
                await _answer(send, 405, {"message": "POST only"}, [(b"allow", b"POST")])
            return
        await self.starlette(scope, receive, send)

    async def webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        raw = dict(reversed(scope["headers"]))  # of a repeated header the first one counts
        headers = {name: raw[key].decode("latin-1") for key, name in _READ_HEADERS if key in raw}
        event = headers.get("x-github-event", "")
        body = await self._read_body(headers, receive)
        if body is None:  # cut by a connection limit, or the client went away: no one to answer
            self._count(event, "disconnected")
            return
        result = self._check(headers, body) if isinstance(body, bytes) else body
        if isinstance(result, Delivery):
            # A database over the network answers in milliseconds: its queue inserts on this event
            # loop (no thread per request), the other requests go on. The SQLite insert is a local
            # append: cheaper inline.
            if self._enqueue_async is not None:
                stored = await self._enqueue_async(result.delivery, result.event, result.body, self.clock(),
                                             key=result.key, repo=_repository(result))
                result = self._stored(result, stored)
            else:
                result = self._store(result)
        status, answer, outcome = result
        self._count(event, outcome)
        await _answer(send, status, answer)
        self.metrics.latency.observe(time.perf_counter() - started)

    def _count(self, event: str, outcome: str) -> None:
        """One delivery in `mlops_bot_deliveries_total` (labelled children cached: the label sets
        are bounded, see `_EVENT_LABELS`)."""
        label = event if event in _EVENT_LABELS else "other" if event else "unknown"
        child = self._counted.get((label, outcome))
        if child is None:
            child = self._counted[(label, outcome)] = self.metrics.deliveries.labels(label, outcome)
        child.inc()

    async def _read_body(self, headers: Mapping[str, str], receive: Receive
                         ) -> bytes | tuple[int, dict[str, Any], str] | None:
        limit = self.config.max_body
        too_large = 413, {"message": f"payload larger than {limit} bytes"}, "too_large"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _check(self, headers: Mapping[str, str], body: bytes) -> Delivery | tuple[int, dict[str, Any], str]:
        """The delivery to store, or the answer (status, body, outcome for metrics) when there is
        nothing to store."""
        try:
            delivery = parse_delivery(headers, body, self._secrets)
        except DeliveryRejected as rejected:
            return rejected.status, {"message": rejected.message}, rejected.outcome
        if delivery.event == "ping":
            return 200, {"status": "pong", "zen": delivery.payload.get("zen", "")}, "ping"
        if delivery.event not in HANDLED_EVENTS:
            return 202, {"status": "ignored", "event": delivery.event}, "ignored"
        return delivery

    def _store(self, delivery: Delivery) -> tuple[int, dict[str, Any], str]:
        """The durable insert; the answer is sent only after it returns."""
        stored = self.queue.enqueue(delivery.delivery, delivery.event, delivery.body, self.clock(),
                                    key=delivery.key, repo=_repository(delivery))
        return self._stored(delivery, stored)

    def _stored(self, delivery: Delivery, stored: bool) -> tuple[int, dict[str, Any], str]:
        if not stored:
            return 200, {"status": "duplicate", "delivery": delivery.delivery}, "duplicate"
        if self._wake_here:
            self.worker.wake()
        return 202, {"status": "queued", "delivery": delivery.delivery}, "queued"


def _repository(delivery: Delivery) -> str:
    return str((delivery.payload.get("repository") or {}).get("full_name") or "")


async def _answer(send: Send, status: int, body: dict[str, Any],
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON answer in the two messages ASGI asks for (the connection guard writes them as one)."""
    content = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(content)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": content})
