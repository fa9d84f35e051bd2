"""The model's input frame from a validated OIP v2 request (one tensor per feature, or one 2-D table)
or from a `/predict` records body, checked against the version's signature: unknown and missing
inputs, shapes against the metadata, value kinds per feature, and missing values (null/NaN) only
where the signature says the model accepts them. Pure; every refusal is a `BadRequest` (4xx).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.deploy.oip import BadRequest, InferenceRequest, InputTensor, inference_request, plain, shown
from mlops_bot.model_signature import INTEGER_DATATYPES, FeatureSpec


def frame_from_request(request: InferenceRequest, features: list[FeatureSpec]) -> pd.DataFrame:
    """The model's input frame: one tensor per feature (named like the feature, shape [rows] or
    [rows, 1]), or one 2-D tensor [rows, features] with a column per feature in the model's order."""
    names = [f.name for f in features]
    columns: dict[str, tuple[InputTensor, np.ndarray]] = {}
    if len(request.inputs) == 1 and request.inputs[0].name not in names:
        tensor = request.inputs[0]
        if len(tensor.shape) != 2 or tensor.shape[1] != len(features):
            raise BadRequest(
                f"input {tensor.name!r} is not a feature: as one table it must have shape [rows, "
                f"{len(features)}] (one column per feature: {', '.join(names)}), got {list(tensor.shape)}"
            )
        matrix = tensor.values.reshape(tensor.shape)
        columns = {name: (tensor, matrix[:, j]) for j, name in enumerate(names)}
    else:
        unknown = [t.name for t in request.inputs if t.name not in names]
        if unknown:
            raise BadRequest(f"unknown input(s) {', '.join(map(repr, unknown))}; the model's inputs are: "
                             f"{', '.join(names)}")
        by_name = {t.name: t for t in request.inputs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadRequest(f"missing input tensor(s) for feature(s): {', '.join(missing)}")
        for name in names:
            tensor = by_name[name]
            if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
                raise BadRequest(f"input {name!r} has shape {list(tensor.shape)}; the model's metadata "
                                 "gives [-1] (one value per row; [rows, 1] is accepted too)")
            columns[name] = (tensor, tensor.values)
        if len({len(values) for _, values in columns.values()}) > 1:
            raise BadRequest("all feature tensors must hold the same number of rows")
    if not len(next(iter(columns.values()))[1]):
        raise BadRequest("the request holds no rows")
    data = {spec.name: _column(spec, *columns[spec.name]) for spec in features}
    return pd.DataFrame(data, copy=False)


def frame_from_oip(body: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """A parsed JSON inference request -> the model's input frame (both steps above)."""
    return frame_from_request(inference_request(body), features)


def _column(spec: FeatureSpec, tensor: InputTensor, values: np.ndarray) -> Any:
    where = f"input {tensor.name!r}" + (f" (feature {spec.name!r})" if tensor.name != spec.name else "")
    if values.dtype == object:  # BYTES: strings, or JSON numbers in a mixed table
        if spec.kind == "numeric":
            if tensor.datatype == "BYTES" and tensor.name == spec.name:
                raise BadRequest(f"{where} is BYTES but the feature is numeric (send FP64 or another "
                                 "number type)")
            numbers = [v for v in values.tolist() if type(v) is not str]
            if len(numbers) != len(values):
                raise BadRequest(f"{where}: feature {spec.name!r} is numeric but a value is a string")
            return _numeric(spec, where, np.array(numbers, dtype=float))
        if spec.values == "string" and not all(type(v) is str for v in values.tolist()):
            raise BadRequest(f"{where}: feature {spec.name!r} takes strings (the model's categories are "
                             "strings)")
        return pd.Series(values, dtype=object, copy=False)
    if spec.kind == "numeric":
        return _numeric(spec, where, values.astype(float, copy=False))
    if spec.values == "string":
        raise BadRequest(f"{where} is {tensor.datatype} but feature {spec.name!r} takes strings (BYTES): "
                         "the model's categories are strings")
    objects = np.empty(len(values), dtype=object)
    objects[:] = values.tolist()
    if values.dtype.kind == "f" and np.isnan(values).any():
        _refuse_missing(spec, where, int(np.argmax(np.isnan(values))))
        objects[np.isnan(values)] = None
    return pd.Series(objects, dtype=object, copy=False)


def _numeric(spec: FeatureSpec, where: str, values: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    if missing.any():
        _refuse_missing(spec, where, int(np.argmax(missing)))
    if spec.datatype in INTEGER_DATATYPES:
        fractional = ~missing & (values != np.floor(values))
        if fractional.any():
            row = int(np.argmax(fractional))
            raise BadRequest(f"{where}: feature {spec.name!r} is {spec.datatype} in the model's signature, "
                             f"got {values[row]!r} at row {row} (send whole numbers)")
    return values


def _refuse_missing(spec: FeatureSpec, where: str, row: int) -> None:
    if not spec.accepts_missing:
        raise BadRequest(f"{where} has a missing value (null or NaN) at row {row}; the model's signature "
                         f"does not accept missing values for feature {spec.name!r}")


def frame_from_records(records: Any, features: list[FeatureSpec]) -> pd.DataFrame:
    """`/predict` body: {"records": [{feature: value}, ...]} or a bare list of such objects. Keys that
    are not features are ignored (records often carry ids)."""
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
            columns[spec.name].append(_check_value(record[spec.name], spec, index))
    return _frame(columns, features)


def _check_value(value: Any, spec: FeatureSpec, index: int) -> Any:
    where = f"record {index}"
    if value is None or (type(value) is float and math.isnan(value)):
        if not spec.accepts_missing:
            raise BadRequest(f"{where}: feature {spec.name!r} is missing (null or NaN) and the model's "
                             "signature does not accept missing values for it", status=422)
        return None
    if spec.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: feature {spec.name!r} must be a number, got {shown(value)}",
                             status=422)
        if not math.isfinite(value):
            raise BadRequest(f"{where}: feature {spec.name!r} is {value} (Infinity or a number too large, "
                             "e.g. 1e999); send finite numbers", status=422)
        if spec.datatype in INTEGER_DATATYPES and value != int(value):
            raise BadRequest(f"{where}: feature {spec.name!r} is {spec.datatype} in the model's signature, "
                             f"got {value!r} (send whole numbers)", status=422)
        return value
    if spec.values == "string" and type(value) is not str:
        raise BadRequest(f"{where}: feature {spec.name!r} takes strings (the model's categories are "
                         f"strings), got {shown(value)}", status=422)
    if not isinstance(value, str | int | float | bool):
        raise BadRequest(f"{where}: feature {spec.name!r} must be a string or number, got {shown(value)}",
                         status=422)
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"{where}: feature {spec.name!r} is {value}; send finite numbers", status=422)
    return value


def _frame(columns: dict[str, list[Any]], features: list[FeatureSpec]) -> pd.DataFrame:
    """Numeric columns float64 (None -> NaN where accepted), the others object (pandas 3 would
    otherwise infer its string dtype), each column built once with its final dtype."""
    data: dict[str, Any] = {}
    for spec in features:
        values = columns[spec.name]
        if spec.kind == "numeric":
            data[spec.name] = np.array([math.nan if v is None else v for v in values], dtype=float)
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
