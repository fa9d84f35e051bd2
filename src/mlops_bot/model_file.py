"""Saving and loading model files safely: the one allow-list of loadable types.

A model file comes from whoever wrote it: a pull request's training command, a registry release
asset, a folder on disk. Loading it must never run code the file chose. skops is the default
format: a skops file is a JSON tree of nodes that name a type (`module.Name`) and the data to rebuild
it from; some nodes *call* the named thing with arguments from the file (a "reduce": skops'
`ConstructorFromReduceNode`, `ReduceNode`/`LossNode`/`TreeNode`, the type cast of `NdArrayNode`).
So a name we trust is a name a file may call with arguments of its choosing.

How a file is checked (`check_skops`, then `load_model`):

1. skops parses the node tree without importing or building anything (`get_untrusted_types`) and
   reports every name that skops itself does not trust *for that kind of node*. skops' own default
   set is narrow per node kind: JSON primitives and containers, numpy dtypes and arrays (read with
   `allow_pickle=False`), numpy / scipy.special ufuncs as functions, numpy bit generators, scipy
   sparse matrices, and scikit-learn's public estimator classes plus its loss/link types as objects
   rebuilt from attributes (never called with arguments).
2. Every reported name must be on OUR list, compared as an exact full name: no prefixes, no
   patterns, no "anything under sklearn.". Anything else refuses the whole file, naming the types,
   before a single object is built.
3. Only then does skops build the objects, trusting exactly the names it reported (a subset of our
   list), from the same bytes we checked.

The list is per framework so each one's types stay reviewable on their own:

- `SKLEARN_TYPES`: what fitted scikit-learn models need beyond skops' defaults (tree storage,
  neighbour search trees, distance metrics, optimizers, calibration and kernel helpers, ...).
- `SKLEARN_FUNCTIONS`: the few pure scikit-learn functions a fitted model holds as a value.
- `PYTHON_TYPES`, `NUMPY_TYPES`, `SCIPY_TYPES`: standard-library / numpy / scipy types beyond
  skops' defaults.
- `FRAMEWORK_TYPES` maps a framework name to its list and `DEFAULT_TRUSTED` is their union; a new
  framework (XGBoost, LightGBM, CatBoost) adds one frozenset of exact names here and one entry in
  `FRAMEWORK_TYPES`. A repository's own additions (a config `trusted_types` list) are passed as
  `extra_types` to `load_model` / `load_verified` and go through `allowed_types(extra=...)`, which
  refuses names in `NEVER_TRUSTED_MODULES` (and bare names) whatever the config says. Tests:
  `tests/core/test_model_file.py` (the list, supported estimators round-trip) and
  `tests/core/test_model_file_payloads.py` (crafted payloads refused at every entry point).

Rule for adding a name: it must be harmless wherever a file may put it: as a class rebuilt from
attributes, as a callable called with any arguments, or handed back as a value. Classes whose
constructors only store data qualify; functions that touch the OS, the filesystem, imports or
evaluation never do (`sklearn.utils._testing.check_output`, `scipy._lib._tmpdirs.rmtree` and
`numpy.memmap` all live under trusted package names and are exactly what a prefix list let through).

Tree storage (`sklearn.tree._tree.Tree`, HistGradientBoosting's `TreePredictor`) is trusted because
the tree models need it; skops itself does not trust them by default because their node indices are
used without bounds checks at predict time; `model_structure.check_trees` checks every tree's child and
feature indices after loading and refuses the file otherwise (see docs/security.md).

Pickle and joblib files execute code on load: they load only with `trusted_pickle=True` from a caller
that produced the file itself; no command of ours passes it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_bot.checksums import SUMS_NAME, mismatch, read_sums, sha256_bytes, sha256_file, verify_folder
from mlops_bot.errors import IntegrityError

# A registered version's model file: one of these names, in its folder and among its release assets.
MODEL_FILE_NAMES = ("model.skops", "model.onnx")


def version_model_file(names: Iterable[str], where: str) -> str:
    """The name of a version's model file among the file names it has (a folder's files, or the
    assets its register tag records): exactly one of `MODEL_FILE_NAMES`. Pure."""
    found = [name for name in MODEL_FILE_NAMES if name in set(names)]
    if len(found) != 1:
        raise IntegrityError(f"{where}: expected one of {', '.join(MODEL_FILE_NAMES)} (a version has one "
                             f"model file), found {' and '.join(found) if found else 'none'}")
    return found[0]
SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")

# Exact names, checked with skops 0.16 / scikit-learn 1.9 by fitting every estimator of
# `sklearn.utils.all_estimators()` inside the built-in ColumnTransformer pipeline and listing
# `get_untrusted_types` of the saved file (plus the neighbour, MLP, calibration and loss variants).
SKLEARN_TYPES: frozenset[str] = frozenset({
    # tree storage of DecisionTree*, RandomForest*, ExtraTrees*, GradientBoosting*, AdaBoost, Bagging
    "sklearn.tree._tree.Tree",
    # HistGradientBoosting*
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # KNeighbors*, RadiusNeighbors*: the search trees and their distance metrics
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    # MLP*
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # CalibratedClassifierCV
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # GaussianProcess* (default kernels)
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    # TweedieRegressor's losses (the others are in skops' defaults)
    "sklearn._loss.loss.HalfTweedieLoss",
    "sklearn._loss.loss.HalfTweedieLossIdentity",
})

# Functions a fitted model holds as a value (never as a reduce target we need): pure input checks
# without I/O. HistGradientBoosting with native categorical features keeps
# `functools.partial(check_array, ...)` in its preprocessor.
SKLEARN_FUNCTIONS: frozenset[str] = frozenset({
    "sklearn.utils.validation.check_array",
})

PYTHON_TYPES: frozenset[str] = frozenset({
    "functools.partial",  # skops' PartialNode; the wrapped function must itself be on a list
})

NUMPY_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",  # the dtype objects of encoders' categories_ and feature_names_in_
})

SCIPY_TYPES: frozenset[str] = frozenset()  # sparse matrices are in skops' defaults

# The scikit-learn APIs of the gradient-boosting libraries (extras `mlops-bot[xgboost]`,
# `mlops-bot[lightgbm]`), listed from `get_untrusted_types` of fitted binary, multiclass and
# regression models with xgboost 3.2 / lightgbm 4.7. The estimators are rebuilt from attributes;
# each Booster's `__setstate__` hands its saved model bytes/string to the library's own model
# parser (no Python code is run); OrderedDict is LightGBM's container of fitted parameters.
XGBOOST_TYPES: frozenset[str] = frozenset({
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor",
})

LIGHTGBM_TYPES: frozenset[str] = frozenset({
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "collections.OrderedDict",
})

# CatBoost's scikit-learn API (extra `mlops-bot[catboost]`), listed from `get_untrusted_types` of
# fitted classifiers (binary, multiclass, with categorical features) and regressors, alone and inside
# a Pipeline, with catboost 1.2: the estimator is rebuilt from its attributes and its `__setstate__`
# hands the saved model bytes to CatBoost's own binary model parser (`_load_from_string`, the .cbm
# format); no pickle and no Python code from the file.
CATBOOST_TYPES: frozenset[str] = frozenset({
    "catboost.core.CatBoostClassifier",
    "catboost.core.CatBoostRegressor",
})

FRAMEWORK_TYPES: Mapping[str, frozenset[str]] = {
    "python": PYTHON_TYPES,
    "scikit-learn": SKLEARN_TYPES | SKLEARN_FUNCTIONS,
    "numpy": NUMPY_TYPES,
    "scipy": SCIPY_TYPES,
    "xgboost": XGBOOST_TYPES,
    "lightgbm": LIGHTGBM_TYPES,
    "catboost": CATBOOST_TYPES,
}

# Top-level modules no list may ever name, whatever a repository's config asks for.
NEVER_TRUSTED_MODULES = frozenset({
    "builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "pickle",
    "marshal", "ctypes", "socket", "code", "codeop", "pty", "io", "pathlib", "tempfile", "webbrowser",
    "multiprocessing", "threading", "signal", "operator", "functools", "types", "inspect", "gc",
})

DEFAULT_TRUSTED: frozenset[str] = frozenset().union(*FRAMEWORK_TYPES.values())


def allowed_types(extra: Iterable[str] = ()) -> frozenset[str]:
    """Our list, plus exact names a repository adds (refused when they name a forbidden module)."""
    extra = [str(name) for name in extra]
    forbidden = sorted(name for name in extra
                       if name.split(".", 1)[0] in NEVER_TRUSTED_MODULES or "." not in name)
    if forbidden:
        raise IntegrityError(
            f"trusted model types {', '.join(forbidden)} can never be trusted: they are not "
            "'package.module.Type' names or they reach the OS, imports or evaluation"
        )
    return DEFAULT_TRUSTED.union(extra)


def is_trusted_type(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a type named in a skops file (beyond skops' own defaults) is on the list: exact match."""
    return name in allowed_types(extra)


def refused_types(needed: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The names a file needs that are not on the list, sorted (pure)."""
    allowed = allowed_types(extra)
    return sorted({name for name in needed if name not in allowed})


def check_skops(data: bytes, source: str, extra: Iterable[str] = ()) -> list[str]:
    """Parse a skops file's node tree (nothing is imported or built) and return the names it needs
    beyond skops' defaults; raise, naming them, when any is not on the list."""
    import skops.io as sio  # here, not at the top: importing skops takes seconds (it imports
    # scikit-learn whole), and the deploy job, which only names model files, never loads one

    try:
        needed = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a crafted or damaged zip/JSON: skops raises many types
        raise IntegrityError(f"model file {source} is not a valid skops file: {exc}") from None
    refused = refused_types(needed, extra)
    if refused:
        raise IntegrityError(
            f"model file {source} needs type(s) not on the model-type allow-list: {', '.join(refused)}; "
            "refused before building any object (see docs/security.md for what is trusted)"
        )
    return needed


def save_model(model: Any, path: str | Path) -> Path:
    """Write a model with skops (`.skops`)."""
    path = Path(path)
    if path.suffix not in SKOPS_SUFFIXES:
        raise IntegrityError(f"model file {path}: save models as .skops (pickle is unsafe to share)")
    path.parent.mkdir(parents=True, exist_ok=True)
    import skops.io as sio

    sio.dump(model, path)
    return path


def load_model(path: str | Path, trusted_pickle: bool = False, extra_types: Iterable[str] = (),
               expected_sha256: str | None = None, expected_from: str = "SHA256SUMS") -> Any:
    """Load a model file. A skops file loads only if every type it needs is on the allow-list, and,
    when `expected_sha256` is given (from a SHA256SUMS or the registry tag, named by
    `expected_from`), only if the bytes read are exactly those."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"model file {path} does not exist")
    if path.suffix in SKOPS_SUFFIXES:
        data = path.read_bytes()  # hashed, checked and loaded from the same bytes
        if expected_sha256 is not None:
            actual = sha256_bytes(data)
            if actual != expected_sha256.lower():
                raise mismatch(f"model file {path}", actual, expected_sha256, expected_from)
        needed = check_skops(data, str(path), extra_types)
        import skops.io as sio

        try:
            model = sio.loads(data, trusted=needed)
        except ModuleNotFoundError as exc:
            framework = (exc.name or "").split(".")[0]
            raise IntegrityError(
                f"model file {path} is a {framework} model but {framework!r} is not installed: "
                f"pip install 'mlops-bot[{framework}]'"
            ) from None
        except Exception as exc:
            raise IntegrityError(f"model file {path} could not be rebuilt by skops: {exc}") from None
        from mlops_bot.model_structure import check_trees

        check_trees(model, str(path))  # tree indices scikit-learn would follow unchecked
        return model
    if path.suffix in PICKLE_SUFFIXES:
        if not trusted_pickle:
            raise IntegrityError(
                f"model file {path} is a pickle: loading it can run arbitrary code. Save it with skops "
                "(.skops), or pass the explicit trusted flag if you produced this file yourself"
            )
        if expected_sha256 is not None and sha256_file(path) != expected_sha256.lower():
            raise mismatch(f"model file {path}", sha256_file(path), expected_sha256, expected_from)
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the caller vouched for this file
    # Imported here: numpy and pandas cost a deploy job that only names model files ~1 s of CPU.
    from mlops_bot.onnx_model import ONNX_SUFFIXES, load_onnx

    if path.suffix in ONNX_SUFFIXES:  # a graph onnxruntime executes: no Python object is built
        data = path.read_bytes()
        if expected_sha256 is not None and sha256_bytes(data) != expected_sha256.lower():
            raise mismatch(f"model file {path}", sha256_bytes(data), expected_sha256, expected_from)
        return load_onnx(data, str(path))
    raise IntegrityError(f"model file {path}: unknown format {path.suffix!r} (use .skops or .onnx)")


def load_verified(path: str | Path, expected: Mapping[str, str] | None = None,
                  extra_types: Iterable[str] = (), whole_folder: bool = True) -> Any:
    """Load a model file after checking its folder: every file the `SHA256SUMS` beside it lists must
    match (the model file must be listed), and so must the registry tag's digests when `expected` is
    given. A folder without SHA256SUMS and without expected digests loads through the allow-list
    only. Every load of a model the server or a deploy target serves goes through here.

    `whole_folder=False` is for a model file named on its own (`serve --model dir/model.skops`): a
    SHA256SUMS beside it is used when it lists the file, and the folder's other files are not its
    business (a downloads folder may hold an unrelated SHA256SUMS)."""
    path = Path(path)
    if not whole_folder and not expected:
        sums = read_sums(path.parent)
        if sums is None or path.name not in sums:
            return load_model(path, extra_types=extra_types)
        return load_model(path, extra_types=extra_types, expected_sha256=sums[path.name],
                          expected_from=str(path.parent / SUMS_NAME))
    listed = verify_folder(path.parent, expected, require=[path.name])
    if listed is None:
        return load_model(path, extra_types=extra_types)
    where = "the registry tag" if expected else f"{path.parent / SUMS_NAME}"
    return load_model(path, extra_types=extra_types, expected_sha256=listed[path.name], expected_from=where)
