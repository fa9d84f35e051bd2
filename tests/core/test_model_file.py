"""Model files: skops by default with an allow-list; pickle only when explicitly trusted."""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import (
    DEFAULT_TRUSTED,
    SKLEARN_FUNCTIONS,
    allowed_types,
    is_trusted_type,
    load_model,
    save_model,
)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    return x, (x[:, 0] > 0).astype(int)


def test_skops_round_trip_of_a_forest_and_a_pipeline(tmp_path: Path) -> None:
    x, y = _data()
    for model in (RandomForestClassifier(n_estimators=5, random_state=0),
                  make_pipeline(StandardScaler(), LogisticRegression())):
        model.fit(x, y)
        path = save_model(model, tmp_path / "m.skops")
        loaded = load_model(path)
        assert (loaded.predict(x) == model.predict(x)).all()


def test_untrusted_type_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    sio.dump({"payload": Path("/etc")}, path)  # needs pathlib.PosixPath: not on our list
    with pytest.raises(IntegrityError, match="PosixPath"):
        load_model(path)


def test_pickle_needs_the_trusted_flag(tmp_path: Path) -> None:
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(IntegrityError, match="arbitrary code"):
        load_model(path)
    assert (load_model(path, trusted_pickle=True).predict(x) == model.predict(x)).all()


def test_refuses_to_save_pickle_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match=r"\.skops"):
        save_model(LogisticRegression(), tmp_path / "m.pkl")
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="unknown format"):
        load_model(tmp_path / "m.bin")
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match="not a valid skops"):
        load_model(tmp_path / "bad.skops")


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("numpy.dtype", True),
        ("builtins.eval", False),
        ("os.system", False),
        ("sklearn.externals.os.system", False),
        ("pathlib.PosixPath", False),
        # under trusted package names, and exactly what a prefix list let through
        ("sklearn.utils._testing.check_output", False),
        ("scipy._lib._tmpdirs.rmtree", False),
        ("numpy.memmap", False),
        ("numpy.lib.format.open_memmap", False),
        ("sklearn.tree._tree", False),
        ("sklearn.tree._tree.Tree.__reduce__", False),
    ],
)
def test_allow_list_is_exact(name: str, trusted: bool) -> None:
    assert is_trusted_type(name) is trusted


def test_a_repository_may_add_exact_names_but_never_os_or_builtins() -> None:
    assert is_trusted_type("mypkg.models.Ensemble", extra=["mypkg.models.Ensemble"])
    assert not is_trusted_type("mypkg.models.EnsembleX", extra=["mypkg.models.Ensemble"])
    for bad in ("os.system", "builtins.eval", "subprocess.Popen", "importlib.import_module", "eval"):
        with pytest.raises(IntegrityError, match="can never be trusted"):
            allowed_types([bad])


def test_every_list_entry_names_something_that_exists() -> None:
    """A typo in the list would trust nothing useful; a name must resolve to a class (never a function)."""
    import importlib

    for name in DEFAULT_TRUSTED:
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type) or name in SKLEARN_FUNCTIONS, name


def _supported_models() -> list[Any]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    return [GradientBoostingClassifier(n_estimators=5), HistGradientBoostingClassifier(max_iter=5),
            KNeighborsClassifier(algorithm="ball_tree"), KNeighborsClassifier(algorithm="kd_tree"),
            MLPClassifier(solver="sgd", max_iter=30), MLPClassifier(max_iter=30),
            CalibratedClassifierCV(), GaussianProcessClassifier()]


def test_native_categorical_gradient_boosting_loads() -> None:
    """HistGradientBoosting with pandas categories keeps a partial(check_array) and category bitsets."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "c": pd.Categorical(rng.choice(list("pqrs"), 300))})
    target = (frame["c"].isin(["p", "q"]) ^ (frame["a"] > 0.5)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame, target)
    path = save_model(model, Path(tempfile.mkdtemp()) / "m.skops")
    assert (load_model(path).predict(frame) == model.predict(frame)).all()


def test_the_estimators_we_support_load_through_the_list(tmp_path: Path) -> None:
    import warnings

    x, y = _data()
    labels = np.where(y == 1, "yes", "no")
    for model in _supported_models():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings of the tiny fits
            model.fit(np.abs(x), labels)
        path = save_model(model, tmp_path / "m.skops")
        loaded = load_model(path)
        assert (loaded.predict(np.abs(x)) == model.predict(np.abs(x))).all(), type(model).__name__
