"""WebSocket routes, gathered from the apps that have consumers."""

from __future__ import annotations

from messaging.routing import websocket_urlpatterns as messaging_routes

websocket_urlpatterns: list = [*messaging_routes]
