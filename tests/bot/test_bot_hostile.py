"""The bot under attack or misuse (issues 11 and 17): replays under a new delivery id, commenters
without permission, comments that almost are commands, repeated /retrain, slow clients, a killed
worker process and a repository whose jobs never finish."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_git_http import GitHttpRemote
from bot_testkit import (
    REPO,
    SECRET,
    BotProcess,
    ServerThread,
    World,
    children,
    comment_payload,
    signed,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

from mlops_bot.bot.app import BotConfig, WebhookBot
from mlops_bot.bot.connection_limits import ConnectionLimits
from mlops_bot.bot.events import DeliveryRejected, event_key, parse_delivery
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.signature import sign
from mlops_bot.bot.wiring import handler_from_env


def bot_env(world: World, state: Path) -> dict[str, str]:
    return {"MLOPS_BOT_WEBHOOK_SECRET": SECRET, "MLOPS_BOT_LOCAL_FORGE": str(world.forge.root),
            "MLOPS_BOT_GIT_URL_TEMPLATE": str(world.tmp / "remotes") + "/{repo}.git",
            "MLOPS_BOT_STATE_DIR": str(state)}


# ----------------------------------------------------------------------------------- the parser
def test_parser_verifies_and_keys_deliveries_from_the_body_alone(world: World) -> None:
    payload = world.comment("/retrain")
    body, headers = signed(payload, "issue_comment", delivery="d-1")
    parsed = parse_delivery(headers, body, [SECRET])
    assert (parsed.event, parsed.delivery, parsed.payload["comment"]["id"]) == ("issue_comment", "d-1",
                                                                                payload["comment"]["id"])
    replayed = parse_delivery({**headers, "X-GitHub-Delivery": "d-2"}, body, [SECRET])
    assert replayed.key == parsed.key is not None  # same request, whatever the delivery id says
    edited = {**payload, "action": "edited", "comment": {**payload["comment"], "updated_at": "later"}}
    assert event_key("issue_comment", edited) != parsed.key
    for bad, status in (({**headers, "X-Hub-Signature-256": sign("other", body)}, 401),
                        ({k: v for k, v in headers.items() if k != "X-GitHub-Event"}, 400)):
        with pytest.raises(DeliveryRejected) as caught:
            parse_delivery(bad, body, [SECRET])
        assert caught.value.status == status


# -------------------------------------------------------------------------------------- replay
@pytest.fixture
def bot(world: World) -> Iterator[tuple[WebhookBot, ServerThread, World]]:
    instance = WebhookBot(BotConfig([SECRET], world.tmp / "state"), world.handler())
    with ServerThread(instance.app) as server:
        yield instance, server, world


def test_a_signed_body_replayed_under_a_new_delivery_id_does_nothing_new(
    bot: tuple[WebhookBot, ServerThread, World],
) -> None:
    instance, server, world = bot
    payload = world.comment("/drift")
    body, headers = signed(payload, "issue_comment", delivery="original")
    assert httpx.post(f"{server.url}/webhook", content=body, headers=headers).status_code == 202
    wait_for(lambda: instance.queue.depth() == 0)
    for delivery in ("forged-1", "forged-2"):
        again = httpx.post(f"{server.url}/webhook", content=body,
                           headers={**headers, "X-GitHub-Delivery": delivery})
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    wait_for(lambda: instance.queue.depth() == 0)
    assert [d["event_type"] for d in world.forge.dispatches()] == ["mlops-drift"]
    assert world.forge.reactions(payload["comment"]["id"]) == ["eyes", "rocket"]
    assert len(instance.queue.jobs()) == 1


# ------------------------------------------------------------------------ permission before work
def test_a_read_commenter_cannot_make_the_bot_clone(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state"
    handler = handler_from_env(bot_env(world, state), state)
    clone = state / "repos" / REPO
    for body in ("/promote production version=v1.1.0", "/rollback", "/retrain", "/abort", "/help"):
        outcome = handler.handle("issue_comment", world.comment(body, login="carol"))
        assert not clone.exists(), body
        assert outcome.status == ("done" if body == "/help" else "refused"), (body, outcome)
    reply = next(c.body for c in world.forge.list_comments(world.pr) if c.user == "mlops-bot[bot]")
    assert "needs `write` permission" in reply and "you have `read`" in reply
    # a collaborator with enough permission is served from a clone, as before
    assert handler.handle("issue_comment", world.comment("/drift", login="bob")).status == "done"
    assert clone.exists()


# ----------------------------------------------------------------------------- almost commands
def test_a_comment_that_looks_like_a_command_but_does_not_parse_gets_a_reply(world: World) -> None:
    handler = world.handler()
    for body in ("/promote, please", "/Promote:staging", "/retrain model=bad=name"):
        payload = world.comment(body)
        outcome = handler.handle("issue_comment", payload)
        assert outcome.status == "refused", (body, outcome)
        assert world.forge.reactions(payload["comment"]["id"]) == ["eyes", "confused"]
        reply = str(outcome.reply)
        assert "Usage: `/" in reply or "not a valid model name" in reply, reply
    prose = world.comment("/path/to/data.csv is missing a column")
    assert handler.handle("issue_comment", prose).status == "ignored"
    assert world.forge.reactions(prose["comment"]["id"]) == []  # not even 👀


# ---------------------------------------------------------------------------- retrain cool-down
def test_retrain_has_a_per_model_cool_down(world: World, tmp_path: Path) -> None:
    now = {"t": 1_000.0}
    queue = SqliteQueue(tmp_path / "q.sqlite3")
    base = world.handler()
    base.cooldowns, base.clock = queue, lambda: now["t"]
    assert base.handle("issue_comment", world.comment("/retrain")).status == "done"
    now["t"] += 600
    second = base.handle("issue_comment", world.comment("/retrain", login="bob"))
    assert second.status == "refused" and "try again in 20 min" in str(second.reply)
    assert base.handle("issue_comment", world.comment("/retrain model=other")).status == "done"
    now["t"] += 1200
    assert base.handle("issue_comment", world.comment("/retrain")).status == "done"
    sent = [d["client_payload"]["model"] for d in world.forge.dispatches()
            if d["event_type"] == "mlops-retrain"]
    assert sent == ["churn", "other", "churn"]


# ------------------------------------------------------------------------------ slow clients
@pytest.fixture
def guarded(world: World) -> Iterator[tuple[WebhookBot, ServerThread, World]]:
    limits = ConnectionLimits(max_connections=40, max_waiting=60, header_seconds=1.0, request_seconds=2.0,
                              idle_seconds=1.0)
    instance = WebhookBot(BotConfig([SECRET], world.tmp / "state", limits=limits), world.handler())
    with ServerThread(instance.app, http=instance.http_protocol()) as server:
        yield instance, server, world


def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if first:
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF, possibly after a short answer)."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.mark.slow
def test_slow_and_idle_clients_are_cut_off_and_capped(guarded: tuple[WebhookBot, ServerThread, World]
                                                     ) -> None:
    instance, server, world = guarded
    body, headers = signed(world.comment("/drift"), "issue_comment")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"POST /webhook HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
    # 300 attackers in three kinds: headers never finished, a body trickled byte by byte, a body
    # shorter than its Content-Length.
    socks: list[socket.socket] = []
    for i in range(300):
        try:
            kinds = (b"POST /webhook HTTP/1.1\r\nHost: x\r\n", request + body[:1], request + body[:-10])
            first = kinds[i % 3]
            socks.append(_open(server.port, first))
        except OSError:
            pass  # the listen backlog is full: refused outright, which is fine too
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for index in range(1, len(socks), 3):
                with contextlib.suppress(OSError):
                    socks[index].send(b"x")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        # a real delivery still gets through while they wait (retried: the cap may refuse it once)
        def delivered() -> bool:
            try:
                answer = httpx.post(f"{server.url}/webhook", content=body, headers=headers, timeout=5)
            except httpx.HTTPError:
                return False
            return answer.status_code in (200, 202)

        wait_for(delivered, 60, "a real delivery during the attack")
        wait_for(lambda: all(_closed_by_server(s) for s in socks), 60, "every slow connection closed")
    finally:
        stop.set()
        thread.join(5)
        for sock in socks:
            sock.close()
    metrics = httpx.get(f"{server.url}/metrics").text
    cut = {s.labels["outcome"]: s.value for f in text_string_to_metric_families(metrics)
           for s in f.samples if s.name == "mlops_bot_deliveries_total" and s.labels["event"] == "unknown"}
    assert cut.get("busy", 0) > 0 and cut.get("header_timeout", 0) > 0, cut
    assert cut.get("request_timeout", 0) + cut.get("idle_timeout", 0) > 0, cut
    assert [job["status"] for job in instance.queue.jobs()] in (["done"], ["pending"], ["running"])


# ------------------------------------------------------------------------- metrics, child mode
def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
def test_job_metrics_are_right_when_jobs_run_in_the_worker_process(world: World, tmp_path: Path) -> None:
    bot = BotProcess(world, tmp_path / "state", workers=1).start()
    try:
        with httpx.Client(timeout=10) as client:
            for i, (body, login) in enumerate((("/drift", "alice"), ("/drift", "bob"), ("/abort", "carol"))):
                payload = world.comment(body, login=login)
                response = client.post(f"{bot.url}/webhook", content=signed(payload, "issue_comment",
                                                                           delivery=f"m-{i}")[0],
                                       headers=signed(payload, "issue_comment", delivery=f"m-{i}")[1])
                assert response.status_code == 202
            wait_for(lambda: bot.depth() == 0, 60, "jobs done")
            samples = _samples(client.get(f"{bot.url}/metrics").text)
    finally:
        bot.kill()
    assert samples[("mlops_bot_jobs_total", (("event", "issue_comment"), ("outcome", "done")))] == 2
    assert samples[("mlops_bot_jobs_total", (("event", "issue_comment"), ("outcome", "refused")))] == 1
    assert samples[("mlops_bot_job_duration_seconds_count", ())] == 3
    assert samples[("mlops_bot_job_duration_seconds_sum", ())] > 0
    assert samples[("mlops_bot_queue_jobs", (("status", "done"),))] == 3
    assert not any(name == "mlops_bot_job_failures_total" for name, _ in samples)


# -------------------------------------------------------------------------- worker supervision
@pytest.mark.slow
def test_a_killed_worker_is_noticed_restarted_and_its_job_resumed(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "state"
    for key, value in bot_env(world, state).items():
        monkeypatch.setenv(key, value)
    config = BotConfig([SECRET], state, worker_process=True, restart_backoff=(3.0, 3.0))
    instance = WebhookBot(config, handler_from_env(dict(os.environ), state))
    with ServerThread(instance.app) as server:
        wait_for(lambda: httpx.get(f"{server.url}/healthz").status_code == 200, 30, "healthy")
        first = instance.worker_pid()
        assert first is not None and first in children(os.getpid())
        os.kill(first, signal.SIGKILL)
        health = {"seen": None}

        def unhealthy() -> bool:
            answer = httpx.get(f"{server.url}/healthz")
            health["seen"] = answer.json()
            return answer.status_code == 503

        wait_for(unhealthy, 30, "healthz to notice the dead worker")
        assert health["seen"] is not None and "no worker process is running" in str(health["seen"])
        wait_for(lambda: instance.worker_pid() not in (None, first) and httpx.get(
            f"{server.url}/healthz").status_code == 200, 60, "worker restarted")
        payload = world.comment("/drift")
        assert httpx.post(f"{server.url}/webhook", content=signed(payload, "issue_comment")[0],
                          headers=signed(payload, "issue_comment")[1]).status_code in (202, 200)
        wait_for(lambda: "rocket" in world.forge.reactions(payload["comment"]["id"]), 60, "job done")
        restarts = _samples(httpx.get(f"{server.url}/metrics").text)
    assert restarts[("mlops_bot_worker_restarts_total", ())] == 1


class HangingRemote(GitHttpRemote):
    """Serves real git for every repository except those of owner `slow`, which never answer."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, None)  # type: ignore[arg-type]
        self.release = threading.Event()

    def _allowed(self, token: str | None, repo: str) -> bool:
        return True

    def serve(self, request: Any) -> None:
        if request.path.startswith("/slow/"):
            self.release.wait(120)
            return
        super().serve(request)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_repository_whose_jobs_never_finish_cannot_starve_the_others(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
    backend: str,
) -> None:
    state = tmp_path / "state"
    url = request.getfixturevalue("postgres").database() if backend == "postgres" else ""
    with HangingRemote(world.tmp / "remotes") as remote:
        env = {**bot_env(world, state), "MLOPS_BOT_GIT_URL_TEMPLATE": remote.url + "/{repo}.git"}
        if url:
            env["MLOPS_BOT_DATABASE_URL"] = url
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        world.forge.set_permission("mallory", "admin")
        config = BotConfig([SECRET], state, worker_process=True, job_seconds=3.0, restart_backoff=(0.5, 0.5),
                           database_url=url)
        instance = WebhookBot(config, handler_from_env(dict(os.environ), state))
        try:
            with ServerThread(instance.app) as server:
                stuck = comment_payload("/drift", number=world.pr, comment_id=9_000_001, login="mallory",
                                        repo="slow/poison")
                assert httpx.post(f"{server.url}/webhook", content=signed(stuck, "issue_comment")[0],
                                  headers=signed(stuck, "issue_comment")[1]).status_code == 202
                payload = world.comment("/drift")
                assert httpx.post(f"{server.url}/webhook", content=signed(payload, "issue_comment")[0],
                                  headers=signed(payload, "issue_comment")[1]).status_code == 202
                wait_for(lambda: "rocket" in world.forge.reactions(payload["comment"]["id"]), 120,
                         "the healthy repository's job")
                wait_for(lambda: instance.queue.depth() == 0, 120, "the stuck job given up")
        finally:
            remote.release.set()
    jobs = {job["delivery"]: job for job in instance.queue.jobs()}
    poisoned = next(job for job in jobs.values() if job["status"] == "failed")
    assert poisoned["attempts"] == 3 and "worker died" in str(poisoned["error"])
    assert sum(job["status"] == "done" for job in jobs.values()) == 1
