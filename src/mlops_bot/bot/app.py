"""The webhook server (Starlette on uvicorn) and its wiring from the environment.

`POST /webhook` does only what must happen before answering GitHub: size check, signature check
against the raw body, JSON check, de-duplication and a durable insert; then it answers 202 and a
worker thread does the rest. `GET /healthz` and `GET /metrics` are for operators.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_bot.bot.checkout import (
    RepoCheckouts,
    TokenSource,
    git_auth_env,
    settings_from_directory,
    settings_from_text,
)
from mlops_bot.bot.handlers import (
    HANDLED_EVENTS,
    EventHandler,
    RegistryLike,
    RepoSettings,
    default_deploy_control,
)
from mlops_bot.bot.metrics import CONTENT_TYPE, BotMetrics
from mlops_bot.bot.queue import DeliveryQueue
from mlops_bot.bot.signature import parse_secrets, verify
from mlops_bot.bot.worker import Worker
from mlops_bot.errors import MlopsError
from mlops_bot.forge.auth import AppInstallationAuth, token_from_env
from mlops_bot.forge.base import Forge
from mlops_bot.forge.github import DEFAULT_API_URL
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.select import app_private_key

log = logging.getLogger("mlops_bot.bot")

MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


@dataclass
class BotConfig:
    """`workers` threads drain the queue: in this process, or with `worker_process` in a child
    process (`mlops-bot bot work`), which keeps job work off the GIL of the process answering
    GitHub."""

    secrets: list[str]
    state_dir: Path
    workers: int = 1
    max_body: int = MAX_BODY
    worker_process: bool = False

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
                   worker_process=worker_process)


# ------------------------------------------------------------------------------------ wiring
def forge_factory_from_env(environ: Mapping[str, str]) -> Callable[[str, int | None], Forge]:
    """One forge per (repository, installation) of the payload, cached: a multi-repo App install
    serves each repository with its own installation token."""
    cache: dict[tuple[str, int | None], Forge] = {}
    guard = threading.Lock()
    local = environ.get("MLOPS_BOT_LOCAL_FORGE")

    def make(repo: str, installation: int | None) -> Forge:
        if local:
            return LocalForge(local, repo=repo, actor="mlops-bot[bot]")
        from mlops_bot.forge.select import forge_from_env  # the forge engineer's selector

        env = dict(environ)
        env["GITHUB_REPOSITORY"] = repo
        if installation is not None:
            env["MLOPS_BOT_APP_INSTALLATION_ID"] = str(installation)
        return forge_from_env(env)

    def forge_for(repo: str, installation: int | None) -> Forge:
        key = (repo, installation)
        with guard:
            if key not in cache:
                cache[key] = make(repo, installation)
            return cache[key]

    return forge_for


def git_token_source(environ: Mapping[str, str], clock: Callable[[], float] = time.time
                     ) -> TokenSource | None:
    """What the bot's git clones authenticate with: with GitHub App credentials the installation
    token of the payload's installation (one cached `AppInstallationAuth` per installation, which
    mints a new token before the hour is up); else `GITHUB_TOKEN`/`GH_TOKEN`; else nothing."""
    app_id = environ.get("MLOPS_BOT_APP_ID", "").strip()
    key = app_private_key(environ)
    if app_id and key:
        api_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
        sources: dict[tuple[str, str], AppInstallationAuth] = {}
        guard = threading.Lock()

        def app_token(repo: str, installation: int | None) -> str:
            # Without an installation id (a hand-made payload) the repository finds its installation.
            cache_key = ("installation", str(installation)) if installation is not None else ("repo", repo)
            with guard:
                source = sources.get(cache_key)
                if source is None:
                    source = sources[cache_key] = AppInstallationAuth(
                        app_id, key, api_url=api_url, repo=repo, installation_id=installation, clock=clock
                    )
            return source.token()

        return app_token
    static = token_from_env(environ)
    if static:
        return lambda _repo, _installation: static
    return None


def handler_from_env(environ: Mapping[str, str], state_dir: Path, repo_dir: Path | None = None,
                     clock: Callable[[], float] = time.time) -> EventHandler:
    """The production handler: forge per repository, settings and registry from a git checkout
    (`repo_dir` when running inside the repository, e.g. in GitHub Actions; else a clone per
    repository under the state directory, from `MLOPS_BOT_GIT_URL_TEMPLATE`, fetched with the
    token of the payload's installation)."""
    make_forge = forge_factory_from_env(environ)
    template = environ.get("MLOPS_BOT_GIT_URL_TEMPLATE")
    if not template and not environ.get("MLOPS_BOT_LOCAL_FORGE"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        template = server + "/{repo}.git"
    token_source = git_token_source(environ, clock)
    checkouts = RepoCheckouts(state_dir / "repos", template, token=token_source) if template else None
    # The handler passes settings_for/registry_for the forge of the payload's installation; forges
    # are cached for the life of the process, so the forge's identity tells the installation back.
    installation_of: dict[int, int | None] = {}

    def forge_for(repo: str, installation: int | None) -> Forge:
        forge = make_forge(repo, installation)
        installation_of[id(forge)] = installation
        return forge

    def directory(repo: str, forge: Forge) -> Path | None:
        if repo_dir is not None:
            return repo_dir
        return checkouts.sync(repo, installation_of.get(id(forge))) if checkouts is not None else None

    def settings_for(repo: str, forge: Forge) -> RepoSettings:
        if repo_dir is not None:
            return settings_from_directory(repo_dir)
        if checkouts is None:
            return RepoSettings()
        installation = installation_of.get(id(forge))
        checkouts.sync(repo, installation)
        return settings_from_text(checkouts.read_default_branch_file(repo, ".github/mlops.yml", installation))

    def registry_for(repo: str, forge: Forge, settings: RepoSettings) -> RegistryLike:
        path = directory(repo, forge)
        if path is None:
            raise MlopsError("the bot has no git checkout of the repository: set MLOPS_BOT_GIT_URL_TEMPLATE")
        from mlops_bot.registry.registry import Registry

        installation = installation_of.get(id(forge))
        # Tag fetches and pushes carry the same per-installation token as the clone.
        def remote_env() -> dict[str, str]:
            return git_auth_env(token_source(repo, installation) if token_source else None)

        registry: RegistryLike = Registry(path, forge=forge, remote="origin", policy=settings.registry,
                                          remote_env=remote_env)
        return registry

    return EventHandler(forge_for, settings_for, registry_for, default_deploy_control())


# ---------------------------------------------------------------------------------------- app
def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class WebhookBot:
    """The app's state: queue, metrics, worker. `app` is the ASGI application."""

    def __init__(self, config: BotConfig, handler: EventHandler, clock: Callable[[], float] = time.time
                 ) -> None:
        self.config = config
        self.clock = clock
        self.queue = DeliveryQueue(config.state_dir / "queue.sqlite3", auto_checkpoint=False)
        self.metrics = BotMetrics(lambda: float(self.queue.depth()))
        self.worker = Worker(self.queue, handler, self.metrics, clock)
        self.recovered = 0
        self._child: subprocess.Popen[bytes] | None = None
        self.app = Starlette(
            routes=[
                Route("/webhook", self.webhook, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def start(self) -> None:
        # Recovery happens here, before any worker of this server runs: a job still `running` now
        # belonged to a process that is gone (workers die with their server, see worker.py).
        self.recovered = self.queue.recover()
        if self.recovered:
            log.warning("resuming %d job(s) left running by a previous process", self.recovered)
        if self.config.workers <= 0:
            return
        if self.config.worker_process:
            command = [sys.executable, "-m", "mlops_bot", "bot", "work",
                       "--state-dir", str(self.config.state_dir), "--threads", str(self.config.workers),
                       "--parent-pid", str(os.getpid())]
            self._child = subprocess.Popen(command)
        else:
            self.worker.start(self.config.workers)

    def stop(self) -> None:
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(15)
            except subprocess.TimeoutExpired:
                self._child.kill()
            self._child = None
        self.worker.stop()

    async def healthz(self, _request: Request) -> Response:
        return _json(200, {"status": "ok", "queue_depth": self.queue.depth()})

    async def prometheus(self, _request: Request) -> Response:
        # Job outcomes live in the queue database, so they are right whichever process ran the jobs.
        for status, count in self.queue.counts().items():
            self.metrics.jobs_by_status.labels(status).set(count)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        event = request.headers.get("x-github-event", "")
        status, body, outcome = await self._receive(request, event)
        self.metrics.deliveries.labels(event or "unknown", outcome).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return _json(status, body)

    async def _receive(self, request: Request, event: str) -> tuple[int, dict[str, Any], str]:
        limit = self.config.max_body
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return 413, {"message": f"payload larger than {limit} bytes"}, "too_large"
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return 413, {"message": f"payload larger than {limit} bytes"}, "too_large"
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not verify(raw, request.headers.get("x-hub-signature-256"), self.config.secrets):
            return 401, {"message": "missing or invalid X-Hub-Signature-256"}, "unauthorized"
        delivery = request.headers.get("x-github-delivery", "")
        if not event or not delivery or len(delivery) > 200:
            return 400, {"message": "missing X-GitHub-Event or X-GitHub-Delivery header"}, "malformed"
        payload_bytes = raw
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"))
            payload_bytes = (form.get("payload") or [""])[0].encode()
        try:
            payload = json.loads(payload_bytes)
        except ValueError:
            return 400, {"message": "body is not valid JSON"}, "malformed"
        if not isinstance(payload, dict):
            return 400, {"message": "body is not a JSON object"}, "malformed"
        if event == "ping":
            return 200, {"status": "pong", "zen": payload.get("zen", "")}, "ping"
        if event not in HANDLED_EVENTS:
            return 202, {"status": "ignored", "event": event}, "ignored"
        if not self.queue.enqueue(delivery, event, payload_bytes, self.clock()):
            return 200, {"status": "duplicate", "delivery": delivery}, "duplicate"
        self.worker.wake()
        return 202, {"status": "queued", "delivery": delivery}, "queued"


def serve(bot: WebhookBot, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(bot.app, host=host, port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10)

