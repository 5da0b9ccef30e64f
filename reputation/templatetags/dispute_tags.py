"""The dispute panel on the task page (one include line in tasks/detail.html)."""

from __future__ import annotations

from django import template

from reputation import disputes
from reputation import disputes_selectors as selectors
from tasks.models import Task

register = template.Library()


@register.inclusion_tag("reputation/disputes/task_panel_body.html", takes_context=True)
def dispute_task_panel(context) -> dict:
    """The task's dispute for its parties (and permitted staff), or the way to
    open one while the task may be disputed."""
    task = context.get("task")
    user = context.get("user")
    if task is None or user is None or not user.is_authenticated:
        return {"show": False}
    dispute = selectors.latest_dispute_for_task(task, user)
    is_party = task.contractor_id is not None and user.pk in (task.customer_id, task.contractor_id)
    can_open = False
    if is_party and (dispute is None or not dispute.is_open):
        can_open = task.status == Task.Status.SUBMITTED or (
            task.status == Task.Status.COMPLETED and disputes.dispute_window_open(task)
        )
    return {"show": bool(dispute or can_open), "task": task, "dispute": dispute, "can_open": can_open}


@register.filter
def cents(value, currency: str = "USD") -> str:
    return disputes.money(value, currency or "USD")
