"""The stored analysis files (data schema, reference profile) round-trip exactly and every way a file
can be bad is one DataError that names the kind of file and its path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_bot.analysis.data_schema import DataSchema, infer_schema
from mlops_bot.analysis.profile import ReferenceProfile, build_profile
from mlops_bot.errors import DataError

FRAME = pd.DataFrame({"x": np.arange(50, dtype=float), "c": ["a", "b"] * 25, "y": [0, 1] * 25})


def documents() -> list[tuple[type[DataSchema] | type[ReferenceProfile], DataSchema | ReferenceProfile]]:
    return [
        (DataSchema, infer_schema(FRAME, target="y", classification=True)),
        (ReferenceProfile, build_profile(FRAME, seed=3)),
    ]


@pytest.mark.parametrize("index", [0, 1])
def test_round_trip_is_exact_and_strict_json(tmp_path: Path, index: int) -> None:
    cls, doc = documents()[index]
    path = doc.save(tmp_path / "deep" / "doc.json")
    text = path.read_text(encoding="utf-8")
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert cls.load(path) == doc


@pytest.mark.parametrize("index", [0, 1])
def test_each_bad_file_is_one_named_error(tmp_path: Path, index: int) -> None:
    cls, doc = documents()[index]
    name = cls.document_name
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match=f"^{name} {missing} does not exist$"):
        cls.load(missing)

    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff{not json")
    with pytest.raises(DataError, match=f"^{name} {garbage} cannot be read: "):
        cls.load(garbage)

    data = doc.model_dump(mode="json")
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**data, "schema_version": 2}), encoding="utf-8")
    expected = f"^{name} {future} has schema_version 2; this mlops-bot reads version 1"
    with pytest.raises(DataError, match=expected):
        cls.load(future)

    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match="has schema_version None"):
        cls.load(listed)

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**data, "columns": "not a mapping"}), encoding="utf-8")
    with pytest.raises(DataError, match=f"^{name} {broken} is malformed: "):
        cls.load(broken)


def test_the_profile_says_how_to_rebuild_it(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"schema_version": 0}), encoding="utf-8")
    with pytest.raises(DataError, match=r"\(rebuild it with build_profile\)$"):
        ReferenceProfile.load(path)
