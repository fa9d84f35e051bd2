"""Model signatures at serve time: the metadata endpoint reports a version's stored signature, a
request that does not match it is a 4xx that never counts against the version, a signature.json
that does not describe its model (or that the folder's SHA256SUMS does not vouch for) is refused at
load, and a canary that takes other inputs than stable is refused before it serves anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlops_bot.checksums import write_sums
from mlops_bot.deploy.loading import load_version, version_signature
from mlops_bot.deploy.router import ModelRouter
from mlops_bot.deploy.routing import RoutingRequest, VersionRef
from mlops_bot.deploy.server import create_app
from mlops_bot.errors import IntegrityError
from mlops_bot.model_signature import (
    FeatureSpec,
    ModelSignature,
    SignatureMismatch,
    input_difference,
    signature_of,
)

TOKEN = "signature-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _serve(path: Path, version: str = "v1.0.0") -> tuple[ModelRouter, TestClient]:
    router = ModelRouter("credit", seed=1)
    router.set_versions(RoutingRequest(stable=VersionRef(version=version, path=str(path))))
    return router, TestClient(create_app(router, admin_token=TOKEN))


def _copy_with_signature(source: Path, dest: Path, signature: ModelSignature | dict[str, Any],
                         sums: bool = True) -> Path:
    dest.mkdir(parents=True)
    shutil.copyfile(source / "model.skops", dest / "model.skops")
    text = signature.to_json() if isinstance(signature, ModelSignature) else json.dumps(signature)
    (dest / "signature.json").write_text(text)
    if sums:
        write_sums(dest, ["model.skops", "signature.json"])
    return dest


def test_metadata_reports_the_stored_signature(model_dirs: dict[str, Path], tmp_path: Path) -> None:
    loaded = load_version("credit", "v1.0.0", model_dirs["v1.0.0"])
    stored = signature_of(loaded.model)
    assert stored.platform == "sklearn" and stored.classes == [0, 1]
    folder = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "v1.0.0", stored)
    _, client = _serve(folder)
    body = client.get("/v2/models/credit").json()
    assert body["platform"] == "sklearn"
    assert body["inputs"] == [{"name": "income", "datatype": "FP64", "shape": [-1]},
                              {"name": "age", "datatype": "FP64", "shape": [-1]},
                              {"name": "region", "datatype": "BYTES", "shape": [-1]}]
    assert body["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    assert client.get("/v2/models/credit/versions/v1.0.0").json()["inputs"] == body["inputs"]


def test_requests_that_do_not_match_the_signature_are_4xx_and_not_counted(
        model_dirs: dict[str, Path], make_records: Any, tmp_path: Path) -> None:
    signature = signature_of(load_version("credit", "v1.0.0", model_dirs["v1.0.0"]).model)
    signature.inputs[1].datatype = "INT64"  # age: whole years
    folder = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "v1.0.0", signature)
    router, client = _serve(folder)
    assert client.get("/v2/models/credit").json()["inputs"][1] == {"name": "age", "datatype": "INT64",
                                                                   "shape": [-1]}
    row = make_records(1)[0]

    def tensors(**changed: Any) -> list[dict[str, Any]]:
        out = [{"name": "income", "datatype": "FP64", "shape": [1], "data": [row["income"]]},
               {"name": "age", "datatype": "FP64", "shape": [1], "data": [row["age"]]},
               {"name": "region", "datatype": "BYTES", "shape": [1], "data": [row["region"]]}]
        for tensor in out:
            tensor.update(changed.get(tensor["name"], {}))
        return [t for t in out if t.get("data") is not None]

    bad = {
        "missing input": ({"inputs": tensors(region={"data": None})},
                          "missing input tensor(s) for feature(s): region"),
        "unknown input": ({"inputs": [*tensors(), {"name": "zip", "datatype": "FP64", "shape": [1],
                                                    "data": [1.0]}]}, "unknown input(s) 'zip'"),
        "string for a number": ({"inputs": tensors(income={"datatype": "BYTES", "data": ["high"]})},
                                "is BYTES but the feature is numeric"),
        "fraction for INT64": ({"inputs": tensors(age={"data": [35.5]})},
                               "is INT64 in the model's signature"),
    }
    for case, (body, message) in bad.items():
        response = client.post("/v2/models/credit/infer", json=body)
        assert response.status_code == 400, case
        assert message in response.json()["error"], (case, response.json())
    records = client.post("/predict", json={"records": [{**row, "age": 35.5}]})
    assert records.status_code == 422 and "is INT64 in the model's signature" in records.json()["error"]
    good = client.post("/v2/models/credit/infer", json={"inputs": tensors(age={"data": [int(row["age"])]})})
    assert good.status_code == 200, good.text
    stats = router.snapshot().versions["v1.0.0"]
    assert stats.client_errors == len(bad) + 1 and stats.errors == 0 and stats.requests == 1


def test_a_signature_that_is_not_the_models_is_refused_at_load(model_dirs: dict[str, Path],
                                                               tmp_path: Path) -> None:
    wrong = {"inputs": [{"name": "income"}, {"name": "age"}]}
    folder = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "wrong", wrong)
    with pytest.raises(IntegrityError, match=r"lists the inputs income, age but the model was fitted on "
                                             r"income, age, region"):
        load_version("credit", "v1.0.0", folder)

    right = signature_of(load_version("credit", "v1.0.0", model_dirs["v1.0.0"]).model)
    unlisted = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "unlisted", right, sums=False)
    write_sums(unlisted, ["model.skops"])
    with pytest.raises(IntegrityError, match=r"signature.json is not listed in the folder's SHA256SUMS"):
        load_version("credit", "v1.0.0", unlisted)
    with pytest.raises(IntegrityError, match=r"not listed"):
        version_signature(unlisted)

    edited = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "edited", right)
    (edited / "signature.json").write_text(right.to_json().replace('"FP64"', '"FP32"'))
    with pytest.raises(IntegrityError, match=r"signature.json has sha256 .* modified"):
        version_signature(edited)

    garbage = _copy_with_signature(model_dirs["v1.0.0"], tmp_path / "garbage", {"inputs": "all of them"})
    with pytest.raises(IntegrityError, match=r"is not a model signature: inputs"):
        load_version("credit", "v1.0.0", garbage)


def test_a_canary_with_other_inputs_is_refused_and_stable_keeps_serving(
        model_dirs: dict[str, Path], make_records: Any) -> None:
    router, client = _serve(model_dirs["v1.0.0"])
    wanted = {"stable": {"version": "v1.0.0", "path": str(model_dirs["v1.0.0"])},
              "canary": {"version": "v2.0.0-no-region", "path": str(model_dirs["v2.0.0-no-region"])},
              "weight": 50}
    response = client.post("/admin/versions", json=wanted, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"] == (
        "v2.0.0-no-region cannot be a canary of v1.0.0: their input signatures differ "
        "(only stable v1.0.0 takes region)")
    assert router.snapshot().canary is None
    served = client.post("/predict", json={"records": make_records(3)})
    assert served.status_code == 200 and served.headers["X-Model-Version"] == "v1.0.0"
    # The same version on its own serves its own signature.
    alone, alone_client = _serve(model_dirs["v2.0.0-no-region"], "v2.0.0-no-region")
    assert [i["name"] for i in alone_client.get("/v2/models/credit").json()["inputs"]] == ["income", "age"]
    with pytest.raises(SignatureMismatch):
        alone.set_versions(RoutingRequest(
            stable=VersionRef(version="v2.0.0-no-region", path=str(model_dirs["v2.0.0-no-region"])),
            canary=VersionRef(version="v1.1.0", path=str(model_dirs["v1.1.0"])), weight=10))


def test_input_difference_names_each_difference() -> None:
    def signature(*inputs: tuple[str, str, str]) -> ModelSignature:
        return ModelSignature(inputs=[FeatureSpec(name=n, kind=k, datatype=d)  # type: ignore[arg-type]
                                      for n, k, d in inputs])

    base = signature(("a", "numeric", "FP64"), ("b", "categorical", "BYTES"))
    labels = ("stable v1", "v2")
    assert input_difference(base, base, labels) is None
    assert input_difference(base, signature(("a", "numeric", "FP64"), ("b", "categorical", "BYTES"),
                                            ("c", "numeric", "FP64")), labels) == "only v2 takes c"
    assert input_difference(base, signature(("a", "numeric", "FP32"), ("b", "categorical", "BYTES")),
                            labels) == "a is FP64 [-1] in stable v1 but FP32 [-1] in v2"
    assert input_difference(base, signature(("a", "categorical", "FP64"), ("b", "categorical", "BYTES")),
                            labels) == "a is numeric in stable v1 but categorical in v2"
    swapped = signature(("b", "categorical", "BYTES"), ("a", "numeric", "FP64"))
    assert "another order" in str(input_difference(base, swapped, labels))
    # Older signature files hold names and kinds only: the datatypes follow from the kinds.
    old = ModelSignature.model_validate({"inputs": [{"name": "a"}, {"name": "b", "kind": "categorical"}]})
    assert input_difference(base, old, labels) is None
