"""Retraining triggers: one issue per model, a `repository_dispatch`, and a cool-down.

The state that makes this safe lives on the forge, not on the runner (CI runners forget): the one
issue per model is found by its label and a hidden marker in its body, and the marker also records
when retraining was last dispatched. `decide` is pure (status, what the forge holds, the clock
reading); `apply_trigger` reads and writes the forge.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel

from mlops_bot.forge.base import Forge, Issue
from mlops_bot.monitor.monitor import MonitorReport

ISSUE_LABEL = "mlops-drift"
RETRAIN_BRANCH_PREFIX = "mlops-retrain/"
_MARKER = re.compile(r"<!-- mlops-bot:monitor model=(?P<model>\S+) last_dispatch=(?P<last>\S+) -->")

IssueAction = Literal["none", "open", "update", "reopen"]


def issue_marker(model: str, last_dispatch: float | None) -> str:
    last = "never" if last_dispatch is None else f"{last_dispatch:.3f}"
    return f"<!-- mlops-bot:monitor model={model} last_dispatch={last} -->"


def parse_marker(body: str) -> tuple[str, float | None] | None:
    """(model, last dispatch time) from an issue body, or None when the body has no marker."""
    match = _MARKER.search(body or "")
    if not match:
        return None
    last = match.group("last")
    try:
        return match.group("model"), (None if last == "never" else float(last))
    except ValueError:
        return match.group("model"), None


def retrain_branch(model: str, stamp: str) -> str:
    return f"{RETRAIN_BRANCH_PREFIX}{model}/{stamp}"


class TriggerState(BaseModel):
    """What the forge holds for one model."""

    issue_number: int | None = None
    issue_state: Literal["open", "closed"] | None = None
    last_dispatch: float | None = None
    open_retrain_prs: int = 0


class TriggerDecision(BaseModel):
    issue: IssueAction
    dispatch: bool
    reason: str
    last_dispatch: float | None  # the value to record in the marker


def decide(status: str, state: TriggerState, *, now: float, cooldown: float) -> TriggerDecision:
    """Open or update the one issue, and dispatch retraining unless a cool-down or an open
    retraining PR says a run is already on its way."""
    if status != "decayed":
        action: IssueAction = "update" if state.issue_state == "open" else "none"
        return TriggerDecision(issue=action, dispatch=False, reason=f"status is {status}; nothing to trigger",
                               last_dispatch=state.last_dispatch)
    if state.issue_number is None:
        action = "open"
    elif state.issue_state == "closed":
        action = "reopen"
    else:
        action = "update"
    if state.open_retrain_prs:
        return TriggerDecision(
            issue=action, dispatch=False, last_dispatch=state.last_dispatch,
            reason=f"{state.open_retrain_prs} retraining pull request(s) still open; not dispatching another",
        )
    if state.last_dispatch is not None and now - state.last_dispatch < cooldown:
        wait = cooldown - (now - state.last_dispatch)
        return TriggerDecision(
            issue=action, dispatch=False, last_dispatch=state.last_dispatch,
            reason=f"cool-down: retraining was dispatched {now - state.last_dispatch:.0f}s ago; "
            f"next dispatch allowed in {wait:.0f}s",
        )
    return TriggerDecision(issue=action, dispatch=True, last_dispatch=now,
                           reason="threshold crossed; retraining dispatched")


# ----------------------------------------------------------------------------------------- I/O
def find_issue(forge: Forge, model: str) -> Issue | None:
    """The model's issue: open ones first, then the most recent closed one."""
    candidates = [
        issue for issue in forge.list_issues(state="all", labels=[ISSUE_LABEL])
        if not issue.is_pull_request and (parsed := parse_marker(issue.body)) and parsed[0] == model
    ]
    if not candidates:
        return None
    return sorted(candidates, key=lambda i: (i.state == "open", i.number))[-1]


def read_state(forge: Forge, model: str) -> tuple[TriggerState, Issue | None]:
    issue = find_issue(forge, model)
    parsed = parse_marker(issue.body) if issue else None
    prefix = f"{RETRAIN_BRANCH_PREFIX}{model}/"
    open_prs = sum(1 for pr in forge.list_pull_requests("open") if pr.head_ref.startswith(prefix))
    return TriggerState(
        issue_number=issue.number if issue else None,
        issue_state=issue.state if issue else None,
        last_dispatch=parsed[1] if parsed else None,
        open_retrain_prs=open_prs,
    ), issue


class TriggerOutcome(BaseModel):
    decision: TriggerDecision
    issue: Issue | None = None
    dispatched: bool = False


def issue_body(report: MonitorReport, markdown: str, decision: TriggerDecision) -> str:
    return "\n".join([
        issue_marker(report.model, decision.last_dispatch),
        f"**Retraining:** {decision.reason}",
        "",
        markdown,
    ])


def apply_trigger(
    forge: Forge,
    report: MonitorReport,
    markdown: str,
    *,
    now: float,
    cooldown: float,
    event_type: str,
    extra_payload: dict[str, Any] | None = None,
) -> TriggerOutcome:
    """Act on a monitor report: keep the model's single issue current and dispatch retraining."""
    state, issue = read_state(forge, report.model)
    decision = decide(report.status, state, now=now, cooldown=cooldown)
    body = issue_body(report, markdown, decision)
    if decision.issue == "open":
        issue = forge.create_issue(f"Model {report.model} needs attention: production decayed", body,
                                   labels=[ISSUE_LABEL])
    elif decision.issue in ("update", "reopen") and issue is not None:
        issue = forge.update_issue(issue.number, body=body,
                                   state="open" if decision.issue == "reopen" else None)
    dispatched = False
    if decision.dispatch:
        payload: dict[str, Any] = {
            "model": report.model, "version": report.version, "stage": report.stage,
            "reasons": report.reasons[:10], "issue": issue.number if issue else None,
            "window_start": report.window_start, "window_end": report.window_end,
        }
        payload.update(extra_payload or {})
        forge.repository_dispatch(event_type, payload)
        dispatched = True
    return TriggerOutcome(decision=decision, issue=issue, dispatched=dispatched)
