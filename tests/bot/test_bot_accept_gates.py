"""`/accept-gates`: a maintainer accepts the gates a PR changes; the command adds the label the PR
validation honours. Below `maintain` it is refused and nothing changes."""

from __future__ import annotations

from bot_testkit import World

from mlops_bot.pipeline.base_gates import ACCEPT_LABEL


def _labels(world: World) -> list[str]:
    with world.forge._state(write=False) as data:
        return list(data["issues"][str(world.pr)]["labels"])


def test_accept_gates_needs_maintain_and_adds_the_label(world: World) -> None:
    handler = world.handler()
    refused = handler.handle("issue_comment", world.comment("/accept-gates", login="bob"))
    assert refused.status == "refused" and "needs `maintain`" in refused.detail + str(refused)
    assert _labels(world) == []

    done = handler.handle("issue_comment", world.comment("/accept-gates", login="alice"))
    assert done.status == "done"
    assert _labels(world) == [ACCEPT_LABEL]
    again = handler.handle("issue_comment", world.comment("/accept-gates", login="alice"))
    assert again.status == "done" and _labels(world) == [ACCEPT_LABEL]
