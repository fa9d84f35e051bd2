"""A real Prometheus (Debian's package, installed by tests/kube_cluster/prometheus.sh) on an
ephemeral 127.0.0.1 port, scraping the given model servers every second; and the model servers
themselves: real `mlops-bot serve` processes, one per revision."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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


@contextlib.contextmanager
def model_servers(directory: Path, model: str, versions: dict[str, Path]) -> Iterator[dict[str, str]]:
    """One `mlops-bot serve` per version (each standing in for a revision's pods), started side by
    side; yields version -> base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    started: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for version, model_dir in versions.items():
            port = free_port()
            log = directory / f"serve-{version}.log"
            started[version] = (subprocess.Popen(
                [sys.executable, "-m", "mlops_bot", "serve", model, "--port", str(port), "--model",
                 str(model_dir), "--version", version],
                stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "MLOPS_BOT_ADMIN_TOKEN": "admin-token"}), port, log)
        for process, port, log in started.values():
            _wait(f"http://127.0.0.1:{port}/v2/health/ready", process, log, timeout=240)
        yield {version: f"http://127.0.0.1:{port}" for version, (_, port, _) in started.items()}
    finally:  # all at once: each takes up to a few seconds to shut down
        for process, _, _ in started.values():
            if process.poll() is None:
                process.terminate()
        for process, _, _ in started.values():
            _stop(process)


@dataclass
class Serving:
    """The model servers and Prometheus the cluster end-to-end tests share: one `mlops-bot serve`
    per version, each scraped once per engine namespace (the `namespace` label a cluster's
    Prometheus would add), so the KServe and Argo tests start them once per session."""

    root: Path
    models: Path
    servers: dict[str, str]
    prometheus: str
    namespaces: dict[str, str]  # engine -> the namespace its tests use


@contextlib.contextmanager
def shared_serving(root: Path, model_dirs: dict[str, Path]) -> Iterator[Serving]:
    import shutil
    import uuid

    models = root / "models"
    for version in ("v1.0.0", "v1.1.0", "v9.0.0-broken"):
        shutil.copytree(model_dirs[version], models / version)
    for version in ("v1.2.0", "v1.3.0", "v1.4.0"):  # the healthy model under newer version labels
        shutil.copytree(model_dirs["v1.1.0"], models / version)
    tag = uuid.uuid4().hex[:8]
    namespaces = {"kserve": f"e2e-{tag}", "argo": f"argo-{tag}"}
    versions = {path.name: path for path in sorted(models.iterdir())}
    with model_servers(root / "servers", "credit", versions) as servers:
        targets = [(url.removeprefix("http://"), {"namespace": namespace})
                   for url in servers.values() for namespace in namespaces.values()]
        with prometheus(root / "prometheus", targets) as url:
            yield Serving(root, models, servers, url, namespaces)
