"""`registry register --if-verdict-pass REPORT --skip-if-registered`: what the PR comment workflow runs
after a validation, so the PR's head commit carries a registered version exactly once, and only when
its gates passed. Real git (a clone pushing to a bare origin) and the file-backed forge."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_bot.cli import main
from mlops_bot.deploy.loading import load_version
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_file import save_model
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import clone, commit, run_git


def tiny_model() -> LogisticRegression:
    frame = pd.DataFrame({"tenure": [1.0, 5.0, 9.0, 2.0, 7.0, 3.0], "plan": [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]})
    return LogisticRegression().fit(frame, ["stay", "churn", "churn", "stay", "churn", "stay"])


def register(repo: Path, *args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["registry", "register", "churn", "--repo", str(repo), *args])
    return code, buffer.getvalue()


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID", "GITHUB_ACTIONS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    folder = tmp_path / "report"
    folder.mkdir()
    save_model(tiny_model(), folder / "model.skops")
    (folder / "report.json").write_text(json.dumps({"model": "churn", "verdict": "pass"}))
    return folder


def test_registers_the_validated_head_once_with_its_assets(repo: Path, origin: Path, report_dir: Path,
                                                           tmp_path: Path) -> None:
    head = commit(repo, "the PR's model")
    run_git(repo, "push", "-q", "origin", "main")
    main_ref = commit(repo, "unrelated work on main")
    other = clone(origin, tmp_path / "other")  # cloned before the tag exists
    args = ("--bump", "patch", "--ref", head, "--push", "--if-verdict-pass", str(report_dir / "report.json"),
            "--skip-if-registered", "--artifact", f"model.skops={report_dir / 'model.skops'}",
            "--artifact", f"report.json={report_dir / 'report.json'}")
    code, out = register(repo, *args)
    assert code == 0 and "churn@v0.0.1" in out
    assert run_git(origin, "rev-list", "-n", "1", "churn@v0.0.1").strip() == head
    assert Registry(repo).trailers_of("churn", "v0.0.1")["Verdict"] == "pass"
    # A re-run (from another clone that has not fetched the tag) is a no-op, not an error.
    code, out = register(other, *args)
    assert code == 0 and out.startswith("Not registering:") and "already registered as churn v0.0.1" in out
    assert sorted(run_git(origin, "tag", "--list").split()) == ["churn@v0.0.1"]
    assert main_ref != head


def test_a_failed_or_missing_verdict_registers_nothing(repo: Path, origin: Path, report_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    report = report_dir / "report.json"
    report.write_text(json.dumps({"verdict": "fail"}))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out = register(repo, "--push", "--if-verdict-pass", str(report), "--skip-if-registered")
    assert code == 0 and out.startswith("::notice::Not registering: the validation verdict is 'fail'")
    report.write_text("[1, 2]")
    code, out = register(repo, "--push", "--if-verdict-pass", str(report))
    assert code == 0 and "'missing'" in out
    assert run_git(origin, "tag", "--list").strip() == ""
    report.write_text("{not json")
    assert register(repo, "--push", "--if-verdict-pass", str(report))[0] == 2
    assert register(repo, "--push", "--if-verdict-pass", str(report_dir / "absent.json"))[0] == 2
    assert run_git(origin, "tag", "--list").strip() == ""


def test_the_models_signature_is_registered_with_it(repo: Path, report_dir: Path, tmp_path: Path) -> None:
    """No signature.json given: it is read off the model, uploaded as a release asset, listed in
    SHA256SUMS and in the register tag, and the downloaded version serves with it."""
    code, out = register(repo, "--push", "--artifact", f"model.skops={report_dir / 'model.skops'}")
    assert code == 0, out
    registry = Registry(repo, forge=LocalForge(tmp_path / "forge"))
    assert set(registry.checksums_of("churn", "v0.0.1")) == {"model.skops", "signature.json"}
    folder = Path(registry.download("churn", "v0.0.1", tmp_path / "download"))
    stored = json.loads((folder / "signature.json").read_text())
    assert stored["platform"] == "sklearn" and stored["classes"] == ["churn", "stay"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in stored["inputs"]] == [
        ("tenure", "FP64", [-1]), ("plan", "FP64", [-1])]
    assert stored["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                                 {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    assert "signature.json" in (folder / "SHA256SUMS").read_text()
    served = load_version("churn", "v0.0.1", folder)
    assert [f.name for f in served.features] == ["tenure", "plan"]


def test_a_bad_model_or_a_bad_signature_registers_nothing(
        repo: Path, origin: Path, report_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "signature.json"
    other.write_text(json.dumps({"inputs": [{"name": "tenure", "kind": "ordinal"}]}))
    code, _ = register(repo, "--push", "--artifact", f"model.skops={report_dir / 'model.skops'}",
                       "--artifact", f"signature.json={other}")
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert f"artifact signature.json ({other}) is not a model signature: inputs.0.kind" in error
    # Without a signature.json the model is loaded to read it: a type on no allow-list is refused.
    untrusted = tmp_path / "untrusted" / "model.skops"
    frame = pd.DataFrame({"tenure": [1.0, 5.0, 9.0, 2.0], "plan": [0.0, 1.0, 1.0, 0.0]})
    save_model(make_pipeline(FunctionTransformer(np.asarray), LogisticRegression()).fit(
        frame, ["stay", "churn", "churn", "stay"]), untrusted)
    assert register(repo, "--push", "--artifact", f"model.skops={untrusted}")[0] == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "numpy.asarray" in error and "allow-list" in error
    damaged = tmp_path / "damaged" / "model.skops"
    damaged.parent.mkdir()
    damaged.write_bytes(b"weights")
    assert register(repo, "--push", "--artifact", f"model.skops={damaged}")[0] == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"model file {damaged}" in error
    assert run_git(origin, "tag", "--list").strip() == "" and run_git(repo, "tag", "--list").strip() == ""
