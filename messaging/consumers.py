"""The conversation socket: ``/ws/conversations/<public_id>/``.

A thin transport. It authenticates from the session (``scope["user"]``, filled
by ``AuthMiddlewareStack`` behind ``AllowedHostsOriginValidator``), checks
access with the selector the pages use, joins group ``conv.<public_id>``, calls
the services through ``database_sync_to_async`` (a text message's save from the
event loop itself: ``services.message_send_from_loop``) and forwards the events
they emit after commit. It never writes a model itself.

Frames (JSON text), client -> server::

    {"type": "send", "client_id": "<uuid>", "body": "..."}
    {"type": "typing"}
    {"type": "read", "seq": N}
    {"type": "resume", "after_seq": N}

server -> client: ``message``, ``ack``, ``typing``, ``read``, ``error`` (see
docs in MESSAGING_CONTRACT). Close codes: 4401 not logged in, 4403 not a
participant or no such conversation (one code: don't leak which), 4429 too
many sockets for this user, 1009 frame over 64 KB, 1011 channel layer down.
The socket is accepted before a refusal is sent so the browser sees the code
(a refused handshake only shows as HTTP 403).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import connections
from django.utils.translation import gettext as _

from core.errors import ApplicationError

from . import selectors, services

logger = logging.getLogger(__name__)


_executor: ThreadPoolExecutor | None = None


def _db_executor() -> ThreadPoolExecutor:
    """The sockets' database threads (settings.SOCKET_DB_THREADS), one pool
    per process. Each call waits on PostgreSQL round trips far more than it
    computes, so more threads than cores keep more sends in flight; the
    database pool (DATABASE_POOL_MAX) must be larger, or threads queue for a
    connection. The event loop's default executor (min(32, cores + 4) = 6
    threads here) capped chat at ~6 sends in flight."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.SOCKET_DB_THREADS, thread_name_prefix="socket-db")
    return _executor


def db(fn):
    """Run ``fn`` in a thread of a pool, with its own database connection.

    Channels' default (thread_sensitive=True) runs every socket's database work
    in ONE thread: one socket's commit (a WAL flush) holds up every other
    socket's sends. bench_chat measured that thread as the bottleneck. Each
    call is self-contained (a service in its own transaction), so it may run on
    any thread; the consumer still awaits each call, so one socket's frames
    keep their order. The thread hands its connection back after each call
    (to psycopg's pool, see settings: cheap), so no pool thread sits on one.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return database_sync_to_async(run, thread_sensitive=False, executor=_db_executor())


class DispatchOnTheLoop:
    """Dispatch events without Channels' per-event connection sweep.

    ``AsyncConsumer.dispatch`` runs ``close_old_connections`` through
    ``sync_to_async`` before EVERY event (each frame received, each group
    event): a hop to Channels' one thread-sensitive thread and back, shared by
    every socket of the process. At chat rates that single thread serialised
    three hops per message (the frame, the sender's echo, the peer's copy) and
    each hop fought the event loop for the GIL (bench_chat). It sweeps nothing
    here: these consumers never hold a connection on that thread; every
    database call goes through ``database_sync_to_async`` (``db`` below), which
    closes its thread's connections before and after the call. The disconnect
    handler still sweeps once (Channels' ``websocket_disconnect``).
    """

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


MAX_FRAME_BYTES = 64 * 1024
FRAMES_PER_SECOND = 10
SOCKETS_PER_USER = 20

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011


class SocketRegistry:
    """Counts each user's open sockets across every server process.

    Why Redis and not a dict in the process: the limit is per user, and a user's
    tabs may land on different ASGI workers. Each socket is a member of a sorted
    set per user, scored with its expiry time. One task per process refreshes
    all of that process's members every ``HEARTBEAT`` seconds in one pipeline,
    so a member outlives its socket by at most ``TTL`` when a server dies
    without running ``disconnect`` (kill -9, OOM): the user is not locked out
    for longer than that. Members are added before counting, so two tabs opening
    at once can't both squeeze under the limit (the worse case is refusing one
    socket too many, never admitting one). Without REDIS_URL (``make run``,
    one process) a dict does the same.

    The Redis client uses a *blocking* pool: a reconnect storm (every socket of
    a restarted server at once) waits up to 5 s for a connection instead of
    failing the handshake with "Too many connections".
    """

    TTL = 180
    HEARTBEAT = 60
    POOL_SIZE = 50

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._local: dict[str, str] = {}  # member -> key, this process's sockets
        self._heartbeats: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._removals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> waiting removals
        self.removal_round_trips = 0
        self._memory: dict[str, set[str]] = collections.defaultdict(set)
        self.prefix = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {}).get("prefix", "bt")

    @property
    def uses_redis(self) -> bool:
        return bool(getattr(settings, "REDIS_URL", ""))

    def _client(self):
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=self.POOL_SIZE, timeout=5
            )
            client = aioredis.Redis(connection_pool=pool)
            self._clients[loop] = client
            self._heartbeats[loop] = asyncio.ensure_future(self._heartbeat(client))
        return client

    def key(self, user: Any) -> str:
        return f"{self.prefix}:ws:{user.public_id}"

    async def register(self, user: Any, member: str, *, limit: int = SOCKETS_PER_USER) -> bool:
        key = self.key(user)
        if not self.uses_redis:
            self._memory[key].add(member)
            if len(self._memory[key]) > limit:
                self._memory[key].discard(member)
                return False
            return True
        now = time.time()
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {member: now + self.TTL})
            pipe.zcard(key)
            pipe.expire(key, self.TTL)
            _removed, _added, count, _ttl = await pipe.execute()
        if count > limit:
            await self._client().zrem(key, member)
            return False
        self._local[member] = key
        return True

    async def unregister(self, user: Any, member: str) -> None:
        """Remove a closed socket. Removals waiting at the same moment go to
        Redis as one pipeline: when thousands of sockets close at once (a
        deploy, a network blip), one ZREM each waited for a connection of the
        pool and most timed out (bench/bench_chat.py: 3,301 of 10,000 at the
        end of a run), leaving entries that still counted for 180 s."""
        key = self.key(user)
        self._local.pop(member, None)
        if not self.uses_redis:
            self._memory[key].discard(member)
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending = self._removals.setdefault(loop, [])
        pending.append((key, member, future))
        if len(pending) == 1:
            loop.create_task(self._send_removals(loop))
        await future

    async def _send_removals(self, loop) -> None:
        await asyncio.sleep(0)  # let the other sockets closing in this loop turn queue theirs
        batch = self._removals.pop(loop, [])
        if not batch:
            return
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for key, member, _future in batch:
                    pipe.zrem(key, member)
                self.removal_round_trips += 1
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - every waiting socket hears of it
            for _key, _member, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _key, _member, future in batch:
            if not future.done():
                future.set_result(None)

    async def _heartbeat(self, client) -> None:
        while True:
            await asyncio.sleep(self.HEARTBEAT)
            if not self._local:
                continue
            try:
                expires = time.time() + self.TTL
                async with client.pipeline(transaction=False) as pipe:
                    for member, key in list(self._local.items()):
                        pipe.zadd(key, {member: expires}, xx=True)
                        pipe.expire(key, self.TTL)
                    await pipe.execute()
            except Exception:  # noqa: BLE001 - Redis blips must not kill the heartbeat
                logger.warning("socket registry heartbeat failed", exc_info=True)


sockets = SocketRegistry()


class FrameRateLimiter:
    """At most ``rate`` frames in any one-second window (refused frames don't count)."""

    def __init__(self, rate: int = FRAMES_PER_SECOND, window: float = 1.0) -> None:
        self.rate = rate
        self.window = window
        self._recent: collections.deque[float] = collections.deque(maxlen=rate)

    def allow(self) -> bool:
        now = time.monotonic()
        if len(self._recent) == self.rate and now - self._recent[0] < self.window:
            return False
        self._recent.append(now)
        return True


def _int_field(content: dict, name: str) -> int | None:
    value = content.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class ConversationConsumer(DispatchOnTheLoop, AsyncJsonWebsocketConsumer):
    conversation = None
    registered = False
    closing = False
    # Highest seq this socket holds through resume (what the client had plus the
    # catch-up). A broadcast at or below it is a message the catch-up already
    # carried: the layer may still hand one over that was published just
    # before this socket joined the group. Only resume moves it: live
    # broadcasts may arrive out of order (two senders' commits) and must not
    # hide each other.
    resumed_upto = 0

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.limiter = FrameRateLimiter()
        if self.user is None or not self.user.is_authenticated:
            await self._refuse(CLOSE_NOT_LOGGED_IN)
            return
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        try:
            self.conversation = await db(selectors.conversation_get_for_user)(public_id, self.user)
        except ApplicationError:
            await self._refuse(CLOSE_FORBIDDEN)
            return
        self.group = services.conversation_group(self.conversation)
        try:
            self.registered = await sockets.register(self.user, self.channel_name)
            if not self.registered:
                await self._refuse(CLOSE_TOO_MANY_SOCKETS)
                return
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception:  # noqa: BLE001 - Redis down: tell the page to fall back to HTTP
            logger.warning("conversation socket: channel layer unavailable", exc_info=True)
            await self._refuse(CLOSE_SERVER_ERROR)
            return
        await self.accept()

    async def _refuse(self, code: int) -> None:
        self.conversation = None
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.conversation is not None:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # noqa: BLE001
                logger.warning("conversation socket: group_discard failed", exc_info=True)
        if self.registered:
            self.registered = False
            try:
                await sockets.unregister(self.user, self.channel_name)
            except Exception:  # noqa: BLE001
                logger.warning("conversation socket: unregister failed", exc_info=True)

    # --- Client frames ---------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.conversation is None or self.closing:
            return
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        if size > MAX_FRAME_BYTES or (
            text_data is not None and size > MAX_FRAME_BYTES // 4 and len(text_data.encode()) > MAX_FRAME_BYTES
        ):
            self.closing = True
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self.limiter.allow():
            await self._error("rate_limited", _("Too many messages at once; slow down."))
            return
        if bytes_data is not None:
            await self._error("malformed", _("Send JSON text frames."))
            return
        try:
            content = json.loads(text_data or "")
        except ValueError:
            await self._error("malformed", _("That frame is not valid JSON."))
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self._error("malformed", _("A frame is a JSON object with a type."))
            return
        handler = {
            "send": self._on_send,
            "typing": self._on_typing,
            "read": self._on_read,
            "resume": self._on_resume,
        }.get(content["type"])
        if handler is None:
            await self._error("unknown_type", _("Unknown frame type."))
            return
        await handler(content)

    async def _on_send(self, content: dict) -> None:
        client_id, body = content.get("client_id"), content.get("body")
        if not isinstance(client_id, str) or not isinstance(body, str):
            await self._error("invalid", _("A message needs a client_id and a body."), client_id=client_id)
            return
        try:
            # From the loop (one statement, no thread); a resend, or SQLite, in a thread.
            sent = await services.message_send_from_loop(
                self.conversation, by=self.user, body=body, client_id=client_id
            )
            message, _created = sent if sent is not None else await db(self._send_message)(client_id, body)
        except ApplicationError as error:
            await self._error(error.code, str(error.message), client_id=client_id, fields=error.fields)
            return
        await self.send_json({"type": "ack", "client_id": str(message.client_id), "seq": message.seq})

    def _send_message(self, client_id: str, body: str):
        return services.message_send(self.conversation, by=self.user, body=body, client_id=client_id)

    async def _on_typing(self, content: dict) -> None:
        if not self.conversation.is_participant(self.user):
            return
        # Ephemeral: nothing to save, so the consumer rings the group itself.
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "chat.typing",
                "user": str(self.user.public_id),
                "name": self.user.public_name,
                "channel": self.channel_name,
            },
        )

    async def _on_read(self, content: dict) -> None:
        seq = _int_field(content, "seq")
        if seq is None:
            await self._error("invalid", _("A read frame needs the seq of the last message read."))
            return
        try:
            await db(services.message_mark_read)(self.conversation, by=self.user, up_to_seq=seq)
        except ApplicationError as error:
            await self._error(error.code, str(error.message))

    async def _on_resume(self, content: dict) -> None:
        after_seq = _int_field(content, "after_seq")
        if after_seq is None:
            await self._error("invalid", _("A resume frame needs after_seq, the last seq you have (0 for none)."))
            return
        self.resumed_upto = max(self.resumed_upto, after_seq)
        while True:
            page = await db(self._payloads_after)(after_seq)
            for payload in page:
                await self.send_json({"type": "message", "message": payload})
            if page:
                self.resumed_upto = max(self.resumed_upto, page[-1]["seq"])
            if len(page) < selectors.MAX_PAGE:
                return
            after_seq = page[-1]["seq"]

    def _payloads_after(self, after_seq: int) -> list[dict]:
        return [services.message_payload(m) for m in selectors.messages_after(self.conversation, after_seq=after_seq)]

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        frame = {"type": "error", "code": code, "message": message}
        frame.update({key: value for key, value in extra.items() if value})
        await self.send_json(frame)

    # --- Events from the channel layer -------------------------------------------

    async def chat_message(self, event: dict) -> None:
        if event["message"]["seq"] <= self.resumed_upto:
            return
        await self.send_json({"type": "message", "message": event["message"]})

    async def chat_read(self, event: dict) -> None:
        await self.send_json({"type": "read", "user": event["user"], "seq": event["seq"]})

    async def chat_typing(self, event: dict) -> None:
        if event.get("channel") != self.channel_name:
            await self.send_json({"type": "typing", "user": event["user"], "name": event["name"]})
