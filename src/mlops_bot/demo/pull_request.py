"""Demo chapter "pull_request": what a reviewer sees on a PR that changes data and model.

1. The baseline is trained and validated on `main` (its model and metrics are what the PR is
   compared with until a model sits in the registry's production stage).
2. A branch brings new, shifted data (recent applications: lower income, higher debt) and swaps
   logistic regression for gradient boosting. Validation posts the sticky PR comment and a check run
   through the local forge.
3. A second PR tries a much smaller model; its gates fail (exit code 1) and its check run fails.
4. A third PR re-exports the holdout with a broken pipeline (a column turned into fractional years,
   missing employment values, a purpose category never seen in training); the model still trains
   and predicts, but the data gates fail and the comment names each column and its values.
5. The repository's second model (repayment plans, three classes): a PR adding newer accounts to
   its data touches only it (`model.paths`), so only it is validated, and it gets its own sticky
   comment and check run (`mlops-bot / collections:repayment-plan`), as the workflow matrix would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_bot.config import changed_models, load_config, load_models
from mlops_bot.demo import dataset
from mlops_bot.demo.project import HOLDOUT_ROWS, MODEL_NAME, PLAN_MODEL, git, train_script
from mlops_bot.forge.assets_branch import branch_images_step
from mlops_bot.forge.base import Forge
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.publish import publish_report
from mlops_bot.pipeline.validate import ValidationRun, validate

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext

BRANCH = "improve-model"
WORSE_BRANCH = "smaller-model"
CORRUPT_BRANCH = "new-holdout-export"
PLAN_BRANCH = "plans-recent-accounts"


def corrupt_holdout(frame: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """What a broken export does to a table: integer years become fractional, 15 % of
    `employment` goes missing, 5 % of `purpose` holds a category training never saw."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["credit_history_years"] = (
        out["credit_history_years"] + rng.choice([0.25, 0.5, 0.75], len(out))
    ).round(2)
    out["employment"] = out["employment"].astype(object)
    out.loc[rng.random(len(out)) < 0.15, "employment"] = None
    out.loc[rng.random(len(out)) < 0.05, "purpose"] = "medical"
    return out


def publish(forge: Forge, pr_number: int, head_sha: str, run: ValidationRun, repo: Path | None = None) -> int:
    """Sticky comment (created or updated in place) + a completed check run, through the same code
    as `mlops-bot comment` in a workflow; with `repo`, the plots are committed to the assets branch
    of its origin and embedded by commit URL (`report.images: branch`). Returns the check run id."""
    images = None
    if repo is not None and isinstance(forge, LocalForge):
        server = f"file://{forge.root.resolve()}"
        images = branch_images_step(forge, repo, run.output, pr_number, server=server, repository=forge.repo)
    published = publish_report(forge, run.output, pr_number, head_sha=head_sha, images=images)
    assert published.check_run is not None  # report.json is always written beside report.md
    return published.check_run.id


def _validate_branch(ctx: DemoContext, out: Path, base_dir: Path, reference: Path,
                     model: str = MODEL_NAME) -> ValidationRun:
    config = load_config(ctx.repo / ".github" / "mlops.yml", model=model)
    return validate(
        config,
        out,
        base_model=base_dir / "model.skops",
        base_label="the model on main (its predictions on this holdout give paired intervals)",
        base_metrics=base_dir / "metrics.json",
        reference_data=reference,
        forge=ctx.forge,
    )


def _changed(ctx: DemoContext, base: str) -> list[str]:
    """The models a branch touches, as the PR workflow's `mlops-bot models --changed-from` decides."""
    paths = git(ctx.repo, "diff", "--name-only", f"{base}...HEAD").splitlines()
    models = load_models(ctx.repo / ".github" / "mlops.yml")
    return [config.model.name for config in changed_models(models, paths)]


def _say_metrics(ctx: DemoContext, run: ValidationRun) -> None:
    for name in ("roc_auc", "f1_macro", "accuracy", "log_loss"):
        row = run.report.metrics.get(name)
        if row is None or row.head is None:
            continue
        ci = f" 95% CI [{row.ci[0]:+.4f}, {row.ci[1]:+.4f}]" if row.ci else ""
        base = f"{row.base:.4f} -> " if row.base is not None else ""
        ctx.say(f"  {name:9s} {base}{row.head:.4f}{ci}")
    for gate in run.report.failed_gates():
        ctx.say(f"  FAILED gate {gate.metric} {gate.rule}: {gate.detail}")


def run(ctx: DemoContext) -> None:
    ctx.chapter("Pull request: validate a data + model change against main")
    runs = ctx.workdir / "runs"
    runs.mkdir(exist_ok=True)
    git(ctx.repo, "checkout", "-q", "main")

    # 1. The baseline: main's model, trained by the team's train.py through the same pipeline.
    config = load_config(ctx.repo / ".github" / "mlops.yml", model=MODEL_NAME)
    base_dir = runs / "main"
    base = validate(config, base_dir, forge=ctx.forge)
    reference = runs / "main-train.csv"
    shutil.copyfile(ctx.repo / "data" / "train.csv", reference)
    ctx.say(f"baseline on main ({config.model.name}, logistic regression): report in {base_dir}")
    _say_metrics(ctx, base)

    # 2. The PR: recent (shifted) applications added to the data, gradient boosting instead.
    git(ctx.repo, "checkout", "-q", "-b", BRANCH)
    old = pd.read_csv(ctx.repo / "data" / "train.csv")
    recent = dataset.generate(1500, seed=101, shift=0.8, id_start=50_001)
    pd.concat([old, recent], ignore_index=True).to_csv(ctx.repo / "data" / "train.csv", index=False)
    dataset.generate(HOLDOUT_ROWS, seed=102, shift=0.8, id_start=200_001).to_csv(
        ctx.repo / "data" / "holdout.csv", index=False
    )
    (ctx.repo / "train.py").write_text(train_script("gradient_boosting"), encoding="utf-8")
    git(ctx.repo, "commit", "-q", "-am", "Add 1,500 recent applications; switch to gradient boosting")
    git(ctx.repo, "push", "-q", "-u", "origin", BRANCH)
    head_sha = git(ctx.repo, "rev-parse", "HEAD")
    ctx.forge.set_ref(f"heads/{BRANCH}", head_sha)
    pr = ctx.forge.create_pull_request(
        "Retrain on recent applications with gradient boosting",
        BRANCH,
        "main",
        body="New data from the last quarter and a stronger model.",
        head_sha=head_sha,
    )
    ctx.say(f"PR #{pr.number} touches the model(s) {', '.join(_changed(ctx, 'main'))}: validating those only")
    head_dir = runs / f"pr-{pr.number}"
    head = _validate_branch(ctx, head_dir, base_dir, reference)
    check_id = publish(ctx.forge, pr.number, head_sha, head, repo=ctx.repo)
    ctx.say(
        f"PR #{pr.number} ({BRANCH} @ {head_sha[:8]}): verdict {head.report.verdict.upper()} "
        f"(exit code {head.exit_code}); sticky comment and check run {check_id} posted"
    )
    _say_metrics(ctx, head)
    if head.report.drift:
        ctx.say(
            f"  data drift vs main's training data: share {head.report.drift.get('drift_share', 0):.2f}"
            f" of columns drifted"
        )

    # 3. A deliberately worse model on its own PR: the gates must stop it.
    git(ctx.repo, "checkout", "-q", "main")
    git(ctx.repo, "checkout", "-q", "-b", WORSE_BRANCH)
    (ctx.repo / "train.py").write_text(train_script("shallow_tree"), encoding="utf-8")
    git(ctx.repo, "commit", "-q", "-am", "Use a depth-1 decision tree (faster to serve)")
    git(ctx.repo, "push", "-q", "-u", "origin", WORSE_BRANCH)
    worse_sha = git(ctx.repo, "rev-parse", "HEAD")
    worse_pr = ctx.forge.create_pull_request(
        "Smaller model for faster serving", WORSE_BRANCH, "main", head_sha=worse_sha
    )
    worse = _validate_branch(ctx, runs / f"pr-{worse_pr.number}", base_dir, reference)
    publish(ctx.forge, worse_pr.number, worse_sha, worse, repo=ctx.repo)
    ctx.say(
        f"PR #{worse_pr.number} ({WORSE_BRANCH}): verdict {worse.report.verdict.upper()} "
        f"(exit code {worse.exit_code}), the check run fails:"
    )
    _say_metrics(ctx, worse)

    # 4. A broken holdout export: the model copes, the data gates do not let it through.
    git(ctx.repo, "checkout", "-q", "main")
    git(ctx.repo, "checkout", "-q", "-b", CORRUPT_BRANCH)
    holdout_csv = ctx.repo / "data" / "holdout.csv"
    corrupt_holdout(pd.read_csv(holdout_csv)).to_csv(holdout_csv, index=False)
    git(ctx.repo, "commit", "-q", "-am", "Holdout from the new export pipeline")
    git(ctx.repo, "push", "-q", "-u", "origin", CORRUPT_BRANCH)
    corrupt_sha = git(ctx.repo, "rev-parse", "HEAD")
    corrupt_pr = ctx.forge.create_pull_request(
        "Holdout from the new export pipeline", CORRUPT_BRANCH, "main", head_sha=corrupt_sha
    )
    corrupt = _validate_branch(ctx, runs / f"pr-{corrupt_pr.number}", base_dir, reference)
    publish(ctx.forge, corrupt_pr.number, corrupt_sha, corrupt, repo=ctx.repo)
    ctx.say(
        f"PR #{corrupt_pr.number} ({CORRUPT_BRANCH}): verdict {corrupt.report.verdict.upper()} "
        f"(exit code {corrupt.exit_code}), the data gates fail:"
    )
    _say_metrics(ctx, corrupt)

    # 5. The second model: newer accounts for the repayment-plan model, validated on its own.
    plan = _plan_pull_request(ctx, runs)

    # Leave the developer on the good PR's branch for the next chapters.
    git(ctx.repo, "checkout", "-q", BRANCH)
    ctx.state.update(
        {
            "pr_number": pr.number,
            "branch": BRANCH,
            "head_sha": head_sha,
            "base_report_dir": base_dir,
            "head_report_dir": head_dir,
            "check_run_id": check_id,
            "worse_pr_number": worse_pr.number,
            "worse_exit_code": worse.exit_code,
            "worse_report_dir": runs / f"pr-{worse_pr.number}",
            "corrupt_pr_number": corrupt_pr.number,
            "corrupt_exit_code": corrupt.exit_code,
            "corrupt_report_dir": runs / f"pr-{corrupt_pr.number}",
            **plan,
        }
    )
    comment = head_dir / "report.md"
    ctx.say(f"the PR comment (markdown) is {comment}; plots in {head_dir / 'plots'}")


def _plan_pull_request(ctx: DemoContext, runs: Path) -> dict[str, object]:
    """The multiclass model through the same path: its baseline on main, then a PR touching only
    its files, validated and published with its own comment and check run."""
    git(ctx.repo, "checkout", "-q", "main")
    base_dir = runs / "main-plans"
    config = load_config(ctx.repo / ".github" / "mlops.yml", model=PLAN_MODEL)
    validate(config, base_dir, forge=ctx.forge)
    reference = runs / "main-plans-train.csv"
    shutil.copyfile(ctx.repo / "collections" / "train.csv", reference)

    git(ctx.repo, "checkout", "-q", "-b", PLAN_BRANCH)
    train_csv = ctx.repo / "collections" / "train.csv"
    recent = dataset.generate_plans(600, seed=301, id_start=700_001)
    pd.concat([pd.read_csv(train_csv), recent], ignore_index=True).to_csv(train_csv, index=False)
    git(ctx.repo, "commit", "-q", "-am", "Repayment plans: add 600 accounts from last month")
    git(ctx.repo, "push", "-q", "-u", "origin", PLAN_BRANCH)
    sha = git(ctx.repo, "rev-parse", "HEAD")
    pr = ctx.forge.create_pull_request("Repayment plans: train on last month's accounts too", PLAN_BRANCH,
                                       "main", head_sha=sha)
    touched = _changed(ctx, "main")
    ctx.say(f"PR #{pr.number} ({PLAN_BRANCH}) touches only {', '.join(touched)} (model.paths: collections/)")
    out = runs / f"pr-{pr.number}-plans"
    run = _validate_branch(ctx, out, base_dir, reference, model=PLAN_MODEL)
    check_id = publish(ctx.forge, pr.number, sha, run, repo=ctx.repo)
    ctx.say(f"PR #{pr.number}: {PLAN_MODEL} (three classes) verdict {run.report.verdict.upper()} "
            f"(exit code {run.exit_code}); its own sticky comment and check run {check_id} "
            f"('mlops-bot / {PLAN_MODEL}')")
    _say_metrics(ctx, run)
    return {"plan_pr_number": pr.number, "plan_head_sha": sha, "plan_report_dir": out,
            "plan_check_run_id": check_id, "plan_touched": touched}
