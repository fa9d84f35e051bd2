"""Model files: skops by default with an allow-list; pickle only when explicitly trusted."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import is_trusted_type, load_model, save_model


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
    ],
)
def test_allow_list(name: str, trusted: bool) -> None:
    assert is_trusted_type(name) is trusted
