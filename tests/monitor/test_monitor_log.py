"""Prediction log: round trip, sampling, rotation, restart, sink, and crash safety under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from mlops_bot.monitor.log import (
    JsonLinesSink,
    PredictionLog,
    integrity_ok,
    list_segments,
    read_predictions,
    sampled,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_round_trip_features_become_columns(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_rows=3, flush_seconds=0) as log:
        for i in range(5):
            assert log.record(f"r{i}", "credit", "v1.0.0", {"age": 30 + i, "city": "x"}, i % 2,
                              timestamp=100.0 + i)
        # Three rows are committed by the batch size; two still wait in memory.
        assert len(read_predictions(tmp_path)) == 3
    frame = read_predictions(tmp_path)
    assert list(frame["request_id"]) == [f"r{i}" for i in range(5)]
    assert list(frame["age"]) == [30, 31, 32, 33, 34]
    assert list(frame["prediction"]) == [0, 1, 0, 1, 0]
    assert frame["label"].isna().all()
    assert set(frame.columns) >= {"timestamp", "model", "version", "label_ts", "city"}


def test_window_and_model_filters(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_seconds=0) as log:
        for i in range(10):
            log.record(f"a{i}", "m1", "v1.0.0", {"x": i}, 0, timestamp=float(i))
            log.record(f"b{i}", "m2", "v2.0.0", {"x": i}, 1, timestamp=float(i))
    frame = read_predictions(tmp_path, since=3, until=6, model="m1")
    assert list(frame["request_id"]) == ["a3", "a4", "a5"]
    assert len(read_predictions(tmp_path, version="v2.0.0")) == 10


def test_sampling_is_deterministic_and_close_to_rate(tmp_path: Path) -> None:
    ids = [f"req-{i}" for i in range(4000)]
    kept = [i for i in ids if sampled(i, 0.25)]
    assert 0.22 < len(kept) / len(ids) < 0.28
    assert kept == [i for i in ids if sampled(i, 0.25)]
    with PredictionLog(tmp_path, sample_rate=0.25, flush_seconds=0) as log:
        results = [log.record(i, "m", "v1.0.0", {"x": 1}, 0) for i in ids[:400]]
    assert sum(results) == len(read_predictions(tmp_path))
    assert set(read_predictions(tmp_path)["request_id"]) == {i for i in ids[:400] if sampled(i, 0.25)}


def test_rotation_by_size(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, rotate_bytes=16 * 1024, flush_rows=50, flush_seconds=0) as log:
        for i in range(2000):
            log.record(f"r{i}", "m", "v1.0.0", {"text": "x" * 40, "i": i}, i, timestamp=float(i))
    segments = list_segments(tmp_path)
    assert len(segments) > 3
    # Closed segments hold their data in the main file (WAL folded in), near the size limit.
    for path in segments[:-1]:
        assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    frame = read_predictions(tmp_path)
    assert len(frame) == 2000 and frame["request_id"].is_unique
    assert list(frame["i"]) == list(range(2000))


def test_rotation_by_time_and_resume(tmp_path: Path) -> None:
    clock = FakeClock()
    log = PredictionLog(tmp_path, rotate_seconds=60, flush_rows=1, flush_seconds=0, clock=clock)
    log.record("a", "m", "v1.0.0", {"x": 1}, 0)
    clock.now += 30
    log.record("b", "m", "v1.0.0", {"x": 1}, 0)
    assert len(list_segments(tmp_path)) == 1
    clock.now += 31
    log.record("c", "m", "v1.0.0", {"x": 1}, 0)  # flushed into segment 1, which is now too old
    assert len(list_segments(tmp_path)) == 2
    log.close()
    # A restarted writer continues the young last segment instead of starting another one.
    clock.now += 10
    log = PredictionLog(tmp_path, rotate_seconds=60, flush_rows=1, flush_seconds=0, clock=clock)
    log.record("d", "m", "v1.0.0", {"x": 1}, 0)
    log.close()
    assert len(list_segments(tmp_path)) == 2
    assert list(read_predictions(tmp_path)["request_id"]) == ["a", "b", "c", "d"]


def test_background_flush_by_time(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_rows=1000, flush_seconds=0.05) as log:
        log.record("only", "m", "v1.0.0", {"x": 1}, 0)
        for _ in range(200):  # awaits the event with a bounded poll, no fixed sleep
            if len(read_predictions(tmp_path)) == 1:
                break
            threading.Event().wait(0.01)
        assert len(read_predictions(tmp_path)) == 1


def test_duplicate_request_id_is_logged_once(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, flush_seconds=0) as log:
        log.record("same", "m", "v1.0.0", {"x": 1}, 0)
        log.record("same", "m", "v1.0.0", {"x": 2}, 1)
    frame = read_predictions(tmp_path)
    assert len(frame) == 1 and frame["x"].iloc[0] == 1


def test_thread_safe_concurrent_writers(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=7, rotate_bytes=32 * 1024, flush_seconds=0)

    def write(prefix: str) -> None:
        for i in range(300):
            log.record(f"{prefix}-{i}", "m", "v1.0.0", {"i": i}, i)

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(read_predictions(tmp_path)) == 1200
    assert integrity_ok(tmp_path)


def test_sink_receives_each_flushed_batch(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "export" / "predictions.jsonl")
    with PredictionLog(tmp_path / "log", flush_rows=2, flush_seconds=0, sink=sink) as log:
        for i in range(3):
            log.record(f"r{i}", "m", "v1.0.0", {"x": i}, i)
    lines = (tmp_path / "export" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["r0", "r1", "r2"]


_WRITER = textwrap.dedent(
    """
    import sys
    from mlops_bot.monitor.log import PredictionLog
    log = PredictionLog(sys.argv[1], flush_rows=50, flush_seconds=0, rotate_bytes=64 * 1024)
    i = 0
    while True:
        log.record(f"r{i}", "m", "v1.0.0", {"x": i, "pad": "y" * 64}, i)
        i += 1
        if i % 50 == 0:
            print(i, flush=True)  # the batch ending at i is committed
    """
)


def test_killed_writer_loses_at_most_the_unflushed_batch(tmp_path: Path) -> None:
    store = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = 0
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 1500:  # several rotations have happened; the writer is mid-stream
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(list_segments(store)) >= 2
    assert integrity_ok(store)
    frame = read_predictions(store)
    # Every committed batch survived, whole batches only, in order and without gaps.
    assert len(frame) >= committed
    assert len(frame) % 50 == 0
    assert list(frame["x"]) == list(range(len(frame)))
    # A new writer can continue on the same store.
    with PredictionLog(store, flush_seconds=0) as log:
        log.record("after-crash", "m", "v1.0.0", {"x": -1}, 0)
    assert "after-crash" in set(read_predictions(store)["request_id"])


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    from mlops_bot.errors import DataError

    with pytest.raises(DataError, match="does not exist"):
        read_predictions(tmp_path / "nope")
