"""The notification socket on the real Redis channel layer: the unread count on
connect, live notifications after commit, only my own, and no anonymous."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from messaging import notifications as service
from messaging.consumers_notifications import NotificationConsumer
from messaging.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)

Kind = Notification.Kind


def application():
    """The project's websocket stack: origin check, session auth, the routes."""
    from marketplace.asgi import application as project_app

    return project_app


@pytest.fixture(autouse=True)
def _redis_layer(settings):
    # The project's Redis Pub/Sub layer (REDIS_URL from the environment), fresh per test.
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "core.channel_layer.PipelinedPubSubChannelLayer"
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def connect(headers):
    communicator = WebsocketCommunicator(application(), "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_live_notification_and_unread_count(customer, session_headers):
    await database_sync_to_async(service.notify)(customer, kind=Kind.NEW_MESSAGE, title="Earlier")
    communicator, connected, _ = await connect(await database_sync_to_async(session_headers)(customer))
    assert connected
    try:
        assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "unread": 1}

        notification = await database_sync_to_async(service.notify)(
            customer, kind=Kind.NEW_OFFER, title="Bob offered $85.00", body="Today at 3", url="/tasks/x"
        )
        frame = await communicator.receive_json_from(timeout=5)
        assert frame["type"] == "notification"
        assert frame["unread"] == 2
        assert frame["notification"] == {
            "id": str(notification.public_id),
            "kind": "new_offer",
            "kind_label": "New offer",
            "title": "Bob offered $85.00",
            "body": "Today at 3",
            "url": "/tasks/x",
            "created_at": notification.created_at.isoformat(),
            "read": False,
        }

        await database_sync_to_async(service.notification_mark_read)(customer, "all")
        assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "unread": 0}
    finally:
        await communicator.disconnect()


async def test_someone_elses_notification_does_not_reach_me(customer, outsider, session_headers):
    communicator, connected, _ = await connect(await database_sync_to_async(session_headers)(customer))
    assert connected
    try:
        assert await communicator.receive_json_from(timeout=5) == {"type": "unread", "unread": 0}
        await database_sync_to_async(service.notify)(outsider, kind=Kind.NEW_OFFER, title="Not for Dana")
        assert await communicator.receive_nothing(timeout=0.5)
    finally:
        await communicator.disconnect()


async def test_anonymous_socket_is_refused_4401(db):
    communicator, connected, _ = await connect([(b"origin", b"http://testserver"), (b"host", b"testserver")])
    # Accepted, then closed with 4401 at once, so a browser sees the code;
    # nothing is sent before the close.
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


def test_the_project_routes_the_notification_socket():
    from marketplace.routing import websocket_urlpatterns

    [route] = [p for p in websocket_urlpatterns if str(p.pattern) == "ws/notifications/"]
    assert route.callback.consumer_class is NotificationConsumer


async def test_the_socket_only_listens(customer, session_headers):
    communicator, connected, _ = await connect(await database_sync_to_async(session_headers)(customer))
    assert connected
    try:
        await communicator.receive_json_from(timeout=5)
        await communicator.send_to(text_data='{"type":"read","all":true}')
        assert (await communicator.receive_json_from(timeout=5))["code"] == "read_only"
        assert await database_sync_to_async(Notification.objects.count)() == 0
    finally:
        await communicator.disconnect()


async def test_foreign_origin_is_refused(customer, session_headers):
    headers = await database_sync_to_async(session_headers)(customer, origin="https://evil.example")
    communicator, connected, _ = await connect(headers)
    assert not connected
