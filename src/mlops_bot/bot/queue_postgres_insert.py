"""How deliveries get into the PostgreSQL queue (queue_postgres.py): one multi-row statement for
every delivery waiting at that moment (a group commit: one round trip, one WAL flush), each
delivery answered only after the commit that holds it.

The webhook server inserts on its own event loop (`AsyncInserter`, psycopg's async connections):
a request appends its delivery and awaits a future; up to `in_flight` writer tasks, each on its
own connection, take what waits and insert it. No thread per request: the hop to a thread pool and
back (`asyncio.to_thread`) took ~15 % of the answering process's CPU (py-spy, GIL samples, at 400
deliveries/s), the inserts themselves ~4 %.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger("mlops_bot.bot")

BATCH_MAX = 64  # deliveries in one group-commit insert
# Inserts one process has in flight (each on its own connection) before more deliveries wait to
# share the next insert.
INSERTS_IN_FLIGHT = 8
Row = tuple[str, str, bytes, float, "str | None", str]  # delivery, event, payload, received_at, key, repo


@lru_cache(maxsize=BATCH_MAX)
def insert_statement(rows: int) -> str:
    """The INSERT of `rows` deliveries; a delivery id or key stored before (or earlier in the same
    statement) is skipped, and RETURNING names the deliveries stored."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * rows)
    return ("INSERT INTO mlops_bot_jobs (delivery, event, payload, received_at, key, repo) "  # noqa: S608
            f"VALUES {values} ON CONFLICT DO NOTHING RETURNING delivery")


def parameters(rows: Sequence[Row]) -> list[Any]:
    return [value for row in rows for value in row]


def stored_flags(rows: Sequence[Row], returned: Sequence[Sequence[Any]]) -> list[bool]:
    """Per row, whether the insert stored it (the same delivery id twice in one statement: the
    first one was stored)."""
    new = {str(row[0]) for row in returned}
    flags = []
    for row in rows:
        flags.append(row[0] in new)
        new.discard(row[0])
    return flags


class AsyncInserter:
    """The group commit on the webhook server's event loop. Its connections belong to the loop
    they were opened on; on another loop (a test's second `asyncio.run`) they are opened again."""

    def __init__(self, url: str, in_flight: int = INSERTS_IN_FLIGHT) -> None:
        self.url = url
        self.in_flight = max(1, in_flight)
        self._waiting: list[tuple[Row, asyncio.Future[bool]]] = []
        self._writers: set[asyncio.Task[None]] = set()  # (held: a task nobody references may vanish)
        self._running = 0  # writers that will look at `_waiting` again before they end
        self._idle: list[Any] = []  # open connections no writer uses now
        self._loop: asyncio.AbstractEventLoop | None = None

    async def enqueue(self, row: Row) -> bool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # what the last loop left is gone with it
            self._forget_connections()
            self._loop, self._waiting, self._writers, self._running = loop, [], set(), 0
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((row, answer))
        if self._running < self.in_flight:
            self._running += 1
            writer = loop.create_task(self._write())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        return await answer

    async def _write(self) -> None:
        """Insert what waits, batch after batch, until nothing does (a task of its own, so a
        request that goes away cannot cut a batch other requests wait on). It stops counting as
        running in the same step as it finds nothing waiting (no await between): a request that
        arrives after that starts a writer of its own, never waits for one that is ending."""
        conn = None
        try:
            while self._waiting:
                batch = self._waiting[:BATCH_MAX]
                del self._waiting[:BATCH_MAX]
                try:
                    if conn is None:
                        conn = self._idle.pop() if self._idle else await self._connect()
                    rows = [row for row, _ in batch]
                    cursor = await conn.execute(insert_statement(len(rows)), parameters(rows))
                    flags = stored_flags(rows, await cursor.fetchall())
                except Exception as error:  # every request of the batch gets it (answered as a failure)
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(error)
                    if conn is not None and (conn.closed or conn.broken):
                        conn = None
                    continue
                for (_, answer), stored in zip(batch, flags, strict=True):
                    if not answer.done():
                        answer.set_result(stored)
        finally:
            self._running -= 1
            if conn is not None:
                self._idle.append(conn)

    async def _connect(self) -> Any:
        import psycopg

        try:
            return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            from mlops_bot.errors import MlopsError

            raise MlopsError(f"cannot connect to the queue database (MLOPS_BOT_DATABASE_URL): "
                             f"{str(error).strip().splitlines()[0]}") from None

    def _forget_connections(self) -> None:
        """Close the connections of a loop that is gone (their sockets, without awaiting it)."""
        for conn in self._idle:
            conn.pgconn.finish()
        self._idle.clear()

    def close(self) -> None:
        self._forget_connections()
