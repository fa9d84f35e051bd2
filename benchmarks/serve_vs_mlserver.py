"""Benchmark: `mlops-bot serve` against MLServer serving the same fitted pipeline, side by side in
one run, at 1, 10, 100 and 1,000 rows per request.

Servers (each its own process on 127.0.0.1):
- mlops-bot serve, default (every request scored alone);
- mlops-bot serve --max-batch-rows 4096 --max-batch-delay-ms 2 (adaptive batching of concurrent
  requests);
- MLServer 1.7.1 + mlserver-sklearn (in `.venv-mlserver`; `parallel_workers: 0`, inference in the
  server process as ours does) with the same pipeline as a joblib file, default settings.
All get the same OIP v2 request per batch size (one tensor per column, `outputs: [predict]`; the
pandas codec parameters for MLServer); their answers are checked equal before anything is timed.

Per batch size: throughput with `--threads` closed-loop clients (rounds alternate the servers,
best round kept), and latency percentiles at one fixed offered load (open loop: requests start on
schedule at `--rate` req/s whatever the server does; latency counts from the scheduled start, so a
server that falls behind shows it).

Run: .venv/bin/python benchmarks/serve_vs_mlserver.py [--threads 4] [--rounds 2] [--rate 20]
Setup: uv venv .venv-mlserver -p 3.11 && uv pip install --python .venv-mlserver/bin/python \
       'mlserver==1.7.1' 'mlserver-sklearn==1.7.1'
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_rollout import LOOPBACK, MLSERVER, NAME, build_models, free_port, mlserver, process

SIZES = (1, 10, 100, 1000)


def body(records: list[dict[str, Any]], rows: int, offset: int, pandas_codec: bool) -> bytes:
    chosen = [records[(offset + i) % len(records)] for i in range(rows)]
    inputs = []
    for key, value in chosen[0].items():
        text = isinstance(value, str)
        tensor: dict[str, Any] = {"name": key, "shape": [rows], "datatype": "BYTES" if text else "FP64",
                                  "data": [r[key] if text else float(r[key]) for r in chosen]}
        if pandas_codec and text:
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    request: dict[str, Any] = {"inputs": inputs, "outputs": [{"name": "predict"}]}
    if pandas_codec:
        request["parameters"] = {"content_type": "pd"}
    return json.dumps(request).encode()


def ours(model: Path, port: int, batching: bool) -> Any:
    command = [sys.executable, "-m", "mlops_bot", "serve", NAME, "--host", LOOPBACK, "--port", str(port),
               "--model", str(model), "--version", "v1.0.0"]
    if batching:
        command += ["--max-batch-rows", "4096", "--max-batch-delay-ms", "2"]
    return process(command, f"http://{LOOPBACK}:{port}/v2/health/ready")


def closed_loop(url: str, bodies: list[bytes], threads: int, requests: int, budget: float
                ) -> dict[str, float]:
    latencies: list[float] = []
    sent = 0
    failures = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + budget

    def work() -> None:
        nonlocal sent, failures
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=60, trust_env=False, headers=headers) as client:
            while True:
                with lock:
                    if sent >= requests or time.monotonic() > stop_at:
                        return
                    payload = bodies[sent % len(bodies)]
                    sent += 1
                began = time.perf_counter()
                ok = client.post(url, content=payload).status_code == 200
                with lock:
                    latencies.append(time.perf_counter() - began)
                    failures += not ok

    began = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - began
    return {"rps": len(latencies) / wall, "failures": failures, "requests": len(latencies)}


def open_loop(url: str, bodies: list[bytes], rate: float, requests: int) -> dict[str, float]:
    """Requests start at i / rate seconds; latency counts from that scheduled start."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    local = threading.local()

    def one(index: int) -> None:
        nonlocal failures
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60, trust_env=False,
                                                 headers={"content-type": "application/json"})
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ok = client.post(url, content=bodies[index % len(bodies)]).status_code == 200
        with lock:
            latencies.append(time.perf_counter() - scheduled)
            failures += not ok

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(requests)))
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99), "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=4, help="closed-loop clients")
    parser.add_argument("--requests", type=int, default=400, help="per throughput round, at most")
    parser.add_argument("--budget", type=float, default=12.0, help="seconds per throughput round, at most")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="offered load for the latency runs (req/s)")
    parser.add_argument("--latency-requests", type=int, default=200)
    args = parser.parse_args()
    if not MLSERVER.exists():
        print(f"MLServer is not installed at {MLSERVER}: see the setup line in this script's docstring")
        return 2
    with tempfile.TemporaryDirectory(prefix="serve-vs-mlserver-") as tmp:
        paths, records = build_models(Path(tmp) / "models")
        ports = {"mlops-bot": free_port(), "mlops-bot batching": free_port(), "MLServer": free_port()}
        urls = {label: f"http://{LOOPBACK}:{port}/v2/models/{NAME}/infer" for label, port in ports.items()}
        with ours(paths["v1.0.0"], ports["mlops-bot"], False), \
                ours(paths["v1.0.0"], ports["mlops-bot batching"], True), \
                mlserver(paths["mlserver"], ports["MLServer"]):
            table: list[dict[str, Any]] = []
            for rows in SIZES:
                plain = [body(records, rows, 7 * i, False) for i in range(8)]
                pandas = [body(records, rows, 7 * i, True) for i in range(8)]
                payloads = {"mlops-bot": plain, "mlops-bot batching": plain, "MLServer": pandas}
                answers = {label: httpx.post(url, content=payloads[label][0], trust_env=False, timeout=60,
                                             headers={"content-type": "application/json"}).json()
                           for label, url in urls.items()}
                predicted = {label: a["outputs"][0]["data"] for label, a in answers.items()}
                assert len(set(map(json.dumps, predicted.values()))) == 1, f"different answers at {rows} rows"
                for label, url in urls.items():  # warm-up
                    closed_loop(url, payloads[label], 2, 20, 10)
                best: dict[str, dict[str, float]] = {}
                for _ in range(args.rounds):
                    for label, url in urls.items():
                        run = closed_loop(url, payloads[label], args.threads, args.requests, args.budget)
                        if run["failures"]:
                            raise RuntimeError(f"{label}: {run['failures']} failed requests at {rows} rows")
                        if label not in best or run["rps"] > best[label]["rps"]:
                            best[label] = run
                latency = {label: open_loop(url, payloads[label], args.rate, args.latency_requests)
                           for label, url in urls.items()}
                row: dict[str, Any] = {"rows": rows, "throughput": best, "latency": latency}
                table.append(row)
                print(f"-- {rows} rows/request")
                for label in urls:
                    rps = best[label]["rps"]
                    print(f"{label:20s} {rps:8.1f} req/s ({rps * rows:9.0f} rows/s)"
                          f"   at {args.rate:g} req/s offered: p50 {latency[label]['p50_ms']:7.2f} ms"
                          f"  p99 {latency[label]['p99_ms']:7.2f} ms  failed {latency[label]['failures']}",
                          flush=True)
        print("\n| rows/request | mlops-bot req/s | with batching | MLServer req/s | ratio (default / "
              f"batching) | p99 at {args.rate:g} req/s: mlops-bot / batching / MLServer |")
        print("|---|---|---|---|---|---|")
        for row in table:
            t, lat = row["throughput"], row["latency"]
            ours_rps, batch_rps, ml_rps = (t[k]["rps"] for k in ("mlops-bot", "mlops-bot batching",
                                                                  "MLServer"))
            print(f"| {row['rows']} | {ours_rps:.1f} | {batch_rps:.1f} | {ml_rps:.1f} | "
                  f"{ours_rps / ml_rps:.2f}x / {batch_rps / ml_rps:.2f}x | "
                  f"{lat['mlops-bot']['p99_ms']:.1f} / {lat['mlops-bot batching']['p99_ms']:.1f} / "
                  f"{lat['MLServer']['p99_ms']:.1f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
