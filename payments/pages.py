"""Reads for the payment pages and the task page's money box.

Only reads: every write goes through ``payments.services``. Each function
takes the viewer and returns only what that person may see (the escrow's
customer, its contractor, staff); the views turn ``NotFound`` into a 404.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts.selectors import money_display
from core.errors import NotFound

from . import ledger
from .models import ConnectedAccount, Escrow, LedgerTransaction, Payout, Refund, SavedPaymentMethod

PAID_STATUSES = (
    Escrow.Status.HELD,
    Escrow.Status.RELEASED,
    Escrow.Status.REFUNDED,
    Escrow.Status.SPLIT,
    Escrow.Status.FROZEN,
    Escrow.Status.CHARGEBACK,
)
LIVE_STATUSES = (Escrow.Status.HELD, Escrow.Status.RELEASED, Escrow.Status.SPLIT, Escrow.Status.FROZEN)


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return ""
    return money_display(int(cents), currency)


def money_with_code(cents: int, currency: str = "USD") -> str:
    """Receipts: "$123.45 USD", to the cent, with the currency code."""
    text = money_display(int(cents), currency)
    return text if text.endswith(currency) else f"{text} {currency}"


def _escrows():
    return Escrow.objects.select_related("task", "task__category", "offer", "customer", "contractor")


def escrow_for_customer(escrow_id: uuid.UUID | str, user: Any) -> Escrow:
    """The escrow if ``user`` is the customer paying it; NotFound otherwise."""
    try:
        key = escrow_id if isinstance(escrow_id, uuid.UUID) else uuid.UUID(str(escrow_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(_("No such payment.")) from None
    escrow = _escrows().filter(public_id=key).first()
    if escrow is None or not user.is_authenticated or escrow.customer_id != user.pk:
        raise NotFound(_("No such payment."))
    return escrow


def checkout_state(escrow: Escrow, *, now=None) -> str:
    """What the checkout page shows: "paid" (money captured), "closed" (the
    task or offer moved on), "expired", "failed" (last card declined) or
    "pay"."""
    now = now or timezone.now()
    if escrow.captured_cents > 0 or escrow.status in PAID_STATUSES:
        return "paid"
    task, offer = escrow.task, escrow.offer
    if task.status != task.Status.OPEN or (offer.status != offer.Status.PENDING and not offer.is_instant):
        return "closed"
    if escrow.status == Escrow.Status.EXPIRED or (escrow.checkout_expires_at and escrow.checkout_expires_at <= now):
        return "expired"
    if escrow.status == Escrow.Status.FAILED:
        return "failed"
    return "pay"


def minutes_left(escrow: Escrow) -> int:
    if not escrow.checkout_expires_at:
        return 0
    seconds = (escrow.checkout_expires_at - timezone.now()).total_seconds()
    return max(0, math.ceil(seconds / 60))


@dataclass(frozen=True)
class Line:
    label: str
    cents: int
    currency: str
    strong: bool = False
    note: str = ""

    @property
    def display(self) -> str:
        return money(self.cents, self.currency)


def breakdown(escrow: Escrow) -> list[Line]:
    """The customer's side of the deal: price + service fee = total."""
    from . import fees

    service_fee_bps, _commission_bps = fees.rates_for(escrow.task.category)
    return [
        Line(_("Price agreed with %(name)s") % {"name": escrow.contractor.get_full_name()}, escrow.price_cents, escrow.currency),
        Line(
            _("Service fee"),
            escrow.service_fee_cents,
            escrow.currency,
            note=_("%(rate)s%% of the price, at least %(min)s")
            % {"rate": f"{service_fee_bps / 100:g}", "min": money(fees_min_cents(), escrow.currency)},
        ),
        Line(_("Total charged now"), escrow.total_cents, escrow.currency, strong=True),
    ]


def fees_min_cents() -> int:
    from django.conf import settings

    return int(settings.PAYMENTS_SERVICE_FEE_MIN_CENTS)


def contractor_share(escrow: Escrow) -> int:
    return escrow.price_cents - escrow.commission_cents


# --- the task page's money box --------------------------------------------------

MONEY_EVENT_LABELS = {
    LedgerTransaction.Kind.FUND: _("Paid, held until approval"),
    LedgerTransaction.Kind.RELEASE: _("Released to the pro"),
    LedgerTransaction.Kind.REFUND: _("Refunded to the customer"),
    LedgerTransaction.Kind.SPLIT: _("Split between the customer and the pro"),
    LedgerTransaction.Kind.PAYOUT: _("Paid out to the pro's bank"),
    LedgerTransaction.Kind.PAYOUT_FAILED: _("Payout failed, will be retried"),
    LedgerTransaction.Kind.CHARGEBACK: _("Card payment disputed at the bank"),
    LedgerTransaction.Kind.ADJUSTMENT: _("Adjustment"),
}


def task_money(task: Any, user: Any) -> dict[str, Any] | None:
    """The money box on the task page, for the customer, the booked
    contractor and staff; None for everyone else and before any payment."""
    if not user.is_authenticated:
        return None
    is_customer = user.pk == task.customer_id
    is_contractor = task.contractor_id is not None and user.pk == task.contractor_id
    if not (is_customer or is_contractor or user.is_staff):
        return None
    escrows = list(
        Escrow.objects.filter(task=task)
        .filter(Q(captured_cents__gt=0) | Q(status__in=PAID_STATUSES))
        .select_related("contractor")
        .order_by("-created_at")[:1]
    )
    pending = None
    if is_customer and not escrows and task.status == task.Status.OPEN:
        pending = (
            Escrow.objects.filter(task=task, customer=user, status=Escrow.Status.UNFUNDED, checkout_expires_at__gt=timezone.now())
            .select_related("contractor")
            .order_by("-created_at")
            .first()
        )
    if not escrows:
        return {"pending_checkout": pending} if pending else None
    escrow = escrows[0]
    if is_contractor and escrow.contractor_id != user.pk:
        return None
    payout = Payout.objects.filter(escrow=escrow).first()
    events = []
    for txn in LedgerTransaction.objects.filter(escrow=escrow).prefetch_related("entries__account").order_by("created_at", "id"):
        events.append({"at": txn.created_at, "kind": txn.kind, "label": _event_label(txn),
                       "amount": _movement(txn, escrow), "memo": txn.memo})
    share_cents, gross_cents = contractor_share(escrow), escrow.price_cents
    if escrow.status == Escrow.Status.CHARGEBACK:
        # The bank took the payment back: the pro keeps only what was already paid out.
        paid_out = payout is not None and payout.status == Payout.Status.PAID
        share_cents = payout.amount_cents if paid_out else 0
        gross_cents = escrow.released_cents if paid_out else 0
    elif escrow.status in (Escrow.Status.SPLIT, Escrow.Status.REFUNDED):
        # Settled by a dispute or a cancellation: the pro gets the part of the
        # price released to them, less its commission (their payout), not the
        # full share.
        gross_cents = escrow.released_cents if escrow.status == Escrow.Status.SPLIT else 0
        paid = payout is not None and payout.status != Payout.Status.CANCELLED
        share_cents = payout.amount_cents if paid and gross_cents else 0
    refunds = list(Refund.objects.filter(escrow=escrow).order_by("created_at"))
    return {
        "escrow": escrow,
        "is_customer": is_customer,
        "is_contractor": is_contractor,
        "share_cents": share_cents,
        "gross_cents": gross_cents,
        "fee_cents": gross_cents - share_cents,
        "payout": payout,
        "events": events,
        "refunds": refunds,
        "headline": _headline(escrow, payout, for_contractor=is_contractor and not is_customer),
    }


def _event_label(txn: LedgerTransaction) -> str:
    """Freezing and unfreezing (a dispute, a chargeback) are adjustments in
    the ledger; say what they mean."""
    if txn.kind == LedgerTransaction.Kind.ADJUSTMENT:
        if ledger.UNFREEZE_MARK in txn.idempotency_key:
            return _("Hold lifted")
        if ledger.FREEZE_MARK in txn.idempotency_key:
            return _("Put on hold")
    return MONEY_EVENT_LABELS.get(txn.kind, txn.get_kind_display())


def _movement(txn: LedgerTransaction, escrow: Escrow) -> str:
    """The size of a ledger transaction, as the sum of its positive legs."""
    total = sum(e.amount_cents for e in txn.entries.all() if e.amount_cents > 0)
    return money(total, escrow.currency)


def _headline(escrow: Escrow, payout: Payout | None, *, for_contractor: bool) -> str:
    total = money(escrow.total_cents, escrow.currency)
    share = money(contractor_share(escrow), escrow.currency)
    status = escrow.status
    if for_contractor:
        if status == Escrow.Status.HELD:
            return _("%(share)s to you (after %(fee)s fee): payment held until the customer approves.") % {
                "share": share, "fee": money(escrow.commission_cents, escrow.currency)}
        if payout is not None:
            if payout.status == Payout.Status.PAID:
                return _("%(amount)s paid out to your bank.") % {"amount": money(payout.amount_cents, payout.currency)}
            if payout.status == Payout.Status.PENDING:
                return _("%(amount)s to you, pending until %(when)s.") % {
                    "amount": money(payout.amount_cents, payout.currency),
                    "when": timezone.localtime(payout.available_at).strftime("%b %d"),
                }
            return _("%(amount)s to you, available for payout.") % {"amount": money(payout.amount_cents, payout.currency)}
    if status == Escrow.Status.HELD:
        return _("%(total)s paid. Payment held until you approve.") % {"total": total}
    if status == Escrow.Status.RELEASED:
        return _("%(total)s paid and released to the pro.") % {"total": total}
    if status == Escrow.Status.REFUNDED:
        return _("%(amount)s refunded.") % {"amount": money(escrow.refunded_cents, escrow.currency)}
    if status == Escrow.Status.SPLIT:
        return _("Split: %(refund)s refunded, the rest to the pro.") % {"refund": money(escrow.refunded_cents, escrow.currency)}
    if status == Escrow.Status.FROZEN:
        return _("Payment frozen while the bank's dispute is looked at.")
    if status == Escrow.Status.CHARGEBACK:
        if for_contractor:
            return _("The customer's bank took this payment back; nothing more will be paid out for it.")
        return _("Your bank took this payment back (a chargeback): %(total)s returned to your card by the bank.") % {
            "total": total
        }
    return escrow.get_status_display()


# --- customer: history, receipts, saved card -------------------------------------


def customer_payments(user: Any) -> list[Escrow]:
    return list(
        _escrows()
        .filter(customer=user, captured_cents__gt=0)
        .prefetch_related(Prefetch("refunds", queryset=Refund.objects.order_by("created_at")))
        .order_by("-funded_at", "-created_at")
    )


def open_checkouts(user: Any) -> list[Escrow]:
    return list(
        _escrows()
        .filter(customer=user, status=Escrow.Status.UNFUNDED, checkout_expires_at__gt=timezone.now())
        .order_by("-created_at")
    )


def saved_card(user: Any) -> SavedPaymentMethod | None:
    if not user.is_authenticated:
        return None
    return SavedPaymentMethod.objects.filter(user=user).first()


def receipt_context(escrow: Escrow) -> dict[str, Any]:
    refunds = list(escrow.refunds.order_by("created_at"))
    return {
        "escrow": escrow,
        "task": escrow.task,
        "lines": breakdown(escrow),
        "refunds": refunds,
        "refunded_cents": escrow.refunded_cents,
        "net_cents": escrow.captured_cents - escrow.refunded_cents,
    }


def safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}, require_https=False):
        return candidate
    return ""


# --- contractor: earnings and payout set-up ---------------------------------------


def payout_setup_status(user: Any) -> dict[str, Any]:
    account = ConnectedAccount.objects.filter(user=user).first()
    if account is None:
        state = "none"
    elif account.payouts_enabled:
        state = "enabled"
    else:
        state = "started"
    return {"account": account, "state": state}


def earnings_context(user: Any) -> dict[str, Any]:
    payouts = list(
        Payout.objects.filter(contractor=user).select_related("escrow", "escrow__task").order_by("-created_at")
    )
    totals = Payout.objects.filter(contractor=user).aggregate(
        pending=Sum("amount_cents", filter=Q(status=Payout.Status.PENDING)),
        available=Sum("amount_cents", filter=Q(status__in=[Payout.Status.AVAILABLE, Payout.Status.FAILED])),
        paid=Sum("amount_cents", filter=Q(status=Payout.Status.PAID)),
    )
    held = list(
        _escrows().filter(contractor=user, status__in=[Escrow.Status.HELD, Escrow.Status.FROZEN]).order_by("-funded_at")
    )
    held_cents = sum(contractor_share(e) for e in held if e.status == Escrow.Status.HELD)
    now = timezone.now()
    rows = []
    for escrow in held:
        rows.append({"task": escrow.task, "escrow": escrow, "gross": escrow.price_cents, "fee": escrow.commission_cents,
                     "net": contractor_share(escrow), "currency": escrow.currency,
                     "state": "frozen" if escrow.status == Escrow.Status.FROZEN else "held", "when": escrow.funded_at})
    for payout in payouts:
        escrow = payout.escrow
        state = payout.status
        if state == Payout.Status.PENDING and payout.available_at <= now:
            state = Payout.Status.AVAILABLE
        rows.append({"task": escrow.task, "escrow": escrow, "gross": escrow.released_cents or escrow.price_cents,
                     "fee": (escrow.released_cents or escrow.price_cents) - payout.amount_cents, "net": payout.amount_cents,
                     "currency": payout.currency, "state": state, "payout": payout,
                     "when": payout.paid_at or payout.available_at})
    currency = (payouts[0].currency if payouts else (held[0].currency if held else "USD"))
    return {
        "rows": rows,
        "currency": currency,
        "held_cents": held_cents,
        "pending_cents": totals["pending"] or 0,
        "available_cents": totals["available"] or 0,
        "paid_cents": totals["paid"] or 0,
        "setup": payout_setup_status(user),
    }


def escrow_summary(escrow: Escrow) -> dict[str, Any]:
    """The escrow as the API shows it to its customer."""
    return {
        "id": str(escrow.public_id),
        "status": escrow.status,
        "currency": escrow.currency,
        "price_cents": escrow.price_cents,
        "service_fee_cents": escrow.service_fee_cents,
        "total_cents": escrow.total_cents,
        "checkout_expires_at": escrow.checkout_expires_at.isoformat() if escrow.checkout_expires_at else None,
    }
