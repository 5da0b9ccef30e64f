"""Payouts: the contractor's share transferred to their connected account when
the payout hold ends (with backoff on failures), and the sweep that runs them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import ledger
from ..models import (
    ConnectedAccount,
    Escrow,
    GatewayOperation,
    Payout,
    Refund,
)

if TYPE_CHECKING:
    pass


from ._common import (
    ES,
    MAX_BACKOFF,
    PAYOUT_LEASE,
    Code,
    Kind,
    _gateway,
    _gateway_errors,
    _key,
    _op_done,
    _op_started,
    _operation,
)
from .settlement import refund_attempt

logger = logging.getLogger(__name__)


def _backoff(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(minutes=5) * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _transfer_key(escrow: Escrow) -> str:
    """``escrow:<uuid>:transfer``; after a final (non-retryable) failure a new
    key, since the gateway would replay the stored error for the old one."""
    failed = GatewayOperation.objects.filter(
        escrow=escrow, operation="create_transfer", status=GatewayOperation.Status.FAILED
    ).count()
    return _key(escrow, "transfer") + (f":{failed + 1}" if failed else "")


def payout_attempt(payout: Payout, *, now: dt.datetime | None = None) -> Payout:
    """Transfer one payout if its hold is over, its escrow is released or
    split (not frozen, not refunded) and the contractor's payouts are enabled;
    otherwise it waits (status available: "earnings wait"). The transfer key
    is stored before the call; a timeout leaves the payout failed with
    ``last_error`` and a ``next_attempt_at``, the money still payable, and the
    retry reuses the key (one transfer at the gateway)."""
    GatewayError, _declined = _gateway_errors()
    now = now or timezone.now()
    payout_pk = payout.pk
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update(no_key=True, skip_locked=True)
            .select_related("escrow")
            .filter(pk=payout.pk, status__in=(Payout.Status.PENDING, Payout.Status.AVAILABLE, Payout.Status.FAILED))
            .first()
        )
        if payout is None:  # paid, cancelled, or another sweeper has it
            return Payout.objects.get(pk=payout_pk)
        escrow = payout.escrow
        if escrow.status not in (ES.RELEASED, ES.SPLIT) or payout.available_at > now:
            return payout
        if payout.next_attempt_at is not None and payout.next_attempt_at > now:
            return payout
        account = ConnectedAccount.objects.filter(user_id=payout.contractor_id).first()
        if account is None or not account.payouts_enabled:
            if payout.status == Payout.Status.PENDING:
                Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.AVAILABLE)
                payout.status = Payout.Status.AVAILABLE
            return payout
        op = _operation(
            escrow,
            _transfer_key(escrow),
            "create_transfer",
            {"amount_cents": payout.amount_cents, "currency": payout.currency, "destination": account.gateway_account_id},
        )
        _op_started(op)
        # A lease: another sweeper skips it while this one is at the gateway.
        Payout.objects.filter(pk=payout.pk).update(attempts=F("attempts") + 1, next_attempt_at=now + PAYOUT_LEASE)
    try:
        result = _gateway().create_transfer(
            amount_cents=payout.amount_cents,
            currency=payout.currency,
            destination_account_id=account.gateway_account_id,
            transfer_group=escrow.transfer_group,
            idempotency_key=op.idempotency_key,
            metadata={"escrow": str(escrow.public_id), "payout": str(payout.public_id)},
        )
    except GatewayError as exc:
        with transaction.atomic():
            locked = Payout.objects.select_for_update(no_key=True).get(pk=payout.pk)
            _op_done(op, error=exc.message, failed=not exc.retryable)
            if locked.status != Payout.Status.PAID:
                locked.status = Payout.Status.FAILED
                locked.last_error = exc.message[:500]
                locked.next_attempt_at = now + _backoff(locked.attempts)
                locked.save(update_fields=["status", "last_error", "next_attempt_at"])
        logger.warning("Payout %s failed (retryable=%s): %s", payout.public_id, exc.retryable, exc.message)
        return locked
    return _payout_paid(payout, escrow, op, result.id)


@transaction.atomic
def _payout_paid(payout: Payout, escrow: Escrow, op: GatewayOperation, transfer_id: str) -> Payout:
    payout = Payout.objects.select_for_update(no_key=True).get(pk=payout.pk)
    _op_done(op, response_id=transfer_id)
    if payout.status == Payout.Status.PAID:
        return payout
    legs = [
        (Code.CONTRACTOR_PAYABLE, escrow.contractor, -payout.amount_cents),
        (Code.PAYOUTS_OUT, escrow.contractor, payout.amount_cents),
    ]
    ledger.post(Kind.PAYOUT, escrow, legs, idempotency_key=_key(escrow, "payout"), memo=transfer_id)
    payout.status = Payout.Status.PAID
    payout.transfer_id = transfer_id
    payout.paid_at = timezone.now()
    payout.last_error = ""
    payout.next_attempt_at = None
    payout.save(update_fields=["status", "transfer_id", "paid_at", "last_error", "next_attempt_at"])
    return payout


def payout_sweep(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Every payout whose hold is over: transfer it, or mark it waiting.
    Also retries gateway refunds still pending. Run every minute by beat."""
    now = now or timezone.now()
    due = (
        Payout.objects.filter(
            status__in=(Payout.Status.PENDING, Payout.Status.AVAILABLE, Payout.Status.FAILED),
            available_at__lte=now,
            escrow__status__in=(ES.RELEASED, ES.SPLIT),
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("available_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"paid": 0, "waiting": 0, "failed": 0, "errors": 0, "refunds_retried": 0}
    for pk in list(due):
        try:
            payout = payout_attempt(Payout(pk=pk), now=now)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            logger.exception("Payout %s could not be attempted", pk)
            counts["errors"] += 1
            continue
        outcome = {Payout.Status.PAID: "paid", Payout.Status.FAILED: "failed"}.get(payout.status, "waiting")
        counts[outcome] += 1
    stale = now - dt.timedelta(minutes=1)
    for refund in Refund.objects.filter(status=Refund.Status.PENDING, created_at__lte=stale).order_by("pk")[:limit]:
        try:
            refund_attempt(refund)
            counts["refunds_retried"] += 1
        except Exception:  # noqa: BLE001
            logger.exception("Refund %s could not be retried", refund.pk)
            counts["errors"] += 1
    return counts
