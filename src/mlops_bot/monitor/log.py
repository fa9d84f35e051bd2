"""The prediction log: what the model server saw and answered, kept for drift checks and label joins.

Storage is a directory of numbered SQLite segments (`predictions-000001.sqlite`, ...) in WAL mode.
Rows are buffered in memory and written one batch per transaction, so a killed writer loses at
most the batch it had not flushed yet and the committed segments stay readable (SQLite's journal
guarantees that; we never rewrite a file in place). A segment is closed and a new one started when
it grows past `rotate_bytes` or gets older than `rotate_seconds`. Labels arrive later through
`mlops_bot.monitor.feedback` and live in `labels.sqlite` in the same directory; readers join them
by request id. The schema is documented in docs/monitoring.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_bot.errors import DataError

SEGMENT_PATTERN = re.compile(r"^predictions-(\d{6})\.sqlite$")
LABELS_FILE = "labels.sqlite"
SCHEMA_VERSION = 1

_SEGMENT_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY,
    timestamp  REAL NOT NULL,
    model      TEXT NOT NULL,
    version    TEXT NOT NULL,
    features   TEXT NOT NULL,
    prediction TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_timestamp ON predictions (timestamp);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

LABELS_DDL = """
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    label_ts   REAL NOT NULL
);
"""


@dataclass(frozen=True)
class PredictionRecord:
    """One logged prediction, as buffered and as handed to an optional sink."""

    request_id: str
    timestamp: float
    model: str
    version: str
    features: dict[str, Any]
    prediction: Any


Sink = Callable[[Sequence[PredictionRecord]], None]


def sampled(request_id: str, sample_rate: float) -> bool:
    """Deterministic sampling by request id: the same request is always in or always out, so a
    retried request and its later label agree on whether it was logged."""
    if sample_rate >= 1.0:
        return True
    if sample_rate <= 0.0:
        return False
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < sample_rate


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays reach us from model servers; store them as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"), allow_nan=True)


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"predictions-{number:06d}.sqlite"


def list_segments(directory: str | Path) -> list[Path]:
    """Segment files in write order."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = SEGMENT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class JsonLinesSink:
    """An optional sink for teams that ship logs elsewhere (a log agent tailing a file): one JSON
    object per prediction, appended per flushed batch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: Sequence[PredictionRecord]) -> None:
        lines = "".join(
            _dumps({
                "request_id": r.request_id, "timestamp": r.timestamp, "model": r.model,
                "version": r.version, "features": r.features, "prediction": r.prediction,
            }) + "\n"
            for r in batch
        )
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines)


class PredictionLog:
    """Append-only, thread-safe prediction log. `record` buffers; a batch is committed when it
    reaches `flush_rows`, when the oldest buffered row is `flush_seconds` old (background flusher),
    on `flush()` and on `close()`."""

    def __init__(
        self,
        directory: str | Path,
        *,
        sample_rate: float = 1.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 86400.0,
        flush_rows: int = 100,
        flush_seconds: float = 5.0,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError("sample_rate must be in (0, 1]")
        if flush_rows < 1:
            raise ValueError("flush_rows must be at least 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.sink = sink
        self._clock = clock
        self._lock = threading.RLock()
        self._buffer: list[PredictionRecord] = []
        self._buffer_since: float | None = None
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._segment_number = 0
        self._segment_created = 0.0
        self._open_segment(resume=True)
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_seconds > 0:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="prediction-log-flush", daemon=True
            )
            self._flusher.start()

    # ----------------------------------------------------------------------------- segments
    @property
    def segment(self) -> Path:
        return segment_path(self.directory, self._segment_number)

    def _open_segment(self, *, resume: bool) -> None:
        existing = list_segments(self.directory)
        if resume and existing:
            last = existing[-1]
            number = int(SEGMENT_PATTERN.match(last.name).group(1))  # type: ignore[union-attr]
            conn = _connect(last)
            conn.executescript(_SEGMENT_DDL)
            row = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
            created = float(row[0]) if row else self._clock()
            self._conn, self._segment_number, self._segment_created = conn, number, created
            if not self._should_rotate():
                return
            self._close_segment()
        number = (int(SEGMENT_PATTERN.match(existing[-1].name).group(1)) if existing else 0)  # type: ignore[union-attr]
        number = max(number, self._segment_number) + 1
        conn = _connect(segment_path(self.directory, number))
        conn.executescript(_SEGMENT_DDL)
        created = self._clock()
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('created_at', ?), ('schema_version', ?)",
            (repr(created), str(SCHEMA_VERSION)),
        )
        self._conn, self._segment_number, self._segment_created = conn, number, created

    def _segment_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            path = Path(str(self.segment) + suffix)
            if path.exists():
                total += path.stat().st_size
        return total

    def _should_rotate(self) -> bool:
        if self._clock() - self._segment_created >= self.rotate_seconds:
            return True
        return self._segment_bytes() >= self.rotate_bytes

    def _close_segment(self) -> None:
        if self._conn is not None:
            # Fold the WAL into the main file so a closed segment is one self-contained file.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------------------ writing
    def record(
        self,
        request_id: str,
        model: str,
        version: str,
        features: dict[str, Any],
        prediction: Any,
        timestamp: float | None = None,
    ) -> bool:
        """Buffer one prediction; returns False when sampling left it out."""
        if not sampled(request_id, self.sample_rate):
            return False
        row = PredictionRecord(
            request_id=str(request_id),
            timestamp=float(self._clock() if timestamp is None else timestamp),
            model=model,
            version=version,
            features=dict(features),
            prediction=prediction,
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("prediction log is closed")
            self._buffer.append(row)
            if self._buffer_since is None:
                self._buffer_since = self._clock()
            if len(self._buffer) >= self.flush_rows:
                self._flush_locked()
        return True

    def flush(self) -> int:
        """Commit the buffered rows; returns how many were written."""
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        if not self._buffer or self._conn is None:
            return 0
        batch, self._buffer, self._buffer_since = self._buffer, [], None
        rows = [
            (r.request_id, r.timestamp, r.model, r.version, _dumps(r.features), _dumps(r.prediction))
            for r in batch
        ]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO predictions "
                "(request_id, timestamp, model, version, features, prediction) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if self.sink is not None:
            self.sink(batch)
        if self._should_rotate():
            self._close_segment()
            self._open_segment(resume=False)
        return len(rows)

    def _flush_loop(self) -> None:
        interval = max(min(self.flush_seconds / 2, 1.0), 0.01)
        while not self._stop.wait(interval):
            with self._lock:
                if self._closed:
                    return
                since = self._buffer_since
                if since is not None and self._clock() - since >= self.flush_seconds:
                    self._flush_locked()
                elif not self._buffer and self._clock() - self._segment_created >= self.rotate_seconds:
                    self._close_segment()
                    self._open_segment(resume=False)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            self._closed = True
            self._close_segment()
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------- reading
def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


_SELECT = "SELECT request_id, timestamp, model, version, features, prediction FROM predictions"


def read_predictions(
    directory: str | Path,
    *,
    since: float | None = None,
    until: float | None = None,
    model: str | None = None,
    version: str | None = None,
    with_labels: bool = True,
) -> pd.DataFrame:
    """Logged predictions in [since, until) as one frame: request_id, timestamp, model, version,
    prediction, label, label_ts, then one column per feature. Readable while a writer is running."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"prediction log {directory} does not exist (is the model server logging there?)")
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("model", model), ("version", version)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("timestamp >= ?")
        params.append(since)
    if until is not None:
        clauses.append("timestamp < ?")
        params.append(until)
    # Only fixed column names go into the text; every value is a bound parameter.
    query = _SELECT + ((" WHERE " + " AND ".join(clauses)) if clauses else "")
    records: list[tuple[Any, ...]] = []
    for path in list_segments(directory):
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            with closing(sqlite3.connect(uri, uri=True, timeout=30.0)) as conn:
                records.extend(conn.execute(query, params).fetchall())
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):  # a segment created but not yet initialised
                continue
            raise DataError(f"prediction log segment {path} cannot be read: {exc}") from None
    records = _dedup(records)
    base = pd.DataFrame(
        {
            "request_id": pd.Series([r[0] for r in records], dtype="object"),
            "timestamp": pd.Series([r[1] for r in records], dtype="float64"),
            "model": pd.Series([r[2] for r in records], dtype="object"),
            "version": pd.Series([r[3] for r in records], dtype="object"),
            "prediction": pd.Series([_loads(r[5]) for r in records], dtype="object"),
        }
    )
    features = pd.DataFrame([json.loads(r[4]) for r in records], index=base.index)
    labels = read_labels(directory) if with_labels else None
    if labels is None or labels.empty:
        base["label"] = pd.Series([None] * len(base), dtype="object")
        base["label_ts"] = pd.Series([math.nan] * len(base), dtype="float64")
    else:
        base = base.merge(labels, on="request_id", how="left")
        base.index = features.index
    clash = [c for c in features.columns if c in base.columns]
    features = features.rename(columns={c: f"feature.{c}" for c in clash})
    frame = pd.concat([base, features], axis=1)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _dedup(records: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    seen: set[str] = set()
    out = []
    for row in records:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


def read_labels(directory: str | Path) -> pd.DataFrame:
    """All labels received so far: request_id, label (decoded JSON), label_ts."""
    path = Path(directory) / LABELS_FILE
    if not path.exists():
        return pd.DataFrame({"request_id": [], "label": [], "label_ts": []})
    with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30.0)) as conn:
        rows = conn.execute("SELECT request_id, label, label_ts FROM labels").fetchall()
    return pd.DataFrame({
        "request_id": [r[0] for r in rows],
        "label": pd.Series([_loads(r[1]) for r in rows], dtype="object"),
        "label_ts": pd.Series([r[2] for r in rows], dtype="float64"),
    })


def integrity_ok(directory: str | Path) -> bool:
    """`PRAGMA integrity_check` on every segment: what the crash-safety promise is about."""
    for path in list_segments(directory):
        with closing(sqlite3.connect(path)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return False
    return True
