"""channels-redis's Pub/Sub layer with publishes pipelined.

``channels_redis.pubsub.RedisPubSubChannelLayer`` (4.3) sends each PUBLISH on
its own and waits for Redis's reply behind one lock per process (shared with
subscribe and unsubscribe): a process publishes at most one message per Redis
round trip. On a busy machine a round trip is not 0.5 ms but several ms
(waiting to be scheduled), so a chat server's publishes (two per message: the
conversation's ``chat.message`` and the recipient's notification push) queued
behind that lock: bench/bench_chat.py saw the server deliver ~94 messages/s
at 3.5 ms of CPU per message while the Redis floor's p95 was 25 ms.

Here every publish goes into a queue and one task per event loop sends
whatever has queued, in order, as one pipeline (one round trip for the
batch), then resolves each caller. Order is kept (one sender, FIFO), each
``group_send``/``send`` still returns only after Redis accepted its message,
and a failure (Redis down) is raised to every caller of that batch, as before.
Everything else (subscriptions, the receiving task, groups) is the upstream
layer's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close


class PipelinedShardConnection(RedisSingleShardConnection):
    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._outbox: list[tuple[str, bytes, asyncio.Future]] = []
        self._sender: asyncio.Task | None = None
        self.round_trips = 0  # pipelines sent (for tests and curiosity)

    async def publish(self, channel: str, message: bytes) -> None:
        future = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, message, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_outbox())
        await future

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                self._ensure_redis()
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, message, _future in batch:
                        pipe.publish(channel, message)
                    self.round_trips += 1
                    await pipe.execute()
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for _channel, _message, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for _channel, _message, future in self._outbox:
                        future.cancel()
                    self._outbox = []
                    raise
                continue
            for _channel, _message, future in batch:
                if not future.done():
                    future.set_result(None)

    async def flush(self) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await self._sender
        self._sender = None
        await super().flush()


class PipelinedPubSubLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [PipelinedShardConnection(shard.host, self) for shard in self._shards]


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    """Drop-in for ``channels_redis.pubsub.RedisPubSubChannelLayer`` (same CONFIG)."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            layer = self._layers[loop]
        except KeyError:
            layer = PipelinedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
