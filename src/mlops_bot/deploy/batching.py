"""Adaptive batching: concurrent requests for one model version are scored in one `predict` call.

A scikit-learn pipeline pays a fixed cost per call (input validation, a ColumnTransformer's column
selection, ...) that dwarfs the per-row cost up to hundreds of rows, so requests that arrive while
the model is busy are joined: the worker takes the first waiting request, then whatever else arrives
until `max_rows` rows are gathered or `max_delay` seconds have passed since that first request, and
scores them together. Off by default (`BatchPolicy()`), for strict per-request latency.

If the joined call fails, each request of the batch is scored alone, so one request that makes the
model fail never fails the others (and only its own failure counts against the version).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Scored = tuple[list[Any], list[list[float]] | None]


@dataclass(frozen=True)
class BatchPolicy:
    """`max_rows` 0 turns batching off; `max_delay` (seconds) is how long the first request of a
    batch may wait for company."""

    max_rows: int = 0
    max_delay: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.max_rows > 1


@dataclass
class _Pending:
    frame: pd.DataFrame
    with_proba: bool
    arrived: float
    result: Future[Scored] = field(default_factory=Future)


def join_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames with the same columns, one after the other (column by column: several times cheaper
    than pd.concat for the small frames requests carry)."""
    if len(frames) == 1:
        return frames[0]
    data: dict[str, Any] = {}
    for name in frames[0].columns:
        parts = [frame[name].to_numpy() for frame in frames]
        joined = np.concatenate(parts)
        data[name] = pd.Series(joined, dtype=object, copy=False) if joined.dtype == object else joined
    return pd.DataFrame(data, copy=False)


class Batcher:
    """One worker thread per model version, fed by `score` from any number of request threads."""

    def __init__(self, model: Any, policy: BatchPolicy) -> None:
        self.model = model
        self.policy = policy
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self.calls = 0  # predict calls made for batches of more than one request
        self.joined = 0  # requests answered from such a call
        self._worker = threading.Thread(target=self._run, name=f"batch-{model.version}", daemon=True)
        self._worker.start()

    def score(self, frame: pd.DataFrame, with_proba: bool) -> Scored:
        """Predictions (and probabilities when asked) for `frame`; raises what the model raised."""
        pending = _Pending(frame, with_proba, time.monotonic())
        self._queue.put(pending)
        return pending.result.result()

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            rows = len(first.frame)
            deadline = first.arrived + self.policy.max_delay
            stop = False
            while rows < self.policy.max_rows:
                wait = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                rows += len(item.frame)
            self._score(batch)
            if stop:
                return

    def _score(self, batch: list[_Pending]) -> None:
        if len(batch) > 1:
            try:
                frame = join_frames([p.frame for p in batch])
                predictions = self.model.predict(frame)
                proba = self.model.predict_proba(frame) if any(p.with_proba for p in batch) else None
            except Exception:  # noqa: S110 - some request made the model fail: score them one by one
                pass
            else:
                self.calls += 1
                self.joined += len(batch)
                start = 0
                for pending in batch:
                    end = start + len(pending.frame)
                    pending.result.set_result(
                        (predictions[start:end], proba[start:end] if proba is not None and pending.with_proba
                         else None))
                    start = end
                return
        for pending in batch:
            try:
                predictions = self.model.predict(pending.frame)
                proba = self.model.predict_proba(pending.frame) if pending.with_proba else None
            except Exception as exc:
                pending.result.set_exception(exc)
            else:
                pending.result.set_result((predictions, proba))
