"""Benchmark: the model server and canary rollouts over loopback, side by side with MLServer.

1. Rollouts under steady load: a full canary rollout (promoted) and a failed canary (a model that
   fails on a feature, rolled back by the success-rate gate), each with zero failed client requests.
2. Router overhead: sequential request latency through our server holding stable + canary (50/50,
   metrics per version) vs a bare app that parses the same request and calls the same model
   directly (same uvicorn, same parsing code). Target: <= 10 % added latency.
3. Throughput: our server vs MLServer (`mlserver` + `mlserver-sklearn`, in `.venv-mlserver`)
   serving the same fitted pipeline (joblib file for MLServer, skops for us) with the same OIP v2
   requests (one tensor per column, pandas codec for MLServer) from the same concurrent client.

Everything binds to 127.0.0.1; every phase is bounded in requests and seconds.
Run: .venv/bin/python benchmarks/serve_rollout.py [--requests 1500] [--threads 4] [--rounds 2]
Setup for (3): python3.11 -m venv .venv-mlserver && .venv-mlserver/bin/pip install mlserver mlserver-sklearn
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request  # module level: FastAPI resolves the endpoint's annotations here

ROOT = Path(__file__).resolve().parents[1]
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
NAME = "credit-risk"
LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------------------------- models
def build_models(root: Path) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """v1 and v2 (healthy, same pipeline shape, different regularisation), v3-broken (its
    signature omits a feature the model needs, so every request fails on the canary), a joblib copy
    of v1 for MLServer, and request records."""
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlops_bot.demo import dataset
    from mlops_bot.model_file import save_model

    numeric, categorical = list(dataset.FEATURES_NUMERIC), list(dataset.FEATURES_CATEGORICAL)
    frame = dataset.generate(3000, seed=1)

    def fit(c: float) -> Pipeline:
        pre = ColumnTransformer(
            [
                ("numeric", StandardScaler(), numeric),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        model = Pipeline([("features", pre), ("model", LogisticRegression(C=c, max_iter=1000))])
        return model.fit(frame[numeric + categorical], frame[dataset.TARGET])

    paths = {}
    for version, c in (("v1.0.0", 1.0), ("v1.1.0", 0.3), ("v1.2.0-broken", 1.0)):
        paths[version] = root / version
        save_model(fit(c), paths[version] / "model.skops")
    signature = [{"name": n, "kind": "numeric"} for n in numeric[:-1]] + [
        {"name": n, "kind": "categorical"} for n in categorical
    ]
    (paths["v1.2.0-broken"] / "signature.json").write_text(json.dumps({"inputs": signature}))
    mlserver_dir = root / "mlserver" / NAME
    mlserver_dir.mkdir(parents=True)
    joblib.dump(fit(1.0), mlserver_dir / "model.joblib")
    (mlserver_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": NAME,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1.0.0"},
            }
        )
    )
    paths["mlserver"] = mlserver_dir.parent
    records = dataset.generate(500, seed=2)[numeric + categorical].to_dict("records")
    return paths, records  # type: ignore[return-value]


def oip_body(record: dict[str, Any], pandas_codec: bool) -> bytes:
    """One row, one tensor per column: our server's format and MLServer's pandas codec alike."""
    inputs = []
    for key, value in record.items():
        text = isinstance(value, str)
        tensor: dict[str, Any] = {
            "name": key,
            "shape": [1],
            "datatype": "BYTES" if text else "FP64",
            "data": [value if text else float(value)],
        }
        if pandas_codec and text:
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    body: dict[str, Any] = {"inputs": inputs}
    if pandas_codec:
        body["parameters"] = {"content_type": "pd"}
    return json.dumps(body).encode()


# --------------------------------------------------------------------------------- servers
def free_port() -> int:
    from mlops_bot.deploy.targets.local import free_port as _free

    return _free()


@contextlib.contextmanager
def process(
    command: list[str],
    url: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 90.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until `url` answers 200, stop it (by its own pid) afterwards."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{command[0]} exited: {log.read().decode()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} not ready after {timeout:g}s")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def ours(model: Path, port: int, token: str) -> contextlib.AbstractContextManager[Any]:
    return process(
        [
            sys.executable,
            "-m",
            "mlops_bot",
            "serve",
            NAME,
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--model",
            str(model),
            "--version",
            "v1.0.0",
        ],
        f"http://{LOOPBACK}:{port}/v2/health/ready",
        env={"MLOPS_BOT_ADMIN_TOKEN": token},
    )


def direct(model: Path, port: int) -> contextlib.AbstractContextManager[Any]:
    return process(
        [sys.executable, __file__, "--direct-server", str(port), str(model)],
        f"http://{LOOPBACK}:{port}/v2/health/ready",
    )


def mlserver(models: Path, port: int) -> contextlib.AbstractContextManager[Any]:
    settings = {
        "host": LOOPBACK,
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,
        # Inference in the server process, as ours does. (MLServer 1.7.1's default separate worker
        # process also fails to start with uvloop 0.23: "no current event loop".)
        "parallel_workers": 0,
    }
    (models / "settings.json").write_text(json.dumps(settings))
    return process(
        [str(MLSERVER), "start", str(models)], f"http://{LOOPBACK}:{port}/v2/models/{NAME}/ready", cwd=models
    )


def run_direct_server(port: int, model_dir: str) -> None:
    """The baseline for router overhead: parse + predict, nothing else (no routing, no metrics)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from mlops_bot.deploy.loading import load_version
    from mlops_bot.deploy.model_input import frame_from_oip

    model = load_version(NAME, "v1.0.0", model_dir)
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    def score(raw: bytes) -> JSONResponse:
        frame = frame_from_oip(json.loads(raw), model.features)
        predictions = model.predict(frame)
        return JSONResponse(
            {
                "model_name": NAME,
                "model_version": model.version,
                "id": "x",
                "outputs": [
                    {"name": "predict", "shape": [len(predictions)], "datatype": "INT64", "data": predictions}
                ],
            }
        )

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> JSONResponse:
        raw = await request.body()
        result: JSONResponse = await run_in_threadpool(score, raw)
        return result

    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------------- load
def quantile(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hammer(url: str, bodies: list[bytes], total: int, threads: int, budget: float) -> dict[str, Any]:
    """`total` requests from `threads` clients (or until `budget` seconds): req/s and latency."""
    latencies: list[float] = []
    failures = 0
    sent = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + budget

    def work() -> None:
        nonlocal failures, sent
        with httpx.Client(
            timeout=10, trust_env=False, headers={"content-type": "application/json"}
        ) as client:
            while True:
                with lock:
                    if sent >= total or time.monotonic() > stop_at:
                        return
                    body = bodies[sent % len(bodies)]
                    sent += 1
                started = time.perf_counter()
                try:
                    ok = client.post(url, content=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    failures += not ok

    began = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{failures} of {len(latencies)} requests to {url} failed")
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "failures": failures,
        "rps": len(ordered) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": quantile(ordered, 0.99),
        "latencies": ordered,
    }


def warm(url: str, bodies: list[bytes]) -> None:
    hammer(url, bodies, 50, 2, 20)


# --------------------------------------------------------------------------------- phases
def rollouts(
    paths: dict[str, Path], records: list[dict[str, Any]], state: Path, rate: float
) -> dict[str, Any]:
    from mlops_bot.config import RolloutGates, RolloutSection, RolloutStep
    from mlops_bot.demo.traffic import Traffic
    from mlops_bot.deploy.controller import RolloutController, StateStore
    from mlops_bot.deploy.plan import plan_from_config
    from mlops_bot.deploy.sources import DirectorySource
    from mlops_bot.deploy.targets.local import LocalTarget
    from mlops_bot.errors import MlopsError

    section = RolloutSection(
        steps=[RolloutStep(weight=20, hold=3), RolloutStep(weight=50, hold=3)],
        interval=0.25,
        progress_deadline=60,
        gates=RolloutGates(
            min_requests=20, max_p99_latency_ms=2000, max_p99_latency_ratio=None, max_prediction_drift=0.3
        ),
    )
    plan = plan_from_config(section)
    source = DirectorySource(paths["v1.0.0"].parent)
    target = LocalTarget(state, NAME)
    out: dict[str, Any] = {}
    try:
        controller = RolloutController(
            NAME, plan, target, source, StateStore(state, NAME), cache=state / "models"
        )
        controller.run("v1.0.0", timeout=30)
        for label, version in (("full rollout", "v1.1.0"), ("failed canary", "v1.2.0-broken")):
            began = time.perf_counter()
            phase: str  # a rollout phase, or a phase marked unfinished
            with Traffic(target.endpoint, records, threads=3, rate=rate) as load:
                try:
                    result = controller.run(version, timeout=90)
                    phase, reason = result.phase, result.reason
                except MlopsError as exc:  # e.g. paused (inconclusive: too few requests at a low rate)
                    current = controller.state()
                    phase, reason = f"{current.phase} (unfinished)", f"{exc}; {current.reason}"
                    # reported, not raised: the next rollout supersedes this one
            out[label] = {
                "phase": phase,
                "seconds": time.perf_counter() - began,
                "requests": load.sent,
                "failures": load.failures,
                "versions": dict(load.versions),
                "reason": reason,
            }
    finally:
        target.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1500, help="per throughput run")
    parser.add_argument("--latency-requests", type=int, default=600, help="sequential, per overhead run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per server; best kept")
    parser.add_argument("--rate", type=float, default=150.0, help="steady load during rollouts (req/s)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run, at most")
    parser.add_argument("--direct-server", nargs=2, metavar=("PORT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct_server:
        run_direct_server(int(args.direct_server[0]), args.direct_server[1])
        return 0

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        root = Path(tmp)
        paths, records = build_models(root / "models")
        ours_bodies = [oip_body(r, False) for r in records]
        ml_bodies = [oip_body(r, True) for r in records]
        token = secrets.token_urlsafe(16)
        auth = {"Authorization": f"Bearer {token}"}

        print("== rollouts under steady load (local target: `mlops-bot serve` process)")
        for label, row in rollouts(paths, records, root / "state", args.rate).items():
            print(
                f"{label:14s} {row['phase']:9s} in {row['seconds']:5.1f}s  requests {row['requests']:5d}  "
                f"failed {row['failures']}  answered by {row['versions']}  {row['reason']}"
            )

        print("\n== router overhead (sequential requests, one client, interleaved chunks)")
        port_ours, port_direct = free_port(), free_port()
        infer = f"/v2/models/{NAME}/infer"
        routed: list[float] = []
        plain: list[float] = []
        with ours(paths["v1.0.0"], port_ours, token), direct(paths["v1.0.0"], port_direct):
            httpx.post(
                f"http://{LOOPBACK}:{port_ours}/admin/versions",
                headers=auth,
                trust_env=False,
                json={
                    "stable": {"version": "v1.0.0", "path": str(paths["v1.0.0"])},
                    "canary": {"version": "v1.1.0", "path": str(paths["v1.1.0"])},
                    "weight": 50,
                },
            ).raise_for_status()
            for url in (f"http://{LOOPBACK}:{port_ours}{infer}", f"http://{LOOPBACK}:{port_direct}{infer}"):
                warm(url, ours_bodies)
            # Alternate small chunks so that load from elsewhere on the machine hits both alike.
            chunks = 10 * args.rounds
            for _ in range(chunks):
                for url, pooled in (
                    (f"http://{LOOPBACK}:{port_ours}{infer}", routed),
                    (f"http://{LOOPBACK}:{port_direct}{infer}", plain),
                ):
                    run = hammer(url, ours_bodies, max(args.latency_requests // 10, 1), 1, args.budget)
                    pooled.extend(run["latencies"])
        r50, r99 = quantile(routed, 0.5), quantile(routed, 0.99)
        d50, d99 = quantile(plain, 0.5), quantile(plain, 0.99)
        print(f"router (stable+canary 50/50, metrics): p50 {r50:.2f} ms  p99 {r99:.2f} ms")
        print(f"direct (parse + predict only):         p50 {d50:.2f} ms  p99 {d99:.2f} ms")
        print(f"ratio router/direct: p50 {r50 / d50:.3f}x  p99 {r99 / d99:.3f}x  (target <= 1.10x)")

        print(f"\n== throughput, {args.threads} concurrent clients, 1 row per request, OIP v2")
        if not MLSERVER.exists():
            print(f"MLServer not installed at {MLSERVER}; skipped (setup line in this script's docstring)")
            return 0
        port_ours, port_ml = free_port(), free_port()
        mine: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        with ours(paths["v1.0.0"], port_ours, token), mlserver(paths["mlserver"], port_ml):
            ours_url, ml_url = f"http://{LOOPBACK}:{port_ours}{infer}", f"http://{LOOPBACK}:{port_ml}{infer}"
            check = httpx.post(
                ml_url, content=ml_bodies[0], trust_env=False, headers={"content-type": "application/json"}
            )
            check.raise_for_status()
            mine_first = httpx.post(ours_url, content=ours_bodies[0], trust_env=False).json()
            assert check.json()["outputs"][0]["data"] == mine_first["outputs"][0]["data"], "different answers"
            warm(ours_url, ours_bodies)
            warm(ml_url, ml_bodies)
            for _ in range(args.rounds):
                mine.append(hammer(ours_url, ours_bodies, args.requests, args.threads, args.budget))
                theirs.append(hammer(ml_url, ml_bodies, args.requests, args.threads, args.budget))
        for label, runs in (("mlops-bot serve", mine), ("MLServer", theirs)):
            best = max(runs, key=lambda r: r["rps"])
            print(
                f"{label:16s} {best['rps']:7.1f} req/s  p50 {best['p50_ms']:6.2f} ms  "
                f"p99 {best['p99_ms']:6.2f} ms"
                f"  failures {sum(int(r['failures']) for r in runs)}  (runs: "
                f"{', '.join(format(r['rps'], '.0f') for r in runs)} req/s)"
            )
        ratio = max(r["rps"] for r in mine) / max(r["rps"] for r in theirs)
        print(f"throughput ratio mlops-bot/MLServer: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
