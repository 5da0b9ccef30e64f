"""WebSocket routes of the messaging app (gathered in marketplace/routing.py)."""

from __future__ import annotations

from django.urls import path

from . import consumers, consumers_notifications

websocket_urlpatterns = [
    path("ws/conversations/<uuid:public_id>/", consumers.ConversationConsumer.as_asgi()),
    path("ws/notifications/", consumers_notifications.NotificationConsumer.as_asgi()),
]
