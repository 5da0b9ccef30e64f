"""The per-user notification socket (/ws/notifications/).

A thin transport: it authenticates from the session, joins the user's group
``user.<public_id>`` and forwards what ``messaging.notifications`` pushes after
commit. On connect it sends the unread count, so a client that was away (or
missed a push while Redis was down) is right again at once. It accepts no
commands: marking read goes over HTTP through the service.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .consumers import DispatchOnTheLoop
from .notifications import unread_count, user_group

logger = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401


class NotificationConsumer(DispatchOnTheLoop, AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            # Accepted first so the browser sees 4401 (a refused handshake
            # shows only as 1006) and the page stops reconnecting.
            await self.accept()
            await self.close(code=CLOSE_NOT_LOGGED_IN)
            return
        self.group = user_group(user)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "unread", "unread": await database_sync_to_async(unread_count)(user)})

    async def disconnect(self, code: int) -> None:
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:  # noqa: BLE001 - Redis gone: nothing left to leave
                logger.warning("Could not leave %s", self.group, exc_info=True)

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "error", "code": "read_only", "message": "This socket only sends."})

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        # Anything the client sends is answered the same way, parsed or not.
        await self.receive_json(None)

    # Events from the user's group (sent by messaging.notifications after commit).
    async def notification(self, event: dict) -> None:
        await self.send_json({"type": "notification", "notification": event["notification"], "unread": event["unread"]})

    async def unread(self, event: dict) -> None:
        await self.send_json({"type": "unread", "unread": event["unread"]})
