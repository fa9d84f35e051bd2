"""`mlops-bot bot handle-event` (the GitHub Actions path) and `bot serve` configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bot_testkit import World, git

from mlops_bot.cli import main


def handle_event(world: World, body: str, login: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    payload = world.comment(body, login=login)
    path = tmp_path / f"event-{payload['comment']['id']}.json"
    path.write_text(json.dumps(payload))
    env = {**os.environ, "MLOPS_BOT_LOCAL_FORGE": str(world.forge.root), "GITHUB_REPOSITORY": "acme/churn"}
    env.pop("GITHUB_WORKSPACE", None)
    return subprocess.run(
        [sys.executable, "-m", "mlops_bot", "bot", "handle-event", "--event", "issue_comment",
         "--payload", str(path), "--repo-dir", str(world.work), "--state-dir", str(tmp_path / "state")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.slow
def test_handle_event_runs_the_command_in_the_checkout(world: World, tmp_path: Path) -> None:
    done = handle_event(world, "/promote staging version=v1.1.0", "alice", tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "done", "detail": "promote"}
    assert "churn#staging#1" in git(world.origin, "tag", "--list").split()

    refused = handle_event(world, "/promote production version=v1.1.0", "bob", tmp_path)
    assert refused.returncode == 0 and json.loads(refused.stdout)["status"] == "refused"

    failed = handle_event(world, "/promote production version=v1.2.0", "alice", tmp_path)
    assert failed.returncode == 1 and json.loads(failed.stdout)["status"] == "failed"


def test_serve_without_a_secret_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MLOPS_BOT_WEBHOOK_SECRET", raising=False)
    assert main(["bot", "serve", "--port", "1", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlops-bot: error: MLOPS_BOT_WEBHOOK_SECRET is not set") and "\n" not in err


def test_unreadable_payload_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bot", "handle-event", "--event", "push", "--payload", str(tmp_path / "none.json")]) == 2
    assert "cannot read the event payload" in capsys.readouterr().err
