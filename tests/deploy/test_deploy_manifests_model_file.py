"""`mlops-bot deploy --target kubernetes --manifests` names the version's own model file in the
storage URI (`$file`): model.onnx for an ONNX version, read from what its source records (the
register tag's asset digests in a real git-tag registry, or a models directory's files), by the one
rule `model_file.version_model_file` the cluster targets use when they deploy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.test_deploy_onnx import price_graph
from mlops_bot.cli import main
from mlops_bot.deploy.sources import DirectorySource, RegistrySource
from mlops_bot.errors import IntegrityError
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_signature import SIGNATURE_FILE, signature_of
from mlops_bot.onnx_model import load_onnx
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import commit, run_git

CONFIG = ("model: {{name: prices, task: regression}}\n"
          "train: {{builtin: {{estimator: linear_regression}}}}\n"
          "data: {{train: t.csv, holdout: h.csv, target: y}}\n"
          "rollout:\n  engine: {engine}\n  steps: [{{weight: 20, hold: 30}}]\n"
          "  prometheus: {{url: 'http://prometheus.monitoring:9090'}}\n")


def onnx_version(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(price_graph())
    (folder / SIGNATURE_FILE).write_text(signature_of(load_onnx(price_graph(), "model.onnx")).to_json())
    return {"model.onnx": folder / "model.onnx", SIGNATURE_FILE: folder / SIGNATURE_FILE}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A git-tag registry (a real repository, the local forge for release assets) holding prices
    v1.0.0 registered with model.onnx, and v0.9.0 registered without any model file."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    run_git(repo, "config", "user.name", "dev")
    run_git(repo, "config", "user.email", "dev@example.com")
    commit(repo, "first")
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/house")
    registry = Registry(repo, forge=LocalForge(tmp_path / "forge", repo="acme/house"))
    registry.register("prices", version="v0.9.0")
    commit(repo, "second")
    registry.register("prices", version="v1.0.0", artifacts=onnx_version(tmp_path / "built"))
    return registry


@pytest.mark.parametrize("engine", ["argo", "kserve"])
def test_manifests_of_an_onnx_version_name_model_onnx(registry: Registry, tmp_path: Path,
                                                      engine: str) -> None:
    config = tmp_path / f"mlops-{engine}.yml"
    config.write_text(CONFIG.format(engine=engine))
    out = tmp_path / engine
    assert main(["deploy", "prices", "--version", "v1.0.0", "--target", "kubernetes", "--repo",
                 str(registry.repo), "--config", str(config), "--manifests", str(out)]) == 0
    text = "".join(path.read_text() for path in sorted(out.iterdir()))
    assert "https://github.com/acme/house/releases/download/prices%40v1.0.0/model.onnx" in text
    assert "model.skops" not in text


def test_the_model_file_comes_from_what_the_source_records(registry: Registry, tmp_path: Path) -> None:
    assert RegistrySource(registry).model_file("prices", "v1.0.0") == "model.onnx"
    with pytest.raises(IntegrityError, match=r"prices v0\.9\.0 in the registry .*expected one of "
                                             r"model\.skops, model\.onnx .*found none"):
        RegistrySource(registry).model_file("prices", "v0.9.0")
    onnx_version(tmp_path / "models" / "v2.0.0")
    (tmp_path / "models" / "v2.1.0").mkdir()
    (tmp_path / "models" / "v2.1.0" / "model.skops").write_bytes(b"")
    (tmp_path / "models" / "v2.1.0" / "model.onnx").write_bytes(b"")
    source = DirectorySource(tmp_path / "models")
    assert source.model_file("prices", "v2.0.0") == "model.onnx"
    with pytest.raises(IntegrityError, match=r"found model\.skops and model\.onnx"):
        source.model_file("prices", "v2.1.0")
