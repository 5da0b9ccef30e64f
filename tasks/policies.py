"""Who may do what to a task, when it is more than a status check.

``cancellation_rule`` is the one place that says who may cancel a task, in
which state, and what happens to the customer's money. The payments issue
attaches refunds to its ``refund`` answer (``tasks.payment_hooks.on_cancelled``);
pages and the API use it to show or hide the cancel button and to warn about
the refund before the user confirms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Task

S = Task.Status

Refund = Literal["full", "partial", "none"]

# A customer who cancels a booked job at least this long before it is due gets
# everything back; later than that the contractor has kept the slot free and
# the payments issue decides the partial amount.
FULL_REFUND_NOTICE = dt.timedelta(hours=24)
MIN_REASON_CHARS = 5
MAX_REASON_CHARS = 500
CANCELLABLE = frozenset({S.DRAFT, S.OPEN, S.ASSIGNED, S.IN_PROGRESS})


@dataclass(frozen=True)
class CancelRule:
    allowed: bool
    refund: Refund
    reason_required: bool
    message: str


def _refused(message: str) -> CancelRule:
    return CancelRule(allowed=False, refund="none", reason_required=False, message=message)


def cancellation_rule(task: Task, user, *, now: dt.datetime | None = None) -> CancelRule:
    """May ``user`` cancel ``task`` now, and what does the customer get back?

    - Customer: a draft or open task freely (nothing has been paid: refund
      "none"); an assigned task with a full refund more than 24 hours before it
      is scheduled, partial after that; a task in progress, partial.
    - Assigned contractor: an assigned or in-progress task; the customer gets
      everything back.
    - Staff: any cancellable task; a booked one is refunded in full.
    A reason (at least 5 characters) is required for everything but a draft.
    """
    now = now or timezone.now()
    if user is None or not getattr(user, "is_authenticated", False):
        return _refused(_("Log in to cancel a task."))
    is_customer = task.customer_id == user.pk
    is_contractor = task.contractor_id is not None and task.contractor_id == user.pk
    is_staff = bool(user.is_staff)
    if not (is_customer or is_contractor or is_staff):
        return _refused(_("Only the customer or the assigned contractor can cancel this task."))
    if task.status not in CANCELLABLE:
        return _refused(
            _("This task is %(status)s, so it can't be cancelled now.")
            % {"status": task.get_status_display().lower()}
        )
    reason_required = task.status != S.DRAFT
    booked = task.status in (S.ASSIGNED, S.IN_PROGRESS)

    if is_staff and not is_customer and not is_contractor:
        refund: Refund = "full" if booked else "none"
        message = _("The customer gets a full refund.") if booked else _("Nothing has been paid for this task yet.")
        return CancelRule(True, refund, reason_required, message)

    if is_contractor:
        return CancelRule(
            True,
            "full",
            reason_required,
            _("The customer gets a full refund, and the task is no longer assigned to you."),
        )

    # The customer.
    if not booked:
        return CancelRule(True, "none", reason_required, _("Nothing has been paid for this task yet."))
    if task.status == S.ASSIGNED:
        scheduled = task.scheduled_for
        if scheduled is not None and scheduled - now > FULL_REFUND_NOTICE:
            return CancelRule(True, "full", True, _("You get a full refund: the job is more than 24 hours away."))
        return CancelRule(
            True,
            "partial",
            True,
            _("You get a partial refund: the job is less than 24 hours away and the contractor kept the time free."),
        )
    return CancelRule(
        True, "partial", True, _("You get a partial refund: the contractor has already started the work.")
    )
