"""The sync side's only door to the channel layer.

Services call ``group_send_on_commit`` inside their transaction: the event goes
out after the rows it describes are committed (a reader that reacts to it finds
them), and never if the transaction rolls back. The channel layer is a doorbell,
not a store: if Redis is down the event is logged and dropped, and the client
catches up from the database when it reconnects.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_send(group: str, event: dict[str, Any]) -> bool:
    """Send ``event`` to ``group`` now; False (logged) when the layer is unreachable."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # noqa: BLE001 - Redis down, timeouts, serializer: never fail the caller
        logger.warning("channel layer: could not send %s to %s", event.get("type"), group, exc_info=True)
        return False
    return True


def group_send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to ``group`` once the current transaction commits."""
    transaction.on_commit(lambda: group_send(group, event), robust=True)
