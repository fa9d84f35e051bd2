"""The sticky comment is found by its marker AND its author: a person's comment quoting the marker
is never overwritten (GitHub through the emulator, and the local forge); skipped gates read
"skipped" in the check run as in the comment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth

from github_emulator import Emulator
from mlops_bot.forge.base import sticky_marker
from mlops_bot.forge.github import GitHubForge
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.publish import check_from_report

REPO = "octo/credit"
MARKER = sticky_marker("mlops-pr", "credit-risk")


@pytest.fixture()
def gh() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, 7, head_sha="a" * 40)
        yield emu


def test_a_persons_comment_quoting_the_marker_is_left_alone(gh: Emulator) -> None:
    quoted = gh.add_comment(REPO, 7, f"look at this:\n{MARKER}\nmy words", user="mallory")
    forge = GitHubForge(REPO, Auth.Token("ghs_actions"), api_url=gh.url)
    ours = forge.upsert_sticky_comment(7, MARKER, "the report")
    assert ours.id != quoted["id"] and ours.user == "github-actions[bot]"
    assert forge.upsert_sticky_comment(7, MARKER, "report v2").id == ours.id
    bodies = {c.id: c.body for c in forge.list_comments(7)}
    assert bodies[quoted["id"]] == f"look at this:\n{MARKER}\nmy words"
    assert bodies[ours.id] == f"{MARKER}\nreport v2"


def test_with_a_known_login_another_bots_comment_is_left_alone(gh: Emulator) -> None:
    other = gh.add_comment(REPO, 7, f"{MARKER}\nsomeone else's", user="other-app[bot]", user_type="Bot")
    forge = GitHubForge(REPO, Auth.Token("ghs_actions"), api_url=gh.url, own_login="github-actions[bot]")
    ours = forge.upsert_sticky_comment(7, MARKER, "the report")
    assert ours.id != other["id"]
    # Without a known login any bot account's marked comment is ours (an App's, github-actions').
    assert GitHubForge(REPO, Auth.Token("ghs_x"), api_url=gh.url).is_own_comment(
        next(c for c in forge.list_comments(7) if c.id == other["id"]))


def test_local_forge_updates_only_its_actors_comment(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path, actor="mlops-bot[bot]")
    pr = forge.create_pull_request("Change", head="feature", base="main", head_sha="a" * 40)
    quoted = forge.create_comment(pr.number, f"{MARKER}\nquoted", user="mallory")
    ours = forge.upsert_sticky_comment(pr.number, MARKER, "report")
    assert ours.id != quoted.id
    assert next(c.body for c in forge.list_comments(pr.number)) == f"{MARKER}\nquoted"


def test_skipped_gates_read_skipped_in_the_check_run() -> None:
    report = {"verdict": "pass", "model": "credit-risk", "gates": [
        {"metric": "roc_auc", "rule": ">= 0.6", "passed": True, "status": "pass"},
        {"metric": "roc_auc", "rule": "significant drop <= 0", "passed": True, "status": "skipped",
         "message": "no baseline"},
    ]}
    check = check_from_report(report)
    assert check.title == "credit-risk: all 1 gates passed, 1 skipped"
    assert "| roc_auc | `significant drop <= 0` | ⏭️ skipped |" in check.summary
    assert "| roc_auc | `>= 0.6` | ✅ pass |" in check.summary
    failing = {**report, "verdict": "fail", "gates": [*report["gates"], {
        "metric": "accuracy", "rule": "drop <= 0.02", "passed": False, "status": "fail"}]}
    check = check_from_report(failing)
    assert check.conclusion == "failure" and [a.title for a in check.annotations] == ["Gate failed: accuracy"]
