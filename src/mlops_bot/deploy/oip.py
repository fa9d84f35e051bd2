"""Open Inference Protocol v2 wire format, as pure functions: request bytes (JSON or the binary tensor
data extension) -> typed, validated tensors (`InferenceRequest`), and predictions -> response bytes and
model metadata. `model_input.py` turns the tensors into the model's input frame. Nothing here touches
a model, a file or a socket.

Everything a client can get wrong raises `BadRequest` (a 4xx naming the input): unknown datatypes,
duplicate inputs, unknown or duplicate outputs, datatypes that do not hold the data (INT64 with 35.7),
shapes that disagree with the data, non-finite numbers, malformed binary data, bodies nested too
deeply. Tensor data becomes numpy arrays in one call per tensor (no per-row Python) on the JSON path
and without copying on the binary path.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_bot import fast_json
from mlops_bot.errors import MlopsError
from mlops_bot.model_signature import ModelSignature, oip_datatype, plain

# Datatypes of the protocol and their little-endian numpy layout (BYTES: length-prefixed strings).
DATATYPES: dict[str, np.dtype[Any] | None] = {
    "BOOL": np.dtype("?"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": None,
}
HEADER_LENGTH = "Inference-Header-Content-Length"
OUTPUTS = ("predict", "predict_proba")
_LENGTH = struct.Struct("<I")


class BadRequest(MlopsError):
    """The client sent something the model cannot score; answered with HTTP 4xx, never counted
    against a version."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------- request types
@dataclass(frozen=True)
class InputTensor:
    """One input, its values flat in row-major order: a numeric array (NaN marks a missing value:
    null or NaN was sent) or an object array of `str` for BYTES."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: np.ndarray


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True)
class InferenceRequest:
    id: str | None
    inputs: tuple[InputTensor, ...]
    outputs: tuple[RequestedOutput, ...] | None  # None: all outputs
    binary_outputs: bool  # the request parameter `binary_data_output`

    def output_names(self) -> list[str]:
        return list(OUTPUTS) if self.outputs is None else [o.name for o in self.outputs]


# ---------------------------------------------------------------------------------------- parsing
def parse_json(raw: bytes | str) -> Any:
    """`fast_json` (orjson when installed): it reads NaN, Infinity, 1e999 and integers past 64 bits
    as `json` does, so that the checks below can name the input holding them; the rest is refused
    with the reason."""
    try:
        return fast_json.loads(raw)
    except RecursionError:
        raise BadRequest("the request body nests JSON too deeply") from None
    except ValueError:  # includes UnicodeDecodeError
        raise BadRequest("the request body is not valid JSON") from None


def parse_inference_request(raw: bytes, header_length: str | None = None) -> InferenceRequest:
    """An inference request body: plain JSON, or (with `Inference-Header-Content-Length`) a JSON
    header followed by the binary data of the inputs that declare `binary_data_size`, in order."""
    tail = memoryview(b"")
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise BadRequest(f"{HEADER_LENGTH} must be a byte count, got {header_length!r}") from None
        if not 0 < length <= len(raw):
            raise BadRequest(f"{HEADER_LENGTH} {length} does not fit the {len(raw)}-byte body")
        tail = memoryview(raw)[length:]
        raw = raw[:length]
    return inference_request(parse_json(raw), tail)


def inference_request(body: Any, tail: memoryview | bytes = b"") -> InferenceRequest:
    """An already parsed JSON request (and the binary data after its header, if any)."""
    tail = memoryview(tail)
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise BadRequest('expected an inference request {"inputs": [{"name", "shape", "datatype", "data"}]}')
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("the request 'id' must be a string")
    parameters = _parameters(body, "the request")
    inputs: list[InputTensor] = []
    offset = 0
    for index, item in enumerate(body["inputs"]):
        tensor, offset = _input(index, item, tail, offset)
        if any(t.name == tensor.name for t in inputs):
            raise BadRequest(f"input {tensor.name!r} is given twice")
        inputs.append(tensor)
    if offset != len(tail):
        raise BadRequest(f"the body holds {len(tail) - offset} bytes of binary data no input declares "
                         "(binary_data_size)")
    return InferenceRequest(id=request_id, inputs=tuple(inputs), outputs=_outputs(body.get("outputs")),
                            binary_outputs=parameters.get("binary_data_output") is True)


def _parameters(item: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}: 'parameters' must be an object")
    return parameters


def _outputs(raw: Any) -> tuple[RequestedOutput, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"outputs[{index}] must be an object with a string 'name'")
        name = item["name"]
        if name not in OUTPUTS:
            raise BadRequest(f"unknown output {name!r}; this model has: {', '.join(OUTPUTS)}")
        if any(o.name == name for o in outputs):
            raise BadRequest(f"output {name!r} is requested twice")
        binary = _parameters(item, f"output {name!r}").get("binary_data") is True
        outputs.append(RequestedOutput(name=name, binary=binary))
    return tuple(outputs)


def _input(index: int, item: Any, tail: memoryview, offset: int) -> tuple[InputTensor, int]:
    if not isinstance(item, dict):
        raise BadRequest(f"inputs[{index}] is not a tensor object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{index}] lacks a string 'name'")
    where = f"input {name!r}"
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise BadRequest(f"{where} has unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}")
    count = math.prod(shape)
    size = _parameters(item, where).get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise BadRequest(f"{where}: binary_data_size must be a non-negative integer")
        if "data" in item:
            raise BadRequest(f"{where} has both 'data' and binary_data_size")
        if offset + size > len(tail):
            raise BadRequest(f"{where} declares {size} bytes of binary data but the body holds "
                             f"{len(tail) - offset} more")
        values = _from_bytes(where, datatype, tail[offset:offset + size], count)
        offset += size
    else:
        if "data" not in item:
            raise BadRequest(f"{where} lacks 'data' (or a binary_data_size parameter)")
        values = _from_json(where, datatype, item["data"])
    if values.size != count:
        raise BadRequest(f"{where} has {values.size} values but shape {shape}")
    return InputTensor(name=name, datatype=datatype, shape=tuple(shape), values=values), offset


def _from_json(where: str, datatype: str, data: Any) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(f"{where}: 'data' must be a (possibly nested) list")
    if datatype == "BYTES":
        flat = _flatten(data)
        for value in flat:
            if type(value) is not str and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise BadRequest(f"{where} is BYTES and holds {shown(value)}; expected strings")
        values = np.empty(len(flat), dtype=object)
        values[:] = flat
        return values
    if datatype != "BOOL" and bool in set(map(type, _flatten(data))):  # numpy would read true as 1
        raise BadRequest(f"{where} is {datatype} and holds true/false; expected numbers")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(f"{where}: 'data' is not a list of {datatype} values (ragged or nested "
                         "too deeply)") from None
    array = array.reshape(-1)
    if array.size == 0:
        return array.astype(DATATYPES[datatype] or object)
    if array.dtype.kind == "O":  # null, very large integers or mixed types: element by element
        array = _objects_to_float(where, datatype, array)
    return _check_numbers(where, datatype, array)


def _objects_to_float(where: str, datatype: str, array: np.ndarray) -> np.ndarray:
    out = np.empty(array.size, dtype=float)
    for position, value in enumerate(array.tolist()):
        if value is None:
            out[position] = math.nan
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where} is {datatype} and holds {shown(value)} at position {position}")
        else:
            try:
                out[position] = float(value)
            except OverflowError:
                out[position] = math.inf
    return out


def _check_numbers(where: str, datatype: str, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise BadRequest(f"{where} is BOOL and holds {shown(array[0])}; expected true/false")
        return array
    if kind not in "iuf":
        first = array[0] if kind != "b" else bool(array[0])
        raise BadRequest(f"{where} is {datatype} and holds {shown(first)}; expected numbers")
    target = DATATYPES[datatype]
    assert target is not None
    if kind == "f":
        infinite = np.isinf(array)
        if infinite.any():
            position = int(np.argmax(infinite))
            raise BadRequest(f"{where} holds {array[position]} at position {position} (Infinity or a "
                             "number too large, e.g. 1e999); send finite numbers")
    if target.kind in "iu":
        if kind == "f":
            present = array[~np.isnan(array)]
            fractional = present != np.floor(present)
            if fractional.any():
                raise BadRequest(f"{where} is {datatype} and holds {present[np.argmax(fractional)]}; "
                                 "expected integers")
        else:
            present = array
        info = np.iinfo(target)
        if present.size and (present.min() < info.min or present.max() > info.max):
            raise BadRequest(f"{where} holds values outside the range of {datatype} ({info.min}..{info.max})")
        return array
    if target.itemsize < 8 and kind == "f":
        limit = np.finfo(target).max
        if (np.abs(array[~np.isnan(array)]) > limit).any():
            raise BadRequest(f"{where} holds values beyond the range of {datatype}")
    return array


def _from_bytes(where: str, datatype: str, chunk: memoryview, count: int) -> np.ndarray:
    dtype = DATATYPES[datatype]
    if dtype is None:
        items: list[str] = []
        position = 0
        while position < len(chunk):
            if position + 4 > len(chunk):
                raise BadRequest(f"{where}: BYTES data ends inside a 4-byte length prefix")
            (length,) = _LENGTH.unpack_from(chunk, position)
            position += 4
            if position + length > len(chunk):
                raise BadRequest(f"{where}: a BYTES element of {length} bytes runs past the data")
            try:
                items.append(str(chunk[position:position + length], "utf-8"))
            except UnicodeDecodeError:
                raise BadRequest(f"{where}: a BYTES element is not UTF-8 text") from None
            position += length
        values = np.empty(len(items), dtype=object)
        values[:] = items
        return values
    if len(chunk) != count * dtype.itemsize:
        raise BadRequest(f"{where}: binary_data_size {len(chunk)} is not {count} x {dtype.itemsize} bytes "
                         f"of {datatype} for its shape")
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if (raw > 1).any():
            raise BadRequest(f"{where}: BOOL bytes must be 0 or 1")
        return raw.astype(bool)
    array = np.frombuffer(chunk, dtype=dtype)
    if dtype.kind == "f" and np.isinf(array).any():
        position = int(np.argmax(np.isinf(array)))
        raise BadRequest(f"{where} holds {array[position]} at position {position}; send finite numbers")
    return array


def _flatten(data: list[Any]) -> list[Any]:
    if not any(isinstance(item, list) for item in data):
        return data  # already flat: the common case, no copy
    out: list[Any] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool | None | str) else repr(plain(value))
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------------------- responses
@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]  # flat


def output_tensors(request_outputs: list[str], predictions: list[Any],
                   proba: list[list[float]] | None) -> list[OutputTensor]:
    """The response tensors in the order asked for (`predict`, then `predict_proba` when all)."""
    tensors = []
    for name in request_outputs:
        if name == "predict":
            datatype = oip_datatype(predictions)
            tensors.append(OutputTensor("predict", datatype, [len(predictions)], predictions))
        elif proba is not None:
            width = len(proba[0]) if proba else 0
            tensors.append(OutputTensor("predict_proba", "FP64", [len(proba), width],
                                        [v for row in proba for v in row]))
    return tensors


def encode_response(header: dict[str, Any], tensors: list[OutputTensor], binary: set[str]
                    ) -> tuple[bytes, int | None]:
    """The response body and, when any output goes as binary data, the JSON header's length (for
    `Inference-Header-Content-Length`). `header` holds model_name, model_version, id."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in tensors:
        item: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if tensor.name in binary:
            chunk = _to_bytes(tensor)
            item["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            item["data"] = tensor.data
        outputs.append(item)
    text = json.dumps({**header, "outputs": outputs}, separators=(",", ":"), allow_nan=False).encode()
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)


def _to_bytes(tensor: OutputTensor) -> bytes:
    if tensor.datatype == "BYTES":
        parts = []
        for value in tensor.data:
            encoded = str(value).encode()
            parts += [_LENGTH.pack(len(encoded)), encoded]
        return b"".join(parts)
    dtype = DATATYPES[tensor.datatype]
    return np.asarray(tensor.data, dtype=dtype).tobytes()


def model_metadata(name: str, versions: list[str], signature: ModelSignature) -> dict[str, Any]:
    """The model metadata response body: the version's signature (inputs and outputs)."""
    inputs = [{"name": f.name, "datatype": f.datatype, "shape": list(f.shape)} for f in signature.inputs]
    outputs = [{"name": o.name, "datatype": o.datatype, "shape": list(o.shape)} for o in signature.outputs]
    return {"name": name, "versions": versions, "platform": signature.platform, "inputs": inputs,
            "outputs": outputs}
