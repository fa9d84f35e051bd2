"""Limits on the webhook server's connections, so slow or idle clients cannot hold it.

uvicorn has a keep-alive timeout but no limit on how long a client may take to send its headers or
body, and `limit_concurrency` answers 503 (a lost delivery: GitHub does not redeliver on its own).
`guarded_protocol(limits)` returns uvicorn's httptools protocol (the C parser) with, per connection:

- a cap on connections being served (`max_connections`); beyond it a new connection **waits**, not
  read, in arrival order, until one closes (its request stays in the kernel's socket buffer, so a
  waiting connection costs a few KB); only past `max_waiting` more is one refused (503, close).
  While connections wait, answers carry `connection: close`, so kept-alive clients give their
  place up. A delivery that waits is answered late rather than lost (GitHub waits 10 s);
- a header deadline: the request line and headers complete within `header_seconds` of the first
  byte (of the connection, for the first request, waiting included), else 408 and close;
- a request deadline: the whole body within `request_seconds` of the headers (a client trickling
  one byte every two seconds is cut off), and an idle limit: no byte for `idle_seconds` while a
  request is incomplete (a body shorter than its Content-Length) closes the connection.

It also sends each answer in one write: the status line and headers are held until the body's
first write (two writes would be two syscalls and two TCP segments per answer).

A reverse proxy (nginx, a cloud load balancer) in front of the bot is still recommended; these
limits keep the bot safe when it is reached directly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 100
    max_waiting: int = 1000
    header_seconds: float = 10.0
    request_seconds: float = 30.0
    idle_seconds: float = 10.0


class OneWriteTransport:
    """The transport as one request/response cycle sees it: its status line and headers are held
    and written together with the first body write (or on close). A `100 Continue` is not held."""

    __slots__ = ("_head", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started and data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 100 "):
            self._started = True
            self._head = data
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(limits: ConnectionLimits, on_cut: Callable[[str], None] | None = None
                     ) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with `limits` (pass it as `uvicorn.Config(http=...)`).
    `on_cut(reason)` is called for each connection cut (`busy`, `header_timeout`,
    `request_timeout`, `idle_timeout`), for metrics. Each call makes a class with its own count of
    served and waiting connections (one per server)."""
    served: set[GuardedProtocol] = set()
    waiting: deque[GuardedProtocol] = deque()

    def admit_waiting() -> None:
        while waiting and len(served) < limits.max_connections:
            candidate = waiting.popleft()
            candidate._waiting = False
            if not candidate.transport.is_closing():
                candidate._admit()

    class GuardedProtocol(HttpToolsProtocol):
        served: ClassVar[set[GuardedProtocol]]  # connections being read and answered
        waiting: ClassVar[deque[GuardedProtocol]]  # connections waiting for a place, oldest first
        _deadline: asyncio.TimerHandle | None = None
        _idle: asyncio.TimerHandle | None = None
        _phase = "headers"  # headers -> body -> received (-> headers on a reused connection)
        _requests = 0
        _waiting = False
        _held = b""  # what arrived while waiting (uvloop reads once before a pause takes effect)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(served) < limits.max_connections and not waiting:
                self._serve()
            elif len(waiting) < limits.max_waiting:
                transport.pause_reading()
                self._waiting = True
                waiting.append(self)
            else:
                self._cut("busy", _BUSY_RESPONSE)
                return
            # The first request's headers are due `header_seconds` after the connection, waiting included.
            self._arm_deadline(limits.header_seconds, "header_timeout")

        def _serve(self) -> None:
            served.add(self)
            self._arm_idle()

        def _admit(self) -> None:
            self._serve()
            held, self._held = self._held, b""
            if held:
                self.data_received(held)
            if not self.transport.is_closing():
                self.transport.resume_reading()

        def data_received(self, data: bytes) -> None:
            if self._waiting:
                self._held += data
                self.transport.pause_reading()
                return
            super().data_received(data)
            if self._phase != "received" and not self.transport.is_closing():
                self._arm_idle()

        # ------------------------------------------------------------------- parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._requests += 1
            self._phase = "headers"
            if self._requests > 1:  # a new request on a kept-alive connection
                self._arm_deadline(limits.header_seconds, "header_timeout")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase = "body"
            self._arm_deadline(limits.request_seconds, "request_timeout")
            cycle = self.cycle
            if cycle is not None and cycle.scope is self.scope:
                cycle.transport = OneWriteTransport(self.transport)  # type: ignore[assignment]
                if waiting:
                    cycle.keep_alive = False  # give the place to a waiting connection

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = "received"
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._waiting:  # closed while waiting (its header deadline, or the client left)
                self._waiting = False
                waiting.remove(self)
            if self in served:
                served.discard(self)
                admit_waiting()
            super().connection_lost(exc)

        # ------------------------------------------------------------------------ timers
        def _arm_deadline(self, seconds: float, reason: str) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(seconds, self._expire, reason)

        def _arm_idle(self) -> None:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = self.loop.call_later(limits.idle_seconds, self._expire, "idle_timeout")

        def _disarm(self) -> None:
            for timer in (self._deadline, self._idle):
                if timer is not None:
                    timer.cancel()
            self._deadline = self._idle = None

        def _expire(self, reason: str) -> None:
            if self._phase == "received" or self.transport.is_closing():
                return
            # Before the headers are complete nothing has been answered: say why. Mid-body the app
            # is reading the request; closing makes its read end as a client disconnect.
            answered = self.cycle is None or self.cycle.response_complete
            self._cut(reason, _TIMEOUT_RESPONSE if self._phase == "headers" and answered else b"")

        def _cut(self, reason: str, response: bytes) -> None:
            self._disarm()
            self._phase = "received"
            if on_cut is not None:
                on_cut(reason)
            if response:
                self.transport.write(response)
            self.transport.close()

    GuardedProtocol.served, GuardedProtocol.waiting = served, waiting
    return GuardedProtocol
