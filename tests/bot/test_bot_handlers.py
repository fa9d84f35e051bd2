"""Every command path through the real registry (git tags pushed to a bare origin) and the local
forge: reactions, replies, refusals, policy, dispatches and rollout control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bot_testkit import REPO, World, example, git, make_world

from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.routing import Ignore, RepoSettings, route
from mlops_bot.config import BotSection


class Killed(BaseException):
    """Stands for the process dying mid-job (not an error the handler could catch)."""


def origin_tags(world: World) -> list[str]:
    return sorted(git(world.origin, "tag", "--list").split())


def replies(world: World) -> list[str]:
    return [c.body for c in world.forge.list_comments(world.pr) if c.user == "mlops-bot[bot]"]


def run(world: World, body: str, login: str = "alice", handler: EventHandler | None = None,
        **kwargs: Any) -> tuple[str, list[str], str]:
    payload = world.comment(body, login=login, **kwargs)
    comment_id = payload["comment"]["id"]
    outcome = (handler or world.handler()).handle("issue_comment", payload)
    last = replies(world)[-1] if replies(world) else ""
    return outcome.status, world.forge.reactions(comment_id), last


def stage_of(world: World, stage: str) -> str | None:
    return world.registry().stage_version("churn", stage)


def test_promote_assigns_pushes_and_dispatches_the_deploy(world: World) -> None:
    status, reactions, reply = run(world, "/promote staging version=v1.1.0")
    assert status == "done", reply
    assert reactions == ["eyes", "rocket"]
    assert "Promoted `churn` v1.1.0 to `staging`" in reply and reply.startswith("@alice")
    assert "churn#staging#1" in origin_tags(world)
    assert stage_of(world, "staging") == "v1.1.0"
    message = git(world.origin, "tag", "-l", "--format=%(contents)", "churn#staging#1")
    assert "Pull-Request: #1" in message and "Actor: alice" in message
    dispatch = world.forge.dispatches()[-1]
    assert dispatch["event_type"] == "mlops-deploy"
    assert dispatch["client_payload"] == {"model": "churn", "version": "v1.1.0", "stage": "staging",
                                          "actor": "alice", "pull_request": 1, "trigger": "promote"}


def test_promote_without_stage_goes_to_the_next_stage(world: World) -> None:
    assert run(world, "/promote version=v1.0.0")[0] == "done"
    assert stage_of(world, "staging") == "v1.0.0"
    assert run(world, "/promote version=v1.0.0")[0] == "done"
    assert stage_of(world, "production") == "v1.0.0"
    status, reactions, reply = run(world, "/promote version=v1.0.0")
    assert (status, reactions[-1]) == ("failed", "confused")
    assert "already in the last stage" in reply


def test_promote_refused_for_insufficient_permission(world: World) -> None:
    status, reactions, reply = run(world, "/promote staging version=v1.1.0", login="carol")
    assert (status, reactions) == ("refused", ["eyes", "confused"])
    assert "needs `write` permission" in reply and "you have `read`" in reply
    # write is enough for the bot, but the registry policy asks maintain for production
    run(world, "/promote staging version=v1.1.0", login="bob")
    status, reactions, reply = run(world, "/promote production version=v1.1.0", login="bob")
    assert (status, reactions) == ("refused", ["eyes", "confused"])
    assert "needs `maintain` permission" in reply
    status, _, reply = run(world, "/promote production version=v1.1.0", login="mallory")  # no access
    assert status == "refused" and "you have `none`" in reply
    assert stage_of(world, "production") is None
    assert not any(t.startswith("churn#production") for t in origin_tags(world))


def test_promote_enforces_gates_and_stage_order(world: World) -> None:
    tags = origin_tags(world)
    status, reactions, reply = run(world, "/promote staging")  # the PR head's v1.2.0: gates failed
    assert (status, reactions[-1]) == ("failed", "confused")
    assert "v1.2.0" in reply and "gates failed" in reply
    status, _, reply = run(world, "/promote production version=v1.0.0")  # skips staging
    assert status == "failed" and "staging" in reply
    status, _, reply = run(world, "/promote qa version=v1.0.0")
    assert status == "failed" and "unknown stage `qa`" in reply
    status, _, reply = run(world, "/promote staging version=v9.9.9")
    assert status == "failed" and "not registered" in reply
    assert origin_tags(world) == tags
    assert not any(d["event_type"] == "mlops-deploy" for d in world.forge.dispatches())


def registered_commit(world: World, version: str) -> str:
    return git(world.origin, "rev-list", "-n", "1", f"churn@{version}")


def test_promote_on_a_pr_ships_the_version_registered_at_its_head_not_the_latest(world: World) -> None:
    # Another PR registered v1.2.0 later; this PR's head carries v1.1.0.
    world.forge.update_pull_request(world.pr, head_sha=registered_commit(world, "v1.1.0"))
    status, reactions, reply = run(world, "/promote staging")
    assert (status, reactions) == ("done", ["eyes", "rocket"]), reply
    assert "Promoted `churn` v1.1.0 to `staging`" in reply
    assert stage_of(world, "staging") == "v1.1.0"
    assert world.forge.dispatches()[-1]["client_payload"]["version"] == "v1.1.0"


def test_promote_on_a_pr_whose_head_is_unregistered_is_refused(world: World) -> None:
    (world.work / "model.txt").write_text("unvalidated")
    git(world.work, "commit", "--quiet", "-am", "not validated yet")
    head = git(world.work, "rev-parse", "HEAD")  # never pushed: the bot has not even seen the commit
    world.forge.update_pull_request(world.pr, head_sha=head)
    tags = origin_tags(world)
    status, reactions, reply = run(world, "/promote staging")
    assert (status, reactions) == ("failed", ["eyes", "confused"])
    assert f"head commit `{head[:7]}` has no registered version of `churn`" in reply
    assert "validation registers it when its gates pass" in reply and "version=vX.Y.Z" in reply
    assert origin_tags(world) == tags
    assert not any(d["event_type"] == "mlops-deploy" for d in world.forge.dispatches())
    # An explicit version still works on that PR.
    status, _, reply = run(world, "/promote staging version=v1.0.0")
    assert status == "done" and "Promoted `churn` v1.0.0 to `staging`" in reply


def test_promote_outside_a_pr_keeps_the_latest_version(world: World) -> None:
    from mlops_bot.bot.registry_commands import default_version, version_at_commit
    from mlops_bot.bot.routing import CommentCommand

    registry = world.registry()
    assert version_at_commit(registry, "churn", registered_commit(world, "v1.0.0")) == "v1.0.0"
    assert version_at_commit(registry, "churn", "0" * 40) is None
    assert version_at_commit(registry, "nosuch", "0" * 40) is None
    request = CommentCommand(REPO, world.pr, 1, "alice", "/promote", pull_request=False)
    assert default_version("churn", request, world.forge, registry) == "v1.2.0"
    decision = route("issue_comment", world.comment("/promote"), BotSection())
    assert isinstance(decision, CommentCommand) and decision.pull_request


def test_promote_at_a_manual_hold_lets_the_rollout_proceed(world: World) -> None:
    for stage in ("staging", "production"):
        assert run(world, f"/promote {stage} version=v1.1.0")[0] == "done"
    deployment = world.forge.create_deployment("churn@v1.1.0", "production",
                                               payload={"model": "churn", "version": "v1.1.0"})
    world.forge.create_deployment_status(deployment.id, "in_progress", description="holding at 10%")
    tags = origin_tags(world)
    status, reactions, reply = run(world, "/promote production version=v1.1.0", login="alice")
    assert (status, reactions) == ("done", ["eyes", "rocket"])
    assert "waiting for a manual promote" in reply
    assert world.controls == [("production", "promote", "alice")]
    assert origin_tags(world) == tags


def test_rollback_restores_the_previous_version_and_stops_the_rollout(world: World) -> None:
    for version in ("v1.0.0", "v1.1.0"):
        for stage in ("staging", "production"):
            assert run(world, f"/promote {stage} version={version}")[0] == "done"
    assert stage_of(world, "production") == "v1.1.0"
    status, reactions, reply = run(world, "/rollback")
    assert (status, reactions) == ("done", ["eyes", "rocket"]), reply
    assert "back from v1.1.0 to v1.0.0" in reply
    assert stage_of(world, "production") == "v1.0.0"
    assert world.controls == [("production", "rollback", "alice")]
    assert world.forge.dispatches()[-1]["client_payload"]["trigger"] == "rollback"


def test_rollback_with_nothing_to_go_back_to(world: World) -> None:
    status, reactions, reply = run(world, "/rollback staging")
    assert (status, reactions[-1]) == ("failed", "confused")
    assert "no earlier version in `staging`" in reply
    assert run(world, "/rollback staging", login="carol")[0] == "refused"


def test_abort_retrain_drift_and_help(world: World) -> None:
    assert run(world, "/abort", login="bob")[:2] == ("done", ["eyes", "rocket"])
    assert world.controls == [("production", "abort", "bob")]
    assert run(world, "/abort environment=staging-eu")[0] == "done"
    assert world.controls[-1] == ("staging-eu", "abort", "alice")
    assert run(world, "/abort", login="tina")[0] == "refused"

    assert run(world, "/retrain", login="bob")[0] == "done"
    assert world.forge.dispatches()[-1]["event_type"] == "mlops-retrain"
    assert world.forge.dispatches()[-1]["client_payload"]["model"] == "churn"
    # the repository config lets triage run /drift
    assert run(world, "/drift", login="tina")[0] == "done"
    assert world.forge.dispatches()[-1]["event_type"] == "mlops-drift"
    assert run(world, "/retrain", login="tina")[0] == "refused"

    status, reactions, reply = run(world, "/help", login="tina")
    assert (status, reactions) == ("done", ["eyes", "rocket"])
    assert "/promote [STAGE]" in reply and "| triage |" in reply  # this repository's permissions
    # below the floor the bot does not read the repository: the default permissions are listed
    status, reactions, reply = run(world, "/help", login="nobody")
    assert (status, reactions) == ("done", ["eyes", "rocket"])
    assert "/promote [STAGE]" in reply and "| triage |" not in reply


def test_unknown_command_replies_with_the_command_list(world: World) -> None:
    status, reactions, reply = run(world, "/deploy everything")
    assert (status, reactions) == ("refused", ["eyes", "confused"])
    assert "unknown command `/deploy`" in reply and "/rollback [STAGE]" in reply


def test_ignored_comments_get_no_reaction(world: World) -> None:
    handler = world.handler()
    for body, kwargs in [
        ("/promote staging version=v1.1.0", {"action": "edited"}),
        ("/promote staging version=v1.1.0", {"login": "deploy-helper[bot]"}),
        ("/promote staging version=v1.1.0", {"user_type": "Bot"}),
        ("just a thought about /promote", {}),
    ]:
        login = kwargs.pop("login", "alice")
        if login.endswith("[bot]"):
            world.forge.set_permission(login, "admin")
        status, reactions, _ = run(world, body, login=login, handler=handler, **kwargs)
        assert (status, reactions) == ("ignored", []), (body, kwargs)
    payload = world.comment("/promote staging version=v1.1.0", pull=False)
    assert world.handler().handle("issue_comment", payload).detail.startswith("comment on an issue")
    assert stage_of(world, "staging") is None


def test_edits_and_bots_are_handled_when_configured(tmp_path: Path) -> None:
    from bot_testkit import CONFIG

    world = make_world(tmp_path, CONFIG.replace("commands: {drift: triage}",
                                                "commands: {drift: triage}\n  handle_edits: true\n"
                                                "  ignore_bots: false"))
    world.forge.set_permission("ci[bot]", "write")
    assert run(world, "/retrain", action="edited")[0] == "done"
    assert run(world, "/retrain", login="ci[bot]", user_type="Bot")[0] == "done"


def test_pull_request_and_push_dispatch_workflows(world: World) -> None:
    handler = world.handler()
    for action in ("opened", "synchronize", "reopened"):
        payload = example("pull_request", action if action != "reopened" else "reopened")
        payload["repository"] = {**payload["repository"], "full_name": REPO}
        assert handler.handle("pull_request", payload).status == "dispatched"
        sent = world.forge.dispatches()[-1]
        assert sent["event_type"] == "mlops-validate"
        assert sent["client_payload"]["head_sha"] == payload["pull_request"]["head"]["sha"]
        assert sent["client_payload"]["pull_request"] == payload["number"]
    closed = example("pull_request", "closed")
    assert handler.handle("pull_request", closed).status == "ignored"

    push = example("push")
    pushes = [p for p in [dict(x) for x in __import__("bot_testkit").examples()["push"]["examples"]]]
    to_default = next(p for p in pushes if p["ref"] == "refs/heads/master")
    to_default["repository"] = {**to_default["repository"], "full_name": REPO}
    assert handler.handle("push", to_default).status == "dispatched"
    assert world.forge.dispatches()[-1]["event_type"] == "mlops-deploy"
    assert world.forge.dispatches()[-1]["client_payload"]["sha"] == to_default["after"]
    tag_push = next(p for p in pushes if p["ref"].startswith("refs/tags/"))
    assert handler.handle("push", tag_push).status == "ignored"
    assert push is not None
    assert handler.handle("star", example("star")).status == "ignored"


def test_route_is_pure_and_total_over_the_real_examples() -> None:
    from bot_testkit import examples

    bot = BotSection()
    for name, spec in examples().items():
        for payload in spec["examples"]:
            decision = route(name, payload, bot)
            assert type(decision).__name__ in ("Ignore", "CommentCommand", "DispatchRequest")
            if name not in ("pull_request", "push"):
                assert type(decision).__name__ == "Ignore", name


def test_a_resumed_job_does_not_repeat_side_effects(world: World) -> None:
    """Crash after the registry tag was pushed: the rerun skips reaction, tag and reply it already did."""
    queue = SqliteQueue(world.tmp / "q.sqlite3")
    crashes = {"left": 1}

    def flaky_control(*_args: Any) -> None:
        if crashes["left"]:
            crashes["left"] -= 1
            raise Killed("process killed")

    for stage in ("staging", "production"):
        for version in ("v1.0.0", "v1.1.0"):
            run(world, f"/promote {stage} version={version}")
    base = world.handler()
    handler = EventHandler(base.forge_for, base.settings_for, base.registry_for, flaky_control)
    payload = world.comment("/rollback")
    def journal(step: str, action: Any, verify: Any = None) -> Any:
        return queue.step(7, step, action, verify)

    tags_before = len(origin_tags(world))
    with pytest.raises(Killed):
        handler.handle("issue_comment", payload, journal, "delivery-7")
    outcome = handler.handle("issue_comment", payload, journal, "delivery-7")
    assert outcome.status == "done"
    assert len(origin_tags(world)) == tags_before + 1
    reacted = world.forge.reactions(payload["comment"]["id"])
    assert reacted.count("eyes") == 1 and reacted.count("rocket") == 1
    dispatches = [d for d in world.forge.dispatches() if d["client_payload"].get("delivery") == "delivery-7"]
    assert len(dispatches) == 1 and dispatches[0]["client_payload"]["trigger"] == "rollback"


def test_a_reply_posted_just_before_a_crash_is_found_not_repeated(world: World) -> None:
    """The crash window between posting the reply and journalling it: the marker finds it."""
    queue = SqliteQueue(world.tmp / "q.sqlite3")
    handler = world.handler()
    payload = world.comment("/help")
    real_step = queue.step
    crashed = {"done": False}

    def journal(step: str, action: Any, verify: Any = None) -> Any:
        if step == "reply" and not crashed["done"]:
            crashed["done"] = True
            queue._record(8, step, None, "started")
            action()  # the comment is posted...
            raise Killed("...and the process dies before recording it")
        return real_step(8, step, action, verify)

    with pytest.raises(Killed):
        handler.handle("issue_comment", payload, journal, "delivery-8")
    assert handler.handle("issue_comment", payload, journal, "delivery-8").status == "done"
    assert len([b for b in replies(world) if "delivery=delivery-8" in b]) == 1


def test_config_error_in_the_repository_is_reported_on_the_pr(tmp_path: Path) -> None:
    from bot_testkit import CONFIG

    world = make_world(tmp_path, CONFIG.replace("permission: maintain", "permission: boss"))
    status, reactions, reply = run(world, "/retrain")
    assert (status, reactions) == ("failed", ["confused"])
    assert "registry.policy.production.permission" in reply


def test_default_settings_without_a_checkout() -> None:
    handler = EventHandler(lambda repo, inst: (_ for _ in ()).throw(AssertionError("no forge needed")))
    assert handler.handle("issue_comment", example("issue_comment", "created")).status == "ignored"
    assert RepoSettings().bot.permission == "write"


def test_abort_and_manual_promote_through_the_real_rollout_control(world: World) -> None:
    """With the deploy engineer's forge-backed control: the signal is a marker status on the
    running deployment; with nothing running, /abort says so."""
    from mlops_bot.bot.handlers import default_deploy_control

    control = default_deploy_control()
    assert control is not None
    base = world.handler()
    handler = EventHandler(base.forge_for, base.settings_for, base.registry_for, control)
    status, reactions, reply = run(world, "/abort", handler=handler)
    assert (status, reactions[-1]) == ("failed", "confused")
    assert "no rollout is running" in reply

    for stage in ("staging", "production"):
        assert run(world, f"/promote {stage} version=v1.1.0", handler=handler)[0] == "done"
    deployment = world.forge.create_deployment("churn@v1.1.0", "production",
                                               payload={"model": "churn", "version": "v1.1.0"})
    world.forge.create_deployment_status(deployment.id, "in_progress",
                                         description="step 1: waiting for /promote")
    assert run(world, "/promote production version=v1.1.0", handler=handler)[0] == "done"
    assert run(world, "/abort", login="bob", handler=handler)[0] == "done"
    descriptions = [s.description for s in world.forge.list_deployment_statuses(deployment.id)]
    assert descriptions[:2] == ["mlops-bot:abort by @bob", "mlops-bot:promote by @alice"]


def test_dispatch_on_events_can_be_turned_off() -> None:
    payload = example("pull_request", "opened")
    assert type(route("pull_request", payload, BotSection())).__name__ == "DispatchRequest"
    decision = route("pull_request", payload, BotSection(dispatch_on=["push"]))
    assert decision == Ignore("pull_request dispatch is off (bot.dispatch_on)")


def test_a_resumed_rollback_keeps_its_plan(world: World) -> None:
    """Crash after the rollback tag, before the dispatch: re-planning would now 'roll back' to the
    version just replaced; the journalled plan keeps the resumed job on course."""
    queue = SqliteQueue(world.tmp / "q.sqlite3")
    for version in ("v1.0.0", "v1.1.0"):
        for stage in ("staging", "production"):
            run(world, f"/promote {stage} version={version}")
    handler = world.handler()
    payload = world.comment("/rollback")
    crashed = {"done": False}

    def journal(step: str, action: Any, verify: Any = None) -> Any:
        if step == "dispatch" and not crashed["done"]:
            crashed["done"] = True
            raise Killed("killed before dispatching")
        return queue.step(9, step, action, verify)

    with pytest.raises(Killed):
        handler.handle("issue_comment", payload, journal, "delivery-9")
    outcome = handler.handle("issue_comment", payload, journal, "delivery-9")
    assert outcome.status == "done" and "back from v1.1.0 to v1.0.0" in (outcome.reply or "")
    assert stage_of(world, "production") == "v1.0.0"
    sent = [d["client_payload"] for d in world.forge.dispatches() if d["client_payload"].get("delivery")]
    assert [(p["version"], p["trigger"]) for p in sent] == [("v1.0.0", "rollback")]


def test_a_bug_in_a_command_is_reported_not_retried(world: World) -> None:
    def broken(*_args: Any) -> None:
        raise ZeroDivisionError("bug")

    base = world.handler()
    handler = EventHandler(base.forge_for, base.settings_for, base.registry_for, broken)
    status, reactions, reply = run(world, "/abort", handler=handler)
    assert (status, reactions) == ("failed", ["eyes", "confused"])
    assert "internal error" in reply and "ZeroDivisionError" not in reply


def test_the_bot_and_rollout_control_agree_on_a_deployment_without_status(world: World) -> None:
    """One answer to "is a rollout running" (deploy.control.running_rollout): a deployment the
    controller has not posted a status on yet is running, for /promote as for the control signal."""
    from mlops_bot.deploy.control import request_action, running_rollout

    for stage in ("staging", "production"):
        assert run(world, f"/promote {stage} version=v1.1.0")[0] == "done"
    deployment = world.forge.create_deployment("churn@v1.1.0", "production",
                                               payload={"model": "churn", "version": "v1.1.0"})
    running = running_rollout(world.forge, "production")
    assert running is not None and running[0].id == deployment.id and running[1] is None
    status, _, reply = run(world, "/promote production version=v1.1.0")
    assert status == "done" and "waiting for a manual promote" in reply
    request_action(world.forge, "production", "abort", "alice")  # accepted too: same answer
    world.forge.create_deployment_status(deployment.id, "success", description="done")
    assert running_rollout(world.forge, "production") is None
