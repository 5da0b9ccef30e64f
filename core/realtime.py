"""The sync side's only door to the channel layer.

Services call ``group_send_on_commit`` inside their transaction: the event goes
out after the rows it describes are committed (a reader that reacts to it finds
them), and never if the transaction rolls back. The channel layer is a doorbell,
not a store: if Redis is down the event is logged and dropped, and the client
catches up from the database when it reconnects.

Under the ASGI server, sync code runs in worker threads of a running event loop
(``sync_to_async``: the socket consumers' database calls, Django's sync views).
There the send is handed to that loop and NOT waited for: waiting parked the
worker thread (and its database connection) until the loop got round to the
Redis publish, and then made it fight the loop for the GIL again. bench_chat
measured those waits, two per chat message, as a large part of the send path.
The failure is still logged, from the loop. Outside a server (tests, Celery,
management commands) the send is synchronous, as before, and the return value
tells whether it went out.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop this worker thread was started from, if any."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return None  # called on the loop itself: async code uses the layer directly
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


async def _send_logged(layer: Any, group: str, event: dict[str, Any], what: str) -> None:
    try:
        await layer.group_send(group, event)
    except Exception:  # noqa: BLE001 - Redis down, timeouts, serializer: never fail anyone
        logger.warning(what, event.get("type"), group, exc_info=True)


def send_to_group(group: str, event: dict[str, Any], *, what: str) -> bool:
    """Send ``event`` to ``group``; never raises. ``what`` is the log message
    (``%s`` for the event type, then the group) used when it fails.

    From a worker thread of a running server loop the send is scheduled on that
    loop without waiting (returns True: queued). Otherwise it runs now and
    returns whether it went out.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    loop = _server_loop()
    if loop is not None:
        try:
            asyncio.run_coroutine_threadsafe(_send_logged(layer, group, event, what), loop)
            return True
        except RuntimeError:  # the loop closed between the check and the call: send here
            pass
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # noqa: BLE001 - Redis down, timeouts, serializer: never fail the caller
        logger.warning(what, event.get("type"), group, exc_info=True)
        return False
    return True


_in_flight: set[asyncio.Task] = set()


def send_from_loop(group: str, event: dict[str, Any], *, what: str) -> None:
    """From code running on the event loop (after its write committed): send
    ``event`` to ``group`` without waiting for it, failures logged (``what`` as
    in ``send_to_group``). The publish starts on the loop's next turn, in the
    order of the calls."""
    layer = get_channel_layer()
    if layer is None:
        return
    task = asyncio.get_running_loop().create_task(_send_logged(layer, group, event, what))
    _in_flight.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_in_flight.discard)


def group_send(group: str, event: dict[str, Any]) -> bool:
    """Send ``event`` to ``group``; False (logged) when the layer is unreachable
    (queued, True, from a server's worker thread: see the module docstring)."""
    return send_to_group(group, event, what="channel layer: could not send %s to %s")


def group_send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to ``group`` once the current transaction commits."""
    transaction.on_commit(lambda: group_send(group, event), robust=True)
