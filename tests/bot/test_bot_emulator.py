"""The bot against GitHub's API as emulated by tests/github_emulator: reactions, replies,
permission refusals, dispatches, retries on injected faults, the sticky comment, and the
production wiring (GitHub App installation per repository of the payload)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_testkit import (
    REPO,
    SECRET,
    ServerThread,
    World,
    comment_payload,
    git,
    make_world,
    signed,
    wait_for,
)
from github import Auth

from github_emulator import Emulator
from mlops_bot.bot.app import BotConfig, WebhookBot
from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.wiring import handler_from_env
from mlops_bot.forge.base import sticky_marker
from mlops_bot.forge.github import GitHubForge
from mlops_bot.forge.retry import RetryPolicy

FAST = RetryPolicy(backoff_factor=0.01, backoff_max=0.05, secondary_wait=0.05)
APP_ID = 4242


@pytest.fixture
def gh() -> Iterator[Emulator]:
    with Emulator() as emulator:
        emulator.add_repo(REPO)
        emulator.add_pull(REPO, 7)
        for user, permission in (("alice", "admin"), ("bob", "write"), ("carol", "read")):
            emulator.set_permission(REPO, user, permission)
        yield emulator


def github_handler(world: World, gh: Emulator) -> tuple[EventHandler, GitHubForge]:
    forge = GitHubForge(REPO, Auth.Token("ghp_test"), api_url=gh.url, retry=FAST)
    base = world.handler()
    handler = EventHandler(lambda repo, inst: forge, base.settings_for, base.registry_for,
                           base.deploy_control)
    return handler, forge


def command(gh: Emulator, body: str, login: str) -> dict[str, Any]:
    row = gh.add_comment(REPO, 7, body, user=login)
    return comment_payload(body, number=7, comment_id=row["id"], login=login)


def reactions(gh: Emulator, comment_id: int) -> list[str]:
    return [r["content"] for r in gh.public_state()["reactions"] if r["_comment_id"] == comment_id]


def bot_replies(gh: Emulator) -> list[str]:
    return [c["body"] for c in gh.public_state()["comments"] if c["user"]["login"] != "alice"
            and c["user"]["login"] not in ("bob", "carol")]


def test_promote_through_github(world: World, gh: Emulator) -> None:
    handler, _ = github_handler(world, gh)
    payload = command(gh, "/promote staging version=v1.1.0", "alice")
    outcome = handler.handle("issue_comment", payload)
    assert outcome.status == "done", outcome.reply
    assert reactions(gh, payload["comment"]["id"]) == ["eyes", "rocket"]
    assert "Promoted `churn` v1.1.0 to `staging`" in bot_replies(gh)[-1]
    dispatch = gh.public_state()["dispatches"][-1]
    assert dispatch["event_type"] == "mlops-deploy"
    assert dispatch["client_payload"]["version"] == "v1.1.0"
    assert world.registry().stage_version("churn", "staging") == "v1.1.0"


def test_permission_refusal_through_github(world: World, gh: Emulator) -> None:
    handler, _ = github_handler(world, gh)
    payload = command(gh, "/retrain", "carol")
    assert handler.handle("issue_comment", payload).status == "refused"
    assert reactions(gh, payload["comment"]["id"]) == ["eyes", "confused"]
    assert "needs `write` permission" in bot_replies(gh)[-1] and "you have `read`" in bot_replies(gh)[-1]
    stranger = command(gh, "/retrain", "mallory")  # not a collaborator: GitHub answers "none"
    assert handler.handle("issue_comment", stranger).status == "refused"
    assert gh.public_state()["dispatches"] == []


def test_transient_faults_are_retried(world: World, gh: Emulator) -> None:
    handler, _ = github_handler(world, gh)
    gh.inject(r"/reactions$", status=502, times=2)
    gh.inject(r"/collaborators/.*/permission$", status=403, times=1,
              headers={"Retry-After": "0"})  # secondary rate limit
    gh.inject(r"/dispatches$", status=503, times=1)
    payload = command(gh, "/retrain", "bob")
    assert handler.handle("issue_comment", payload).status == "done"
    assert reactions(gh, payload["comment"]["id"]) == ["eyes", "rocket"]
    assert len(gh.public_state()["dispatches"]) == 1


def test_persistent_failure_is_reported_on_the_pr(world: World, gh: Emulator) -> None:
    handler, _ = github_handler(world, gh)
    gh.inject(r"/dispatches$", status=500, times=50)
    payload = command(gh, "/drift", "bob")
    outcome = handler.handle("issue_comment", payload)
    assert outcome.status == "failed"
    assert reactions(gh, payload["comment"]["id"]) == ["eyes", "confused"]
    assert "`/drift` failed" in bot_replies(gh)[-1]


def test_sticky_comment_is_updated_in_place_next_to_bot_replies(world: World, gh: Emulator) -> None:
    handler, forge = github_handler(world, gh)
    marker = sticky_marker("validate", "churn")
    first = forge.upsert_sticky_comment(7, marker, "accuracy 0.81")
    handler.handle("issue_comment", command(gh, "/help", "carol"))
    second = forge.upsert_sticky_comment(7, marker, "accuracy 0.84")
    assert second.id == first.id
    bodies = [c.body for c in forge.list_comments(7)]
    assert sum(marker in body for body in bodies) == 1
    assert any("accuracy 0.84" in body for body in bodies) and not any("0.81" in body for body in bodies)
    assert any("mlops-bot commands" in body for body in bodies)


@pytest.mark.slow
def test_app_installation_per_repository_through_the_server(tmp_path: Path, app_keys: tuple[str, str]
                                                            ) -> None:
    """Production wiring: env config, a GitHub App with one installation per repository, the
    repository's own config read from a clone, and the real server answering signed deliveries."""
    private, public = app_keys
    make_world(tmp_path)
    other = "acme/fraud"  # a second repository of the same installation owner, without a config
    bare = tmp_path / "remotes" / f"{other}.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "fraud"
    git(tmp_path, "init", "--quiet", "-b", "main", str(seed))
    (seed / "README.md").write_text("fraud model\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-m", "start")
    git(seed, "push", "--quiet", str(bare), "main")
    with Emulator(app_id=APP_ID, app_public_key=public) as gh:
        for index, repo in enumerate((REPO, other)):
            gh.add_repo(repo)
            gh.add_pull(repo, 7)
            gh.set_permission(repo, "bob", "write")
            gh.add_installation(100 + index, [repo])
        env = {"MLOPS_BOT_APP_ID": str(APP_ID), "MLOPS_BOT_APP_PRIVATE_KEY": private,
               "GITHUB_API_URL": gh.url, "MLOPS_BOT_GIT_URL_TEMPLATE":
               str(tmp_path / "remotes") + "/{repo}.git"}
        state = tmp_path / "state"
        bot = WebhookBot(BotConfig([SECRET], state), handler_from_env(env, state))
        with ServerThread(bot.app) as server:
            sent = []
            for index, repo in enumerate((REPO, other)):
                row = gh.add_comment(repo, 7, "/retrain", user="bob")
                payload = comment_payload("/retrain", number=7, comment_id=row["id"], login="bob", repo=repo)
                payload["installation"] = {"id": 100 + index}
                response = httpx.post(f"{server.url}/webhook", content=signed(payload, "issue_comment")[0],
                                      headers=signed(payload, "issue_comment", f"d-{index}")[1])
                assert response.status_code == 202
                sent.append(row["id"])
            wait_for(lambda: bot.queue.depth() == 0, 30, "jobs done")
        assert [j["status"] for j in bot.queue.jobs()] == ["done", "done"], bot.queue.jobs()
        state_now = gh.public_state()
        assert len(state_now["dispatches"]) == 2
        # each repository was served with a token of its own installation
        assert {t["installation_id"] for t in state_now["installation_tokens"].values()} == {100, 101}
        for comment_id in sent:
            assert reactions(gh, comment_id) == ["eyes", "rocket"]


def test_rollout_control_through_github_deployments(world: World, gh: Emulator) -> None:
    """/promote at a manual hold and /abort signal the rollout with marker statuses on its GitHub
    deployment (the real deploy control), /rollback re-assigns the previous version."""
    from mlops_bot.deploy.control import request_action

    handler, forge = github_handler(world, gh)
    handler = EventHandler(handler.forge_for, handler.settings_for, handler.registry_for, request_action)
    for version in ("v1.0.0", "v1.1.0"):
        for stage in ("staging", "production"):
            comment = command(gh, f"/promote {stage} version={version}", "alice")
            outcome = handler.handle("issue_comment", comment)
            assert outcome.status == "done", outcome.reply
    deployment = forge.create_deployment("churn@v1.1.0", "production",
                                         payload={"model": "churn", "version": "v1.1.0"})
    forge.create_deployment_status(deployment.id, "in_progress", description="step 1: waiting for /promote")
    assert handler.handle("issue_comment", command(gh, "/promote production version=v1.1.0", "alice")
                          ).status == "done"
    assert handler.handle("issue_comment", command(gh, "/abort", "bob")).status == "done"
    refused = command(gh, "/abort", "carol")
    assert handler.handle("issue_comment", refused).status == "refused"
    descriptions = [s.description for s in forge.list_deployment_statuses(deployment.id)]
    assert descriptions[:2] == ["mlops-bot:abort by @bob", "mlops-bot:promote by @alice"]
    outcome = handler.handle("issue_comment", command(gh, "/rollback", "alice"))
    assert outcome.status == "done" and "back from v1.1.0 to v1.0.0" in (outcome.reply or "")
    assert world.registry().stage_version("churn", "production") == "v1.0.0"
