"""The per-user socket registry (messaging.consumers.SocketRegistry) on the
real Redis of REDIS_URL: a mass disconnect removes every socket."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

from messaging.consumers import SocketRegistry


async def test_thousands_of_sockets_closing_at_once_are_all_removed():
    registry = SocketRegistry()
    registry.POOL_SIZE = 2  # far fewer connections than sockets closing
    registry.prefix = f"bt-registry-{uuid.uuid4().hex[:8]}"
    users = [SimpleNamespace(public_id=uuid.uuid4()) for _ in range(100)]
    members = [(user, f"specific.{user.public_id}.{n}") for user in users for n in range(20)]
    for user, member in members:
        assert await registry.register(user, member, limit=20)
    client = registry._client()
    assert sum([await client.zcard(registry.key(user)) for user in users]) == 2000

    await asyncio.wait_for(asyncio.gather(*(registry.unregister(user, member) for user, member in members)), timeout=30)

    assert sum([await client.zcard(registry.key(user)) for user in users]) == 0
    assert registry.removal_round_trips < 2000 / 100  # batched, not one Redis call per socket
    # Everyone may open their 20 sockets again at once.
    assert await registry.register(users[0], "specific.again", limit=1)
