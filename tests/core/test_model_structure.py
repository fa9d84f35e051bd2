"""Crafted tree storage: a real fitted tree model whose node indices were edited, saved with skops.
Every type in such a file is on the allow-list, so only the structural check stands between it and a
model server that would follow the indices out of bounds (or forever) at predict time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import check_skops, load_model, save_model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0.5)).astype(int)


def _edit_tree(tree: Any, edit: Callable[[dict[str, Any]], None]) -> None:
    state = tree.__getstate__()
    state["nodes"] = state["nodes"].copy()
    edit(state)
    tree.__setstate__(state)


def _set(field: str, node: int, value: int) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        state["nodes"][field][node] = value
    return edit


TREE_EDITS = {
    "child out of bounds": (_set("left_child", 0, 10**6), "outside"),
    "child points back at the root (endless loop)": (_set("right_child", 1, 0), "outside"),
    "negative child": (_set("left_child", 0, -7), "outside"),
    "one child only": (_set("left_child", 0, -1), "exactly one child"),
    "feature beyond the input": (_set("feature", 0, 99), "feature 99"),
}


@pytest.mark.parametrize("case", sorted(TREE_EDITS))
def test_crafted_decision_tree_in_a_pipeline_is_refused(tmp_path: Path, case: str) -> None:
    x, y = _data()
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=4, random_state=0)).fit(x, y)
    edit, message = TREE_EDITS[case]
    _edit_tree(model[-1].tree_, edit)
    path = save_model(model, tmp_path / "model.skops")
    check_skops(path.read_bytes(), str(path))  # every type is allowed: the tree is the attack
    with pytest.raises(IntegrityError, match=message) as caught:
        load_model(path)
    assert "DecisionTreeClassifier" in str(caught.value) and str(path) in str(caught.value)


def test_one_bad_tree_in_a_forest_is_found(tmp_path: Path) -> None:
    x, y = _data()
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, y)
    _edit_tree(model.estimators_[3].tree_, _set("right_child", 0, 10**9))
    path = save_model(model, tmp_path / "model.skops")
    with pytest.raises(IntegrityError, match=r"estimators_\[3\]"):
        load_model(path)


@pytest.mark.parametrize(("field", "value", "message"), [("left", 10**6, "outside"), ("right", 0, "outside"),
                                                          ("feature_idx", 50, "feature 50")])
def test_crafted_hist_gradient_boosting_predictor_is_refused(tmp_path: Path, field: str, value: int,
                                                             message: str) -> None:
    x, y = _data()
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(x, y)
    predictor = model._predictors[1][0]
    internal = int(np.flatnonzero(predictor.nodes["is_leaf"] == 0)[0])
    predictor.nodes[field][internal] = value
    path = save_model(model, tmp_path / "model.skops")
    with pytest.raises(IntegrityError, match=message):
        load_model(path)


def test_untouched_tree_models_load(tmp_path: Path) -> None:
    x, y = _data()
    for model in (DecisionTreeClassifier(random_state=0), HistGradientBoostingClassifier(max_iter=5),
                  RandomForestClassifier(n_estimators=5, random_state=0)):
        model.fit(x, y)
        loaded = load_model(save_model(model, tmp_path / "m.skops"))
        assert (loaded.predict(x) == model.predict(x)).all()
