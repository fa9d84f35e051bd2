"""The webhook server's answering path as `mlops-bot bot serve` runs it: uvicorn's httptools
protocol with the connection guard (bot/connection_limits.py) in front of the lean `POST /webhook`
path, on real sockets on 127.0.0.1. Past the connection cap a connection waits (it is not refused)
until a place frees; only past the waiting room is it refused."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from bot_testkit import SECRET, ServerThread, World, signed, wait_for
from prometheus_client.parser import text_string_to_metric_families

from mlops_bot.bot.app import BotConfig, WebhookBot
from mlops_bot.bot.connection_limits import ConnectionLimits, OneWriteTransport

PARTIAL_HEADERS = b"POST /webhook HTTP/1.1\r\nHost: x\r\n"


@contextmanager
def guarded_server(world: World, limits: ConnectionLimits) -> Iterator[tuple[WebhookBot, ServerThread, Any]]:
    instance = WebhookBot(BotConfig([SECRET], world.tmp / "state", limits=limits, workers=0), world.handler())
    protocol = instance.http_protocol()
    with ServerThread(instance.app, http=protocol) as server:
        yield instance, server, protocol


def raw_request(body: bytes, headers: dict[str, str], keep_alive: bool = True) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    connection = "" if keep_alive else "Connection: close\r\n"
    return (f"POST /webhook HTTP/1.1\r\nHost: x\r\n{head}{connection}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a Content-Length body, read from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    while len(rest) < int(headers.get("content-length", "0")):
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def cut_counts(server: ServerThread) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return {s.labels["outcome"]: s.value for s in samples
            if s.name == "mlops_bot_deliveries_total" and s.labels["event"] == "unknown"}


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_a_connection_past_the_cap_waits_for_a_place_and_is_answered(world: World) -> None:
    # Two clients stopped mid-headers hold both places; a real delivery arriving meanwhile waits (the
    # old guard answered it 503: a delivery GitHub does not redeliver) until one of them leaves.
    limits = ConnectionLimits(max_connections=2, max_waiting=5, header_seconds=60, request_seconds=60,
                              idle_seconds=60)
    body, headers = signed(world.comment("/drift"), "issue_comment", delivery="waited-1")
    with guarded_server(world, limits) as (instance, server, protocol):
        holders = [socket.create_connection(("127.0.0.1", server.port), timeout=60) for _ in range(2)]
        for holder in holders:
            holder.sendall(PARTIAL_HEADERS)
        wait_for(lambda: len(protocol.served) == 2, 10, "both places taken")
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.sendall(raw_request(body, headers))
            wait_for(lambda: len(protocol.waiting) == 1, 10, "the delivery waiting")
            assert instance.queue.jobs() == []  # not read while it waits
            holders[0].close()
            status, _, answer = read_answer(sock)
        holders[1].close()
        assert (status, json.loads(answer)["status"]) == (202, "queued")
        assert [job["delivery"] for job in instance.queue.jobs()] == ["waited-1"]
        counts = cut_counts(server)
    assert counts.get("busy", 0) == 0, counts


def test_past_the_waiting_room_a_connection_is_refused_at_once(world: World) -> None:
    limits = ConnectionLimits(max_connections=1, max_waiting=1, header_seconds=60, request_seconds=60,
                              idle_seconds=60)
    with guarded_server(world, limits) as (_, server, protocol):
        served = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        served.sendall(PARTIAL_HEADERS)
        wait_for(lambda: len(protocol.served) == 1, 10, "the place taken")
        waiting = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        wait_for(lambda: len(protocol.waiting) == 1, 10, "one connection waiting")
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as refused:
            refused.sendall(PARTIAL_HEADERS)
            status, headers, _ = read_answer(refused)
            assert (status, headers["connection"]) == (503, "close")
        served.close()  # the waiting one gets the place: /metrics below is answered through it or after
        waiting.close()
        wait_for(lambda: not protocol.served and not protocol.waiting, 10, "places free")
        assert cut_counts(server).get("busy") == 1


def test_while_others_wait_an_answer_closes_its_connection(world: World) -> None:
    # A kept-alive client would hold its place until its keep-alive ran out: with connections
    # waiting, the answer says `connection: close` and the next one in line is served.
    limits = ConnectionLimits(max_connections=1, max_waiting=5, header_seconds=60, request_seconds=60,
                              idle_seconds=60)
    with guarded_server(world, limits) as (instance, server, protocol):
        first_body, first_headers = signed(world.comment("/drift"), "issue_comment", delivery="first")
        request = raw_request(first_body, first_headers)
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as first:
            first.sendall(request[:20])
            wait_for(lambda: len(protocol.served) == 1, 10, "the place taken")
            second = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            wait_for(lambda: len(protocol.waiting) == 1, 10, "the second connection waiting")
            first.sendall(request[20:])
            status, headers, _ = read_answer(first)
            assert (status, headers.get("connection")) == (202, "close")
        body, headers_2 = signed(world.comment("/drift"), "issue_comment", delivery="second")
        with second:
            second.sendall(raw_request(body, headers_2))
            status, headers, _ = read_answer(second)
        assert status == 202 and headers.get("connection") != "close"  # nobody waits now: kept alive
        assert sorted(job["delivery"] for job in instance.queue.jobs()) == ["first", "second"]


def test_the_lean_path_answers_client_mistakes_with_4xx(world: World) -> None:
    with guarded_server(world, ConnectionLimits()) as (instance, server, _), \
            httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/webhook").status_code == 405
            assert client.get("/healthz").status_code == 200
            for raw, status in ((b"[" * 100_000, 400), (b'{"a": \xff}', 400)):
                body, headers = signed(raw, "issue_comment")
                assert client.post("/webhook", content=body, headers=headers).status_code == status, raw[:20]
            # What orjson refuses and the standard parser accepts is still accepted.
            payload = world.comment("/drift")
            payload["comment"]["reactions"] = {"total_count": 2 ** 70}
            body, headers = signed(payload, "issue_comment", delivery="big-int")
            assert client.post("/webhook", content=body, headers=headers).status_code == 202
            with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
                sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{}")
                assert read_answer(sock)[0] == 413  # refused on the header, the body never read
    assert [job["delivery"] for job in instance.queue.jobs()] == ["big-int"]


class RecordingTransport:
    """What reaches the socket: each write, and whether it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_an_answer_goes_out_in_one_write_and_a_100_continue_at_once() -> None:
    sink = RecordingTransport()
    transport = OneWriteTransport(sink)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert sink.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
    assert len(sink.writes) == 1  # the head waits for the body
    transport.write(b"{}")
    assert sink.writes[1] == b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"
    transport.write(b"HTTP/1.1 is body text")  # after the head, everything is body: written as is
    assert sink.writes[2] == b"HTTP/1.1 is body text"
    headless = OneWriteTransport(sink)  # type: ignore[arg-type]
    headless.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    headless.close()  # a head never followed by a body still goes out before the close
    assert sink.writes[-1].startswith(b"HTTP/1.1 500") and sink.closed


@pytest.mark.parametrize("reason", ["header", "body"])
def test_slow_clients_are_still_cut_with_the_c_parser(world: World, reason: str) -> None:
    # A byte every 0.2 s keeps the idle limit away; the header or request deadline cuts it.
    limits = ConnectionLimits(max_connections=10, max_waiting=10, header_seconds=1.0, request_seconds=1.0,
                              idle_seconds=30)
    body, headers = signed(world.comment("/drift"), "issue_comment")
    request = raw_request(body, headers)
    with guarded_server(world, limits) as (instance, server, _):
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as slow:
            slow.sendall(PARTIAL_HEADERS if reason == "header" else request[:-1000])
            for index in range(300):  # far from completing: 300 header lines, or 300 of 1,000 body bytes
                if closed_by_server(slow):
                    break
                time.sleep(0.2)
                more = b"X-Slow: y\r\n" if reason == "header" else request[-1000 + index:-999 + index]
                with contextlib.suppress(OSError):
                    slow.sendall(more)
            assert closed_by_server(slow)
        counts = cut_counts(server)
    expected = "header_timeout" if reason == "header" else "request_timeout"
    assert counts.get(expected, 0) == 1, counts
    assert instance.queue.jobs() == []
