"""Feedback: labels join by request id, late, in batches, idempotently; over HTTP too."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI

from mlops_bot.errors import DataError
from mlops_bot.monitor.feedback import attach_labels, labels_from_file, make_router, router
from mlops_bot.monitor.log import PredictionLog, read_predictions


def _log(tmp_path: Path, n: int = 10) -> Path:
    with PredictionLog(tmp_path, flush_seconds=0) as log:
        for i in range(n):
            log.record(f"r{i}", "m", "v1.0.0", {"x": i}, i % 2, timestamp=float(i))
    return tmp_path


def test_labels_join_by_request_id_in_batches(tmp_path: Path) -> None:
    _log(tmp_path)
    first = attach_labels(tmp_path, [("r0", 0), ("r1", 1), ("r2", 1)], now=50.0)
    assert (first.received, first.changed, first.matched, first.unknown) == (3, 3, 3, 0)
    second = attach_labels(tmp_path, [("r5", 1), ("nope", 0)], now=60.0)
    assert (second.matched, second.unknown) == (1, 1)
    frame = read_predictions(tmp_path).set_index("request_id")
    assert frame.loc["r0", "label"] == 0 and frame.loc["r2", "label"] == 1
    assert frame.loc["r5", "label_ts"] == 60.0
    assert pd.isna(frame.loc["r3", "label"])
    assert "nope" not in frame.index  # labels never invent predictions


def test_attach_is_idempotent_and_latest_label_wins(tmp_path: Path) -> None:
    _log(tmp_path)
    attach_labels(tmp_path, [("r0", 0), ("r1", 1)], now=1.0)
    again = attach_labels(tmp_path, [("r0", 0), ("r1", 1)], now=2.0)
    assert again.changed == 0
    frame = read_predictions(tmp_path).set_index("request_id")
    assert frame.loc["r0", "label_ts"] == 1.0  # untouched by the resend
    fixed = attach_labels(tmp_path, [("r1", 0), ("r1", 1), ("r1", 0)], now=3.0)
    assert (fixed.received, fixed.stored, fixed.changed) == (3, 1, 1)
    assert read_predictions(tmp_path).set_index("request_id").loc["r1", "label"] == 0


def test_label_before_prediction_is_flushed_joins_later(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=100, flush_seconds=0)
    log.record("early", "m", "v1.0.0", {"x": 1}, 1)
    result = attach_labels(tmp_path, [("early", 1)])
    assert result.unknown == 1
    log.close()
    assert read_predictions(tmp_path).set_index("request_id").loc["early", "label"] == 1


def test_labels_from_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("id,label\nr1,1\nr2,0\n")
    assert labels_from_file(path) == [("r1", 1), ("r2", 0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nr1,\n")
    with pytest.raises(DataError, match="no 'label'"):
        labels_from_file(bad)
    with pytest.raises(DataError, match="lacks column"):
        (tmp_path / "wrong.csv").write_text("request,label\nr1,1\n")
        labels_from_file(tmp_path / "wrong.csv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


def test_feedback_endpoint_over_http(tmp_path: Path) -> None:
    _log(tmp_path)
    app = FastAPI()
    app.include_router(make_router(tmp_path), prefix="/v2")
    mounted = FastAPI()
    mounted.state.prediction_log_dir = tmp_path
    mounted.include_router(router)
    unconfigured = FastAPI()
    unconfigured.include_router(router)
    servers = [_serve(a) for a in (app, mounted, unconfigured)]
    try:
        url = servers[0][2]
        reply = httpx.post(f"{url}/v2/feedback", json={"labels": [{"id": "r3", "label": 1}]})
        assert reply.status_code == 200 and reply.json()["matched"] == 1
        reply = httpx.post(f"{servers[1][2]}/feedback", json={"labels": [{"id": "r4", "label": 0}]})
        assert reply.status_code == 200 and reply.json()["changed"] == 1
        assert httpx.post(f"{url}/v2/feedback", json={"labels": []}).status_code == 422
        assert httpx.post(f"{servers[2][2]}/feedback",
                          json={"labels": [{"id": "a", "label": 1}]}).status_code == 503
    finally:
        for server, thread, _ in servers:
            server.should_exit = True
            thread.join(timeout=10)
    frame = read_predictions(tmp_path).set_index("request_id")
    assert frame.loc["r3", "label"] == 1 and frame.loc["r4", "label"] == 0


def test_feedback_token_is_required_when_configured(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    _log(tmp_path)
    app = FastAPI()
    app.include_router(make_router(tmp_path, token="s3cret"), prefix="/v2")
    client = TestClient(app)
    body = {"labels": [{"id": "r3", "label": 1}]}
    assert client.post("/v2/feedback", json=body).status_code == 401
    assert client.post("/v2/feedback", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    reply = client.post("/v2/feedback", json=body, headers={"Authorization": "Bearer s3cret"})
    assert reply.status_code == 200 and reply.json()["matched"] == 1


def test_serving_a_log_beyond_loopback_needs_a_feedback_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.cli import main

    monkeypatch.delenv("MLOPS_BOT_FEEDBACK_TOKEN", raising=False)
    log_dir = tmp_path / "log"
    code = main(["serve", "credit", "--host", "0.0.0.0", "--log-dir", str(log_dir)])  # noqa: S104 - refused before binding
    assert code == 2 and "MLOPS_BOT_FEEDBACK_TOKEN" in capsys.readouterr().err
    assert not log_dir.exists()
