"""The header's notification bell, with the unread count rendered on the server
(the socket keeps it live after that)."""

from __future__ import annotations

from django import template

from messaging.notifications import unread_count

register = template.Library()


@register.inclusion_tag("messaging/notifications/bell.html", takes_context=True)
def notification_bell(context) -> dict:
    user = getattr(context.get("request"), "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {"show": True, "unread": unread_count(user)}
