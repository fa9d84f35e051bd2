"""The trusted comment job: a validation artifact is untrusted input. What is posted (the comment, the
check run, the files the register step reads) comes from the artifact's measured numbers judged by the
base branch's config; a tampered verdict, gate row or report.md changes nothing that is posted."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from github_emulator import Emulator
from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.errors import ForgeError
from mlops_bot.pipeline import trusted_report
from mlops_bot.pipeline.base_gates import Judging, acceptance_record, accepted_at
from validate_project import credit_project

REPO = "octo-org/credit"
PR = 12




def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A git repository: main holds the real config (roc_auc >= 0.6); the PR commit on `feature`
    swaps in a constant model and lowers its own gate to 0. The PR's report is validated with the
    PR's own config, as a PR that rewrote its workflow would upload it."""
    root = tmp_path_factory.mktemp("trusted") / "repo"
    root.mkdir()
    config = credit_project(root)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    base_sha = _git(root, "rev-parse", "HEAD")
    honest = root.parent / "honest"
    assert main(["validate", "--config", str(config), "--output", str(honest), "--quiet"]) == 0
    data = yaml.safe_load(config.read_text())
    data["train"] = {"builtin": {"estimator": "dummy"}}
    data["gates"]["roc_auc"] = {"min": 0}
    _git(root, "checkout", "-q", "-b", "feature")
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    _git(root, "commit", "-q", "-am", "constant model, gate lowered")
    head_sha = _git(root, "rev-parse", "HEAD")
    own = root.parent / "own"
    assert main(["validate", "--config", str(config), "--output", str(own), "--quiet"]) == 0
    _git(root, "checkout", "-q", "main")  # the comment job's checkout: the default branch
    return {"root": root, "config": config, "base": base_sha, "head": head_sha, "honest": honest, "own": own}


def _copy(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("report.json", "report.md"):
        (dest / name).write_bytes((src / name).read_bytes())
    return dest


def test_an_honest_report_renders_the_same_comment_from_data(project: dict[str, object]) -> None:
    """Rendering from report.json alone gives the validation's own comment (data checks, drift and
    fairness sections included), only the drift plots' file names are not repeated."""
    honest = project["honest"]
    assert isinstance(honest, Path)
    config = load_config(project["config"])  # type: ignore[arg-type]
    report = trusted_report.read_report(honest)
    judged = trusted_report.rejudge(report, Judging(config, (), None))
    assert judged.verdict == report.verdict == "pass"
    assert [g.model_dump() for g in judged.gates] == [g.model_dump() for g in report.gates]
    rendered = trusted_report.render(judged, config.model.positive_label)
    original = (honest / "report.md").read_text()

    assert "### Fairness" in rendered and "### Data drift" in rendered and "Data validation" in rendered
    assert "Distribution plots beside the report" in original
    assert rendered == re.sub(r"\n\nDistribution plots beside the report:[^\n]*", "", original)


def test_a_tampered_verdict_and_gate_rows_are_judged_again_by_the_base_gates(
        project: dict[str, object], tmp_path: Path) -> None:
    config = load_config(project["config"])  # type: ignore[arg-type]
    own = project["own"]
    assert isinstance(own, Path)
    data = json.loads((own / "report.json").read_text())
    data["verdict"] = "pass"
    for gate in data["gates"]:
        gate.update(passed=True, status="pass", rule=">= 0")
    data["metrics"]["accuracy"]["diff"] = 0.5  # a made-up difference
    data["metrics"]["accuracy"]["lower_is_better"] = True  # a flipped direction
    data["data_checks"]["checks"][0].update(status="pass", action="off")
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "report.json").write_text(json.dumps(data))
    judging = Judging(config, (), "judged by main's")
    judged = trusted_report.rejudge(trusted_report.read_report(tampered), judging)
    assert judged.verdict == "fail"
    roc = [g for g in judged.gates if g.metric == "roc_auc"]
    assert next((g.rule, g.status) for g in roc) == (">= 0.6", "fail")
    assert judged.metrics["accuracy"].diff is None and judged.metrics["accuracy"].lower_is_better is None
    assert judged.data_checks is not None
    assert judged.data_checks["checks"][0]["action"] != "off"
    assert judged.gates_notice == "judged by main's"
    markdown = trusted_report.render(judged)
    assert "❌" in markdown.splitlines()[1] and "judged by main" in markdown

    del data["data_checks"]  # a report without its data checks cannot pass the data gates
    (tampered / "report.json").write_text(json.dumps({**data, "verdict": "pass"}))
    judged = trusted_report.rejudge(trusted_report.read_report(tampered), Judging(config, (), None))
    assert [(g.metric, g.status) for g in judged.gates if g.metric == "data"] == [("data", "fail")]


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.write_text('{"model": "credit-risk", "verdict": NaN}'), "not a validation report"),
    (lambda p: p.write_text('{"model": "credit-risk", "verdict": "pass"}'), "not a validation report"),
    (lambda p: p.write_text("x" * 2000), "over the"),
    (lambda p: p.symlink_to("/etc/passwd"), "not a regular file"),
    (lambda p: None, "does not exist"),
])
def test_an_artifact_that_is_not_a_report_is_refused(tmp_path: Path, spoil: object, message: str) -> None:
    spoil(tmp_path / "report.json")  # type: ignore[operator]
    with pytest.raises(ForgeError, match=message):
        trusted_report.read_report(tmp_path, limit=1000)


def test_an_acceptance_counts_only_as_a_whole_line_for_this_head() -> None:
    head = "a" * 40
    record = acceptance_record(head, "alice")
    assert accepted_at([f"@alice Accepted.\n\n{record}"], head)
    assert not accepted_at([f"@alice Accepted.\n\n{record}"], "b" * 40)  # a later push
    assert not accepted_at([f"@mallory `/promote {record}` is not a command"], head)  # quoted back


@pytest.fixture()
def gh(monkeypatch: pytest.MonkeyPatch, project: dict[str, object]) -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, PR, head_sha=str(project["head"]), base_ref="main")
        for name in ("MLOPS_BOT_LOCAL_FORGE", "MLOPS_BOT_APP_ID", "GH_TOKEN", "MLOPS_BOT_LOGIN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_actions")
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        yield emu


def _comment(project: dict[str, object], report: Path, *extra: str) -> int:
    root = project["root"]
    assert isinstance(root, Path)
    return main(["comment", "--untrusted-report", "--report-dir", str(report), "--pr", str(PR),
                 "--head-sha", str(project["head"]), "--repo-dir", str(root),
                 "--config", str(root / ".github" / "mlops.yml"), "--images", "none", *extra])


def test_the_comment_job_posts_the_base_branch_verdict_of_a_tampered_artifact(
        project: dict[str, object], gh: Emulator, tmp_path: Path) -> None:
    """The PR judged itself (its own lowered gate) and its report.md says all is well: the posted
    comment and check run are main's verdict, rendered from the numbers, and the files the register
    step reads next are replaced by the trusted ones."""
    own = project["own"]
    assert isinstance(own, Path)
    report = _copy(own, tmp_path / "artifact")
    assert json.loads((report / "report.json").read_text())["verdict"] == "pass"
    marker = "<!-- mlops-bot:sticky workflow=mlops-pr model=credit-risk -->"
    (report / "report.md").write_text(f"{marker}\nall good")
    # The matrix entry names the model: a report of another model is not judged by its gates.
    assert _comment(project, report, "--model", "vision") == 2
    assert gh.state["comments"] == [] and gh.state["check_runs"] == []
    assert _comment(project, report) == 0
    (comment,) = gh.state["comments"]
    assert "all good" not in comment["body"]
    assert "this PR changes its own gates (gates): judged by main" in comment["body"]
    assert "| ❌ | roc_auc | `>= 0.6` |" in comment["body"]
    (run,) = gh.state["check_runs"]
    assert run["conclusion"] == "failure"
    assert json.loads((report / "report.json").read_text())["verdict"] == "fail"  # what register reads
    assert (report / "report.md").read_text().startswith("<!-- mlops-bot:sticky")
    assert "all good" not in (report / "report.md").read_text()

    # A person's comment carrying the acceptance record does not count; the bot's reply does.
    record = acceptance_record(str(project["head"]), "alice")
    gh.add_comment(REPO, PR, f"@alice Accepted.\n\n{record}", user="mallory", user_type="User")
    report = _copy(own, tmp_path / "again")
    assert _comment(project, report) == 0
    assert gh.state["check_runs"][-1]["conclusion"] == "failure"
    gh.add_comment(REPO, PR, f"@alice Accepted.\n\n{record}", user="github-actions[bot]", user_type="Bot")
    report = _copy(own, tmp_path / "accepted")
    assert _comment(project, report) == 0
    assert gh.state["check_runs"][-1]["conclusion"] == "success"
    body = next(c for c in gh.state["comments"] if "mlops-bot:sticky" in c["body"])["body"]
    assert "accepted by a maintainer" in body


def test_baseline_metrics_file_is_read_from_the_base_tree(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`baseline.metrics_file` on main says accuracy 0.99; the PR rewrites that file to 0.1 so its
    model looks like an improvement. With --base-ref the PR validation reads main's file, and the
    comment job replaces the artifact's base column with main's file as well."""
    root = tmp_path / "repo"
    root.mkdir()
    config = credit_project(root, baseline={"metrics_file": "baseline/metrics.json"})
    (root / "baseline").mkdir()
    (root / "baseline" / "metrics.json").write_text(json.dumps({"accuracy": 0.99, "roc_auc": 0.99}))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "checkout", "-q", "-b", "feature")
    (root / "baseline" / "metrics.json").write_text(json.dumps({"accuracy": 0.1, "roc_auc": 0.1}))
    _git(root, "commit", "-q", "-am", "my own baseline numbers")
    head = _git(root, "rev-parse", "HEAD")

    def validate(out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
        main(["validate", "--config", str(config), "--output", str(out), "--quiet", *extra])
        return json.loads((out / "report.json").read_text())

    own = validate(tmp_path / "own")
    assert own["metrics"]["accuracy"]["base"] == 0.1
    judged = validate(tmp_path / "judged", "--base-ref", "main", "--base-name", "main")
    assert judged["metrics"]["accuracy"]["base"] == 0.99
    assert judged["baseline"]["description"].startswith("metrics file baseline/metrics.json at main (")
    assert next(g for g in judged["gates"] if g["metric"] == "accuracy")["status"] == "fail"
    _git(root, "rm", "-q", "baseline/metrics.json")  # absent on the PR: main's file still counts
    _git(root, "commit", "-q", "-m", "no baseline file")
    assert validate(tmp_path / "gone", "--base-ref", "main")["metrics"]["accuracy"]["base"] == 0.99
    # --base-ref alone also brings main's gates (the validate action passes only it).
    lowered = yaml.safe_load(config.read_text())
    lowered["gates"]["roc_auc"] = {"min": 0}
    config.write_text(yaml.safe_dump(lowered, sort_keys=False))
    _git(root, "commit", "-q", "-am", "my own gate")
    judged = validate(tmp_path / "gates", "--base-ref", "main", "--base-name", "main")
    assert "judged by main's" in judged["gates_notice"]
    assert next(g["rule"] for g in judged["gates"] if g["metric"] == "roc_auc") == ">= 0.6"

    # The comment job, given the PR's own report (base 0.1): main's numbers are posted.
    _git(root, "checkout", "-q", "main")
    for name in ("MLOPS_BOT_LOCAL_FORGE", "MLOPS_BOT_APP_ID", "GH_TOKEN", "MLOPS_BOT_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, PR, head_sha=head, base_ref="main")
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_actions")
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        assert _comment({"root": root, "head": head}, tmp_path / "own") == 0
        (run,) = emu.state["check_runs"]
    posted = json.loads((tmp_path / "own" / "report.json").read_text())
    assert posted["metrics"]["accuracy"]["base"] == 0.99 and posted["metrics"]["accuracy"]["ci"] is None
    assert run["conclusion"] == "failure"


def test_the_base_config_is_read_from_git_with_its_per_model_folder(tmp_path: Path) -> None:
    """A repository that keeps one file per model under .github/mlops/: the base commit's models are
    read from git objects, whatever the checkout holds."""
    from mlops_bot.pipeline import base_tree

    root = tmp_path / "repo"
    root.mkdir()
    config = credit_project(root)
    folder = root / ".github" / "mlops"
    folder.mkdir()
    config.rename(folder / "credit-risk.yml")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "one file per model")
    (folder / "credit-risk.yml").write_text("not: [a, valid config")  # the checkout does not count
    models = base_tree.models_at(root, "main")
    assert models is not None and [m.model.name for m in models] == ["credit-risk"]
    assert models[0].gates["roc_auc"].min == 0.6 and models[0].root == root
    assert base_tree.model_named(models, "other") is models[0]  # one model: even if renamed
    assert base_tree.model_named(models, "other", by_name=True) is None
    assert base_tree.models_at(root, "main", "config/none.yml") is None
