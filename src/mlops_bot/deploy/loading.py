"""Loading one model version into memory (`load_version` -> `LoadedModel`): the model file through
the skops allow-list of `model_file.py` (or onnxruntime for `model.onnx`), and its signature. The
only module of the server that reads model files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_bot.checksums import SUMS_NAME, mismatch, read_sums, sha256_file
from mlops_bot.deploy.metrics import VersionRecorder
from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import MODEL_FILE_NAMES, load_verified
from mlops_bot.model_signature import (
    SIGNATURE_FILE,
    ModelSignature,
    check_model,
    model_classes,
    parse_signature,
    plain,
    signature_of,
)

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE, ONNX_FILE = MODEL_FILE_NAMES


class LoadedModel:
    """One model version in memory with what is needed to validate inputs for it."""

    def __init__(self, name: str, version: str, model: Any, signature: ModelSignature, source: str) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.signature = signature
        self.features = signature.inputs
        self.source = source
        self.recorder = VersionRecorder()
        self.classes: list[Any] | None = model_classes(model)
        self.has_proba = hasattr(model, "predict_proba")

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        import numpy as np  # here, not at import: a deploy job reads signatures without numpy + pandas

        result = np.asarray(self.model.predict(frame))
        if result.ndim == 2 and result.shape[1] == 1:  # CatBoostClassifier: one label per row, as a column
            result = result[:, 0]
        values = result.tolist()  # plain Python scalars already, except inside object arrays
        return [plain(v) for v in values] if result.dtype == object else values

    def predict_proba(self, frame: pd.DataFrame) -> list[list[float]] | None:
        if not self.has_proba:
            return None
        import numpy as np

        return np.asarray(self.model.predict_proba(frame), dtype=float).tolist()


def model_file_in(path: Path) -> Path:
    """The model file of a version folder (model.skops or model.onnx), or the file itself."""
    if not path.is_dir():
        return path
    found = [path / name for name in MODEL_FILE_NAMES if (path / name).is_file()]
    if len(found) > 1:
        raise IntegrityError(f"{path} holds both {MODEL_FILE} and {ONNX_FILE}; a version has one model file")
    return found[0] if found else path / MODEL_FILE


def load_version(name: str, version: str, path: str | Path, extra_types: Iterable[str] = ()) -> LoadedModel:
    """Load a model directory (model.skops or model.onnx [+ signature.json], as `Registry.download`
    leaves it) or a single model file, through the skops allow-list (plus the repository's
    `model.trusted_types`, `extra_types`), after checking the folder's SHA256SUMS. A signature.json
    beside the model must be covered by that SHA256SUMS (when there is one) and must describe the
    model; without one the signature is read off the model."""
    path = Path(path)
    model_path = model_file_in(path)
    model = load_verified(model_path, extra_types=extra_types, whole_folder=path.is_dir())
    signature = stored_signature(model_path.parent, listed_in_sums=path.is_dir())
    if signature is None:
        signature = signature_of(model)
    else:
        check_model(signature, model, str(model_path.parent / SIGNATURE_FILE))
    return LoadedModel(name, version, model, signature, str(path))


def stored_signature(folder: Path, *, listed_in_sums: bool = True) -> ModelSignature | None:
    """The signature.json of a version folder, or None. When the folder has a SHA256SUMS (checked
    by the model's load) the signature must be listed in it: an unlisted one nobody vouched for."""
    file = folder / SIGNATURE_FILE
    if not file.is_file():
        return None
    if listed_in_sums:
        sums = read_sums(folder)
        if sums is not None and SIGNATURE_FILE not in sums:
            raise IntegrityError(f"{file} is not listed in the folder's SHA256SUMS; refusing a signature "
                                 "nobody vouched for")
        if sums is not None and sha256_file(file) != sums[SIGNATURE_FILE]:
            raise mismatch(str(file), sha256_file(file), sums[SIGNATURE_FILE], str(folder / SUMS_NAME))
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{file} is not valid JSON: {exc}") from None
    return parse_signature(raw, str(file))


def version_signature(path: str | Path, extra_types: Iterable[str] = ()) -> ModelSignature:
    """The signature of a version folder without serving it: its signature.json, or (older
    versions) the one read off its model, loaded through the same checks as for serving."""
    path = Path(path)
    if path.is_dir():
        stored = stored_signature(path)
        if stored is not None:
            return stored
    return load_version("", "", path, extra_types).signature
