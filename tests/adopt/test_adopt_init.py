"""`mlops-bot init`: inspects the data, writes a config that validates and the workflows with the
repository's default branch, model name and deploy target; `--dry-run` writes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_bot.adopt.data_facts import inspect_table
from mlops_bot.adopt.scaffold import (
    TEMPLATE_BRANCH,
    TEMPLATE_EXTRAS,
    TEMPLATE_MODEL,
    TEMPLATE_TARGET,
    InitOptions,
    render_workflows,
)
from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.demo.dataset import generate
from mlops_bot.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {p.name: p.read_text() for p in sorted((ROOT / "workflows-templates").glob("mlops-*.yml"))}


def test_task_and_columns_are_inferred() -> None:
    loans = generate(200, seed=1)
    facts = inspect_table(loans, "default", ["sex"])
    assert facts.task == "classification" and facts.classes == ["0", "1"]
    assert facts.id_column == "applicant_id"
    assert "sex" in facts.skipped and "sex" not in facts.numeric + facts.categorical
    assert set(facts.categorical) == {"employment", "purpose"}
    assert "income" in facts.numeric
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=50), "price": rng.normal(100, 10, size=50),
                          "kind": rng.choice(["a", "b", "c"], size=50)})
    assert inspect_table(frame, "price").task == "regression"
    assert inspect_table(frame, "kind").task == "classification"
    assert inspect_table(frame, "kind").classes == ["a", "b", "c"]
    with pytest.raises(DataError, match="no target column 'nope'"):
        inspect_table(frame, "nope")
    with pytest.raises(DataError, match="'gender'"):
        inspect_table(frame, "price", ["gender"])


def test_templates_carry_each_value_init_fills_in_once() -> None:
    deploy = TEMPLATES["mlops-deploy.yml"]
    for line in (TEMPLATE_BRANCH, TEMPLATE_MODEL, TEMPLATE_TARGET, TEMPLATE_EXTRAS):
        assert deploy.count(line) == 1, line
    assert not any("$default-branch" in text for text in TEMPLATES.values())
    files = render_workflows(TEMPLATES, InitOptions(model="churn", branch="trunk", deploy_target="docker"))
    assert sorted(files) == sorted(f".github/workflows/{name}" for name in TEMPLATES)
    rendered = yaml.safe_load(files[".github/workflows/mlops-deploy.yml"])
    assert rendered[True]["push"]["branches"] == ["trunk"]  # YAML 1.1 reads `on:` as True
    assert rendered["env"]["MLOPS_MODEL"] == "churn" and rendered["env"]["MLOPS_DEPLOY_TARGET"] == "docker"
    setup = next(s for s in rendered["jobs"]["deploy"]["steps"] if "actions/setup@" in s.get("uses", ""))
    assert setup["with"]["extras"] == "serve,docker"
    assert files[".github/workflows/mlops-pr.yml"] == TEMPLATES["mlops-pr.yml"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.slow
def test_init_writes_a_repository_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "credit"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    generate(500, seed=3).to_csv(repo / "loans.csv", index=False)
    args = ["init", "--repo", str(repo), "--data", str(repo / "loans.csv"), "--target", "default",
            "--sensitive", "sex", "--deploy-target", "kubernetes"]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+++ b/.github/mlops.yml" in out and "+++ b/.github/workflows/mlops-deploy.yml" in out
    assert "+    branches: [trunk]" in out and "new data file loans-holdout.csv: 100 rows" in out
    assert not (repo / ".github").exists() and not (repo / "loans-train.csv").exists()

    assert main(args) == 0
    config = load_config(repo / ".github" / "mlops.yml", root=repo)
    assert config.model.name == "credit" and config.model.task == "classification"
    assert config.data.train == "loans-train.csv" and config.data.holdout == "loans-holdout.csv"
    assert config.data.sensitive == ["sex"] and config.data.id == "applicant_id"
    assert len(pd.read_csv(repo / "loans-holdout.csv")) == 100
    workflows = sorted(p.name for p in (repo / ".github" / "workflows").iterdir())
    assert workflows == sorted(TEMPLATES)
    assert "MLOPS_DEPLOY_TARGET: kubernetes" in (repo / ".github/workflows/mlops-deploy.yml").read_text()

    # Re-running changes nothing; a file the user edited is kept unless --force.
    assert main([*args, "--dry-run"]) == 0
    assert "(0 file(s) would change)" in capsys.readouterr().out
    config_path = repo / ".github" / "mlops.yml"
    config_path.write_text(config_path.read_text().replace("min: 0.6", "min: 0.7"))
    assert main(args) == 2
    assert "already exist(s) and differ" in capsys.readouterr().err
    assert "min: 0.7" in config_path.read_text()

    # The config it wrote runs: the built-in pipeline on the split data passes its gates.
    assert main(["validate", "--config", str(config_path), "--output", str(tmp_path / "out"), "--quiet"]) == 0


@pytest.mark.slow
def test_init_writes_several_models_each_with_its_own_data(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.config import changed_models, load_models

    repo = tmp_path / "lending"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    (repo / "data").mkdir()
    generate(400, seed=3).to_csv(repo / "data" / "loans.csv", index=False)
    incomes = generate(300, seed=4).drop(columns=["default"])
    incomes.to_csv(repo / "data" / "incomes.csv", index=False)
    args = ["init", "--repo", str(repo), "--model", "credit", "--data", str(repo / "data" / "loans.csv"),
            "--target", "default", "--sensitive", "sex", "--model", "collections:income",
            "--data", str(repo / "data" / "incomes.csv"), "--target", "income", "--sensitive", "",
            "--deploy-target", "docker"]

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "credit (classification), collections:income (regression) set up on branch trunk" in out
    configs = load_models(repo / ".github" / "mlops.yml", root=repo)
    credit, income = configs
    assert (credit.model.name, credit.model.task, income.model.name, income.model.task) == (
        "credit", "classification", "collections:income", "regression")
    assert credit.data.train == "data/loans-train.csv" and credit.data.sensitive == ["sex"]
    assert income.data.holdout == "data/incomes-holdout.csv" and income.data.sensitive == []
    assert "r2" in income.gates and "roc_auc" in credit.gates
    assert income.registry.stages == credit.registry.stages == ["staging", "production"]
    assert income.rollout.environment == "production-collections-income"
    # Each model's paths are its data files: a PR changing one table validates one model.
    touched = changed_models(configs, ["data/incomes-train.csv"])
    assert [c.model.name for c in touched] == ["collections:income"]
    deploy = yaml.safe_load((repo / ".github/workflows/mlops-deploy.yml").read_text())
    assert deploy["env"]["MLOPS_MODEL"] == "credit" and deploy["env"]["MLOPS_DEPLOY_TARGET"] == "docker"
    assert main(["validate", "--config", str(repo / ".github" / "mlops.yml"), "--model", "collections:income",
                 "--output", str(tmp_path / "out"), "--quiet"]) == 0


@pytest.mark.parametrize(("extra", "error"), [
    (["--data", "a.csv", "--target", "y"],
     "--data is given 1 time(s) for 2 model(s): expected once per --model"),
    (["--sensitive", "a", "--sensitive", "b", "--sensitive", "c"],
     "--sensitive is given 3 time(s) for 2 model(s): expected once for every model or once per --model"),
    (["--model", "a"], "--model a, b, a: each model needs its own name"),
    (["--data", "a.csv"], "--data and --target go together"),
])
def test_init_refuses_flags_that_do_not_pair_with_the_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], error: str
) -> None:
    assert main(["init", "--repo", str(tmp_path), "--model", "a", "--model", "b", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and error in err[0]
    assert not (tmp_path / ".github").exists()


def test_init_without_data_writes_a_skeleton_per_model(tmp_path: Path) -> None:
    from mlops_bot.config import load_models

    args = ["init", "--repo", str(tmp_path), "--branch", "main", "--model", "a", "--model", "vision:b"]
    assert main(args) == 0
    configs = load_models(tmp_path / ".github" / "mlops.yml", root=tmp_path)
    assert [(c.model.name, c.data.train, c.model.paths) for c in configs] == [
        ("a", "data/a/train.csv", []), ("vision:b", "data/vision-b/train.csv", [])]
    text = (tmp_path / ".github" / "mlops.yml").read_text()
    assert "# TODO: point models[1].data (train, holdout, target) at vision:b's data." in text
