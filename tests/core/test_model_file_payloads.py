"""Crafted skops files that run code when skops is told to trust what they ask for, and that our loader
refuses by name before building any object.

Each payload is a real fitted LogisticRegression whose `__dict__` carries one extra attribute: a node
that makes skops call a function with arguments from the file. `test_payload_is_live` proves each
one really runs (the marker appears, the file is truncated, the tree is deleted) when trusted the
way the old prefix list did; the refusal tests prove our loader never gets that far.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from mlops_bot.errors import IntegrityError
from mlops_bot.model_file import load_model

_ids = iter(range(10**9, 2 * 10**9))


def _json(value: Any) -> dict[str, Any]:
    return {"__class__": type(value).__name__, "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True, "__id__": next(_ids)}


def _node(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
                "content": [_node(v) for v in value], "__id__": next(_ids)}
    if isinstance(value, tuple):
        return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                "content": [_node(v) for v in value], "__id__": next(_ids)}
    return _json(value)


def constructor_reduce(target: str, *args: Any) -> Callable[[zipfile.ZipFile], dict[str, Any]]:
    """skops' ConstructorFromReduceNode: `target(*args)` at load."""
    module, _, name = target.rpartition(".")

    def build(_: zipfile.ZipFile) -> dict[str, Any]:
        return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
                "content": _node(tuple(args)), "__id__": next(_ids)}
    return build


def loss_reduce(target: str, *args: Any) -> Callable[[zipfile.ZipFile], dict[str, Any]]:
    """skops' LossNode (a ReduceNode): `target(*args)` at load, the constructor named by the node."""
    module, _, name = target.rpartition(".")

    def build(_: zipfile.ZipFile) -> dict[str, Any]:
        return {"__class__": name, "__module__": module, "__loader__": "LossNode",
                "__reduce__": {"args": _node(tuple(args))},
                "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                            "content": {}, "key_types": _node([]), "__id__": next(_ids)},
                "__id__": next(_ids)}
    return build


def array_cast(target: str, values: list[str]) -> Callable[[zipfile.ZipFile], dict[str, Any]]:
    """skops' NdArrayNode: a numpy array read from the zip, then `target(array)` as its 'type'."""
    module, _, name = target.rpartition(".")

    def build(archive: zipfile.ZipFile) -> dict[str, Any]:
        buffer = io.BytesIO()
        np.save(buffer, np.array(values), allow_pickle=False)
        archive.writestr("payload.npy", buffer.getvalue())
        return {"__class__": name, "__module__": module, "__loader__": "NdArrayNode", "type": "numpy",
                "file": "payload.npy", "__id__": next(_ids)}
    return build


def crafted_model(path: Path, payload: Callable[[zipfile.ZipFile], dict[str, Any]]) -> Path:
    """A real fitted LogisticRegression saved with skops, with `payload` added to its `__dict__`."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    source = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
    schema = json.loads(source.read("schema.json"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in source.namelist():
            if name != "schema.json":
                archive.writestr(name, source.read(name))
        attributes = schema["content"]  # the model's __dict__ (a DictNode): keys pair with key_types
        attributes["content"]["payload_"] = payload(archive)
        attributes["key_types"]["content"].append(
            {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": next(_ids)})
        archive.writestr("schema.json", json.dumps(schema))
    path.write_bytes(out.getvalue())
    return path


class Victim:
    """What a payload attacks, and how a test tells whether it ran."""

    def __init__(self, root: Path) -> None:
        self.marker = root / "MARKER"
        self.precious = root / "precious.bin"
        self.precious.write_bytes(b"weights that must survive" * 100)
        self.tree = root / "tree"
        (self.tree / "sub").mkdir(parents=True)
        (self.tree / "sub" / "file.txt").write_text("keep me")

    def harmed(self) -> list[str]:
        harm = []
        if self.marker.exists():
            harm.append("marker created")
        intact = self.precious.exists() and self.precious.read_bytes() == b"weights that must survive" * 100
        if not intact:
            harm.append("file truncated")
        if not (self.tree / "sub" / "file.txt").is_file():
            harm.append("tree deleted")
        return harm


PAYLOADS: dict[str, tuple[str, Callable[[Victim], Callable[[zipfile.ZipFile], dict[str, Any]]]]] = {
    "sklearn check_output": (
        "sklearn.utils._testing.check_output",
        lambda v: constructor_reduce("sklearn.utils._testing.check_output", ["touch", str(v.marker)]),
    ),
    "scipy rmtree": (
        "scipy._lib._tmpdirs.rmtree",
        lambda v: constructor_reduce("scipy._lib._tmpdirs.rmtree", str(v.tree)),
    ),
    "numpy memmap": (
        "numpy.memmap",
        lambda v: constructor_reduce("numpy.memmap", str(v.precious), "uint8", "w+", 0, [4]),
    ),
    "os.system": (
        "os.system",
        lambda v: constructor_reduce("os.system", f"touch '{v.marker}'"),
    ),
    "subprocess via LossNode": (
        "subprocess.check_call",
        lambda v: loss_reduce("subprocess.check_call", ["touch", str(v.marker)]),
    ),
    "subprocess via an array's type": (
        "subprocess.call",
        lambda v: array_cast("subprocess.call", ["touch", str(v.marker)]),
    ),
}


@pytest.mark.parametrize("case", sorted(PAYLOADS))
def test_payload_is_live(tmp_path: Path, case: str) -> None:
    """Guard against a payload that could not run anyway: trusted the way the old prefix list (or a
    careless `trusted=get_untrusted_types(...)`) did, it does its harm."""
    name, payload = PAYLOADS[case]
    victim = Victim(tmp_path)
    path = crafted_model(tmp_path / "model.skops", payload(victim))
    assert name in sio.get_untrusted_types(file=path)
    with contextlib.suppress(Exception):  # the harm is done before skops trips over the result
        sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert victim.harmed()


@pytest.mark.parametrize("case", sorted(PAYLOADS))
def test_payload_is_refused_by_name_before_anything_is_built(tmp_path: Path, case: str) -> None:
    name, payload = PAYLOADS[case]
    victim = Victim(tmp_path)
    path = crafted_model(tmp_path / "model.skops", payload(victim))
    with pytest.raises(IntegrityError, match=f"allow-list: {name.replace('.', '[.]')}") as caught:
        load_model(path)
    assert str(path) in str(caught.value)
    assert victim.harmed() == []


def test_prefix_lookalikes_are_not_trusted(tmp_path: Path) -> None:
    """Names that start like trusted ones, or sit next to them, are refused: the match is exact."""
    victim = Victim(tmp_path)
    for name in ("sklearn.tree._tree.Tree.__init__", "sklearn.tree._tree.TreeX", "sklearn.tree._tree",
                 "numpy.dtypes", "numpy.lib.format.open_memmap", "scipy.io.savemat"):
        path = crafted_model(tmp_path / "m.skops", constructor_reduce(name, str(victim.marker)))
        with pytest.raises(IntegrityError, match=f"allow-list: {name.replace('.', '[.]')}$|allow-list: "
                           f"{name.replace('.', '[.]')};"):
            load_model(path)
    assert victim.harmed() == []


def test_every_entry_point_refuses_the_crafted_model(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The model server (`serve --model`, the deploy targets' server), validate's `--base-model` and
    the server's loader all go through the one loader."""
    from mlops_bot.cli import main
    from mlops_bot.deploy.loading import load_version

    victim = Victim(tmp_path)
    folder = tmp_path / "v1"
    folder.mkdir()
    path = crafted_model(folder / "model.skops", PAYLOADS["sklearn check_output"][1](victim))
    with pytest.raises(IntegrityError, match="check_output"):
        load_version("credit-risk", "v1.0.0", folder)
    assert main(["serve", "credit-risk", "--model", str(folder), "--port", "0"]) == 2
    assert "sklearn.utils._testing.check_output" in capsys.readouterr().err
    config = tmp_path / "mlops.yml"
    config.write_text("model: {name: m, task: classification}\n"
                      "train: {builtin: {estimator: logistic_regression}}\n"
                      "data: {train: train.csv, holdout: holdout.csv, target: y}\n", encoding="utf-8")
    rng = np.random.default_rng(1)
    for name in ("train.csv", "holdout.csv"):
        x = rng.normal(size=(60, 2))
        (tmp_path / name).write_text("a,b,y\n" + "".join(f"{a},{b},{int(a > 0)}\n" for a, b in x))
    assert main(["validate", "--config", str(config), "--output", str(tmp_path / "out"), "--quiet",
                 "--base-model", str(path)]) == 2
    assert "sklearn.utils._testing.check_output" in capsys.readouterr().err
    assert victim.harmed() == []


def test_no_other_module_deserializes_models() -> None:
    """One loader: nothing under src/ but model_file.py calls skops', pickle's or joblib's loaders."""
    import re

    import mlops_bot

    root = Path(mlops_bot.__file__).parent
    pattern = re.compile(r"\b(sio|skops\.io|pickle|joblib|cloudpickle|dill)\.loads?\("
                         r"|\bnp\.load\([^)]*allow_pickle=True")
    offenders = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py") if p.name != "model_file.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
