"""Checkout: an unfunded escrow and a PaymentIntent for an accepted offer or
an instant booking; the payment's success (funded: held + booked) or failure;
abandoned checkouts expire."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ContractorProfile
from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from tasks.models import Offer, Task

from .. import fees, ledger, receipts
from ..models import (
    Escrow,
    SavedPaymentMethod,
)

if TYPE_CHECKING:
    from accounts.models import User


from ._common import (
    ES,
    FUNDABLE,
    LIVE,
    Code,
    Kind,
    _gateway,
    _gateway_errors,
    _key,
    _lock,
    _move,
    _notify,
    _op_done,
    _op_started,
    _operation,
    amount_due_cents,
)
from .settlement import _execute_refund_later, _refund_locked

logger = logging.getLogger(__name__)

# --- checkout ------------------------------------------------------------------------


def _quote_for(task: Task, price_cents: int) -> fees.Quote:
    try:
        return fees.quote(amount_due_cents(task, price_cents), task.category, currency=task.currency)
    except ValueError as exc:
        raise ApplicationError(_("This price can't be paid."), code="invalid_amount") from exc


def _new_escrow(task: Task, offer: Offer, quote: fees.Quote, now: dt.datetime) -> Escrow:
    escrow = Escrow.objects.create(
        task=task,
        offer=offer,
        customer_id=task.customer_id,
        contractor_id=offer.contractor_id,
        currency=quote.currency,
        price_cents=quote.price_cents,
        service_fee_cents=quote.service_fee_cents,
        commission_cents=quote.commission_cents,
        total_cents=quote.total_cents,
        transfer_group=f"task:{task.public_id}",
        checkout_expires_at=now + dt.timedelta(minutes=settings.PAYMENTS_CHECKOUT_TIMEOUT_MINUTES),
    )
    _operation(
        escrow,
        _key(escrow, "payment_intent"),
        "create_payment_intent",
        {"amount_cents": escrow.total_cents, "currency": escrow.currency, "transfer_group": escrow.transfer_group},
    )
    return escrow


def checkout_start(offer: Offer, *, by: User) -> Escrow:
    """The customer accepts ``offer``: an unfunded escrow for the price plus
    the service fee and a PaymentIntent at the gateway. The task stays open
    and the offer pending until ``escrow_funded``. Accepting again while an
    unexpired checkout for this offer exists returns it (and retries its
    PaymentIntent with the same key if the first call never answered).

    Only the task's verified customer, on an open task, for a pending offer on
    it. Gateway errors: ``ApplicationError(code="gateway_unavailable")`` (try
    again; same key next time)."""
    user_require_verified(by)
    now = timezone.now()
    with transaction.atomic():
        try:
            task = Task.objects.select_for_update(no_key=True).get(pk=offer.task_id)
            offer = Offer.objects.select_for_update(no_key=True).get(pk=offer.pk)
        except (Task.DoesNotExist, Offer.DoesNotExist) as exc:
            raise NotFound(_("This offer no longer exists.")) from exc
        if task.customer_id != by.pk:
            raise PermissionDenied(_("Only the customer who posted this task can do that."), code="not_task_customer")
        if task.status != Task.Status.OPEN:
            raise Conflict(_("This task is no longer open for booking."), code="already_booked")
        if offer.status != Offer.Status.PENDING:
            raise Conflict(_("This offer can no longer be accepted."), code="offer_not_pending")
        escrow = (
            Escrow.objects.filter(offer=offer, status=ES.UNFUNDED, checkout_expires_at__gt=now)
            .order_by("-created_at")
            .first()
        )
        if escrow is None:
            escrow = _new_escrow(task, offer, _quote_for(task, offer.price_cents), now)
    if not escrow.payment_intent_id:
        _create_intent(escrow)
    escrow.refresh_from_db()
    return escrow


def _create_intent(
    escrow: Escrow, *, customer_id: str | None = None, payment_method_id: str | None = None, off_session: bool = False
) -> Any:
    """Call the gateway for the escrow's PaymentIntent with its stored key;
    record the id. No lock is held during the call: the simulated gateway
    delivers its webhook (and so ``escrow_funded``) from inside it."""
    GatewayError, CardDeclined = _gateway_errors()
    op = _operation(escrow, _key(escrow, "payment_intent"), "create_payment_intent", {})
    _op_started(op)
    try:
        result = _gateway().create_payment_intent(
            amount_cents=escrow.total_cents,
            currency=escrow.currency,
            idempotency_key=op.idempotency_key,
            transfer_group=escrow.transfer_group or f"task:{escrow.task.public_id}",
            metadata={"escrow": str(escrow.public_id), "task": str(escrow.task.public_id)},
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            off_session=off_session,
            confirm=off_session,
        )
    except GatewayError as exc:
        _op_done(op, error=exc.message, failed=not exc.retryable)
        declined_intent = getattr(exc, "payment_intent_id", "")
        if declined_intent:  # Stripe names the PaymentIntent a 402 belongs to: keep it for reconciliation
            Escrow.objects.filter(pk=escrow.pk, payment_intent_id="").update(payment_intent_id=declined_intent)
        if isinstance(exc, CardDeclined) or not exc.retryable:
            escrow_payment_failed(escrow, reason=exc.message)
            raise Conflict(exc.message, code=getattr(exc, "code", "card_declined") or "card_declined") from exc
        raise ApplicationError(
            _("The payment service did not answer. Try again in a moment."), code="gateway_unavailable"
        ) from exc
    Escrow.objects.filter(pk=escrow.pk, payment_intent_id="").update(payment_intent_id=result.id)
    _op_done(op, response_id=result.id)
    return result


def instant_book_start(task: Task, *, by: User, proposed_start: dt.datetime | None = None) -> Escrow:
    """A contractor books an instant-book task: the customer's saved card is
    charged off session for the posted price plus the service fee; success
    funds the escrow and books the task (``escrow_funded`` ->
    ``task_instant_book``). No saved card: ``Conflict(code="no_saved_card")``.
    A decline: ``Conflict(code="card_declined")``; a bank that wants the
    customer to authenticate: ``Conflict(code="authentication_required")``;
    either way the escrow is failed, nothing charged, the task open, the
    message written for the contractor and the customer notified.

    The escrow needs an offer: a withdrawn, ``is_instant`` placeholder offer
    carries the price until ``task_instant_book`` creates the accepted one, to
    which the escrow is then pointed (``tasks.payment_hooks.on_assigned``).

    Everything that would refuse the booking is checked under the task lock
    before the card is charged (``tasks.services.instant_book_check``): a bad
    start is a 400 with nothing written and nothing charged."""
    from tasks import services as task_services

    user_require_verified(by)
    if not by.is_contractor or not ContractorProfile.objects.filter(user=by, onboarded_at__isnull=False).exists():
        raise PermissionDenied(_("Finish your contractor profile and go live before you take work."), code="not_onboarded")
    now = timezone.now()
    with transaction.atomic():
        try:
            task = Task.objects.select_for_update(no_key=True).get(pk=task.pk)
        except Task.DoesNotExist as exc:
            raise NotFound(_("This task no longer exists.")) from exc
        if task.customer_id == by.pk:
            raise PermissionDenied(_("You can't book your own task."), code="own_task")
        if task.status != Task.Status.OPEN:
            raise Conflict(_("This task is no longer open for booking."), code="already_booked")
        if not task.instant_book:
            raise Conflict(
                _("This task can't be booked instantly. Make an offer instead."), code="instant_book_not_allowed"
            )
        # Everything task_instant_book would refuse (the proposed start, the
        # contractor's standing...) is refused here, before the card is charged.
        start = task_services.instant_book_check(task, by=by, proposed_start=proposed_start, now=now)
        card = SavedPaymentMethod.objects.filter(user_id=task.customer_id).first()
        if card is None:
            raise Conflict(
                _("The customer has no saved card for instant booking. Make an offer instead."), code="no_saved_card"
            )
        # Another pro's instant booking is charging the card right now (its
        # escrow unfunded, not expired): charging it again would take the
        # customer's money twice and refund one of them days later.
        if (
            Escrow.objects.filter(task=task, offer__is_instant=True, status=ES.UNFUNDED, checkout_expires_at__gt=now)
            .exclude(contractor=by)
            .exists()
        ):
            raise Conflict(
                _("Another pro is booking this task right now. Nothing was charged; try again in a few minutes."),
                code="booking_in_progress",
            )
        escrow = (
            Escrow.objects.filter(
                task=task, contractor=by, offer__is_instant=True, status=ES.UNFUNDED, checkout_expires_at__gt=now
            )
            .order_by("-created_at")
            .first()
        )
        if escrow is None:
            placeholder = Offer.objects.create(
                task=task,
                contractor=by,
                price_cents=task.budget_cents,
                currency=task.currency,
                proposed_start=start,
                status=Offer.Status.WITHDRAWN,
                is_instant=True,
                decided_at=now,
                message=_("Instant booking (payment in progress)."),
            )
            escrow = _new_escrow(task, placeholder, _quote_for(task, task.budget_cents), now)
    try:
        result = _create_intent(
            escrow,
            customer_id=card.gateway_customer_id,
            payment_method_id=card.gateway_payment_method_id,
            off_session=True,
        )
    except Conflict as exc:  # declined, or the bank wants the customer there: the escrow is failed
        raise _instant_refused(task, escrow, exc.code) from exc
    if result.status not in ("succeeded", "processing"):
        # Some gateways answer an off-session charge that needs the customer
        # with requires_action instead of an error: the same refusal.
        escrow_payment_failed(escrow, reason=result.last_error or result.status)
        try:
            _gateway().cancel_payment_intent(result.id, idempotency_key=_key(escrow, "cancel"))
        except _gateway_errors()[0]:
            logger.warning("Could not cancel the unconfirmed instant-book payment %s", result.id)
        raise _instant_refused(task, escrow, "authentication_required")
    if result.status == "succeeded":
        escrow_funded(
            escrow, payment_intent_id=result.id, charge_id=result.charge_id or "", amount_cents=escrow.total_cents
        )
    escrow.refresh_from_db()
    if escrow.status == ES.REFUNDED:
        # Booked (or closed) by someone else between the check and the charge:
        # escrow_funded refunded the charge in full and told the customer.
        if Task.objects.filter(pk=task.pk).exclude(status=Task.Status.OPEN).exists():
            raise Conflict(
                _("Another pro booked this task a moment before you. The customer's payment is refunded in full."),
                code="already_booked",
            )
        raise Conflict(
            _("The job could not be booked. The customer's payment is refunded in full."), code="not_booked"
        )
    return escrow


def _instant_refused(task: Task, escrow: Escrow, code: str) -> Conflict:
    """The customer's saved card could not be charged off session: the task
    stays open, nothing was charged. The contractor is told why in their
    terms, the customer is told to update their card."""
    if code == "authentication_required":
        message = _(
            "The customer's bank wants them to confirm this payment themselves, so the job can't be booked "
            "instantly. Nothing was charged and the task is still open: make an offer instead."
        )
        told = _("A pro tried to book “%(task)s” instantly, but your bank asked you to confirm the payment.")
    else:
        code = "card_declined"
        message = _(
            "The customer's saved card was declined, so the job isn't booked. Nothing was charged and the task "
            "is still open: make an offer instead."
        )
        told = _("A pro tried to book “%(task)s” instantly, but your saved card was declined.")
    _notify(
        escrow.customer,
        title=_("Instant booking failed: check your card"),
        body=(told % {"task": task.title}) + " " + _("Save a card again to keep instant booking on."),
        task=task,
        dedupe_key=f"instant-refused:{escrow.public_id}",
    )
    return Conflict(message, code=code)


@transaction.atomic
def escrow_payment_failed(escrow: Escrow, *, reason: str = "") -> Escrow:
    """The payment was declined or failed (``payment_intent.payment_failed``).
    Only an unfunded escrow becomes failed; a late failure event for an escrow
    already funded changes nothing. The offer stays acceptable."""
    _task, escrow = _lock(escrow)
    if escrow.status == ES.UNFUNDED:
        _move(escrow, ES.FAILED)
    return escrow


def escrow_funded(escrow: Escrow, *, payment_intent_id: str, charge_id: str, amount_cents: int) -> Escrow:
    """The customer's money arrived (``payment_intent.succeeded``, or an off
    session charge that succeeded at once). Idempotent: an escrow already
    funded is returned unchanged.

    Under the task and escrow locks: the escrow moves to held, the FUND
    transaction is posted, and the task is booked (``offer_accept``, or
    ``task_instant_book`` for an instant escrow). If it can't be booked any
    more (someone else's payment booked it first, it was cancelled, the offer
    withdrawn), the money is refunded in full at once and the customer told."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ApplicationError(_("The funded amount must be a positive number of cents."), code="invalid_amount")
    refund_reason = ""
    with transaction.atomic():
        task, escrow = _lock(escrow)
        if escrow.status not in FUNDABLE:
            return escrow
        if escrow.payment_intent_id and payment_intent_id and escrow.payment_intent_id != payment_intent_id:
            raise Conflict(_("This payment belongs to another checkout."), code="payment_intent_mismatch")
        if amount_cents != escrow.total_cents:
            raise Conflict(
                _("%(got)d cents arrived but this checkout is for %(want)d.")
                % {"got": amount_cents, "want": escrow.total_cents},
                code="amount_mismatch",
            )
        now = timezone.now()
        other_live = Escrow.objects.filter(task=task, status__in=LIVE).exclude(pk=escrow.pk).exists()
        common = {
            "captured_cents": escrow.total_cents,
            "payment_intent_id": payment_intent_id or escrow.payment_intent_id,
            "charge_id": charge_id or "",
            "funded_at": now,
        }
        fund_legs = [
            (Code.CUSTOMER_FUNDS_IN, None, -escrow.total_cents),
            (Code.ESCROW_HELD, None, escrow.total_cents),
        ]
        if other_live or task.status != Task.Status.OPEN:
            refund_reason = _("The task was already booked.") if other_live else _("The task is no longer open.")
            for name, value in common.items():
                setattr(escrow, name, value)
            ledger.post(Kind.FUND, escrow, fund_legs, idempotency_key=_key(escrow, "fund"), memo="funded")
            refund = _refund_locked(escrow, reason=refund_reason, by=None, extra_fields=common)
        else:
            _move(escrow, ES.HELD, **common)
            ledger.post(Kind.FUND, escrow, fund_legs, idempotency_key=_key(escrow, "fund"), memo="funded")
            try:
                with transaction.atomic():
                    _book(task, escrow)
            except ApplicationError as exc:
                refund_reason = exc.message
                refund = _refund_locked(escrow, reason=refund_reason, by=None)
            else:
                receipts.send_funded(escrow)  # emailed after commit
        if refund_reason:
            _notify(
                escrow.customer,
                title=_("Your payment was refunded"),
                body=_("We couldn't book “%(task)s”: %(reason)s Your payment is refunded in full.")
                % {"task": task.title, "reason": refund_reason},
                task=task,
                dedupe_key=f"escrow-refunded:{escrow.public_id}",
            )
            transaction.on_commit(lambda: _execute_refund_later(refund.pk))
    escrow.refresh_from_db()
    return escrow


def _book(task: Task, escrow: Escrow) -> None:
    from tasks import services as task_services

    offer = escrow.offer
    if offer.is_instant:
        task_services.task_instant_book(task, by=escrow.contractor, proposed_start=offer.proposed_start)
    else:
        task_services.offer_accept(offer, by=escrow.customer)



def checkout_expire_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Checkouts unpaid after ``PAYMENTS_CHECKOUT_TIMEOUT_MINUTES`` expire
    (the offer stays acceptable) and their PaymentIntents are cancelled with
    the key ``escrow:<uuid>:cancel``. A payment that still succeeds later is
    funded (and booked or refunded) by ``escrow_funded``."""
    GatewayError, _declined = _gateway_errors()
    now = now or timezone.now()
    counts = {"expired": 0, "cancel_errors": 0}
    due = Escrow.objects.filter(status=ES.UNFUNDED, checkout_expires_at__lte=now).values_list("pk", flat=True)[:limit]
    for pk in list(due):
        updated = Escrow.objects.filter(pk=pk, status=ES.UNFUNDED, checkout_expires_at__lte=now).update(
            status=ES.EXPIRED, updated_at=now
        )
        if updated != 1:
            continue
        counts["expired"] += 1
        escrow = Escrow.objects.get(pk=pk)
        if not escrow.payment_intent_id:
            continue
        op = _operation(escrow, _key(escrow, "cancel"), "cancel_payment_intent", {"intent": escrow.payment_intent_id})
        _op_started(op)
        try:
            _gateway().cancel_payment_intent(escrow.payment_intent_id, idempotency_key=op.idempotency_key)
            _op_done(op, response_id=escrow.payment_intent_id)
        except GatewayError as exc:
            _op_done(op, error=exc.message, failed=not exc.retryable)
            counts["cancel_errors"] += 1
    return counts


def require_held_escrow(task: Task, offer: Offer) -> Escrow:
    """The held escrow that pays for booking ``offer`` (the task is locked by
    the caller). An instant booking's offer is created by the booking itself,
    so its escrow (made for a placeholder offer by the same contractor) is
    pointed at it here."""
    escrow = Escrow.objects.select_for_update(no_key=True).filter(task=task, status=ES.HELD).first()
    due = amount_due_cents(task, offer.price_cents)
    if escrow is not None and escrow.price_cents == due:
        if escrow.offer_id == offer.pk:
            return escrow
        if offer.is_instant and escrow.contractor_id == offer.contractor_id and escrow.offer.is_instant:
            Escrow.objects.filter(pk=escrow.pk, status=ES.HELD).update(offer=offer)
            escrow.offer = offer
            return escrow
    raise Conflict(_("Pay for this booking first: the payment is held until you approve."), code="payment_required")
