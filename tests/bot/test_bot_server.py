"""The webhook endpoint over real HTTP (uvicorn on 127.0.0.1): GitHub's real example payloads,
signed as GitHub signs them, and every way a delivery can be bad or repeated."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bot_testkit import REPO, SECRET, ServerThread, World, example, examples, signed, wait_for

from mlops_bot.bot.app import BotConfig, WebhookBot
from mlops_bot.bot.events import event_key
from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.signature import sign
from mlops_bot.errors import MlopsError


@pytest.fixture
def bot(world: World) -> Iterator[tuple[WebhookBot, ServerThread, World]]:
    instance = WebhookBot(BotConfig(["retired-secret", SECRET], world.tmp / "state"), world.handler())
    with ServerThread(instance.app) as server:
        yield instance, server, world


def post(server: ServerThread, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/webhook", content=body, headers=headers, timeout=30)


@pytest.mark.slow
def test_real_example_payloads_are_acknowledged(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    instance, server, world = bot
    keys: dict[str, str] = {}
    for event in ("issue_comment", "pull_request", "push"):
        for original in examples()[event]["examples"]:
            payload = {**original, "repository": {**original["repository"], "full_name": REPO}}
            response = post(server, *signed(payload, event))
            # Several examples are one request seen by different installations (same comment id
            # and action): the first is queued, the others are replays of it.
            key = event_key(event, payload)
            assert key is not None
            expected = (200, "duplicate") if key in keys else (202, "queued")
            assert (response.status_code, response.json()["status"]) == expected, response.text
            keys.setdefault(key, event)
    for payload in examples()["ping"]["examples"]:
        response = post(server, *signed(payload, "ping"))
        assert response.status_code == 200 and response.json()["status"] == "pong"
    for event in ("star", "watch", "release", "workflow_run", "installation"):
        response = post(server, *signed(examples()[event]["examples"][0], event))
        assert (response.status_code, response.json()["status"]) == (202, "ignored")
    wait_for(lambda: instance.queue.depth() == 0, what="queue drained")
    # No example comment is a command; pull requests (opened, synchronize, reopened) ask for a
    # validation run, pushes to the default branch for a deploy run.
    assert {job["status"] for job in instance.queue.jobs()} == {"done"}, instance.queue.jobs()
    assert len(instance.queue.jobs()) == len(keys)
    wanted = {event_key("pull_request", p) for p in examples()["pull_request"]["examples"]
              if p["action"] in ("opened", "synchronize", "reopened")}
    pushes = {event_key("push", p) for p in examples()["push"]["examples"] if p["ref"] == "refs/heads/master"}
    sent = [d["event_type"] for d in world.forge.dispatches()]
    assert sent.count("mlops-validate") == len(wanted) and sent.count("mlops-deploy") == len(pushes)


def test_signed_command_is_processed_once_even_when_redelivered(bot: tuple[WebhookBot, ServerThread, World]
                                                               ) -> None:
    instance, server, world = bot
    payload = world.comment("/retrain")
    body, headers = signed(payload, "issue_comment", delivery="delivery-1")
    first = post(server, body, headers)
    assert (first.status_code, first.json()) == (202, {"status": "queued", "delivery": "delivery-1"})
    comment_id = payload["comment"]["id"]
    wait_for(lambda: "rocket" in world.forge.reactions(comment_id), what="rocket reaction")
    again = post(server, body, headers)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    wait_for(lambda: instance.queue.depth() == 0)
    assert world.forge.reactions(comment_id) == ["eyes", "rocket"]
    assert [d["event_type"] for d in world.forge.dispatches()] == ["mlops-retrain"]
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
               for s in family.samples}
    comment = (("event", "issue_comment"),)
    assert samples[("mlops_bot_deliveries_total", (*comment, ("outcome", "queued")))] == 1
    assert samples[("mlops_bot_deliveries_total", (*comment, ("outcome", "duplicate")))] == 1
    assert samples[("mlops_bot_jobs_total", (*comment, ("outcome", "done")))] == 1
    assert samples[("mlops_bot_queue_depth", ())] == 0
    assert samples[("mlops_bot_queue_jobs", (("status", "done"),))] == 1
    assert any(name == "mlops_bot_webhook_latency_seconds_bucket" for name, _ in samples)


def test_signature_is_required_and_checked(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    instance, server, _ = bot
    body, headers = signed(example("ping"), "ping")
    for bad in (None, "", sign("wrong", body), sign(SECRET, body + b" "), "sha1=" + sign(SECRET, body)[7:]):
        sent = dict(headers)
        if bad is None:
            del sent["X-Hub-Signature-256"]
        else:
            sent["X-Hub-Signature-256"] = bad
        response = post(server, body, sent)
        assert response.status_code == 401, bad
        assert "X-Hub-Signature-256" in response.json()["message"]
    rotated = {**headers, "X-Hub-Signature-256": sign("retired-secret", body)}
    assert post(server, body, rotated).status_code == 200
    assert instance.queue.counts() == {}


def test_of_a_repeated_signature_header_the_first_counts(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    _instance, server, _ = bot
    body, headers = signed(example("ping"), "ping")
    others = [(k, v) for k, v in headers.items() if k != "X-Hub-Signature-256"]
    right, wrong = headers["X-Hub-Signature-256"], sign("wrong", body)
    for first, second, status in ((wrong, right, 401), (right, wrong, 200)):
        sent = [*others, ("X-Hub-Signature-256", first), ("X-Hub-Signature-256", second)]
        response = httpx.post(f"{server.url}/webhook", content=body, headers=sent, timeout=30)
        assert response.status_code == status, (first, second)


def test_delivery_metrics_label_only_known_event_names(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    """X-GitHub-Event is not signed: a made-up name must not become a metric series of its own."""
    from prometheus_client.parser import text_string_to_metric_families

    _instance, server, _ = bot
    assert post(server, *signed(example("ping"), "ping")).status_code == 200
    for made_up in ("made-up-1", "made-up-2"):
        assert post(server, *signed(example("ping"), made_up)).json()["status"] == "ignored"
    body, headers = signed(example("ping"), "ping")
    assert post(server, body, {**headers, "X-Hub-Signature-256": sign("wrong", body)}).status_code == 401
    assert post(server, body, {k: v for k, v in headers.items() if k != "X-GitHub-Event"}).status_code == 400
    counted = {(s.labels["event"], s.labels["outcome"]): s.value
               for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
               for s in family.samples if s.name == "mlops_bot_deliveries_total"}
    assert counted == {("ping", "ping"): 1, ("other", "ignored"): 2, ("ping", "unauthorized"): 1,
                       ("unknown", "malformed"): 1}


def test_malformed_and_incomplete_deliveries(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    instance, server, _ = bot
    for raw in (b"{not json", b"[1, 2]", b""):
        body, headers = signed(raw, "issue_comment")
        response = post(server, body, headers)
        assert response.status_code == 400, raw
    body, headers = signed(example("ping"), "ping")
    for missing in ("X-GitHub-Delivery", "X-GitHub-Event"):
        sent = {k: v for k, v in headers.items() if k != missing}
        assert post(server, body, sent).status_code == 400
    assert instance.queue.counts() == {}


def test_form_encoded_deliveries_are_accepted(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    instance, server, world = bot
    payload = world.comment("/drift", login="tina")
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    _, headers = signed(body, "issue_comment")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert post(server, body, headers).status_code == 202
    wait_for(lambda: instance.queue.depth() == 0)
    assert world.forge.dispatches()[-1]["event_type"] == "mlops-drift"


def test_payloads_over_25_mb_are_refused(bot: tuple[WebhookBot, ServerThread, World]) -> None:
    instance, server, _ = bot
    big = b'{"padding": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    body, headers = signed(big, "push")
    response = post(server, body, headers)
    assert response.status_code == 413
    # Without Content-Length (chunked) the read is capped too.
    def chunks() -> Iterator[bytes]:
        for _ in range(27):
            yield b"x" * (1024 * 1024)

    headers.pop("Content-Length", None)
    response = httpx.post(f"{server.url}/webhook", content=chunks(), headers=headers, timeout=30)
    assert response.status_code == 413
    assert instance.queue.counts() == {}


def test_healthz_and_refusal_to_run_without_a_secret(bot: tuple[WebhookBot, ServerThread, World],
                                                     tmp_path: Path) -> None:
    _, server, _ = bot
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "queue_depth": 0}
    with pytest.raises(MlopsError, match="MLOPS_BOT_WEBHOOK_SECRET"):
        BotConfig.from_env({}, tmp_path)
    config = BotConfig.from_env({"MLOPS_BOT_WEBHOOK_SECRET": "a, b"}, tmp_path)
    assert config.secrets == ["a", "b"]
    unused = EventHandler(lambda r, i: (_ for _ in ()).throw(AssertionError()))
    assert WebhookBot(config, unused).recovered == 0


def test_octokit_pull_request_example_dispatches_validation(
    bot: tuple[WebhookBot, ServerThread, World],
) -> None:
    instance, server, world = bot
    payload = example("pull_request", "synchronize")
    payload["repository"] = {**payload["repository"], "full_name": REPO}
    assert post(server, *signed(payload, "pull_request")).status_code == 202
    wait_for(lambda: instance.queue.depth() == 0)
    sent = world.forge.dispatches()[-1]
    assert sent["event_type"] == "mlops-validate"
    assert sent["client_payload"]["head_sha"] == payload["pull_request"]["head"]["sha"]
