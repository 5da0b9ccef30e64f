"""Every write to an escrow, its ledger, payouts and refunds.

The flow (../notes/PAYMENTS_CONTRACT.md): ``checkout_start`` (customer accepts
an offer) or ``instant_book_start`` (a contractor books an instant-book task)
create an unfunded escrow and a PaymentIntent; ``escrow_funded`` (the
``payment_intent.succeeded`` webhook) holds the money and books the task;
approval releases it (``escrow_release``), a payout is transferred after the
hold (``payout_sweep``); cancellation refunds or splits it; a chargeback
freezes it.

How money stays right when everything runs at once:

- Every escrow service locks the task row, then the escrow row (the order
  ``tasks.services`` uses: task first), and moves the status with a
  conditional update (``filter(pk=..., status=old).update(...)``) whose row
  count is checked: a second release, a release racing a refund, a replayed
  webhook find the status moved and do nothing or refuse.
- The ledger allows one terminal event per escrow and kind (a unique
  constraint) and the escrow's check constraint keeps released + refunded
  within captured, so even a bug here cannot pay twice.
- Gateway calls are never made inside the transaction that holds the task
  lock: the intent is stored first (``GatewayOperation`` with a key derived
  from it, e.g. ``escrow:<uuid>:refund``), the call is made after commit, and
  its result recorded in a new short transaction. A retry after a crash or a
  timeout finds the stored operation and reuses its key, so the gateway does
  the thing once.

Where an escrow's money is, by account (see ``payments.ledger``):
fund: customer_funds_in -total, escrow_held +total.
release: escrow_held -total, contractor_payable +share, platform_revenue
+(commission + service fee). refund: all of it to refunds_out. split with X
cents (gross) to the contractor: contractor_payable +(X - commission on X),
platform_revenue +commission on X, refunds_out +(total - X) (the customer gets
the service fee back). payout: contractor_payable -share, payouts_out +share.
A refund or split is allowed while the money is held, and after release while
the payout has not been transferred (the payout hold): no transfer reversal is
ever needed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ContractorProfile
from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from tasks.models import Offer, Task

from . import fees, ledger, receipts
from .models import (
    ConnectedAccount,
    Escrow,
    GatewayOperation,
    LedgerAccount,
    LedgerTransaction,
    Payout,
    Refund,
    SavedPaymentMethod,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

ES = Escrow.Status
Code = LedgerAccount.Code
Kind = LedgerTransaction.Kind

FUNDABLE = (ES.UNFUNDED, ES.FAILED, ES.EXPIRED)
LIVE = (ES.HELD, ES.RELEASED, ES.SPLIT, ES.FROZEN)
# Accounts that hold an escrow's money before it leaves the platform.
INSIDE = (Code.ESCROW_HELD, Code.CONTRACTOR_PAYABLE, Code.PLATFORM_REVENUE, Code.CHARGEBACKS)
TRANSITIONS: dict[str, frozenset[str]] = {
    ES.UNFUNDED: frozenset({ES.HELD, ES.FAILED, ES.EXPIRED, ES.REFUNDED}),
    ES.FAILED: frozenset({ES.HELD, ES.REFUNDED}),
    ES.EXPIRED: frozenset({ES.HELD, ES.REFUNDED}),
    ES.HELD: frozenset({ES.RELEASED, ES.REFUNDED, ES.SPLIT, ES.FROZEN}),
    ES.RELEASED: frozenset({ES.REFUNDED, ES.SPLIT, ES.FROZEN}),
    ES.SPLIT: frozenset({ES.FROZEN}),
    ES.FROZEN: frozenset({ES.HELD, ES.RELEASED, ES.SPLIT}),
    ES.REFUNDED: frozenset(),
}
PAYOUT_LEASE = dt.timedelta(minutes=5)
MAX_BACKOFF = dt.timedelta(hours=24)


def _gateway():
    from .gateway import get_gateway

    return get_gateway()


def _gateway_errors() -> tuple[type[Exception], type[Exception]]:
    from .gateway.base import CardDeclined, GatewayError

    return GatewayError, CardDeclined


def _payout_hold() -> dt.timedelta:
    return dt.timedelta(hours=settings.PAYMENTS_PAYOUT_HOLD_HOURS)


def _key(escrow: Escrow, what: str) -> str:
    return f"escrow:{escrow.public_id}:{what}"


# --- helpers ----------------------------------------------------------------------


def amount_due_cents(task: Task, price_cents: int) -> int:
    """What booking at ``price_cents`` costs before fees: the price on a fixed
    task, the hourly rate times the estimated hours on an hourly one."""
    if task.budget_type == Task.BudgetType.HOURLY:
        return price_cents * (task.estimated_hours or 1)
    return price_cents


def _lock(escrow: Escrow) -> tuple[Task, Escrow]:
    """Lock the escrow's task, then the escrow (the fixed order)."""
    try:
        task = Task.objects.select_for_update(no_key=True).get(pk=escrow.task_id)
        locked = Escrow.objects.select_for_update(no_key=True).get(pk=escrow.pk)
    except (Task.DoesNotExist, Escrow.DoesNotExist) as exc:
        raise NotFound(_("This payment no longer exists.")) from exc
    return task, locked


def _move(escrow: Escrow, to: str, **fields: Any) -> None:
    """Conditional update of the (locked) escrow's status; refuses moves the
    table does not allow and moves somebody else made first."""
    if to not in TRANSITIONS.get(escrow.status, frozenset()):
        raise Conflict(
            _("This payment is %(status)s, so it can't be %(action)s.")
            % {"status": escrow.get_status_display().lower(), "action": ES(to).label.lower()},
            code="escrow_state",
            extra={"status": escrow.status},
        )
    updated = Escrow.objects.filter(pk=escrow.pk, status=escrow.status).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if updated != 1:
        raise Conflict(_("This payment changed a moment ago. Reload and try again."), code="escrow_changed")
    escrow.status = to
    for name, value in fields.items():
        setattr(escrow, name, value)


def _require_system_or_staff(by: User | None) -> None:
    if by is not None and not by.is_staff:
        raise PermissionDenied(_("Only BittieTasks staff can move this money."), code="not_staff")


def _holdings(escrow: Escrow) -> dict[str, int]:
    """This escrow's money inside the platform, by account code."""
    inside: dict[str, int] = {}
    for (code, _owner), cents in ledger.escrow_holdings(escrow).items():
        if code in INSIDE:
            inside[code] = inside.get(code, 0) + cents
    return inside


def _legs_to(escrow: Escrow, target: dict[str, int], outflows: dict[str, int]) -> list[ledger.Leg]:
    """Legs that move this escrow's money from where it is to ``target``
    (inside accounts) plus ``outflows`` (refunds_out, payouts_out)."""
    current = _holdings(escrow)
    owner_of = {Code.CONTRACTOR_PAYABLE: escrow.contractor, Code.PAYOUTS_OUT: escrow.contractor}
    legs: list[ledger.Leg] = []
    for code in INSIDE:
        delta = target.get(code, 0) - current.get(code, 0)
        if delta:
            legs.append((code, owner_of.get(code), delta))
    for code, cents in outflows.items():
        if cents:
            legs.append((code, owner_of.get(code), cents))
    return legs


def _notify(user: User, *, title: str, body: str, task: Task, dedupe_key: str) -> None:
    from messaging.notifications import notify

    try:
        notify(user, kind="task_update", title=title, body=body, task=task, dedupe_key=dedupe_key)
    except Exception:  # noqa: BLE001 - a notification must never undo a money movement
        logger.exception("Payment notification %s failed", dedupe_key)


def _operation(escrow: Escrow | None, key: str, operation: str, request: dict[str, Any]) -> GatewayOperation:
    """The stored intent for ``key`` (created now if new); a retry finds it."""
    op, _created = GatewayOperation.objects.get_or_create(
        idempotency_key=key, defaults={"operation": operation, "escrow": escrow, "request": request}
    )
    return op


def _op_started(op: GatewayOperation) -> None:
    GatewayOperation.objects.filter(pk=op.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())


def _op_done(op: GatewayOperation, *, response_id: str = "", error: str = "", failed: bool = False) -> None:
    status = GatewayOperation.Status.FAILED if failed else (
        GatewayOperation.Status.STARTED if error else GatewayOperation.Status.SUCCEEDED
    )
    GatewayOperation.objects.filter(pk=op.pk).update(
        status=status, response_id=response_id or F("response_id"), error=error[:500], updated_at=timezone.now()
    )


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
    A decline: ``Conflict`` with the gateway's message, escrow failed.

    The escrow needs an offer: a withdrawn, ``is_instant`` placeholder offer
    carries the price until ``task_instant_book`` creates the accepted one, to
    which the escrow is then pointed (``tasks.payment_hooks.on_assigned``)."""
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
        card = SavedPaymentMethod.objects.filter(user_id=task.customer_id).first()
        if card is None:
            raise Conflict(
                _("The customer has no saved card for instant booking. Make an offer instead."), code="no_saved_card"
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
                proposed_start=proposed_start,
                status=Offer.Status.WITHDRAWN,
                is_instant=True,
                decided_at=now,
                message=_("Instant booking (payment in progress)."),
            )
            escrow = _new_escrow(task, placeholder, _quote_for(task, task.budget_cents), now)
    result = _create_intent(
        escrow,
        customer_id=card.gateway_customer_id,
        payment_method_id=card.gateway_payment_method_id,
        off_session=True,
    )
    if result.status == "succeeded":
        escrow_funded(
            escrow, payment_intent_id=result.id, charge_id=result.charge_id or "", amount_cents=escrow.total_cents
        )
    escrow.refresh_from_db()
    return escrow


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
    from .tasks import execute_refund

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


# --- chargebacks ----------------------------------------------------------------------------


def _freeze_count(escrow: Escrow, mark: str) -> int:
    return escrow.transactions.filter(idempotency_key__contains=mark).count()


@transaction.atomic
def escrow_freeze(escrow: Escrow, *, reason: str = "", by: User | None = None) -> Escrow:
    """A chargeback (``charge.dispute.created``) or an opened dispute: the
    escrow's money on the platform moves to the chargebacks account (on
    hold), its payout stops, and staff are alerted. Idempotent (a frozen
    escrow stays as it is). System or staff."""
    _require_system_or_staff(by)
    task, escrow = _lock(escrow)
    if escrow.status == ES.FROZEN:
        return escrow
    if escrow.status not in (ES.HELD, ES.RELEASED, ES.SPLIT):
        raise Conflict(
            _("This payment is %(status)s, so it can't be frozen.") % {"status": escrow.get_status_display().lower()},
            code="escrow_state",
        )
    n = _freeze_count(escrow, ledger.FREEZE_MARK) + 1
    inside = sum(_holdings(escrow).values())
    _move(escrow, ES.FROZEN, status_before_freeze=escrow.status, frozen_at=timezone.now())
    legs = _legs_to(escrow, {Code.CHARGEBACKS: inside}, {})
    ledger.post(
        Kind.ADJUSTMENT,
        escrow,
        legs,
        idempotency_key=f"escrow:{escrow.public_id}{ledger.FREEZE_MARK}{n}",
        memo=(reason or "chargeback")[:300],
        by=by,
    )
    from accounts.models import User

    for admin in User.objects.filter(is_staff=True, is_active=True):
        _notify(
            admin,
            title=_("Dispute: money frozen") if reason.startswith("dispute") else _("Chargeback: money frozen"),
            body=_("The money for “%(task)s” is frozen until staff decide (%(reason)s).")
            % {"task": task.title, "reason": reason or _("chargeback")},
            task=task,
            dedupe_key=f"chargeback:{escrow.public_id}:{n}",
        )
    return escrow


@transaction.atomic
def escrow_unfreeze(escrow: Escrow, *, by: User | None, reason: str = "") -> Escrow:
    """Staff, or the system settling an agreed dispute (reputation.disputes):
    the chargeback was won or withdrawn, or the dispute is settled; the money
    goes back where it was before the freeze, the escrow to its earlier status."""
    _require_system_or_staff(by)
    _task, escrow = _lock(escrow)
    if escrow.status != ES.FROZEN:
        raise Conflict(_("This payment is not frozen."), code="escrow_state")
    n = _freeze_count(escrow, ledger.FREEZE_MARK)
    freeze = escrow.transactions.get(idempotency_key=f"escrow:{escrow.public_id}{ledger.FREEZE_MARK}{n}")
    legs = [(e.account.code, e.account.owner, -e.amount_cents) for e in freeze.entries.select_related("account__owner")]
    _move(escrow, escrow.status_before_freeze or ES.HELD, status_before_freeze="")
    ledger.post(
        Kind.ADJUSTMENT,
        escrow,
        legs,
        idempotency_key=f"escrow:{escrow.public_id}{ledger.UNFREEZE_MARK}{n}",
        memo=(reason or "chargeback resolved")[:300],
        by=by,
    )
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


# --- for tasks.payment_hooks ---------------------------------------------------------------------


def live_escrow(task: Task) -> Escrow | None:
    return Escrow.objects.select_for_update(no_key=True).filter(task=task, status__in=LIVE).first()


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
