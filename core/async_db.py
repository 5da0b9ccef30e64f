"""One SQL statement straight from the event loop, on psycopg's async connection.

Why: the chat socket's send is one statement (messaging.services,
``_TEXT_MESSAGE_SQL``). Run through ``database_sync_to_async`` it cost more of
the server's CPU than the statement itself: asgiref's hop to a worker thread
and back (context copies, the executor, chained futures), Django's cursor
wrapper and client-side parameter binding, the post-commit sends handed back to
the loop, and the GIL fought for by the thread and the event loop after every
round trip (py-spy on bench/bench_chat.py: ~30 % of the server's CPU; see
docs/PERFORMANCE.md, "Messaging"). Here the loop sends the statement and goes
on with other sockets while PostgreSQL works; nothing changes thread.

Each event loop has its own small set of connections (settings
``SOCKET_DB_ASYNC_CONNECTIONS``, default 4: one statement at a time each; a
caller waits for a free one), opened on first use with the ``default``
database's settings (so tests reach the test database), in autocommit: a
statement commits by itself. Server-side parameter binding, so psycopg prepares
a statement the connection runs often. The connections close when their loop
closes (uvicorn's shutdown, a test's loop).

Only statements that may run twice: a connection that broke (a database
restart while it sat idle) is replaced and the statement sent once more.
"""

from __future__ import annotations

import asyncio
import collections
import types
import weakref
from typing import Any

from django.conf import settings
from django.db import connections


def available() -> bool:
    """Whether the default database is PostgreSQL (psycopg 3)."""
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _connect_params() -> dict[str, Any]:
    # Django's own parameters (name, user, host, sslmode and other OPTIONS),
    # without what belongs to Django's sync connections.
    params = connections["default"].get_connection_params()
    for key in ("cursor_factory", "pool", "context", "server_side_binding", "prepare_threshold"):
        params.pop(key, None)
    return params


class LoopConnections:
    """At most ``size`` autocommit connections for one event loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._params = _connect_params()
        self._idle: list = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self.closed = False

    async def _acquire(self):
        import psycopg

        loop = asyncio.get_running_loop()
        while True:
            if self._idle:
                return self._idle.pop()
            if self._open < self.size:
                self._open += 1
                try:
                    return await psycopg.AsyncConnection.connect(**self._params, autocommit=True)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise

    def _release(self, conn) -> None:
        from psycopg.pq import TransactionStatus

        if not self.closed and not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            self._idle.append(conn)
        else:
            self._open -= 1
            if not conn.closed:
                conn.pgconn.finish()  # broken or mid-transaction: drop it, no round trip
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def fetchone(self, sql: str, params: dict[str, Any]) -> tuple | None:
        """Run ``sql`` (committed on return) and give its first row, or None."""
        import psycopg

        for attempt in (1, 2):
            conn = await self._acquire()
            try:
                cursor = await conn.execute(sql, params)
                return await cursor.fetchone()
            except psycopg.OperationalError:
                if attempt == 2 or not conn.closed:
                    raise
                # The connection had died (server restart): once more on a new one.
            finally:
                self._release(conn)
        return None  # not reached

    def close(self) -> None:
        """Close every idle connection now (no round trip)."""
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            if not conn.closed:
                conn.pgconn.finish()


_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _close_with(loop: asyncio.AbstractEventLoop) -> None:
    original = loop.close

    def close(self, *args: Any, **kwargs: Any) -> None:
        pool = _by_loop.pop(loop, None)
        if pool is not None:
            pool.close()
        self.close = original
        return original(*args, **kwargs)

    loop.close = types.MethodType(close, loop)


def for_this_loop() -> LoopConnections:
    loop = asyncio.get_running_loop()
    pool = _by_loop.get(loop)
    if pool is None:
        pool = _by_loop[loop] = LoopConnections(settings.SOCKET_DB_ASYNC_CONNECTIONS)
        _close_with(loop)
    return pool


async def fetchone(sql: str, params: dict[str, Any]) -> tuple | None:
    """``sql`` with pyformat ``params`` on this loop's connections, committed
    on return; its first row or None. Raises psycopg's errors."""
    return await for_this_loop().fetchone(sql, params)
