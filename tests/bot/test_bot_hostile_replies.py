"""Bot replies quote what a commenter typed only truncated and inert: a 1 MB argument gets a short
reply, a token that tries to close the code span cannot turn `@org/team` into a mention, HTML stays
text. Real handler, real registry (bare origin), local forge; the reply rendered by cmark-gfm."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cmarkgfm
import pytest
from bot_testkit import World
from cmarkgfm.cmark import Options

from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.routing import DeliveryContext, RepoSettings
from mlops_bot.bot.worker import Worker
from mlops_bot.errors import MlopsError

ZWSP = "\u200b"


def _last_reply(world: World) -> str:
    return [c.body for c in world.forge.list_comments(world.pr) if c.user == "mlops-bot[bot]"][-1]


def _run(world: World, body: str) -> tuple[str, str]:
    payload = world.comment(body, login="alice")
    outcome = world.handler().handle("issue_comment", payload)
    return outcome.status, _last_reply(world)


def _html(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def _live_mentions(html: str) -> list[str]:
    """@logins GitHub would link: in text outside <code>, an @ directly followed by a login."""
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.S)
    return re.findall(r"@[A-Za-z0-9][\w/-]*", outside_code)


def test_a_megabyte_version_gets_a_short_reply(world: World) -> None:
    status, reply = _run(world, "/promote version=v" + "1" * 1_000_000)
    assert status == "refused"
    assert len(reply) < 3_000, len(reply)
    assert "1,000,009 characters" in reply  # says how long the refused value was
    assert "is not a version like `v1.2.3`" in reply


def test_a_token_closing_the_code_span_mentions_nobody(world: World) -> None:
    # Arguments split on whitespace, so each hostile token is one word.
    tokens = ("version=v1``@org/team``", "model=`@org/team`", "`@org/team`", "<img/src=x/onerror=alert(1)>")
    for token in tokens:
        status, reply = _run(world, f"/promote {token}")
        assert status == "refused", reply
        html = _html(reply)
        assert _live_mentions(html) == ["@alice"], (token, html)  # the commenter, addressed on purpose
        assert "<img" not in html
        if "@" in token:
            assert "@org/team" in html.replace(ZWSP, "")  # still shown, verbatim


def test_an_unknown_key_and_an_unknown_command_are_quoted_inert(world: World) -> None:
    status, reply = _run(world, "/promote " + "`@org/team`" * 10_000 + "=1")
    assert status == "refused" and len(reply) < 3_000
    assert _live_mentions(_html(reply)) == ["@alice"]
    status, reply = _run(world, "/x" + "a" * 100_000)
    assert status == "refused" and len(reply) < 5_000


def test_an_error_reply_masks_our_secrets(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghs_" + "R4" * 18
    monkeypatch.setenv("GITHUB_TOKEN", token)

    def broken_settings(_context: DeliveryContext) -> RepoSettings:
        raise MlopsError(f"cannot read mlops.yml: https://x-access-token:{token}@github.com denied {token}")

    handler = EventHandler(lambda _repo, _inst: world.forge, broken_settings)
    outcome = handler.handle("issue_comment", world.comment("/promote", login="alice"))
    reply = _last_reply(world)
    assert outcome.status == "failed" and token not in reply
    assert "https://***@github.com denied ***" in reply.replace(ZWSP, "")


def test_the_job_record_masks_our_secrets(world: World, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghs_" + "J2" * 18
    monkeypatch.setenv("GH_TOKEN", token)

    def failing_settings(_context: DeliveryContext) -> RepoSettings:
        raise RuntimeError(f"push to https://x-access-token:{token}@github.com/acme/churn failed")

    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    worker = Worker(queue, EventHandler(lambda _repo, _inst: world.forge, failing_settings))
    payload = world.comment("/promote", login="alice")
    assert queue.enqueue("d-1", "issue_comment", json.dumps(payload).encode(), 0.0)
    job = queue.claim(0.0)
    assert job is not None and worker.process(job) is None
    record = queue.jobs()[0]
    assert token not in json.dumps(record) and "https://***@github.com/acme/churn" in record["error"]
