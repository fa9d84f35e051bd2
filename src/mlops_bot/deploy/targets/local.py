"""The `local` target: the model server as a process on 127.0.0.1 (the embedded default).

The server outlives the `deploy` command (it is production on this machine); its pid, port and
admin token are kept in the state directory (token file mode 0600) so later deploys, `deploy
status` and `deploy abort` find it again. `InProcessTarget` drives a router in the same process
(tests, benchmarks); `HttpTarget` is the admin-API client shared with the docker target.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from mlops_bot.deploy.metrics import MetricsSnapshot
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest
from mlops_bot.deploy.serve_args import trusted_type_args
from mlops_bot.errors import MlopsError

LOOPBACK = "127.0.0.1"


class DeployError(MlopsError):
    """A deployment target could not be started or refused a change."""


class InProcessTarget:
    """A router in this process: same code path as the server, no HTTP."""

    def __init__(self, router: ModelRouter, endpoint: str = "inprocess://") -> None:
        self.router = router
        self.endpoint = endpoint

    def apply(self, routing: RoutingRequest) -> None:
        self.router.set_versions(routing)

    def metrics(self) -> MetricsSnapshot:
        return self.router.snapshot()


def admin_token(path: Path) -> str:
    """The admin token a target shares with the server it starts: created once (mode 0600, never
    overwritten, so a found server keeps accepting it), then read back."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


class HttpTarget:
    """A running model server reached through its admin API."""

    def __init__(self, endpoint: str, token: str, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = httpx.Client(timeout=timeout, trust_env=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, self.endpoint + path, headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployError(f"model server at {self.endpoint} unreachable: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise DeployError(f"model server refused {method} {path} ({response.status_code}): {detail}")
        return response.json()

    def apply(self, routing: RoutingRequest) -> None:
        self._call("POST", "/admin/versions", content=routing.model_dump_json())

    def metrics(self) -> MetricsSnapshot:
        return MetricsSnapshot.model_validate(self._call("GET", "/admin/metrics"))

    def serves(self, routing: RoutingRequest, server: str) -> tuple[bool, bool, str]:
        """(alive, ready, detail) from the server's own report: it answers and serves exactly
        `routing`'s stable and canary versions. `server` names it in the detail."""
        try:
            serving = self.metrics()
        except DeployError as exc:
            return False, False, str(exc)
        canary = routing.canary.version if routing.canary is not None else None
        if (serving.stable, serving.canary) != (routing.stable.version, canary):
            return False, False, (f"{server} serves {serving.stable}/{serving.canary}, "
                                  f"not {routing.stable.version}/{canary}")
        return True, True, ""

    def close(self) -> None:
        self._client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalTarget(HttpTarget):
    """Starts (or finds) `mlops-bot serve NAME` on 127.0.0.1 and manages it through the admin API."""

    def __init__(self, state_dir: Path, name: str, *, port: int | None = None, log_dir: str | None = None,
                 startup_timeout: float = 120.0, trusted_types: Iterable[str] = ()) -> None:
        self.state_dir = Path(state_dir)
        self.trusted_types = list(trusted_types)  # the model's `model.trusted_types`, for every version
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.info_path = self.state_dir / f"{name.replace('/', '_')}.server.json"
        self.token_path = self.state_dir / f"{name.replace('/', '_')}.token"
        self.log_dir = log_dir
        self.startup_timeout = startup_timeout
        info = self._running()
        if info is None:
            info = self._spawn(port, log_dir, startup_timeout)
        self.pid = int(info["pid"])
        super().__init__(f"http://{LOOPBACK}:{info['port']}", self._token())

    def _token(self) -> str:
        return admin_token(self.token_path)

    def _running(self) -> dict[str, Any] | None:
        if not self.info_path.exists():
            return None
        info: dict[str, Any] = json.loads(self.info_path.read_text())
        if not _alive(int(info["pid"])):
            return None
        try:
            httpx.get(f"http://{LOOPBACK}:{info['port']}/v2/health/live", timeout=2, trust_env=False)
        except httpx.HTTPError:
            return None
        return info

    def _spawn(self, port: int | None, log_dir: str | None, timeout: float) -> dict[str, Any]:
        port = port or free_port()
        env = {**os.environ, "MLOPS_BOT_ADMIN_TOKEN": self._token()}
        command = [sys.executable, "-m", "mlops_bot", "serve", self.name, "--host", LOOPBACK,
                   "--port", str(port)]
        if log_dir:
            command += ["--log-dir", log_dir]
        command += trusted_type_args(self.trusted_types)
        log = open(self.state_dir / f"{self.name.replace('/', '_')}.server.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        url = f"http://{LOOPBACK}:{port}/v2/health/live"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DeployError(f"the model server exited with code {process.returncode}; see "
                                  f"{self.state_dir}/{self.name}.server.log")
            try:
                if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            process.kill()
            raise DeployError(f"the model server did not come up on {LOOPBACK}:{port} within {timeout:g}s")
        info = {"pid": process.pid, "port": port}
        self.info_path.write_text(json.dumps(info))
        return info

    def health(self, routing: RoutingRequest) -> tuple[bool, bool, str]:
        """(alive, ready, detail): the recorded process runs and answers its liveness probe. The
        routing is set synchronously by `apply`, so a live server is ready."""
        if not _alive(self.pid):
            return False, False, f"model server process {self.pid} is gone"
        try:
            response = self._client.get(self.endpoint + "/v2/health/live", timeout=5)
        except httpx.HTTPError as exc:
            return False, False, f"model server at {self.endpoint} unreachable: {exc}"
        if response.status_code != 200:
            return False, False, f"model server liveness probe answered {response.status_code}"
        return self.serves(routing, "model server")

    def recover(self, routing: RoutingRequest) -> None:
        """Re-create a dead server (on its old port when free) and serve `routing` again."""
        if self.health(routing)[0]:
            self.apply(routing)
            return
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)  # reap it when it was our child
        old_port = int(self.endpoint.rsplit(":", 1)[1])
        try:
            info = self._spawn(old_port, self.log_dir, self.startup_timeout)
        except DeployError:
            info = self._spawn(None, self.log_dir, self.startup_timeout)
        self.pid = int(info["pid"])
        self.endpoint = f"http://{LOOPBACK}:{info['port']}"
        self.apply(routing)

    def stop(self) -> None:
        """Stop the server process this target started (by its recorded pid only)."""
        self.close()
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(self.pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, os.WNOHANG)
                time.sleep(0.05)
        self.info_path.unlink(missing_ok=True)
