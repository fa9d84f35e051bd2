"""Demo chapter "project": an example ML repository as a team would have it.

A git repository with a bare `origin` (standing in for GitHub), `.github/mlops.yml` declaring two
models, a generated credit-risk dataset with a sensitive attribute, and the team's own `train.py`
(the user-command contract: read MLOPS_TRAIN_PATH, write a skops model to MLOPS_MODEL_PATH); and a
second, multiclass model (repayment plans for accounts in arrears) trained by a built-in pipeline.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_bot.demo import dataset

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext

MODEL_NAME = "credit-risk"
PLAN_MODEL = "collections:repayment-plan"  # the repository's second, multiclass model
PLAN_TRAIN_ROWS = 1200
PLAN_HOLDOUT_ROWS = 600
AUTHOR = ("Alice Example", "alice@example.com")
TRAIN_ROWS = 2000
HOLDOUT_ROWS = 1000

CONFIG = """\
# mlops-bot configuration: see docs/config.md for every key.
# Two models live in this repository; keys outside `models:` are shared by both.
version: 1
seed: 42
registry:
  stages: [staging, production]
models:
  # Loan default (binary), trained by the team's own train.py.
  - model:
      name: credit-risk
      task: classification
      positive_label: 1
      description: Probability that a loan applicant defaults within 12 months.
      intended_use: Ranking applications for manual review; never the sole basis of a decision.
      limitations: Trained on synthetic data; income differs by sex, so watch the fairness section.
      owners: [alice]
      paths: [data/, train.py]   # the files whose change means this model changed
    train:
      command: python train.py
      timeout: 5m
      model_path: model.skops
    data:
      train: data/train.csv
      holdout: data/holdout.csv
      target: default
      id: applicant_id
      sensitive: [sex]
      features: [age, income, debt_ratio, credit_history_years, late_payments, loan_amount,
                 employment, purpose]
    metrics: [accuracy, precision, recall, f1, roc_auc, log_loss]
    gates:
      roc_auc:
        min: 0.70          # absolute floor
        max_drop_ci: 0.0   # fail only if the model is significantly worse than the baseline
      accuracy:
        max_drop: 0.02     # at most 2 points below the baseline
      log_loss:
        max_drop: 0.05
    baseline:
      stage: production
    bootstrap:
      samples: 1000
      confidence: 0.95
    rollout:
      environment: production
      steps:
        - {weight: 10, hold: 2s}
        - {weight: 50, hold: 2s}
      interval: 0.5s
  # Repayment plan for accounts in arrears (three classes), a built-in scikit-learn pipeline.
  # GTO's monorepo name form dir:name: its registry tags read collections=repayment-plan@v1.0.0.
  - model:
      name: collections:repayment-plan
      task: classification
      description: The repayment plan (standard, extended, hardship) to offer an account in arrears.
      owners: [bob]
      paths: [collections/]
    train:
      builtin:
        estimator: random_forest
        params: {n_estimators: 60, min_samples_leaf: 3}
        numeric_features: [income, debt_ratio, late_payments, balance]
        categorical_features: [employment]
    data:
      train: collections/train.csv
      holdout: collections/holdout.csv
      target: plan
      id: account_id
    gates:
      accuracy:
        min: 0.75
      f1_macro:
        min: 0.70
        max_drop_ci: 0.0
    bootstrap:
      samples: 300
"""

TRAIN_PY = '''\
"""Train the credit-risk model (the team's own code; mlops-bot runs it as `python train.py`).

Contract: read the training data from $MLOPS_TRAIN_PATH, write a skops model to $MLOPS_MODEL_PATH.
"""

import os

import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

MODEL = "{model}"
NUMERIC = ["age", "income", "debt_ratio", "credit_history_years", "late_payments", "loan_amount"]
CATEGORICAL = ["employment", "purpose"]  # `sex` is deliberately not a feature


def estimator(seed):
    if MODEL == "gradient_boosting":
        return GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1,
                                          random_state=seed)
    if MODEL == "shallow_tree":
        return DecisionTreeClassifier(max_depth=1, random_state=seed)
    return LogisticRegression(max_iter=1000)


def main():
    seed = int(os.environ.get("MLOPS_SEED", "0"))
    frame = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
    features = ColumnTransformer([
        ("numeric", StandardScaler(), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("features", features), ("model", estimator(seed))])
    model.fit(frame[NUMERIC + CATEGORICAL], frame["default"])
    sio.dump(model, os.environ["MLOPS_MODEL_PATH"])
    print(f"trained {{MODEL}} on {{len(frame)}} rows")


if __name__ == "__main__":
    main()
'''

README = """\
# credit-risk

Loan default model. Pull requests are validated by mlops-bot (see `.github/mlops.yml`).
"""


def train_script(model: str) -> str:
    return TRAIN_PY.format(model=model)


def git(repo: Path, *args: str) -> str:
    """git with a fixed identity, so the demo works on a machine without git config."""
    done = subprocess.run(
        [
            "git",
            "-c",
            f"user.name={AUTHOR[0]}",
            "-c",
            f"user.email={AUTHOR[1]}",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def create_project(repo: Path, origin: Path, seed: int = 7) -> str:
    """Write the example project, commit it on `main` and push to the bare origin. Returns the sha."""
    origin.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", str(origin))
    (repo / ".github").mkdir(exist_ok=True)
    (repo / ".github" / "mlops.yml").write_text(CONFIG, encoding="utf-8")
    (repo / "train.py").write_text(train_script("logistic_regression"), encoding="utf-8")
    (repo / "README.md").write_text(README, encoding="utf-8")
    (repo / ".gitignore").write_text("model.skops\n__pycache__/\n", encoding="utf-8")
    (repo / "data").mkdir(exist_ok=True)
    dataset.generate(TRAIN_ROWS, seed=seed).to_csv(repo / "data" / "train.csv", index=False)
    dataset.generate(HOLDOUT_ROWS, seed=seed + 1, id_start=100_001).to_csv(
        repo / "data" / "holdout.csv", index=False
    )
    (repo / "collections").mkdir(exist_ok=True)
    plans = repo / "collections"
    dataset.generate_plans(PLAN_TRAIN_ROWS, seed=seed + 2).to_csv(plans / "train.csv", index=False)
    dataset.generate_plans(PLAN_HOLDOUT_ROWS, seed=seed + 3, id_start=500_001).to_csv(
        repo / "collections" / "holdout.csv", index=False
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Credit-risk and repayment-plan models, their data and mlops-bot config")
    git(repo, "push", "-q", "-u", "origin", "main")
    return git(repo, "rev-parse", "HEAD")


def run(ctx: DemoContext) -> None:
    ctx.chapter("Project: an ML repository with .github/mlops.yml")
    sha = create_project(ctx.repo, ctx.origin)
    ctx.forge.set_ref("heads/main", sha)
    ctx.forge.set_permission(ctx.forge.actor, "admin")
    ctx.state["config_path"] = ctx.repo / ".github" / "mlops.yml"
    ctx.state["model_name"] = MODEL_NAME
    ctx.state["plan_model_name"] = PLAN_MODEL
    ctx.state["main_sha"] = sha
    ctx.say(f"repository {ctx.repo} (origin {ctx.origin}), main at {sha[:8]}")
    ctx.say(
        f"data: {TRAIN_ROWS} training and {HOLDOUT_ROWS} holdout loan applications, sensitive column 'sex'"
    )
    ctx.say(f"a second model, {PLAN_MODEL} (three classes): {PLAN_TRAIN_ROWS} training and "
            f"{PLAN_HOLDOUT_ROWS} holdout accounts in collections/")
