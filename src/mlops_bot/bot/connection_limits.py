"""Limits on the webhook server's connections, so slow or idle clients cannot hold it.

uvicorn has a keep-alive timeout but no limit on how long a client may take to send its headers or
body, and `limit_concurrency` only answers 503 once headers have arrived. `guarded_protocol(limits)`
returns uvicorn's h11 protocol with, per connection:

- a cap on open connections (beyond it a new connection is closed at once);
- a header deadline: the request line and headers complete within `header_seconds` of the first
  byte (or of the connection, for the first request), else 408 and close;
- a request deadline: the whole body within `request_seconds` of the headers (a client trickling
  one byte every two seconds is cut off), and an idle limit: no byte for `idle_seconds` while a
  request is incomplete (a body shorter than its Content-Length) closes the connection.

A reverse proxy (nginx, a cloud load balancer) in front of the bot is still recommended; these
limits keep the bot safe when it is reached directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_RESPONSE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 100
    header_seconds: float = 10.0
    request_seconds: float = 30.0
    idle_seconds: float = 10.0


def guarded_protocol(limits: ConnectionLimits, on_cut: Callable[[str], None] | None = None
                     ) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with `limits` (pass it as `uvicorn.Config(http=...)`).
    `on_cut(reason)` is called for each connection cut (`busy`, `header_timeout`,
    `request_timeout`, `idle_timeout`), for metrics."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _idle: asyncio.TimerHandle | None = None
        _phase = "headers"  # headers -> body -> answered (-> headers on a reused connection)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._cut("busy", _BUSY_RESPONSE)
                return
            self._arm_deadline(limits.header_seconds, "header_timeout")
            self._arm_idle()

        def data_received(self, data: bytes) -> None:
            if self._phase == "answered" and self.conn.their_state is h11.IDLE:
                self._phase = "headers"  # a new request on a kept-alive connection
                self._arm_deadline(limits.header_seconds, "header_timeout")
            super().data_received(data)
            state = self.conn.their_state
            if self._phase == "headers" and state is h11.SEND_BODY:
                self._phase = "body"
                self._arm_deadline(limits.request_seconds, "request_timeout")
            if state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
                self._phase = "answered"
                self._disarm()
            else:
                self._arm_idle()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        # ---------------------------------------------------------------------------- timers
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
            if self._phase == "answered" or self.transport.is_closing():
                return
            # Before the headers are complete nothing has been answered: say why. Mid-body the app
            # is reading the request; closing makes its read end as a client disconnect.
            waiting = self.cycle is None or self.cycle.response_complete
            self._cut(reason, _TIMEOUT_RESPONSE if self._phase == "headers" and waiting else b"")

        def _cut(self, reason: str, response: bytes) -> None:
            self._disarm()
            self._phase = "answered"
            if on_cut is not None:
                on_cut(reason)
            if response:
                self.transport.write(response)
            self.transport.close()

    return GuardedH11Protocol
