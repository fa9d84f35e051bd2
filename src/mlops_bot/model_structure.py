"""Structural checks of a loaded model's tree storage, before anything predicts with it.

The allow-list (`model_file.py`) decides which types a file may build; it cannot decide whether the
data inside them is sane. scikit-learn's tree storage (`sklearn.tree._tree.Tree` of DecisionTree*,
RandomForest*, ExtraTrees*, GradientBoosting*, AdaBoost, Bagging; HistGradientBoosting's
`TreePredictor`) holds raw child and feature indices that its compiled predict loops follow without
bounds checks, and `Tree.__setstate__` checks only the node array's dtype and shape. A crafted file
can therefore point a node outside the array (out-of-bounds reads, a crashed server), at a feature
column the input does not have, or back at an ancestor (an endless predict loop).

scikit-learn's builders number every child after its parent, so a valid tree satisfies, for every
internal node i: i < left, right < node count, and 0 <= feature < the number of input features; a
leaf has both children -1 (Tree) or `is_leaf` set (TreePredictor). `check_trees` walks the loaded
object graph (estimators, lists, dicts, object arrays) and refuses the model, naming the estimator
and node, when any tree breaks these rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_bot.errors import IntegrityError

TREE_LEAF = -1


def _fail(source: str, where: str, problem: str) -> IntegrityError:
    return IntegrityError(f"model file {source}: {where} {problem}; refusing a tree that scikit-learn "
                          "would follow out of bounds")


def _internal_nodes_ok(left: np.ndarray, right: np.ndarray, internal: np.ndarray, count: int) -> int | None:
    """Index of the first internal node whose children are not both in (i, count), else None."""
    index = np.arange(len(left))
    bad = internal & ~((left > index) & (left < count) & (right > index) & (right < count))
    found = np.flatnonzero(bad)
    return int(found[0]) if len(found) else None


def check_sklearn_tree(tree: Any, n_features: int | None, source: str, where: str) -> None:
    # node_count against the allocated capacity first (scikit-learn 1.9's __setstate__ clamps it; older
    # versions did not), since the node array below is read node_count long.
    count, capacity = int(tree.node_count), int(tree.capacity)
    if not 1 <= count <= capacity:
        raise _fail(source, where, f"claims {count} nodes but stores {capacity}")
    nodes = tree.__getstate__()["nodes"]
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    leaf = left == TREE_LEAF
    if np.any(leaf != (right == TREE_LEAF)):
        lonely = int(np.flatnonzero(leaf != (right == TREE_LEAF))[0])
        raise _fail(source, where, f"node {lonely} has exactly one child")
    stray = _internal_nodes_ok(left, right, ~leaf, count)
    if stray is not None:
        raise _fail(source, where, f"node {stray} points to children {left[stray]}, {right[stray]} outside "
                    f"{stray + 1}..{count - 1}")
    limit = int(tree.n_features) if n_features is None else min(int(tree.n_features), n_features)
    features = nodes["feature"].astype(np.int64)
    bad = ~leaf & ((features < 0) | (features >= limit))
    if np.any(bad):
        node = int(np.flatnonzero(bad)[0])
        raise _fail(source, where, f"node {node} splits on feature {features[node]} of {limit}")


def check_tree_predictor(predictor: Any, n_features: int | None, source: str, where: str) -> None:
    nodes = predictor.nodes
    count = len(nodes)
    if count == 0:
        raise _fail(source, where, "has no nodes")
    internal = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    node = _internal_nodes_ok(left, right, internal, count)
    if node is not None:
        raise _fail(source, where, f"node {node} points to children {left[node]}, {right[node]} outside "
                    f"{node + 1}..{count - 1}")
    features = nodes["feature_idx"].astype(np.int64)
    bad = internal & (features < 0)
    if n_features is not None:
        bad |= internal & (features >= n_features)
    if np.any(bad):
        node = int(np.flatnonzero(bad)[0])
        raise _fail(source, where, f"node {node} splits on feature {features[node]}")
    categorical = internal & (nodes["is_categorical"] != 0)
    bitsets = getattr(predictor, "raw_left_cat_bitsets", None)
    known = 0 if bitsets is None else len(bitsets)
    bad = categorical & (nodes["bitset_idx"].astype(np.int64) >= known)
    if np.any(bad):
        node = int(np.flatnonzero(bad)[0])
        raise _fail(source, where, f"node {node} uses category bitset {nodes['bitset_idx'][node]} of {known}")


def check_trees(model: Any, source: str) -> None:
    """Walk the loaded object graph and check every tree it holds (see the module docstring)."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    # (object, path for messages, number of input features of the estimator that owns it)
    stack: list[tuple[Any, str, int | None]] = [(model, type(model).__name__, None)]
    while stack:
        obj, path, n_features = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | bool):
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            check_sklearn_tree(obj, n_features, source, path)
        elif isinstance(obj, TreePredictor):
            check_tree_predictor(obj, n_features, source, path)
        elif isinstance(obj, dict):
            stack += [(v, f"{path}[{k!r}]", n_features) for k, v in obj.items()]
        elif isinstance(obj, list | tuple):
            stack += [(v, f"{path}[{i}]", n_features) for i, v in enumerate(obj)]
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack += [(v, f"{path}[{i}]", n_features) for i, v in enumerate(obj.ravel())]
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("sklearn."):
            owned = getattr(obj, "n_features_in_", None)
            owned = int(owned) if isinstance(owned, int | np.integer) else n_features
            name = type(obj).__name__
            here = path if path.endswith(name) else f"{path}={name}"
            stack += [(v, f"{here}.{k}", owned) for k, v in vars(obj).items()]
