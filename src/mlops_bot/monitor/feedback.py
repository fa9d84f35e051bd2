"""Feedback: true labels arriving late, in batches, attached to logged predictions by request id.

Labels are kept apart from the prediction segments (`labels.sqlite` next to them) so a label can
arrive before its prediction was flushed, after its segment was rotated, or twice: attaching is an
idempotent upsert keyed by request id (the latest label wins). Readers join on request id.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from mlops_bot.dataset import read_table, require_columns
from mlops_bot.errors import DataError
from mlops_bot.monitor.log import LABELS_DDL, LABELS_FILE, list_segments


class LabelIn(BaseModel):
    id: str = Field(min_length=1, max_length=512)
    label: Any


class FeedbackRequest(BaseModel):
    labels: list[LabelIn] = Field(min_length=1, max_length=100_000)


class FeedbackResult(BaseModel):
    """What happened to a batch: `matched` labels belong to a logged prediction; `unknown` ones are
    kept anyway (the prediction may still be in the writer's buffer) and join once it lands."""

    received: int
    stored: int
    changed: int
    matched: int
    unknown: int


def _known_ids(directory: Path, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for path in list_segments(directory):
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30.0)) as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                try:
                    rows = conn.execute(
                        f"SELECT request_id FROM predictions WHERE request_id IN ({marks})",  # noqa: S608
                        chunk,
                    ).fetchall()
                except sqlite3.OperationalError:
                    rows = []
                found.update(r[0] for r in rows)
    return found


def attach_labels(
    directory: str | Path, labels: Iterable[tuple[str, Any]], *, now: float | None = None
) -> FeedbackResult:
    """Upsert (request_id, label) pairs. Re-sending the same batch changes nothing."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.time() if now is None else float(now)
    latest: dict[str, str] = {}
    received = 0
    for request_id, label in labels:
        received += 1
        latest[str(request_id)] = json.dumps(_plain(label), separators=(",", ":"))
    changed = 0
    with closing(sqlite3.connect(directory / LABELS_FILE, timeout=30.0, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(LABELS_DDL)
        conn.execute("BEGIN IMMEDIATE")
        try:
            existing: dict[str, str] = {}
            keys = list(latest)
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                existing.update(conn.execute(
                    f"SELECT request_id, label FROM labels WHERE request_id IN ({marks})", chunk  # noqa: S608
                ).fetchall())
            rows = [(k, v, stamp) for k, v in latest.items() if existing.get(k) != v]
            changed = len(rows)
            conn.executemany(
                "INSERT INTO labels (request_id, label, label_ts) VALUES (?, ?, ?) "
                "ON CONFLICT(request_id) DO UPDATE SET label = excluded.label, label_ts = excluded.label_ts",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    matched = len(_known_ids(directory, list(latest)))
    return FeedbackResult(
        received=received, stored=len(latest), changed=changed, matched=matched,
        unknown=len(latest) - matched,
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN: no label
        raise DataError("a label is missing (NaN); drop unlabeled rows before sending feedback")
    return value


def labels_from_file(path: str | Path, id_column: str = "id", label_column: str = "label"
                     ) -> list[tuple[str, Any]]:
    """Read an `id,label` CSV or Parquet file."""
    frame = read_table(path, "labels")
    require_columns(frame, [id_column, label_column], f"labels file {path}")
    if frame[label_column].isna().any():
        missing = int(frame[label_column].isna().sum())
        raise DataError(f"labels file {path}: {missing} row(s) have no {label_column!r}; drop them first")
    ids = frame[id_column].astype(str)
    values = frame[label_column].tolist()
    return list(zip(ids, values, strict=True))


# ----------------------------------------------------------------------------------- endpoint
def make_router(directory: str | Path, token: str | None = None) -> APIRouter:
    """`POST /feedback` with `{"labels": [{"id": ..., "label": ...}, ...]}` for a given log dir.

    Labels decide decay verdicts and retraining, so beyond loopback the endpoint needs a bearer
    `token` (compared in constant time): anyone who can post labels could otherwise steer both."""
    router = APIRouter()
    log_dir = Path(directory)

    @router.post("/feedback", response_model=FeedbackResult)
    def feedback(body: FeedbackRequest, request: Request) -> FeedbackResult:
        if token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                raise HTTPException(status_code=401, detail="missing or wrong feedback token")
        return _attach(log_dir, body)

    return router


router = APIRouter()


@router.post("/feedback", response_model=FeedbackResult)
def feedback_endpoint(body: FeedbackRequest, request: Request) -> FeedbackResult:
    """For servers that mount this module's router: the log directory comes from
    `app.state.prediction_log_dir`, or the directory of `app.state.prediction_log`."""
    state = request.app.state
    directory = getattr(state, "prediction_log_dir", None)
    if directory is None and getattr(state, "prediction_log", None) is not None:
        directory = state.prediction_log.directory
    if directory is None:
        raise HTTPException(status_code=503, detail="this server does not keep a prediction log")
    return _attach(Path(directory), body)


def _attach(directory: Path, body: FeedbackRequest) -> FeedbackResult:
    try:
        return attach_labels(directory, ((item.id, item.label) for item in body.labels))
    except DataError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None

