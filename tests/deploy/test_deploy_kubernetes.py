"""KServe InferenceService manifests, validated against the KServe SDK's generated OpenAPI models
(the `kserve` wheel, unpacked without its heavy runtime deps by `make kserve-sdk`) and the
kubernetes client's core models."""

from __future__ import annotations

import importlib
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.deploy.targets.kserve import inference_service, resource_name, step_manifests
from mlops_bot.errors import MlopsError

SDK = Path(__file__).resolve().parents[2] / ".cache" / "kserve-sdk"


def _models() -> tuple[Any, Any]:
    if not (SDK / "kserve" / "models").is_dir():
        pytest.skip(f"KServe SDK models not unpacked at {SDK}: run `make kserve-sdk`")
    k8s = pytest.importorskip("kubernetes.client", reason="the kubernetes client is a dev dependency")
    if "kserve" not in sys.modules:
        package = types.ModuleType("kserve")  # only the generated models, not the server runtime
        package.__path__ = [str(SDK / "kserve")]
        sys.modules["kserve"] = package
    return importlib.import_module("kserve.models"), k8s


def _resolve(name: str, kserve_models: Any, k8s: Any) -> Any:
    for module in (kserve_models, k8s):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"unknown model type {name}")


def validate(value: Any, type_name: str, where: str, kserve_models: Any, k8s: Any) -> None:
    """Strict check of a manifest against the generated models: unknown keys, wrong types, and
    required fields (by constructing each object with client-side validation on)."""
    if match := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        assert isinstance(value, list), f"{where}: expected a list"
        for i, item in enumerate(value):
            validate(item, match.group(1), f"{where}[{i}]", kserve_models, k8s)
        return
    if match := re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])", type_name):
        assert isinstance(value, dict), f"{where}: expected a mapping"
        for key, item in value.items():
            validate(item, match.group(1) or match.group(2), f"{where}.{key}", kserve_models, k8s)
        return
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if type_name in simple:
        assert isinstance(value, simple[type_name]), f"{where}: expected {type_name}, got {value!r}"
        return
    cls = _resolve(type_name, kserve_models, k8s)
    assert isinstance(value, dict), f"{where}: expected an object ({type_name})"
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    unknown = sorted(set(value) - set(by_json))
    assert not unknown, f"{where}: {type_name} has no field(s) {unknown}"
    for key, item in value.items():
        validate(item, cls.openapi_types[by_json[key]], f"{where}.{key}", kserve_models, k8s)
    # Required fields: the generated constructors raise ValueError when one is None.
    cls(**{by_json[k]: v for k, v in value.items()})


def check(manifest: dict[str, Any]) -> None:
    kserve_models, k8s = _models()
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    validate(manifest, "V1beta1InferenceService", "InferenceService", kserve_models, k8s)


def test_canary_manifests_validate() -> None:
    manifests = step_manifests("credit-risk", "v1.2.0", "s3://models/credit-risk/v1.2.0", [10, 50],
                               trusted_types=["team_features.transformers.Clipper"])
    for manifest in manifests:
        check(manifest)
    assert [m["spec"]["predictor"].get("canaryTrafficPercent") for m in manifests] == [10, 50, None]
    container = manifests[0]["spec"]["predictor"]["containers"][0]
    assert container["args"][-2:] == ["--trusted-type", "team_features.transformers.Clipper"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "/v2/health/ready" in str(container["readinessProbe"])


def test_validator_catches_mistakes() -> None:
    manifest = inference_service("credit", storage_uri="pvc://m/credit", version="v1.0.0", canary_percent=5)
    manifest["spec"]["predictor"]["canaryTraficPercent"] = manifest["spec"]["predictor"].pop(
        "canaryTrafficPercent")
    with pytest.raises(AssertionError, match="canaryTraficPercent"):
        check(manifest)
    broken = inference_service("credit", storage_uri="pvc://m/credit", version="v1.0.0")
    broken["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(AssertionError, match="expected int"):
        check(broken)


def test_names_and_bounds() -> None:
    assert resource_name("Team/Credit_Risk") == "team-credit-risk"
    assert resource_name("9lives") == "m-9lives"
    with pytest.raises(MlopsError):
        inference_service("credit", storage_uri="x", version="v1", canary_percent=101)


def test_no_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("kubernetes")
    from mlops_bot.deploy.targets.cluster import connect

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(MlopsError, match="no Kubernetes cluster configured"):
        connect()
