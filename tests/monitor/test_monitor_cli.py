"""The whole loop through the CLI: registry release -> logged traffic -> monitor -> issue + dispatch
-> retrain opens a PR -> the next monitor run does not start another one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlops_bot.analysis.profile import build_profile
from mlops_bot.cli import main
from mlops_bot.forge.local import LocalForge
from mlops_bot.monitor.log import PredictionLog, read_predictions
from mlops_bot.monitor.triggers import ISSUE_LABEL
from mlops_bot.registry.registry import Registry
from monitor_project import Project, population

NOW = 1_800_000_000.0
HOUR = 3600.0


def _release(project: Project, forge: LocalForge, tmp_path: Path) -> None:
    train = population(np.random.default_rng(0), 400)
    build_profile(train).save(tmp_path / "rel" / "reference_profile.json")
    (tmp_path / "rel" / "report.json").write_text(json.dumps(
        {"model": "credit", "verdict": "pass", "metrics": {"accuracy": {"base": None, "head": 0.95}}}))
    registry = Registry(project.repo, forge=forge, remote="origin")
    registry.register("credit", version="v1.0.0", push=True, artifacts={
        "reference_profile.json": tmp_path / "rel" / "reference_profile.json",
        "report.json": tmp_path / "rel" / "report.json"})
    registry.assign("credit", "production", version="v1.0.0", push=True)


def _traffic(log_dir: Path, shift_last: bool) -> None:
    rng = np.random.default_rng(5)
    with PredictionLog(log_dir, flush_rows=500, flush_seconds=0) as log:
        for k in range(4):
            shifted = shift_last and k == 3
            frame = population(rng, 250, shift=1.0 if shifted else 0.0).drop(columns="default")
            start = NOW - (4 - k) * HOUR
            for i, row in enumerate(frame.to_dict("records")):
                log.record(f"w{k}-{i}", "credit", "v1.0.0", row, int(row["income"] > 50),
                           timestamp=start + i * 10)


@pytest.fixture()
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalForge:
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(tmp_path / "forge"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/credit")
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    return LocalForge(tmp_path / "forge", repo="o/credit")


def test_stable_traffic_reports_ok_and_triggers_nothing(
    project: Project, forge: LocalForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _release(project, forge, tmp_path)
    _traffic(tmp_path / "log", shift_last=False)
    # The drift-check action's spelling: `monitor check --current DIR --dispatch`.
    code = main(["monitor", "check", "--repo", str(project.repo), "--current", str(tmp_path / "log"),
                 "--dispatch", "--now", str(NOW), "--format", "json", "--history", "3"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["status"] == "ok"
    assert report["version"] == "v1.0.0" and report["rows"] == 250
    assert forge.list_issues("all") == [] and forge.dispatches() == []


@pytest.mark.slow
def test_shift_opens_issue_dispatches_and_retrain_opens_pr(
    project: Project, forge: LocalForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _release(project, forge, tmp_path)
    log_dir = tmp_path / "log"
    _traffic(log_dir, shift_last=True)
    out = tmp_path / "out"
    args = ["monitor", "--repo", str(project.repo), "--log-dir", str(log_dir), "--trigger",
            "--output", str(out), "--exit-code", "--history", "3"]
    assert main([*args, "--now", str(NOW)]) == 1
    markdown = capsys.readouterr().out
    assert "❌ decayed" in markdown and "Input drift" in markdown
    saved = json.loads((out / "report.json").read_text())
    assert saved["status"] == "decayed" and saved["drift"]["dataset_drift"]
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert "timeline.png" in (out / "report.md").read_text()
    issues = forge.list_issues("all", labels=[ISSUE_LABEL])
    assert len(issues) == 1 and "Input drift" in issues[0].body
    [dispatch] = forge.dispatches()
    assert dispatch["event_type"] == "mlops-retrain"

    # Late labels for the shifted window arrive through the feedback CLI.
    frame = read_predictions(log_dir, since=NOW - HOUR)
    labels = tmp_path / "labels.csv"
    truth = (frame["income"] > 60).astype(int)  # the world moved: the old rule is now wrong
    labels.write_text("id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(frame["request_id"], truth,
                                                                            strict=True)))
    typo = tmp_path / "predictons"
    assert main(["feedback", "--labels", str(labels), "--log-dir", str(typo)]) == 2
    assert "holds no prediction log" in capsys.readouterr().err and not typo.exists()
    assert main(["feedback", "--labels", str(labels), "--log-dir", str(log_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] == 250

    # The retraining workflow receives the dispatch and runs `mlops-bot retrain` from the log.
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": dispatch["event_type"],
                                 "client_payload": dispatch["client_payload"]}))
    code = main(["retrain", "--repo", str(project.repo), "--log-dir", str(log_dir), "--event", str(event),
                 "--now", str(NOW)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["new_rows"] == 250
    pr = forge.get_pull_request(result["pull_request"])
    assert pr.head_ref.startswith("mlops-retrain/credit/") and f"#{issues[0].number}" in pr.body
    assert "input drift" in pr.body

    # Still decayed an hour later (now with falling accuracy too): same issue, no second dispatch.
    assert main([*args, "--now", str(NOW + 60)]) == 1
    capsys.readouterr()
    issues = forge.list_issues("all", labels=[ISSUE_LABEL])
    assert len(issues) == 1 and "accuracy fell" in issues[0].body
    assert "still open" in issues[0].body
    assert len(forge.dispatches()) == 1


def test_monitor_without_release_is_a_clear_error(
    project: Project, forge: LocalForge, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["monitor", "--repo", str(project.repo), "--log-dir", str(tmp_path)])
    assert code == 2
    assert "no version of credit is in stage 'production'" in capsys.readouterr().err
