"""WebSocket routes, gathered from the apps that have consumers."""

from __future__ import annotations

websocket_urlpatterns: list = []
