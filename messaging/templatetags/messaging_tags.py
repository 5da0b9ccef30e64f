"""Messaging pieces other pages include: the chat panel on a task page and the
"Messages" nav link with its unread count. Tags, so the task views need no
change: ``{% include "messaging/task_panel.html" %}`` with ``task`` and
``user`` in the context is enough."""

from __future__ import annotations

from django import template

from tasks import selectors as task_selectors
from tasks.models import Task

from .. import selectors

register = template.Library()


@register.inclusion_tag("messaging/includes/task_panel_body.html", takes_context=True)
def messaging_task_panel(context) -> dict:
    """The conversations on this task the viewer may open, and a button for
    each one they may start (the service still decides)."""
    task = context.get("task")
    user = context.get("user")
    empty = {"show": False}
    if task is None or user is None or not user.is_authenticated or task.status == Task.Status.DRAFT:
        return empty
    conversations = list(selectors.conversations_for_task(task, user))
    rows = [
        {"conversation": c, "other": c.other_party(user) if c.is_participant(user) else c.contractor}
        for c in conversations
    ]
    talking_to = {c.contractor_id for c in conversations}
    can_start: list[dict] = []
    if user.pk == task.customer_id:
        people = {}
        if task.contractor_id and task.contractor_id not in talking_to:
            people[task.contractor_id] = task.contractor
        for offer in task_selectors.offers_for(task, user).select_related("contractor").order_by("created_at"):
            if offer.contractor_id not in talking_to:
                people.setdefault(offer.contractor_id, offer.contractor)
        can_start = [{"user": person, "is_customer_target": False} for person in people.values()]
    elif getattr(user, "is_contractor", False) and user.pk not in talking_to:
        assigned = task.contractor_id == user.pk
        has_offer = task_selectors.offers_for(task, user).filter(contractor=user).exists()
        if task.status == Task.Status.OPEN or assigned or has_offer:
            can_start = [{"user": task.customer, "is_customer_target": True}]
    return {
        "show": bool(rows or can_start),
        "task": task,
        "user": user,
        "rows": rows,
        "can_start": can_start,
    }


@register.inclusion_tag("messaging/includes/nav_link.html", takes_context=True)
def messaging_nav_link(context) -> dict:
    user = context.get("user")
    unread = selectors.unread_total(user) if user is not None and user.is_authenticated else 0
    return {"unread": unread, "user": user}
