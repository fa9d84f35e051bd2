"""Malformed and hostile inference requests, each with the status and the words of the error the
server must answer: shared by the conformance table and the hostile-canary rollout test."""

from __future__ import annotations

import json
from typing import Any


def columns(rows: int = 2, **override: Any) -> dict[str, Any]:
    inputs = {
        "income": {
            "name": "income",
            "shape": [rows],
            "datatype": "FP64",
            "data": [50.0 + i for i in range(rows)],
        },
        "age": {"name": "age", "shape": [rows], "datatype": "FP64", "data": [30.0 + i for i in range(rows)]},
        "region": {"name": "region", "shape": [rows], "datatype": "BYTES", "data": ["north"] * rows},
    }
    for name, changes in override.items():
        inputs[name] = {**inputs[name], **changes}
    return {"inputs": list(inputs.values())}



HOSTILE: list[tuple[str, Any, int, str]] = [
    # (case, body or raw bytes, status, words the error must contain)
    (
        "int with fraction",
        columns(age={"datatype": "INT64", "data": [35.7, 40]}),
        400,
        "INT64 and holds 35.7",
    ),
    ("null numeric", columns(age={"data": [None, 40.0]}), 400, "input 'age' has a missing value"),
    (
        "NaN literal",
        b'{"inputs":[{"name":"income","shape":[1],"datatype":"FP64","data":[NaN]},'
        b'{"name":"age","shape":[1],"datatype":"FP64","data":[1]},'
        b'{"name":"region","shape":[1],"datatype":"BYTES","data":["north"]}]}',
        400,
        "input 'income' has a missing value",
    ),
    (
        "Infinity literal",
        b'{"inputs":[{"name":"income","shape":[1],"datatype":"FP64","data":[-Infinity]},'
        b'{"name":"age","shape":[1],"datatype":"FP64","data":[1]},'
        b'{"name":"region","shape":[1],"datatype":"BYTES","data":["north"]}]}',
        400,
        "input 'income' holds -inf",
    ),
    (
        "1e999",
        b'{"inputs":[{"name":"income","shape":[1],"datatype":"FP64","data":[1e999]},'
        b'{"name":"age","shape":[1],"datatype":"FP64","data":[1]},'
        b'{"name":"region","shape":[1],"datatype":"BYTES","data":["north"]}]}',
        400,
        "input 'income' holds inf",
    ),
    ("string in numbers", columns(age={"data": ["old", 3.0]}), 400, "input 'age' is FP64 and holds \"old\""),
    ("bool in numbers", columns(age={"data": [True, 3.0]}), 400, "input 'age' is FP64 and holds true/false"),
    (
        "number as category",
        columns(region={"datatype": "INT64", "data": [1, 2]}),
        400,
        "feature 'region' takes strings",
    ),
    (
        "null category",
        columns(region={"data": [None, "north"]}),
        400,
        "input 'region' is BYTES and holds null",
    ),
    (
        "UINT8 out of range",
        columns(age={"datatype": "UINT8", "data": [300, 2]}),
        400,
        "outside the range of UINT8",
    ),
    (
        "huge integer",
        columns(age={"datatype": "INT64", "data": [2**80, 1]}),
        400,
        "outside the range of INT64",
    ),
    ("shape vs data", columns(age={"shape": [3]}), 400, "input 'age' has 2 values but shape [3]"),
    ("shape vs metadata", columns(age={"shape": [1, 2]}), 400, "model's metadata gives [-1]"),
    ("rows differ", columns(age={"shape": [1], "data": [1.0]}), 400, "same number of rows"),
    (
        "unknown input",
        {"inputs": [*columns()["inputs"], {"name": "zip", "shape": [2], "datatype": "FP64", "data": [1, 2]}]},
        400,
        "unknown input(s) 'zip'",
    ),
    (
        "duplicate input",
        {"inputs": [*columns()["inputs"], columns()["inputs"][0]]},
        400,
        "input 'income' is given twice",
    ),
    (
        "missing input",
        {"inputs": columns()["inputs"][:2]},
        400,
        "missing input tensor(s) for feature(s): region",
    ),
    ("unknown output", {**columns(), "outputs": [{"name": "explain"}]}, 400, "unknown output 'explain'"),
    (
        "duplicate output",
        {**columns(), "outputs": [{"name": "predict"}, {"name": "predict"}]},
        400,
        "requested twice",
    ),
    ("unknown datatype", columns(age={"datatype": "FLOAT"}), 400, "unknown datatype 'FLOAT'"),
    ("negative shape", columns(age={"shape": [-2]}), 400, "non-negative integers"),
    ("ragged data", columns(age={"shape": [2, 1], "data": [[1.0], [2.0, 3.0]]}), 400, "ragged"),
    ("deep data", columns(age={"data": json.loads("[" * 200 + "1" + "]" * 200)}), 400, "input 'age'"),
    ("deep body", b"[" * 100_000 + b"]" * 100_000, 400, "nests JSON too deeply"),
    ("not json", b"{inputs", 400, "not valid JSON"),
    ("not utf-8", b'{"inputs": "\xff"}', 400, "not valid JSON"),
    ("no inputs", {"inputs": []}, 400, "expected an inference request"),
    ("id not a string", {**columns(), "id": 7}, 400, "'id' must be a string"),
    ("empty rows", columns(0), 400, "no rows"),
]


