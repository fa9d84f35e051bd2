"""What mlops-retrain.yml relies on: `mlops-bot retrain --event "$GITHUB_EVENT_PATH"` validates the
dispatch's client_payload itself (the workflow passes the event file, never its values), so a dispatch
for another model is refused with one actionable line and pushes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_bot.cli import main
from workflows import act_harness as act


def test_dispatch_for_another_model_is_refused_before_anything_is_pushed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    example = act.build_example_repo(tmp_path, rows=200)
    forge = tmp_path / "forge"
    monkeypatch.setenv("MLOPS_BOT_LOCAL_FORGE", str(forge))
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/credit")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "mlops-retrain",
                                 "client_payload": {"model": "fraud$(id)", "reason": "/retrain comment"}}))
    fresh = tmp_path / "fresh.csv"
    (example.path / "data" / "train.csv").replace(fresh)
    act.git(example.path, "checkout", "-q", "--", "data/train.csv")

    code = main(["retrain", "--repo", str(example.path), "--data", str(fresh), "--event", str(event)])

    assert code == 2
    err = capsys.readouterr().err
    assert "'fraud$(id)'" in err and "trains 'credit-risk'" in err
    branches = act.git(example.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    assert branches == ["main"]
