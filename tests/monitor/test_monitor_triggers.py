"""Triggers: one issue per model, cool-down between dispatches, no storm while a PR is open."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mlops_bot.forge.local import LocalForge
from mlops_bot.monitor.monitor import MonitorReport
from mlops_bot.monitor.triggers import (
    ISSUE_LABEL,
    TriggerOutcome,
    TriggerState,
    apply_trigger,
    decide,
    issue_marker,
    parse_marker,
    retrain_branch,
)

DAY = 86400.0


def _report(status: str = "decayed", model: str = "credit") -> MonitorReport:
    return MonitorReport(model=model, version="v1.0.0", stage="production", window_start=0, window_end=1,
                         status=status,  # type: ignore[arg-type]
                         reasons=["input drift: 3 of 3 columns drifted"] if status == "decayed" else [],
                         rows=500, labeled_rows=0)


def _fire(forge: LocalForge, now: float, status: str = "decayed", model: str = "credit"
          ) -> TriggerOutcome:
    return apply_trigger(forge, _report(status, model), "## report", now=now, cooldown=DAY,
                         event_type="mlops-retrain")


def test_marker_round_trip() -> None:
    assert parse_marker("x\n" + issue_marker("team/credit", 12.5) + "\n") == ("team/credit", 12.5)
    assert parse_marker(issue_marker("m", None)) == ("m", None)
    assert parse_marker("no marker here") is None


def test_decisions_table() -> None:
    fresh = TriggerState()
    assert decide("decayed", fresh, now=100, cooldown=10).model_dump() == {
        "issue": "open", "dispatch": True, "reason": "threshold crossed; retraining dispatched",
        "last_dispatch": 100}
    cooling = TriggerState(issue_number=1, issue_state="open", last_dispatch=95)
    d = decide("decayed", cooling, now=100, cooldown=10)
    assert (d.issue, d.dispatch, d.last_dispatch) == ("update", False, 95) and "cool-down" in d.reason
    d = decide("decayed", cooling, now=105, cooldown=10)
    assert (d.issue, d.dispatch, d.last_dispatch) == ("update", True, 105)
    closed = TriggerState(issue_number=1, issue_state="closed", last_dispatch=0)
    assert decide("decayed", closed, now=100, cooldown=10).issue == "reopen"
    busy = TriggerState(issue_number=1, issue_state="open", last_dispatch=0, open_retrain_prs=1)
    assert not decide("decayed", busy, now=1e9, cooldown=10).dispatch
    assert decide("ok", cooling, now=100, cooldown=10).model_dump()["issue"] == "update"
    assert decide("insufficient_data", fresh, now=100, cooldown=10).issue == "none"


@given(st.lists(st.floats(min_value=0, max_value=10 * DAY), min_size=1, max_size=40))
def test_cooldown_bounds_dispatch_count(offsets: list[float]) -> None:
    """However noisy the signal, dispatches are at least one cool-down apart."""
    state = TriggerState()
    times = []
    for now in sorted(offsets):
        d = decide("decayed", state, now=now, cooldown=DAY)
        if d.dispatch:
            times.append(now)
        state = TriggerState(issue_number=1, issue_state="open", last_dispatch=d.last_dispatch)
    assert all(b - a >= DAY for a, b in itertools.pairwise(times))
    assert len(times) <= 11


def test_one_issue_per_model_and_cooldown_on_the_forge(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/r")
    t0 = 1_700_000_000.0
    first = _fire(forge, t0)
    assert first.dispatched
    for k in range(1, 6):  # a noisy signal every hour
        assert not _fire(forge, t0 + k * 3600).dispatched
    issues = forge.list_issues("all", labels=[ISSUE_LABEL])
    assert len(issues) == 1
    assert "cool-down" in issues[0].body and "## report" in issues[0].body
    assert len(forge.dispatches()) == 1
    dispatch = forge.dispatches()[0]
    assert dispatch["event_type"] == "mlops-retrain"
    assert dispatch["client_payload"]["model"] == "credit"
    assert dispatch["client_payload"]["issue"] == issues[0].number
    # Another model gets its own issue; the first model's cool-down is unaffected.
    assert _fire(forge, t0 + 7200, model="fraud").dispatched
    assert len(forge.list_issues("all", labels=[ISSUE_LABEL])) == 2
    # After the cool-down the same issue is updated and retraining dispatched again.
    again = _fire(forge, t0 + DAY + 1)
    assert again.dispatched and again.issue is not None and again.issue.number == issues[0].number
    assert len(forge.dispatches()) == 3


def test_closed_issue_is_reopened_not_duplicated(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/r")
    first = _fire(forge, 0.0)
    assert first.issue is not None
    forge.update_issue(first.issue.number, state="closed")
    later = _fire(forge, 10.0)  # still cooling down: reopen, no dispatch
    assert later.issue is not None and first.issue is not None
    assert later.issue.number == first.issue.number and later.issue.state == "open"
    assert not later.dispatched
    assert len(forge.list_issues("all")) == 1


def test_open_retraining_pr_blocks_dispatch(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/r")
    forge.create_pull_request("Retrain credit", retrain_branch("credit", "20260101"), "main")
    outcome = _fire(forge, 0.0)
    assert not outcome.dispatched and "still open" in outcome.decision.reason
    assert outcome.issue is not None


def test_recovery_updates_issue_without_dispatch(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge", repo="o/r")
    _fire(forge, 0.0)
    ok = _fire(forge, 2 * DAY, status="ok")
    assert not ok.dispatched and ok.decision.issue == "update"
    assert parse_marker(forge.list_issues()[0].body) == ("credit", 0.0)
    assert len(forge.dispatches()) == 1


def test_triggers_through_github_forge_and_emulator() -> None:
    """Same de-duplication and cool-down over GitHub's REST API (the emulator, real HTTP)."""
    from github import Auth

    from github_emulator import Emulator
    from mlops_bot.forge.github import GitHubForge
    from mlops_bot.forge.retry import RetryPolicy

    with Emulator() as gh:
        gh.add_repo("o/credit")
        forge = GitHubForge("o/credit", Auth.Token("ghp_test"), api_url=gh.url,
                            retry=RetryPolicy(total=2, backoff_factor=0.01, secondary_wait=0.1, max_wait=1.0))
        forge.create_issue("unrelated bug", "no marker", labels=[ISSUE_LABEL])
        outcomes = [apply_trigger(forge, _report(), "## report", now=t, cooldown=DAY,
                                  event_type="mlops-retrain") for t in (0.0, 60.0, DAY + 1)]
        assert [o.dispatched for o in outcomes] == [True, False, True]
        numbers = {o.issue.number for o in outcomes if o.issue is not None}
        assert len(numbers) == 1
        ours = [i for i in forge.list_issues("all", labels=[ISSUE_LABEL]) if parse_marker(i.body)]
        assert len(ours) == 1 and parse_marker(ours[0].body) == ("credit", DAY + 1)
        dispatches = [d for d in gh.state["dispatches"] if d["kind"] == "repository_dispatch"]
        assert len(dispatches) == 2
