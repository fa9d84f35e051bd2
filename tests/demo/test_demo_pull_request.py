"""The demo end to end: a real git repo with a bare origin, real training through the team's
train.py, validation, and the PR comment + check runs in the local forge. Also the CLI's guard
against wiping the wrong directory."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest

import gfm
from mlops_bot.demo import CHAPTERS, pull_request, run_demo
from mlops_bot.pipeline.result import ValidationReport
from mlops_bot.pipeline.validate import ValidationRun


def test_chapters_are_registered_in_story_order() -> None:
    assert CHAPTERS.index("project") < CHAPTERS.index("pull_request")
    assert CHAPTERS[0] == "project"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The whole `mlops-bot demo` story (later chapters included), checked at the PR chapters."""
    out = io.StringIO()
    ctx = run_demo(tmp_path / "demo", out=out)
    forge = ctx.forge

    # The repository: main and both PR branches pushed to the bare origin.
    heads = subprocess.run(["git", "-C", str(ctx.origin), "for-each-ref", "--format=%(refname:short)",
                            "refs/heads"], capture_output=True, text=True, check=True).stdout.split()
    assert {"improve-model", "main", "smaller-model"} <= set(heads)
    head_sha = ctx.state["head_sha"]
    assert subprocess.run(["git", "-C", str(ctx.origin), "rev-parse", "improve-model"], capture_output=True,
                          text=True, check=True).stdout.strip() == head_sha

    # The good PR: one sticky comment, a successful check run, paired CIs against main's model.
    pr = ctx.state["pr_number"]
    comments = [c for c in forge.list_comments(pr) if "workflow=mlops-pr" in c.body]
    assert len(comments) == 1
    assert comments[0].body.startswith("<!-- mlops-bot:sticky workflow=mlops-pr model=credit-risk -->")
    assert "| Metric | base | head | Change | 95% CI |" in comments[0].body
    # Its plots render: committed to mlops-bot/assets of the origin, embedded by commit-SHA URL.
    urls = gfm.image_urls(gfm.render(comments[0].body))
    assert {"roc_curve.png", "pr_curve.png", "confusion_matrix.png"} <= {u.split("?")[0].rsplit("/", 1)[-1]
                                                                         for u in urls}
    for url in urls:
        found = re.fullmatch(r"file://.+/demo/credit-risk/blob/([0-9a-f]{40})/(.+)\?raw=true", url)
        assert found, url
        sha, path = found.groups()
        assert path.startswith(f"pr-{ctx.state['pr_number']}/{head_sha}/")
        subprocess.run(["git", "-C", str(ctx.origin), "cat-file", "-e", f"{sha}:{path}"], check=True)
    checks = [c for c in forge.list_check_runs(head_sha) if c.name == "mlops-bot / credit-risk"]
    assert [c.conclusion for c in checks] == ["success"]
    report = json.loads((ctx.state["head_report_dir"] / "report.json").read_text())
    assert report["verdict"] == "pass" and report["baseline"]["source"] == "model"
    assert all(report["metrics"][m]["ci"] is not None for m in ("accuracy", "roc_auc", "log_loss"))
    assert report["drift"] is None or report["drift"]["drift_share"] > 0  # the PR shifted the data

    # The deliberately worse PR: exit code 1, failing check run, the failed gate named in the comment.
    assert ctx.state["worse_exit_code"] == 1
    worse = forge.get_pull_request(ctx.state["worse_pr_number"])
    (check,) = [c for c in forge.list_check_runs(worse.head_sha) if c.name == "mlops-bot / credit-risk"]
    assert check.conclusion == "failure" and "roc_auc" in check.summary
    body = next(c.body for c in forge.list_comments(worse.number) if "workflow=mlops-pr" in c.body)
    assert "| ❌ | roc_auc |" in body

    # The broken holdout export: the model copes, the data gates fail, each row names column and values.
    assert ctx.state["corrupt_exit_code"] == 1
    corrupt = forge.get_pull_request(ctx.state["corrupt_pr_number"])
    body = next(c.body for c in forge.list_comments(corrupt.number) if "workflow=mlops-pr" in c.body)
    failed = {g["metric"] for g in json.loads((ctx.state["corrupt_report_dir"] / "report.json").read_text())[
        "gates"] if not g["passed"]}
    assert failed == {"data.dtype_change", "data.missing_share", "data.unseen_categories"}
    rows = [line for line in body.splitlines() if line.startswith("| ❌ | ") and "| holdout |" in line]
    dtype = ("`credit_history_years`", "int64 (integer)", "float64 (float)")
    assert any(all(part in r for part in dtype) for r in rows)
    assert any("`employment`" in r and "+15.2 points" in r for r in rows)
    assert any("`purpose`" in r and "'medical'" in r for r in rows)

    # The repository's second, multiclass model: its PR touches only it, and it gets its own sticky
    # comment and check run through the same path; the first PR touched credit-risk only.
    assert "touches the model(s) credit-risk: validating those only" in out.getvalue()
    assert [c.body.splitlines()[0] for c in forge.list_comments(pr) if "mlops-bot:sticky" in c.body] == [
        "<!-- mlops-bot:sticky workflow=mlops-pr model=credit-risk -->"]
    plan_model = "collections:repayment-plan"
    assert ctx.state["plan_touched"] == [plan_model]
    plan_pr = forge.get_pull_request(ctx.state["plan_pr_number"])
    (plan_comment,) = [c for c in forge.list_comments(plan_pr.number) if "workflow=mlops-pr" in c.body]
    assert plan_comment.body.startswith(f"<!-- mlops-bot:sticky workflow=mlops-pr model={plan_model} -->")
    assert "f1_macro" in plan_comment.body
    (plan_check,) = [c for c in forge.list_check_runs(plan_pr.head_sha) if c.name.startswith("mlops-bot / ")]
    assert (plan_check.name, plan_check.conclusion) == (f"mlops-bot / {plan_model}", "success")
    plan_report = json.loads((ctx.state["plan_report_dir"] / "report.json").read_text())
    assert plan_report["model"] == plan_model and plan_report["verdict"] == "pass"
    assert plan_report["baseline"]["source"] == "model"  # paired with main's model of the same name
    assert plan_report["metrics"]["f1_macro"]["ci"] is not None
    assert "this repository has 2 models (`credit-risk`, `collections:repayment-plan`)" in out.getvalue()

    # Re-publishing updates the sticky comment in place instead of adding another.
    head_dir = ctx.state["head_report_dir"]
    report_model = ValidationReport.model_validate_json((head_dir / "report.json").read_text())
    run = ValidationRun(report=report_model, output=head_dir, markdown=(head_dir / "report.md").read_text())
    pull_request.publish(forge, pr, head_sha, run)
    assert len([c for c in forge.list_comments(pr) if "workflow=mlops-pr" in c.body]) == 1
    assert "PR #1" in out.getvalue() and "FAIL" in out.getvalue()

    # The rest of the lifecycle: merge, canary promotion, the bad canary rolled back, the monitor loop.
    merged = forge.get_pull_request(pr)
    assert merged.merged and merged.state == "closed"
    origin_main = subprocess.run(["git", "-C", str(ctx.origin), "rev-parse", "main"], capture_output=True,
                                 text=True, check=True).stdout.strip()
    assert origin_main == ctx.state["merge_sha"]
    assert ctx.state["rollout_phase"] == "promoted" and ctx.state["rollout_promoted"]
    assert ctx.state["rollout_failed_phase"] == "aborted"
    assert ctx.state["rollout_client_failures"] == 0 and ctx.state["rollout_requests"] > 0
    tags = subprocess.run(["git", "-C", str(ctx.origin), "tag", "--list", "credit-risk#production#*"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert len(tags) >= 2  # the baseline's promotion, then the canary's
    for version in (ctx.state["registry_version"], ctx.state["rollout_promoted"]):
        release = forge.get_release(f"credit-risk@{version}")
        assert release is not None
        assert {"model.skops", "report.json", "model_card.md", "reference_profile.json", "SHA256SUMS"} <= {
            a.name for a in release.assets}
    assert [i.number for i in forge.list_issues(labels=["mlops-drift"])] == [ctx.state["monitor_issue"]]
    retrain = forge.get_pull_request(ctx.state["retrain_pr"])
    assert retrain.state == "open" and retrain.head_ref.startswith("mlops-retrain/")


def test_demo_refuses_to_wipe_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_bot.cli import main

    keep = tmp_path / "precious.txt"
    keep.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--workdir", "."]) == 2
    assert "refusing to wipe" in capsys.readouterr().err
    assert keep.read_text() == "keep me"
