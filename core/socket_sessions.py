"""Channels' session middleware without its per-frame cost on sockets.

``channels.sessions.SessionMiddleware`` wraps ``send``: before EVERY message
sent it reads the session's ``modified`` and ``is_empty()`` through lazy
proxies, although only ``http.response.start`` can save the session or carry
its cookie. A chat socket sends three frames per message (the ack and both
sides' copies): py-spy on bench/bench_chat.py put that wrapper at ~3 % of the
server's CPU. Here every other message type goes straight to the server's
``send``; ``http.response.start`` still goes through Channels' code.
"""

from __future__ import annotations

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware


class _SessionWrapper(InstanceSessionWrapper):
    async def send(self, message):
        if message["type"] in self.save_message_types:
            return await super().send(message)
        return await self.real_send(message)


class LeanSessionMiddleware(SessionMiddleware):
    async def __call__(self, scope, receive, send):
        wrapper = _SessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


def AuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' own
    """``channels.auth.AuthMiddlewareStack`` with LeanSessionMiddleware."""
    return CookieMiddleware(LeanSessionMiddleware(AuthMiddleware(inner)))
