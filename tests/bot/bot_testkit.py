"""Helpers for the bot tests (tests/bot/conftest.py puts this folder on sys.path): a real git
repository with a bare origin and a model registry, the file-backed forge, and GitHub-style signed
deliveries."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.bot.checkout import RepoCheckouts, settings_from_text
from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.registry_commands import RegistryLike
from mlops_bot.bot.routing import DeliveryContext, RepoSettings
from mlops_bot.bot.signature import sign
from mlops_bot.forge.base import Forge
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.registry import Registry

REPO = "acme/churn"
SECRET = "test-webhook-secret"
EXAMPLES = Path(__file__).resolve().parents[2] / ".cache/tools/node_modules/@octokit/webhooks-examples" \
    / "api.github.com/index.json"

CONFIG = """\
version: 1
model: {name: churn, task: classification}
train: {builtin: {estimator: logistic_regression}}
data: {train: data/train.csv, holdout: data/holdout.csv, target: y}
registry:
  stages: [staging, production]
  policy:
    production: {permission: maintain}
rollout: {environment: production, stage: production}
bot:
  commands: {drift: triage}
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed(payload: dict[str, Any] | bytes, event: str, delivery: str | None = None, secret: str = SECRET
           ) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }


def comment_payload(body: str, *, number: int, comment_id: int, login: str = "alice", user_type: str = "User",
                    action: str = "created", repo: str = REPO, pull: bool = True) -> dict[str, Any]:
    """An issue_comment payload: the real octokit example, retargeted at our PR and comment."""
    payload = json.loads(json.dumps(example("issue_comment", "created")))
    payload["action"] = action
    payload["repository"]["full_name"] = repo
    payload["issue"]["number"] = number
    if pull:
        payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    payload["comment"].update(id=comment_id, body=body)
    payload["comment"]["user"].update(login=login, type=user_type)
    return payload


_EXAMPLES: dict[str, Any] | None = None


def examples() -> dict[str, Any]:
    global _EXAMPLES
    if _EXAMPLES is None:
        if not EXAMPLES.exists():
            pytest.skip("@octokit/webhooks-examples is not installed: run `make tools`")
        _EXAMPLES = {item["name"]: item for item in json.loads(EXAMPLES.read_text())}
    return _EXAMPLES


def example(event: str, action: str | None = None) -> dict[str, Any]:
    for item in examples()[event]["examples"]:
        if action is None or item.get("action") == action:
            return dict(item)
    raise LookupError(f"no {event}/{action} example")


@dataclass
class World:
    """A repository with registered model versions, its bare origin, a local forge and a PR."""

    tmp: Path
    origin: Path
    work: Path
    forge: LocalForge
    pr: int
    controls: list[tuple[str, str, str]]

    def registry(self) -> Registry:
        git(self.work, "fetch", "--quiet", "--tags", "--force", "origin")
        return Registry(self.work, remote="origin")

    def handler(self) -> EventHandler:
        checkouts = RepoCheckouts(self.tmp / "state" / "repos", str(self.tmp / "remotes") + "/{repo}.git")
        controls = self.controls

        def settings_for(context: DeliveryContext) -> RepoSettings:
            checkouts.sync(context.repo)
            return settings_from_text(checkouts.read_default_branch_file(context.repo, ".github/mlops.yml"))

        def registry_for(context: DeliveryContext, settings: RepoSettings) -> RegistryLike:
            return Registry(checkouts.sync(context.repo), forge=context.forge, remote="origin",
                            policy=settings.registry)

        def control(_forge: Forge, environment: str, action: str, actor: str) -> None:
            controls.append((environment, action, actor))

        return EventHandler(lambda repo, _inst: self.forge, settings_for, registry_for, control)

    def comment(self, body: str, login: str = "alice", **kwargs: Any) -> dict[str, Any]:
        row = self.forge.create_comment(self.pr, body, user=login)
        return comment_payload(body, number=self.pr, comment_id=row.id, login=login, **kwargs)


def make_world(tmp: Path, config: str = CONFIG) -> World:
    origin = tmp / "remotes" / f"{REPO}.git"
    origin.parent.mkdir(parents=True)
    git(tmp, "init", "--quiet", "--bare", "-b", "main", str(origin))
    work = tmp / "work"
    git(tmp, "clone", "--quiet", str(origin), str(work))
    git(work, "config", "user.name", "Dev")
    git(work, "config", "user.email", "dev@example.com")
    (work / ".github").mkdir()
    (work / ".github/mlops.yml").write_text(config)
    for version, verdict in (("v1.0.0", "pass"), ("v1.1.0", "pass"), ("v1.2.0", "fail")):
        (work / "model.txt").write_text(version)
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", f"model {version}")
        Registry(work, remote="origin").register("churn", version=version, trailers={"Verdict": verdict},
                                                 push=True)
    git(work, "push", "--quiet", "origin", "main")
    forge = LocalForge(tmp / "forge", repo=REPO, actor="mlops-bot[bot]")
    # The PR's head is the commit of the newest version (v1.2.0): what its validation registered.
    pr = forge.create_pull_request("Better churn model", "feature", "main",
                                   head_sha=git(work, "rev-parse", "HEAD")).number
    for user, permission in (("alice", "admin"), ("bob", "write"), ("carol", "read"), ("tina", "triage")):
        forge.set_permission(user, permission)  # type: ignore[arg-type]
    return World(tmp, origin, work, forge, pr, [])


def copy_world(template: World, tmp: Path) -> World:
    import shutil

    for name in ("remotes", "work", "forge"):
        shutil.copytree(template.tmp / name, tmp / name, symlinks=True)
    origin = tmp / "remotes" / f"{REPO}.git"
    git(tmp / "work", "remote", "set-url", "origin", str(origin))
    forge = LocalForge(tmp / "forge", repo=REPO, actor="mlops-bot[bot]")
    return World(tmp, origin, tmp / "work", forge, template.pr, [])


class ServerThread:
    """A real uvicorn server on a free 127.0.0.1 port, in a thread of the test process."""

    def __init__(self, app: Any, http: Any = "auto") -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                http=http)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll a cheap condition until true (the bot's worker runs in another thread or process).
    `timeout` is what an idle machine needs at most; the wait allows four times that, because
    only a condition that never comes true may fail a test, not a loaded machine."""
    import time

    deadline = time.monotonic() + 4 * timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class BotProcess:
    """`mlops-bot bot serve` as a real child process (so a test can SIGKILL it mid-queue)."""

    def __init__(self, world: World, state: Path, workers: int = 1, env: dict[str, str] | None = None
                 ) -> None:
        import os
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ, "MLOPS_BOT_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_LOCAL_FORGE": str(world.forge.root),
            "MLOPS_BOT_GIT_URL_TEMPLATE": str(world.tmp / "remotes") + "/{repo}.git",
            "MLOPS_BOT_STATE_DIR": str(state), "MLOPS_BOT_LOG_LEVEL": "WARNING", **(env or {}),
        }
        self.args = [sys.executable, "-m", "mlops_bot", "bot", "serve", "--port", str(self.port),
                     "--workers", str(workers)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        import httpx

        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "bot process exited"
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, 60, "bot to start")  # a crashed process fails at once
        except BaseException:
            self.kill()  # the caller never got the object: nothing else would stop it (and its worker)
            raise
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def depth(self) -> int:
        import httpx

        return int(httpx.get(f"{self.url}/healthz", timeout=5).json()["queue_depth"])


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of `pid`, read from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found
