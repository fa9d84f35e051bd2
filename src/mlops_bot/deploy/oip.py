"""Open Inference Protocol v2 conversion and validation, as pure functions: a request body (already
parsed JSON) -> the model's input frame, and predictions -> response tensors and metadata. The
`/predict` records body shares the value checks. Nothing here touches a model, a file or a socket."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.deploy.signature import FeatureSpec
from mlops_bot.errors import MlopsError

_OIP_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                "FP16", "FP32", "FP64"}
_OIP_TYPES = _OIP_NUMERIC | {"BYTES"}


class BadRequest(MlopsError):
    """The client sent something the model cannot score; answered with HTTP 400/422."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def frame_from_records(records: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """`/predict` body: {"records": [{feature: value}, ...]} or a bare list of such objects."""
    if isinstance(records, dict):
        records = records.get("records", records.get("instances"))
    if not isinstance(records, list) or not records:
        raise BadRequest('expected {"records": [{"feature": value, ...}, ...]} with at least one record')
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index} is not an object of feature values")
        missing = [f.name for f in features if f.name not in record]
        if missing:
            raise BadRequest(f"record {index} is missing feature(s): {', '.join(missing)}")
        for spec in features:
            columns[spec.name].append(_check_value(record[spec.name], spec, f"record {index}"))
    return _frame(columns, features)


def frame_from_oip(body: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """OIP v2 inference request: one tensor per feature (named like the feature), or one 2-D tensor
    with a column per feature in the model's order."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest('expected an inference request {"inputs": [{"name", "shape", "datatype", "data"}]}')
    tensors = []
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            raise BadRequest(f"inputs[{index}] is not a tensor object")
        for key in ("name", "shape", "datatype", "data"):
            if key not in tensor:
                raise BadRequest(f"inputs[{index}] lacks '{key}'")
        if tensor["datatype"] not in _OIP_TYPES:
            raise BadRequest(f"inputs[{index}] has unknown datatype {tensor['datatype']!r}")
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequest(f"inputs[{index}].shape must be a list of non-negative integers")
        data = _flatten(tensor["data"])
        if math.prod(shape) != len(data):
            raise BadRequest(f"inputs[{index}] has {len(data)} values but shape {shape}")
        tensors.append((str(tensor["name"]), shape, tensor["datatype"], data))

    by_name = {name: (shape, dtype, data) for name, shape, dtype, data in tensors}
    names = [f.name for f in features]
    columns: dict[str, list[Any]] = {}
    if len(tensors) == 1 and tensors[0][0] not in names:
        name, shape, dtype, data = tensors[0]
        if len(shape) != 2 or shape[1] != len(features):
            raise BadRequest(
                f"tensor {name!r} must have shape [rows, {len(features)}] (one column per feature: "
                f"{', '.join(names)}), got {shape}"
            )
        rows = shape[0]
        for col, spec in enumerate(features):
            columns[spec.name] = [_check_value(data[r * shape[1] + col], spec, f"tensor {name!r}")
                                  for r in range(rows)]
    else:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadRequest(f"missing input tensor(s) for feature(s): {', '.join(missing)}")
        lengths = {len(by_name[n][2]) for n in names}
        if len(lengths) != 1:
            raise BadRequest("all feature tensors must hold the same number of rows")
        for spec in features:
            shape, dtype, data = by_name[spec.name]
            if spec.kind == "numeric" and dtype == "BYTES":
                raise BadRequest(f"feature {spec.name!r} is numeric but was sent as BYTES")
            columns[spec.name] = [_check_value(v, spec, f"tensor {spec.name!r}") for v in data]
    if not next(iter(columns.values()), []):
        raise BadRequest("the request holds no rows")
    return _frame(columns, features)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest("tensor data must be a (possibly nested) list")
    if not any(isinstance(item, list) for item in data):
        return data  # already flat: the common case, no copy
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _check_value(value: Any, spec: FeatureSpec, where: str) -> Any:
    if spec.kind == "numeric":
        if value is None:
            return np.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: feature {spec.name!r} must be a number, got {value!r}", status=422)
        return value
    if value is not None and not isinstance(value, str | int | float | bool):
        raise BadRequest(
            f"{where}: feature {spec.name!r} must be a string or number, got {value!r}", status=422
        )
    return value


def _frame(columns: dict[str, list[Any]], features: list[FeatureSpec]) -> pd.DataFrame:
    """Numeric columns float64, the others object (pandas 3 would otherwise infer its string
    dtype), each column built once with its final dtype: converting columns of an inferred frame
    one by one cost ~1 ms per request, several times this."""
    data: dict[str, Any] = {}
    for spec in features:
        values = columns[spec.name]
        if spec.kind == "numeric":
            data[spec.name] = np.array(values, dtype=float)
        elif all(type(v) is str for v in values):
            as_object = np.empty(len(values), dtype=object)
            as_object[:] = values
            data[spec.name] = pd.Series(as_object, dtype=object, copy=False)
        else:  # mixed or missing values: pandas' own inference decides (e.g. None -> NaN, 1 -> 1.0)
            data[spec.name] = pd.Series(values).astype(object)
    return pd.DataFrame(data, copy=False)


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict("records")` (plain Python values) for the request frames built above, column
    by column: a third of the cost of pandas' per-value boxing, paid on every logged request."""
    names = [str(name) for name in frame.columns]
    columns = []
    for name in frame.columns:
        column = frame[name]
        values = column.tolist()
        columns.append([plain(v) for v in values] if column.dtype == object else values)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def oip_datatype(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def output_tensors(predictions: list[Any], proba: list[list[float]] | None,
                   wanted: list[Any]) -> list[dict[str, Any]]:
    """The response `outputs`: `predict` unless other outputs alone were asked for, and
    `predict_proba` when it was computed."""
    outputs: list[dict[str, Any]] = []
    if not wanted or "predict" in wanted:
        outputs.append({"name": "predict", "shape": [len(predictions)],
                        "datatype": oip_datatype(predictions), "data": predictions})
    if proba is not None:
        width = len(proba[0]) if proba else 0
        outputs.append({"name": "predict_proba", "shape": [len(proba), width], "datatype": "FP64",
                        "data": [v for row in proba for v in row]})
    return outputs


def model_metadata(name: str, versions: list[str], features: list[FeatureSpec], classes: list[Any] | None,
                   has_proba: bool) -> dict[str, Any]:
    """The model metadata response body."""
    inputs = [{"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
              for f in features]
    output_type = oip_datatype(classes) if classes else "FP64"
    outputs = [{"name": "predict", "datatype": output_type, "shape": [-1]}]
    if has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes or [])]})
    return {"name": name, "versions": versions, "platform": "sklearn", "inputs": inputs, "outputs": outputs}
