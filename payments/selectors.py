"""Reads of payments for pages: a contractor's earnings, a customer's history.

Figures come from payout and escrow rows that the services keep in step with
the ledger (the tests check both agree); each list is one query."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from .models import Escrow, Payout, Refund

if TYPE_CHECKING:
    from accounts.models import User

ES = Escrow.Status
PS = Payout.Status


@dataclass(frozen=True)
class TaskEarning:
    escrow: Escrow
    task_title: str
    task_public_id: str
    amount_cents: int  # the contractor's share (after commission)
    state: str  # in_escrow, pending, available, paid, on_hold
    available_at: dt.datetime | None
    paid_at: dt.datetime | None
    last_error: str


@dataclass
class Earnings:
    currency: str = "USD"
    in_escrow_cents: int = 0  # held, the work not approved yet
    pending_cents: int = 0  # approved; the payout hold is running
    available_cents: int = 0  # the hold is over; transfer due or waiting for payouts to be enabled
    paid_cents: int = 0
    on_hold_cents: int = 0  # frozen by a chargeback
    by_task: list[TaskEarning] = field(default_factory=list)


def _payout_state(payout: Payout, now: dt.datetime) -> str:
    if payout.status == PS.PAID:
        return "paid"
    if payout.status in (PS.AVAILABLE, PS.FAILED) or payout.available_at <= now:
        return "available"
    return "pending"


def contractor_earnings(user: User, *, now: dt.datetime | None = None) -> Earnings:
    """Pending (in the payout hold), available (hold over: transferred at the
    next sweep, or waiting for payouts to be enabled), paid, and money still
    in escrow or frozen, in total and by task, newest first."""
    now = now or timezone.now()
    earnings = Earnings()
    escrows = (
        Escrow.objects.filter(contractor=user, status__in=(ES.HELD, ES.RELEASED, ES.SPLIT, ES.FROZEN, ES.CHARGEBACK))
        .select_related("task", "payout")
        .order_by("-created_at")
    )
    for escrow in escrows:
        payout = getattr(escrow, "payout", None)
        if escrow.status == ES.HELD:
            state, amount = "in_escrow", escrow.price_cents - escrow.commission_cents
        elif payout is None or payout.status == PS.CANCELLED:
            continue
        elif escrow.status == ES.FROZEN and payout.status != PS.PAID:
            state, amount = "on_hold", payout.amount_cents
        else:
            state, amount = _payout_state(payout, now), payout.amount_cents
        if escrow.status == ES.FROZEN and payout is None:
            state = "on_hold"
        setattr(earnings, f"{state}_cents", getattr(earnings, f"{state}_cents") + amount)
        earnings.by_task.append(
            TaskEarning(
                escrow=escrow,
                task_title=escrow.task.title,
                task_public_id=str(escrow.task.public_id),
                amount_cents=amount,
                state=state,
                available_at=payout.available_at if payout else None,
                paid_at=payout.paid_at if payout else None,
                last_error=payout.last_error if payout else "",
            )
        )
    return earnings


def customer_payments(user: User) -> QuerySet[Escrow]:
    """The customer's payments, newest first, with their refunds: every escrow
    money arrived for (held, released, refunded, split, frozen, charged back). Abandoned or
    declined checkouts are left out."""
    return (
        Escrow.objects.filter(customer=user, captured_cents__gt=0)
        .select_related("task", "contractor")
        .prefetch_related(Prefetch("refunds", queryset=Refund.objects.order_by("created_at")))
        .order_by("-created_at")
    )


def escrow_for_user(user: User, public_id) -> Escrow | None:
    """An escrow its customer, its contractor or staff may see; None for anyone else."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        return None
    escrow = Escrow.objects.select_related("task", "customer", "contractor").filter(public_id=public_id).first()
    if escrow is None:
        return None
    if user.is_staff or user.pk in (escrow.customer_id, escrow.contractor_id):
        return escrow
    return None
