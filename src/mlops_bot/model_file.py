"""Saving and loading model files safely.

skops is the default format: loading it never executes code, and we trust only an explicit
allow-list of scikit-learn / numpy / scipy types, never whatever the file asks for. Pickle and joblib
files execute code on load, so they need `trusted_pickle=True` from the caller.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import skops.io as sio

from mlops_bot.errors import IntegrityError

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")

# Module prefixes whose types we accept from a skops file. Anything else is refused by name.
_TRUSTED_PREFIXES = re.compile(r"^(sklearn|numpy|scipy)\.[A-Za-z0-9_.]+$")
_TRUSTED_EXACT = frozenset({"builtins.slice", "collections.OrderedDict", "collections.defaultdict"})


def is_trusted_type(name: str) -> bool:
    """Whether a type named in a skops file is on our allow-list."""
    if name in _TRUSTED_EXACT:
        return True
    if not _TRUSTED_PREFIXES.match(name):
        return False
    # sklearn's own modules are fine, but not anything reaching back into the stdlib through them.
    banned = {"os", "subprocess", "sys", "builtins", "eval", "exec"}
    return not any(part in banned for part in name.split("."))


def save_model(model: Any, path: str | Path) -> Path:
    """Write a model with skops (`.skops`)."""
    path = Path(path)
    if path.suffix not in SKOPS_SUFFIXES:
        raise IntegrityError(f"model file {path}: save models as .skops (pickle is unsafe to share)")
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


def load_model(path: str | Path, trusted_pickle: bool = False) -> Any:
    """Load a model file. skops files load only if every type they need is on the allow-list."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"model file {path} does not exist")
    if path.suffix in SKOPS_SUFFIXES:
        try:
            needed = sio.get_untrusted_types(file=path)
        except Exception as exc:
            raise IntegrityError(f"model file {path} is not a valid skops file: {exc}") from None
        refused = [name for name in needed if not is_trusted_type(name)]
        if refused:
            raise IntegrityError(
                f"model file {path} needs untrusted type(s) {', '.join(sorted(refused))}; "
                "refusing to load it (only scikit-learn, numpy and scipy types are trusted)"
            )
        return sio.load(path, trusted=needed)
    if path.suffix in PICKLE_SUFFIXES:
        if not trusted_pickle:
            raise IntegrityError(
                f"model file {path} is a pickle: loading it can run arbitrary code. Save it with skops "
                "(.skops), or pass the explicit trusted flag if you produced this file yourself"
            )
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the caller vouched for this file
    raise IntegrityError(f"model file {path}: unknown format {path.suffix!r} (use .skops)")
