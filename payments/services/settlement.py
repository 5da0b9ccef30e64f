"""Release, refunds and splits of an escrow's money, the gateway refund that
follows, and the cancellation rule applied to it."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, Conflict
from tasks.models import Task

from .. import fees, ledger, receipts
from ..models import (
    Escrow,
    GatewayOperation,
    Payout,
    Refund,
)

if TYPE_CHECKING:
    from accounts.models import User


from ._common import (
    ES,
    Code,
    Kind,
    _gateway,
    _gateway_errors,
    _key,
    _legs_to,
    _lock,
    _move,
    _op_done,
    _op_started,
    _operation,
    _payout_hold,
    _require_system_or_staff,
    live_escrow,
)

logger = logging.getLogger(__name__)

# --- release, refund, split ------------------------------------------------------------------


@transaction.atomic
def escrow_release(escrow: Escrow, *, by: User | None = None) -> Escrow:
    """The work was approved: the contractor's share becomes payable (a
    pending payout, transferred after ``PAYMENTS_PAYOUT_HOLD_HOURS``), the
    platform keeps the commission and the service fee. Only a held escrow;
    called by ``tasks.payment_hooks.on_completed`` inside the approval."""
    _require_system_or_staff(by)
    _task, escrow = _lock(escrow)
    if escrow.status != ES.HELD:
        raise Conflict(
            _("This payment is %(status)s, so it can't be released.") % {"status": escrow.get_status_display().lower()},
            code="escrow_state",
            extra={"status": escrow.status},
        )
    now = timezone.now()
    share = escrow.price_cents - escrow.commission_cents
    due = now + _payout_hold()
    _move(escrow, ES.RELEASED, released_cents=escrow.price_cents, released_at=now, payout_due_at=due)
    legs = _legs_to(escrow, {Code.CONTRACTOR_PAYABLE: share, Code.PLATFORM_REVENUE: escrow.total_cents - share}, {})
    ledger.post(Kind.RELEASE, escrow, legs, idempotency_key=_key(escrow, "release"), memo="released", by=by)
    if share > 0:
        Payout.objects.create(
            escrow=escrow, contractor_id=escrow.contractor_id, amount_cents=share, currency=escrow.currency, available_at=due
        )
    return escrow


def _refundable(escrow: Escrow) -> None:
    """Refunds and splits: while held, or released but not yet transferred."""
    if escrow.status == ES.FROZEN:
        raise Conflict(_("This payment is frozen by a chargeback. Unfreeze it first."), code="escrow_frozen")
    if escrow.status == ES.RELEASED:
        payout = Payout.objects.select_for_update(no_key=True).filter(escrow=escrow).first()
        if payout is not None and (
            payout.status == Payout.Status.PAID
            or GatewayOperation.objects.filter(
                escrow=escrow, operation="create_transfer", status=GatewayOperation.Status.STARTED, attempts__gt=0
            ).exists()
        ):
            raise Conflict(
                _("The contractor has already been paid (or is being paid) for this task."), code="already_paid_out"
            )
    elif escrow.status != ES.HELD:
        raise Conflict(
            _("This payment is %(status)s, so it can't be refunded.") % {"status": escrow.get_status_display().lower()},
            code="escrow_state",
            extra={"status": escrow.status},
        )


def _refund_locked(
    escrow: Escrow, *, reason: str, by: User | None, extra_fields: dict[str, Any] | None = None
) -> Refund:
    now = timezone.now()
    cents = escrow.captured_cents or escrow.total_cents
    _move(escrow, ES.REFUNDED, refunded_cents=cents, released_cents=0, refunded_at=now, **(extra_fields or {}))
    legs = _legs_to(escrow, {}, {Code.REFUNDS_OUT: cents})
    ledger.post(Kind.REFUND, escrow, legs, idempotency_key=_key(escrow, "refund"), memo=reason[:300], by=by)
    Payout.objects.filter(escrow=escrow).exclude(status=Payout.Status.PAID).update(
        status=Payout.Status.CANCELLED, next_attempt_at=None
    )
    return _refund_row(escrow, cents, reason)


def _refund_row(escrow: Escrow, cents: int, reason: str) -> Refund:
    key = _key(escrow, "refund")
    refund = Refund.objects.create(
        escrow=escrow, amount_cents=cents, currency=escrow.currency, reason=reason[:300] or "refund", idempotency_key=key
    )
    _operation(escrow, key, "create_refund", {"amount_cents": cents, "currency": escrow.currency})
    receipts.send_refunded(refund)  # emailed after commit
    return refund


def _execute_refund_later(refund_pk: int) -> None:
    from ..tasks import execute_refund

    execute_refund.delay(refund_pk)


def _validate_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why the money moves."), code="invalid", fields={"reason": [_("Required.")]})
    return reason[:300]


@transaction.atomic
def escrow_refund(escrow: Escrow, *, amount_cents: int | None = None, reason: str, by: User | None = None) -> Escrow:
    """Refund the customer everything they paid. ``amount_cents``, when given,
    must be that whole amount: a part-refund is a split (``escrow_split``:
    the rest goes to the contractor). Allowed while held, or released with
    the payout not yet transferred (the payout is cancelled). The gateway
    refund is made after commit (``payments.tasks.execute_refund``) with the
    stored key ``escrow:<uuid>:refund``. System (``by=None``) or staff."""
    _require_system_or_staff(by)
    reason = _validate_reason(reason)
    _task, escrow = _lock(escrow)
    _refundable(escrow)
    if amount_cents is not None and (
        isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents != escrow.captured_cents
    ):
        raise ApplicationError(
            _("A refund returns the whole %(total)d cents; to pay the contractor part of it, split instead.")
            % {"total": escrow.captured_cents},
            code="invalid_amount",
            fields={"amount_cents": [_("Refund the whole amount, or split.")]},
        )
    refund = _refund_locked(escrow, reason=reason, by=by)
    transaction.on_commit(lambda: _execute_refund_later(refund.pk))
    return escrow


@transaction.atomic
def escrow_split(escrow: Escrow, *, contractor_cents: int, reason: str, by: User | None = None) -> Escrow:
    """Pay the contractor ``contractor_cents`` of the price (gross: commission
    is taken from it in proportion) and refund the customer the rest of what
    they paid, service fee included. ``0 < contractor_cents <= price``
    (nothing to the contractor is a refund). A dispute's outcome, or the
    call-out fee of a late cancellation. Held, or released and not yet
    transferred. System or staff."""
    _require_system_or_staff(by)
    reason = _validate_reason(reason)
    if isinstance(contractor_cents, bool) or not isinstance(contractor_cents, int) or contractor_cents <= 0:
        raise ApplicationError(
            _("The contractor's part must be a positive whole number of cents (use a refund for nothing)."),
            code="invalid_amount",
            fields={"contractor_cents": [_("Must be more than 0.")]},
        )
    _task, escrow = _lock(escrow)
    _refundable(escrow)
    if contractor_cents > escrow.price_cents:
        raise ApplicationError(
            _("The contractor can get at most the price, %(price)d cents.") % {"price": escrow.price_cents},
            code="invalid_amount",
            fields={"contractor_cents": [_("More than the price.")]},
        )
    now = timezone.now()
    commission = fees.commission_on(
        contractor_cents, price_cents=escrow.price_cents, commission_cents=escrow.commission_cents
    )
    share = contractor_cents - commission
    refunded = escrow.captured_cents - contractor_cents
    was_released = escrow.status == ES.RELEASED
    due = escrow.payout_due_at if was_released and escrow.payout_due_at else now + _payout_hold()
    _move(
        escrow,
        ES.SPLIT,
        released_cents=contractor_cents,
        refunded_cents=refunded,
        released_at=escrow.released_at or now,
        refunded_at=now if refunded else None,
        payout_due_at=due,
    )
    legs = _legs_to(
        escrow, {Code.CONTRACTOR_PAYABLE: share, Code.PLATFORM_REVENUE: commission}, {Code.REFUNDS_OUT: refunded}
    )
    ledger.post(Kind.SPLIT, escrow, legs, idempotency_key=_key(escrow, "split"), memo=reason, by=by)
    payout = Payout.objects.select_for_update(no_key=True).filter(escrow=escrow).first()
    if share > 0:
        if payout is None:
            Payout.objects.create(
                escrow=escrow, contractor_id=escrow.contractor_id, amount_cents=share, currency=escrow.currency, available_at=due
            )
        else:
            Payout.objects.filter(pk=payout.pk).update(amount_cents=share, status=Payout.Status.PENDING, available_at=due)
    elif payout is not None:
        Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.CANCELLED, next_attempt_at=None)
    if refunded > 0:
        refund = _refund_row(escrow, refunded, reason)
        transaction.on_commit(lambda: _execute_refund_later(refund.pk))
    return escrow


# --- gateway follow-ups: refunds, payouts, abandoned checkouts -----------------------------------


def refund_attempt(refund: Refund) -> Refund:
    """Make (or retry) the gateway refund with its stored key. A retryable
    error leaves it pending for the next sweep; a final one marks it failed
    for staff. Never touches the ledger: the refund was decided already."""
    GatewayError, _declined = _gateway_errors()
    refund = Refund.objects.select_related("escrow").get(pk=refund.pk)
    if refund.status != Refund.Status.PENDING:
        return refund
    escrow = refund.escrow
    op = _operation(escrow, refund.idempotency_key, "create_refund", {"amount_cents": refund.amount_cents})
    _op_started(op)
    try:
        result = _gateway().create_refund(
            payment_intent_id=escrow.payment_intent_id,
            amount_cents=refund.amount_cents,
            idempotency_key=refund.idempotency_key,
            metadata={"escrow": str(escrow.public_id), "refund": str(refund.public_id)},
        )
    except GatewayError as exc:
        _op_done(op, error=exc.message, failed=not exc.retryable)
        if not exc.retryable:
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(status=Refund.Status.FAILED)
        logger.warning("Refund %s failed (retryable=%s): %s", refund.public_id, exc.retryable, exc.message)
        refund.refresh_from_db()
        return refund
    status = Refund.Status.FAILED if result.status in ("failed", "canceled") else Refund.Status.SUCCEEDED
    Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(status=status, gateway_refund_id=result.id)
    _op_done(op, response_id=result.id, failed=status == Refund.Status.FAILED)
    refund.refresh_from_db()
    return refund


@dataclasses.dataclass(frozen=True)
class CancelOutcome:
    escrow: Escrow | None
    action: str  # "none", "refund", "split", "frozen"


def settle_cancellation(task: Task, *, refund: str, contractor_cents: int) -> CancelOutcome:
    """Apply the cancellation rule to the task's money (inside task_cancel)."""
    escrow = live_escrow(task)
    if escrow is None:
        return CancelOutcome(None, "none")
    if escrow.status == ES.FROZEN:
        return CancelOutcome(escrow, "frozen")
    reason = _("The task was cancelled.")
    if refund == "partial" and contractor_cents > 0:
        escrow = escrow_split(escrow, contractor_cents=min(contractor_cents, escrow.price_cents), reason=reason)
        return CancelOutcome(escrow, "split")
    if refund in ("full", "partial"):
        escrow = escrow_refund(escrow, reason=reason)
        return CancelOutcome(escrow, "refund")
    return CancelOutcome(escrow, "none")
