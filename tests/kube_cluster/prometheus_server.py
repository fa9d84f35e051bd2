"""A real Prometheus (Debian's package, installed by tests/kube_cluster/prometheus.sh) on an
ephemeral 127.0.0.1 port, scraping the given model servers every second; and the model servers
themselves: real `mlops-bot serve` processes standing in for the revisions' pods."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    result = subprocess.run(["bash", str(ROOT / "tests" / "kube_cluster" / "prometheus.sh")],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"prometheus not available: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120,
          stop: threading.Event | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise RuntimeError(f"{url}: stopped while waiting")
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout:g}s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def model_server(directory: Path, model: str, version: str, model_dir: Path) -> Iterator[str]:
    """`mlops-bot serve MODEL --model DIR --version V` on a free port; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / f"serve-{version}-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_bot", "serve", model, "--port", str(port), "--model", str(model_dir),
         "--version", version],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "MLOPS_BOT_ADMIN_TOKEN": "admin-token"})
    try:
        _wait(f"http://127.0.0.1:{port}/v2/health/ready", process, log, timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@contextlib.contextmanager
def prometheus(directory: Path, targets: dict[str, dict[str, str]] | list[tuple[str, dict[str, str]]]
               ) -> Iterator[str]:
    """Prometheus scraping `targets` (host:port -> extra labels; pairs when one address is scraped
    under several label sets) every second; yields its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "prometheus.yml"
    pairs = list(targets.items()) if isinstance(targets, dict) else targets
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "model-servers", "static_configs": [
            {"targets": [address], "labels": labels} for address, labels in pairs]}],
    }))
    log = directory / "prometheus.log"
    process = subprocess.Popen(
        [prometheus_binary(), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={directory / 'data'}", "--storage.tsdb.retention.time=1h"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/-/ready", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def oip_request(row: dict[str, Any]) -> dict[str, Any]:
    """One record as an Open Inference Protocol v2 request: a tensor per feature, strings as BYTES."""
    return {"inputs": [{"name": name, "shape": [1], "datatype": "BYTES" if isinstance(value, str) else "FP64",
                        "data": [value]} for name, value in row.items()]}


class Serving:
    """The model servers and Prometheus the cluster end-to-end tests share, started once per session
    in a background thread (so the control plane can start meanwhile): `mlops-bot serve` processes
    (forked by serve_launcher.py after one import of the server's modules), each holding two
    versions (the second loaded through the admin API as a canary with
    weight 0; the load generators pick the version by its OIP path,
    `/v2/models/credit/versions/{v}/infer`, so each process stands in for two revisions' pods),
    each scraped once per engine namespace (the `namespace` label a cluster's Prometheus would add).

    `servers` (version -> that version's own infer URL) and `prometheus` wait until all is up."""

    def __init__(self, root: Path, models: Path, namespaces: dict[str, str], model: str = "credit") -> None:
        self.root = root
        self.models = models
        self.namespaces = namespaces  # engine -> the namespace its tests use
        self.model = model
        self._servers: dict[str, str] = {}
        self._prometheus = ""
        self._processes: list[subprocess.Popen[bytes]] = []
        self._groups: list[int] = []  # process groups we started (the servers' launcher)
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._start, name="cluster-serving", daemon=True)
        self._thread.start()

    @property
    def servers(self) -> dict[str, str]:
        self.ready()
        return self._servers

    @property
    def prometheus(self) -> str:
        self.ready()
        return self._prometheus

    def ready(self) -> Serving:
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"cluster serving did not start: {self._error}") from self._error
        return self

    def _spawn(self, command: list[str], log: Path, env: dict[str, str] | None = None,
               new_session: bool = False) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=new_session)
        self._processes.append(process)
        if new_session:
            self._groups.append(process.pid)
        return process

    def _start(self) -> None:
        try:
            versions = sorted(path.name for path in self.models.iterdir())
            pairs = [versions[i:i + 2] for i in range(0, len(versions), 2)]
            directory = self.root / "servers"
            directory.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "MLOPS_BOT_ADMIN_TOKEN": "admin-token"}
            started, specs = [], []
            for pair in pairs:
                port = free_port()
                log = directory / f"serve-{'+'.join(pair)}.log"
                specs.append({"args": ["serve", self.model, "--port", str(port), "--model",
                                       str(self.models / pair[0]), "--version", pair[0]], "log": str(log)})
                started.append((pair, port, log))
            # One process imports the server's modules, then forks the servers (serve_launcher.py):
            # each `mlops-bot serve` start would otherwise spend the same seconds of CPU importing.
            launcher = self._spawn([sys.executable, str(Path(__file__).with_name("serve_launcher.py")),
                                    json.dumps(specs)], directory / "launcher.log", env, new_session=True)
            prometheus_dir = self.root / "prometheus"
            prometheus_dir.mkdir(parents=True, exist_ok=True)
            prometheus_port = free_port()
            config = prometheus_dir / "prometheus.yml"
            config.write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "model-servers", "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": namespace}}
                    for _, port, _ in started for namespace in self.namespaces.values()]}],
            }))
            prometheus_log = prometheus_dir / "prometheus.log"
            prometheus_process = self._spawn(
                [prometheus_binary(), f"--config.file={config}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}",
                 f"--storage.tsdb.path={prometheus_dir / 'data'}", "--storage.tsdb.retention.time=1h"],
                prometheus_log)
            for pair, port, log in started:
                base = f"http://127.0.0.1:{port}"
                _wait(f"{base}/v2/health/ready", launcher, log, timeout=240, stop=self._stopping)
                if len(pair) == 2:
                    response = httpx.post(
                        f"{base}/admin/versions", trust_env=False, timeout=120,
                        headers={"Authorization": "Bearer admin-token"},
                        json={"stable": {"version": pair[0], "path": str(self.models / pair[0])},
                              "canary": {"version": pair[1], "path": str(self.models / pair[1])},
                              "weight": 0})
                    if response.status_code != 200:
                        raise RuntimeError(f"{base}: loading {pair[1]} answered {response.status_code}: "
                                           f"{response.text}")
                for version in pair:
                    self._servers[version] = f"{base}/v2/models/{self.model}/versions/{version}/infer"
            _wait(f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus_process, prometheus_log,
                  stop=self._stopping)
            self._prometheus = f"http://127.0.0.1:{prometheus_port}"
        except BaseException as exc:  # handed to whoever waits in ready()
            self._error = exc

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        for process in self._processes:  # all at once: each takes up to a few seconds to shut down
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            _stop(process)
        for group in self._groups:  # a server its launcher could not stop in time
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


@contextlib.contextmanager
def shared_serving(root: Path, model_dirs: dict[str, Path]) -> Iterator[Serving]:
    """Starts the shared serving in the background and yields at once; see `Serving`. Each version
    folder holds the signature.json `mlops-bot validate` writes beside a registered model: a deploy
    job reads it to refuse a version with other inputs, without loading the model (scikit-learn)."""
    import shutil
    import uuid

    models = root / "models"
    for version in ("v1.0.0", "v1.1.0", "v9.0.0-broken", "v9.1.0-constant"):
        shutil.copytree(model_dirs[version], models / version)
    for version in ("v1.2.0", "v1.3.0", "v1.4.0"):  # the healthy model under newer version labels
        shutil.copytree(model_dirs["v1.1.0"], models / version)
    from mlops_bot.deploy.loading import version_signature
    from mlops_bot.model_signature import SIGNATURE_FILE

    for folder in models.iterdir():  # as registered versions have it (validate writes it)
        if not (folder / SIGNATURE_FILE).is_file():
            (folder / SIGNATURE_FILE).write_text(version_signature(folder).to_json(), encoding="utf-8")
    tag = uuid.uuid4().hex[:8]
    serving = Serving(root, models, {"kserve": f"e2e-{tag}", "argo": f"argo-{tag}"})
    try:
        yield serving
    finally:
        serving.stop()
