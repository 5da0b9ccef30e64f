"""core/channel_layer.py: the Pub/Sub layer with pipelined publishes, on the
real Redis of REDIS_URL (no database)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from core.channel_layer import PipelinedPubSubChannelLayer


def _layer(url: str | None = None) -> PipelinedPubSubChannelLayer:
    return PipelinedPubSubChannelLayer(
        hosts=[url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")], prefix=f"bt-layer-{uuid.uuid4().hex[:8]}"
    )


async def _receive_all(layer, channel: str, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), timeout=10) for _ in range(count)]


async def test_a_burst_of_group_sends_arrives_complete_and_in_order():
    layer = _layer()
    try:
        first = await layer.new_channel()
        second = await layer.new_channel()
        await layer.group_add("conv.a", first)
        await layer.group_add("conv.a", second)
        await asyncio.sleep(0.2)  # the subscription reaches Redis

        # 300 sends at once, as many sockets' messages in one loop turn: they go
        # out in a few pipelines, and each sender learns its message went out.
        results = await asyncio.gather(
            *(layer.group_send("conv.a", {"type": "chat.message", "n": n}) for n in range(300))
        )

        assert results == [None] * 300
        shard = layer._get_layer()._shards[0]
        assert shard.round_trips < 300 / 10  # batched, not one round trip each
        assert [m["n"] for m in await _receive_all(layer, first, 300)] == list(range(300))
        assert [m["n"] for m in await _receive_all(layer, second, 300)] == list(range(300))
    finally:
        await layer.flush()


async def test_send_to_one_channel_and_groups_stay_separate():
    layer = _layer()
    try:
        mine = await layer.new_channel()
        other = await layer.new_channel()
        await layer.group_add("conv.mine", mine)
        await layer.group_add("conv.other", other)
        await asyncio.sleep(0.2)

        await layer.send(mine, {"type": "direct"})
        await layer.group_send("conv.other", {"type": "theirs"})

        assert (await asyncio.wait_for(layer.receive(mine), timeout=10))["type"] == "direct"
        assert (await asyncio.wait_for(layer.receive(other), timeout=10))["type"] == "theirs"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(mine), timeout=0.5)
    finally:
        await layer.flush()


async def test_redis_unreachable_fails_every_waiting_send():
    layer = _layer("redis://127.0.0.1:1/0")
    try:
        outcomes = await asyncio.gather(
            *(layer.group_send("conv.x", {"type": "chat.message"}) for _ in range(3)), return_exceptions=True
        )
        assert len(outcomes) == 3
        assert all(isinstance(outcome, Exception) for outcome in outcomes)
        # A later send tries again (and fails again) instead of hanging.
        with pytest.raises(Exception):  # noqa: B017, PT011 - redis's ConnectionError
            await asyncio.wait_for(layer.group_send("conv.x", {"type": "chat.message"}), timeout=10)
    finally:
        await layer.flush()
