"""ONNX models (any framework: scikit-learn through skl2onnx, PyTorch, TensorFlow, ...) evaluated with
onnxruntime behind the scikit-learn surface the pipeline uses (`predict`, `predict_proba`,
`classes_`, `feature_names_in_`).

An ONNX file is a protobuf graph of operators that onnxruntime executes itself: loading it builds no
Python object the file names, so no allow-list of types is needed (custom operators are not
registered, so a graph needing one fails to load). Inputs are matched to table columns either as one
2-D tensor over the features in order, or as one tensor per column named like the column.
Outputs: the first is the prediction (labels, or numbers for regression); a second 2-D float output,
when present, holds class probabilities in the order of the classifier's class labels (read from the
graph's `classlabels_*` attributes; 0..k-1 when it has none).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_bot.errors import IntegrityError
from mlops_bot.model_signature import FeatureSpec

ONNX_SUFFIXES = (".onnx",)
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": object,
    "tensor(bool)": np.bool_,
}
_OIP_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
              "tensor(int32)": "INT32", "tensor(string)": "BYTES", "tensor(bool)": "BOOL"}


class OnnxModel:
    """One ONNX model in an onnxruntime session (CPU)."""

    def __init__(self, data: bytes, source: str) -> None:
        try:
            import onnxruntime
        except ModuleNotFoundError:
            raise IntegrityError(
                f"model file {source} is an ONNX model but onnxruntime is not installed: "
                "pip install 'mlops-bot[onnx]'"
            ) from None
        try:
            self.session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for every damaged graph
            raise IntegrityError(f"model file {source} is not a loadable ONNX model: {exc}") from None
        self.source = source
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        self.classes_ = np.asarray(_class_labels(data, self.outputs))
        if len(self.inputs) > 1:
            self.feature_names_in_ = np.asarray([i.name for i in self.inputs], dtype=object)
        else:
            width = _width(self.inputs[0])
            if width is not None:
                self.n_features_in_ = width

    def signature_inputs(self, feature_names: list[str] | None = None) -> list[FeatureSpec]:
        """The model's inputs as features, from the graph: one per input tensor (named like it),
        or, for one [rows, k] tensor, the k table columns in order (`feature_names` when given
        and k long, else `NAME_0` .. `NAME_k-1`). Datatypes from the tensor types (tensor(float) is
        FP32); a string tensor is a categorical feature of strings. Missing values are refused:
        nothing says the graph imputes them."""
        if len(self.inputs) > 1:
            return [_feature(i.name, i.type) for i in self.inputs]
        spec = self.inputs[0]
        width = _width(spec) or (len(feature_names) if feature_names else 1)
        names = list(feature_names or [])
        if len(names) != width:
            names = [f"{spec.name}_{j}" for j in range(width)]
        return [_feature(name, spec.type) for name in names]

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            spec = self.inputs[0]
            width = spec.shape[1] if len(spec.shape) == 2 and isinstance(spec.shape[1], int) else None
            if width is not None and width != frame.shape[1]:
                raise ValueError(
                    f"the ONNX model takes {width} feature(s) in one tensor; "
                    f"the holdout gives {frame.shape[1]}"
                )
            return {spec.name: frame.to_numpy().astype(_DTYPES.get(spec.type, np.float32))}
        missing = [i.name for i in self.inputs if i.name not in frame.columns]
        if missing:
            raise ValueError(f"the ONNX model's input(s) {', '.join(missing)} are not columns of the holdout")
        feed = {}
        for spec in self.inputs:
            column = frame[spec.name].to_numpy().astype(_DTYPES.get(spec.type, np.float32))
            feed[spec.name] = column.reshape(-1, 1) if len(spec.shape) == 2 else column
        return feed

    def _run(self, frame: pd.DataFrame) -> list[Any]:
        return list(self.session.run(None, self._feed(frame)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        first = np.asarray(self._run(frame)[0])
        if first.ndim == 2 and first.shape[1] == 1:
            return first[:, 0]
        if first.ndim == 2 and np.issubdtype(first.dtype, np.floating) and len(self.outputs) == 1:
            # one score matrix (a network's class scores): the label is the best column
            return self.classes_[first.argmax(axis=1)] if len(self.classes_) else first.argmax(axis=1)
        return first



class OnnxClassifier(OnnxModel):
    """An ONNX model with a probability output (its second output, 2-D)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._run(frame)[1], dtype=np.float64)


def _width(spec: Any) -> int | None:
    """k of a [rows, k] input tensor whose k the graph fixes."""
    shape = list(spec.shape or [])
    return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


def _feature(name: str, tensor_type: str) -> FeatureSpec:
    datatype = _OIP_TYPES.get(tensor_type)
    if datatype is None:
        raise IntegrityError(f"the ONNX model's input {name!r} is a {tensor_type}; mlops-bot serves float, "
                             "double, integer, bool and string tensors")
    if datatype == "BYTES":
        return FeatureSpec(name=name, kind="categorical", values="string", datatype="BYTES")
    return FeatureSpec(name=name, datatype=datatype)


def _class_labels(data: bytes, outputs: list[Any]) -> list[Any]:
    """Class labels of the graph's classifier node, or 0..k-1 from the probability output's width."""
    try:
        import onnx
    except ModuleNotFoundError:
        graph = None
    else:
        graph = onnx.load_from_string(data).graph
    if graph is not None:
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.name == "classlabels_strings" and attribute.strings:
                    return [s.decode("utf-8") for s in attribute.strings]
                if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                    return list(attribute.ints)
    for output in outputs[1:]:
        if len(output.shape) == 2 and isinstance(output.shape[1], int):
            return list(range(output.shape[1]))
    return []


def load_onnx(data: bytes, source: str) -> OnnxModel:
    """The model of these bytes (read once by the caller, which may have hashed them)."""
    model = OnnxModel(data, source)
    second = model.outputs[1:2]
    if second and len(second[0].shape) == 2 and "float" in second[0].type:
        return OnnxClassifier(data, source)
    return model
