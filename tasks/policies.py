"""Who may do what to a task, when it is more than a status check.

``cancellation_rule`` is the one place that says who may cancel a task, in
which state, and what happens to the customer's money. ``tasks.payment_hooks
.on_cancelled`` moves the money as its answer says (``refund`` and
``contractor_cents``); pages and the API use it to show or hide the cancel
button and to warn about the refund before the user confirms.

The policy (issue 4): cancelling before the contractor checks in refunds the
customer in full; a customer who cancels after check-in pays the contractor a
call-out fee (``PAYMENTS_CALLOUT_FEE_CENTS``, at most the price) and gets the
rest back; a contractor (or staff) cancelling refunds the customer in full.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Task

S = Task.Status

Refund = Literal["full", "partial", "none"]

MIN_REASON_CHARS = 5
MAX_REASON_CHARS = 500
CANCELLABLE = frozenset({S.DRAFT, S.OPEN, S.ASSIGNED, S.IN_PROGRESS})


@dataclass(frozen=True)
class CancelRule:
    allowed: bool
    refund: Refund
    reason_required: bool
    message: str
    # With refund "partial": the cents (gross) the contractor keeps; the rest is refunded.
    contractor_cents: int = 0


def _refused(message: str) -> CancelRule:
    return CancelRule(allowed=False, refund="none", reason_required=False, message=message)


def cancellation_rule(task: Task, user, *, now: dt.datetime | None = None) -> CancelRule:
    """May ``user`` cancel ``task`` now, and what does the customer get back?

    - Customer: a draft or open task freely (nothing has been paid: refund
      "none"); an assigned task (not checked in yet) with a full refund; a
      task in progress (checked in): partial, the contractor keeps the
      call-out fee (``contractor_cents``).
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
        return CancelRule(
            True, "full", True, _("You get a full refund: the contractor has not checked in yet.")
        )
    fee = callout_fee_cents(task)
    if fee <= 0:
        return CancelRule(True, "full", True, _("You get a full refund."))
    return CancelRule(
        True,
        "partial",
        True,
        _("The contractor has checked in, so they keep a call-out fee of %(fee)s; you get the rest back.")
        % {"fee": _money(fee, task.currency)},
        contractor_cents=fee,
    )


def callout_fee_cents(task: Task) -> int:
    """The call-out fee for a customer cancelling after check-in: the setting,
    at most the agreed price."""
    price = task.agreed_price_cents or 0
    return max(0, min(int(settings.PAYMENTS_CALLOUT_FEE_CENTS), price))


def _money(cents: int, currency: str) -> str:
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}"
