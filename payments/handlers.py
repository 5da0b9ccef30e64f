"""Webhook event handlers: one table from event type to handler.

``process_event(pk)`` (run by Celery, payments/tasks_webhooks.py) locks the
stored ``WebhookEvent``, skips it if already processed or ignored, and runs the
handler for its type in a savepoint. Unknown types are stored as ``ignored``.

Events are duplicated, replayed and reordered by Stripe, so handlers:
- re-fetch the object's current state from the gateway instead of trusting the
  (possibly stale) copy in the event; when the gateway does not know it (the
  simulated gateway's state lives in the web process), the signed event's copy
  is used;
- change rows only through payments.services (conditional updates, row locks)
  or, for rows only webhooks change, under ``select_for_update`` here;
- raise ``Defer`` when the event depends on one not yet processed (a refund or
  a chargeback for an escrow whose payment is not recorded yet). The event is
  marked failed and ``retry_due_events`` (beat) runs it again with backoff, so
  every order of arrival ends in the same state.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .gateway import GatewayError, PaymentIntentResult, get_gateway
from .models import CardSetup, ConnectedAccount, Escrow, Payout, Refund, SavedPaymentMethod, WebhookEvent

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 15  # with the backoff below: about three days, like Stripe's own retries
FIRST_RETRY_SECONDS = 30


class Defer(Exception):
    """Not ready yet (an earlier event has not been processed): retry later."""


Handler = Callable[[dict[str, Any]], str]


# --- helpers ------------------------------------------------------------------


def _obj(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def _fresh_intent(obj: dict[str, Any]) -> PaymentIntentResult:
    """The PaymentIntent as the gateway has it now; the event's copy if the
    gateway does not know it (simulated gateway in another process)."""
    try:
        return get_gateway().retrieve_payment_intent(obj["id"])
    except GatewayError as exc:
        if exc.retryable:
            raise
        error = obj.get("last_payment_error") or {}
        return PaymentIntentResult(
            id=obj["id"],
            status=obj.get("status", ""),
            client_secret="",
            charge_id=obj.get("latest_charge"),
            amount_cents=int(obj.get("amount_received") or obj.get("amount") or 0),
            currency=str(obj.get("currency", "usd")).upper(),
            metadata=dict(obj.get("metadata") or {}),
            last_error=error.get("message", ""),
        )


def _escrow_by_public_id(metadata: dict[str, Any]) -> Escrow | None:
    for key in ("escrow", "escrow_id", "escrow_public_id"):
        value = (metadata or {}).get(key)
        if value:
            try:
                public_id = uuid.UUID(str(value))
            except ValueError:
                return None
            return Escrow.objects.filter(public_id=public_id).first()
    return None


def _escrow_for(*, payment_intent_id: str = "", charge_id: str = "", metadata: dict | None = None) -> Escrow | None:
    query = Q(pk__in=[])
    if payment_intent_id:
        query |= Q(payment_intent_id=payment_intent_id)
    if charge_id:
        query |= Q(charge_id=charge_id)
    escrow = Escrow.objects.filter(query).order_by("-created_at").first()
    return escrow or _escrow_by_public_id(metadata or {})


def _services():
    from . import services

    return services


# --- handlers -------------------------------------------------------------------


def payment_intent_succeeded(event: dict[str, Any]) -> str:
    intent = _fresh_intent(_obj(event))
    if intent.status != "succeeded":
        return f"intent is {intent.status} now; nothing to do"
    escrow = _escrow_for(payment_intent_id=intent.id, metadata=intent.metadata)
    if escrow is None:
        raise Defer(f"no escrow for payment intent {intent.id} yet")
    charge_id = intent.charge_id or _obj(event).get("latest_charge") or ""
    _services().escrow_funded(
        escrow, payment_intent_id=intent.id, charge_id=charge_id, amount_cents=intent.amount_cents
    )
    return f"escrow {escrow.public_id} funded"


def payment_intent_failed(event: dict[str, Any]) -> str:
    intent = _fresh_intent(_obj(event))
    if intent.status in ("succeeded", "processing"):
        # A later attempt succeeded: this failure is history.
        return f"intent is {intent.status} now; failure superseded"
    escrow = _escrow_for(payment_intent_id=intent.id, metadata=intent.metadata)
    if escrow is None:
        raise Defer(f"no escrow for payment intent {intent.id} yet")
    if escrow.status != Escrow.Status.UNFUNDED:
        return f"escrow is {escrow.status}; nothing to do"
    reason = intent.last_error or "payment failed"
    _services().escrow_payment_failed(escrow, reason=reason)
    return f"escrow {escrow.public_id} payment failed: {reason}"


def payment_intent_canceled(event: dict[str, Any]) -> str:
    intent = _fresh_intent(_obj(event))
    escrow = _escrow_for(payment_intent_id=intent.id, metadata=intent.metadata)
    if escrow is None or escrow.status != Escrow.Status.UNFUNDED or intent.status != "canceled":
        return "nothing to do"
    _services().escrow_payment_failed(escrow, reason="payment cancelled")
    return f"escrow {escrow.public_id} closed: payment cancelled"


def charge_refunded(event: dict[str, Any]) -> str:
    """Mark our Refund rows succeeded from the gateway's list of refunds on the
    payment. The ledger REFUND was posted by the refund service; this is the
    gateway's confirmation."""
    obj = _obj(event)
    if obj.get("object") == "refund":
        intent_id, charge_id = obj.get("payment_intent") or "", obj.get("charge") or ""
    else:
        intent_id, charge_id = obj.get("payment_intent") or "", obj.get("id") or ""
    escrow = _escrow_for(payment_intent_id=intent_id, charge_id=charge_id, metadata=obj.get("metadata"))
    if escrow is None:
        raise Defer(f"no escrow for charge {charge_id or intent_id} yet")
    if escrow.status in (Escrow.Status.UNFUNDED, Escrow.Status.FAILED, Escrow.Status.EXPIRED):
        raise Defer(f"escrow {escrow.public_id} is {escrow.status}: its payment is not recorded yet")
    refunds = get_gateway().list_payment_intent_refunds(intent_id or escrow.payment_intent_id)
    notes = []
    with transaction.atomic():
        ours = {r.gateway_refund_id: r for r in Refund.objects.select_for_update(no_key=True).filter(escrow=escrow)}
        for gateway_refund in refunds:
            row = ours.get(gateway_refund.id)
            if row is None:
                if any(not r.gateway_refund_id and r.status == Refund.Status.PENDING for r in ours.values()):
                    raise Defer(f"refund {gateway_refund.id} not saved yet by the refund service")
                notes.append(f"refund {gateway_refund.id} was not made through the platform")
                logger.warning("Refund %s on escrow %s was not made through the platform", gateway_refund.id, escrow)
                continue
            new_status = {"succeeded": Refund.Status.SUCCEEDED, "failed": Refund.Status.FAILED}.get(
                gateway_refund.status
            )
            if new_status and row.status != new_status:
                row.status = new_status
                row.save(update_fields=["status"])
                notes.append(f"refund {gateway_refund.id} {new_status}")
                if new_status == Refund.Status.FAILED:
                    logger.error("Refund %s on escrow %s failed at the gateway", gateway_refund.id, escrow)
    return "; ".join(notes) or "refunds already recorded"


def _disputed_escrow(obj: dict[str, Any]) -> Escrow:
    escrow = _escrow_for(payment_intent_id=obj.get("payment_intent") or "", charge_id=obj.get("charge") or "")
    if escrow is None:
        raise Defer(f"no escrow for disputed charge {obj.get('charge')}")
    if escrow.status in (Escrow.Status.UNFUNDED, Escrow.Status.FAILED, Escrow.Status.EXPIRED):
        raise Defer(f"escrow {escrow.public_id} is {escrow.status}: its payment is not recorded yet")
    return escrow


def _dispute_fields(obj: dict[str, Any]) -> dict[str, Any]:
    try:
        amount = int(obj.get("amount"))
    except (TypeError, ValueError):
        amount = 0
    return {
        "dispute_id": str(obj.get("id") or ""),
        "amount_cents": amount,
        "currency": str(obj.get("currency") or ""),
        "reason": str(obj.get("reason") or ""),
    }


def dispute_created(event: dict[str, Any]) -> str:
    """A chargeback: freeze the escrow (once; nothing if it already closed)."""
    obj = _obj(event)
    escrow = _disputed_escrow(obj)
    chargeback = _services().chargeback_opened(escrow, **_dispute_fields(obj))
    if chargeback.status != chargeback.Status.OPEN:
        return f"chargeback {chargeback.dispute_id} already closed ({chargeback.status}); nothing to freeze"
    if chargeback.froze_escrow:
        return f"escrow {escrow.public_id} frozen by chargeback {chargeback.dispute_id}"
    return f"chargeback {chargeback.dispute_id} recorded; escrow {escrow.status} ({chargeback.note or 'already frozen'})"


def dispute_closed(event: dict[str, Any]) -> str:
    """A chargeback's outcome: the status in a ``closed`` event is final
    (won, lost, warning_closed), so the signed copy is used as it is."""
    obj = _obj(event)
    escrow = _disputed_escrow(obj)
    outcome = str(obj.get("status") or "")
    chargeback = _services().chargeback_closed(escrow, outcome=outcome, **_dispute_fields(obj))
    return f"chargeback {chargeback.dispute_id} {chargeback.status}: {chargeback.note}"


def setup_intent_succeeded(event: dict[str, Any]) -> str:
    """A card set-up succeeded: keep its card as the customer's saved card
    (``payments.accounts.card_setup_succeeded`` re-reads the SetupIntent from
    the gateway and applies it once; the card page may have done it first)."""
    from core.errors import ApplicationError, NotFound

    from . import accounts

    obj = _obj(event)
    setup_intent_id = str(obj.get("id") or "")
    if not CardSetup.objects.filter(setup_intent_id=setup_intent_id).exists():
        if (obj.get("metadata") or {}).get("user"):
            raise Defer(f"card set-up {setup_intent_id} not saved yet")
        return f"set-up {setup_intent_id} was not started by this site; ignored"
    try:
        card = accounts.card_setup_succeeded(setup_intent_id)
    except NotFound:
        return f"set-up {setup_intent_id} unknown"
    except ApplicationError as exc:
        if exc.code == "gateway_unavailable":
            raise
        return f"set-up {setup_intent_id} not saved: {exc.message}"
    status = CardSetup.objects.get(setup_intent_id=setup_intent_id).status
    return f"set-up {setup_intent_id} {status}; saved card {card.brand} {card.last4}" if card else f"set-up {status}"


def setup_intent_failed(event: dict[str, Any]) -> str:
    """The bank refused the card being saved. The SetupIntent waits for
    another card (the customer may try again on the same page), so the
    set-up stays started; its error is kept for staff."""
    obj = _obj(event)
    setup_intent_id = str(obj.get("id") or "")
    error = obj.get("last_setup_error") or {}
    message = str((error.get("message") if isinstance(error, dict) else "") or "the card was refused")[:300]
    updated = CardSetup.objects.filter(setup_intent_id=setup_intent_id, status=CardSetup.Status.STARTED).update(
        error=message
    )
    return f"set-up {setup_intent_id}: {message}" if updated else f"set-up {setup_intent_id} not waiting here; ignored"


def payment_method_detached(event: dict[str, Any]) -> str:
    """A saved card was detached at the gateway (removed here, or in the
    gateway's dashboard): it can't be charged any more, so forget it."""
    pm_id = str(_obj(event).get("id") or "")
    with transaction.atomic():
        deleted, _rows = SavedPaymentMethod.objects.filter(gateway_payment_method_id=pm_id).delete() if pm_id else (0, {})
    return f"saved card {pm_id} forgotten" if deleted else f"payment method {pm_id} was not a saved card"


def account_updated(event: dict[str, Any]) -> str:
    obj = _obj(event)
    account_id = obj.get("id") or ""
    if not ConnectedAccount.objects.filter(gateway_account_id=account_id).exists():
        raise Defer(f"no connected account {account_id} saved yet")
    try:
        status = get_gateway().retrieve_account(account_id)
        details_submitted, payouts_enabled = status.details_submitted, status.payouts_enabled
    except GatewayError as exc:
        if exc.retryable:
            raise
        details_submitted = bool(obj.get("details_submitted"))
        payouts_enabled = bool(obj.get("payouts_enabled"))
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update(no_key=True).get(gateway_account_id=account_id)
        if (account.details_submitted, account.payouts_enabled) == (details_submitted, payouts_enabled):
            return "account flags unchanged"
        account.details_submitted = details_submitted
        account.payouts_enabled = payouts_enabled
        account.save(update_fields=["details_submitted", "payouts_enabled", "updated_at"])
    return f"account {account_id}: details_submitted={details_submitted} payouts_enabled={payouts_enabled}"


def transfer_created(event: dict[str, Any]) -> str:
    obj = _obj(event)
    payout = Payout.objects.filter(transfer_id=obj.get("id") or "").first()
    if payout is None:
        escrow = _escrow_by_public_id(obj.get("metadata") or {})
        payout = Payout.objects.filter(escrow=escrow).first() if escrow else None
    if payout is None:
        logger.warning("Transfer %s matches no payout", obj.get("id"))
        return f"transfer {obj.get('id')} matches no payout (see reconciliation)"
    return f"transfer {obj.get('id')} for payout {payout.public_id} ({payout.status})"


def transfer_reversed(event: dict[str, Any]) -> str:
    obj = _obj(event)
    logger.error("Transfer %s was reversed at the gateway", obj.get("id"))
    return f"transfer {obj.get('id')} reversed: needs an admin (see reconciliation)"


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "payment_intent.canceled": payment_intent_canceled,
    "charge.refunded": charge_refunded,
    "refund.created": charge_refunded,
    "refund.updated": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
    "account.updated": account_updated,
    "setup_intent.succeeded": setup_intent_succeeded,
    "setup_intent.setup_failed": setup_intent_failed,
    "payment_method.detached": payment_method_detached,
    "transfer.created": transfer_created,
    "transfer.reversed": transfer_reversed,
}


# --- running them ---------------------------------------------------------------


def process_event(event_pk: int) -> str:
    """Run one stored event's handler, at most once to success."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update(no_key=True).filter(pk=event_pk).first()
        if event is None:
            return "missing"
        if event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED):
            return event.status
        handler = HANDLERS.get(event.type)
        now = timezone.now()
        if handler is None:
            event.status = WebhookEvent.Status.IGNORED
            event.processed_at = now
            event.save(update_fields=["status", "processed_at"])
            return event.status
        event.attempts += 1
        try:
            with transaction.atomic():
                note = handler(event.payload)
        except Defer as exc:
            event.status = WebhookEvent.Status.FAILED
            event.error = f"deferred: {exc}"
            logger.info("Webhook %s %s deferred: %s", event.type, event.event_id, exc)
        except Exception as exc:  # recorded on the event; retried by the sweep
            event.status = WebhookEvent.Status.FAILED
            event.error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.exception("Webhook %s %s failed", event.type, event.event_id)
        else:
            event.status = WebhookEvent.Status.PROCESSED
            event.error = (note or "")[:2000]
            event.processed_at = now
        event.save(update_fields=["status", "error", "attempts", "processed_at"])
        return event.status


def retry_delay(attempts: int) -> dt.timedelta:
    """Time after receipt when the next attempt is due: 30 s, 1 min, 2 min, ... doubling."""
    return dt.timedelta(seconds=FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def retry_due_events(now: dt.datetime | None = None) -> int:
    """Queue failed events whose backoff has passed, and received events never
    processed (the queueing after commit was lost). Returns how many."""
    from .tasks_webhooks import process_webhook_event

    now = now or timezone.now()
    due = []
    candidates = WebhookEvent.objects.filter(
        Q(status=WebhookEvent.Status.FAILED, attempts__lt=MAX_ATTEMPTS)
        | Q(status=WebhookEvent.Status.RECEIVED, received_at__lte=now - dt.timedelta(minutes=2))
    ).only("pk", "attempts", "received_at", "status")
    for event in candidates.order_by("received_at")[:500]:
        if event.status == WebhookEvent.Status.RECEIVED or now >= event.received_at + retry_delay(event.attempts):
            due.append(event.pk)
    for pk in due:
        process_webhook_event.delay(pk)
    return len(due)
