"""`/accept-gates`: a maintainer accepts the gates a PR changes; the bot records the acceptance in its
own reply, bound to the PR's head commit (what the comment job honours). Below `maintain` it is
refused and nothing is recorded, and `bot.commands` cannot lower that."""

from __future__ import annotations

from bot_testkit import World

from mlops_bot.bot.commands import parse_command, required_permission
from mlops_bot.config import BotSection
from mlops_bot.pipeline.base_gates import accepted_at


def _records(world: World, head: str) -> bool:
    forge = world.forge
    return accepted_at([c.body for c in forge.list_comments(world.pr) if forge.is_own_comment(c)], head)


def test_accept_gates_needs_maintain_and_records_the_head_it_accepts(world: World) -> None:
    head = world.forge.get_pull_request(world.pr).head_sha
    assert head
    handler = world.handler()
    refused = handler.handle("issue_comment", world.comment("/accept-gates", login="bob"))
    assert refused.status == "refused" and "needs `maintain`" in refused.detail + str(refused)
    assert not _records(world, head)

    done = handler.handle("issue_comment", world.comment("/accept-gates", login="alice"))
    assert done.status == "done"
    assert _records(world, head)
    with world.forge._state(write=False) as data:  # no label: anyone with triage could add one
        assert not data["issues"][str(world.pr)]["labels"]


def test_bot_commands_cannot_lower_accept_gates_below_maintain() -> None:
    command = parse_command("/accept-gates")
    assert command is not None
    assert required_permission(command, BotSection(commands={"accept-gates": "triage"})) == "maintain"
    assert required_permission(command, BotSection(commands={"accept-gates": "admin"})) == "admin"
