"""Services for the people's accounts at the gateway: a customer's saved card
(instant booking charges it off session) and a contractor's payout account
(Stripe Connect Express, onboarded through the gateway's hosted link).

Gateway calls are made outside any lock; their results are stored in short
transactions that lock the user's row, so two tabs saving a card at once end
with one card. Idempotency keys are derived from the intent
(``user:<id>:connected_account``), so a retry reuses them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied

from .gateway import CardDeclined, GatewayError, get_gateway
from .models import CardSetup, ConnectedAccount, GatewayCustomer, SavedPaymentMethod

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)


def _lock_user(user: User) -> None:
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()


def _unavailable(exc: GatewayError) -> ApplicationError:
    if exc.retryable:
        return ApplicationError(_("The payment service did not answer. Try again in a moment."), code="gateway_unavailable")
    return ApplicationError(exc.message, code=exc.code or "gateway_error")


# --- saved card (customers) -----------------------------------------------------------
#
# A card is saved through a SetupIntent (``usage=off_session``) on the user's
# gateway customer. ``card_setup_start`` creates it (stored as a ``CardSetup``
# before the browser sees its client secret); the browser confirms it (Stripe's
# Payment Element, or the simulated gateway's test-card form); then
# ``card_setup_succeeded`` (from the ``setup_intent.succeeded`` webhook, or the
# card page the gateway returns to: whichever comes first, the other finds it
# done) reads the SetupIntent back from the gateway and keeps its card as the
# user's one saved card. Instant booking charges that card off session.

SETUP_REUSE = dt.timedelta(hours=1)


def _require_customer(user: User) -> None:
    user_require_verified(user)
    if not user.is_customer:
        raise PermissionDenied(_("Only customers save a card for instant booking."), code="not_customer")


def gateway_customer_get_or_create(user: User) -> GatewayCustomer:
    """The user's customer at the gateway, created once (key ``user:<id>:customer``)."""
    found = GatewayCustomer.objects.filter(user=user).first()
    if found is not None:
        return found
    try:
        customer_id = get_gateway().create_customer(user.email, f"user:{user.pk}:customer")
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    with transaction.atomic():
        _lock_user(user)
        found, _created = GatewayCustomer.objects.get_or_create(user=user, defaults={"gateway_customer_id": customer_id})
    return found


@dataclass(frozen=True)
class CardSetupStarted:
    setup: CardSetup
    client_secret: str


def card_setup_start(user: User) -> CardSetupStarted:
    """A SetupIntent for the card page: the one started in the last hour and
    still waiting for a card, or a new one. Only a verified customer."""
    _require_customer(user)
    customer = gateway_customer_get_or_create(user)
    gateway = get_gateway()
    recent = (
        CardSetup.objects.filter(
            user=user,
            status=CardSetup.Status.STARTED,
            gateway_customer_id=customer.gateway_customer_id,
            created_at__gte=timezone.now() - SETUP_REUSE,
        )
        .order_by("-created_at", "-id")
        .first()
    )
    try:
        if recent is not None:
            intent = gateway.retrieve_setup_intent(recent.setup_intent_id)
            if intent.status in ("requires_payment_method", "requires_confirmation", "requires_action"):
                return CardSetupStarted(recent, intent.client_secret)
        key = f"user:{user.pk}:setup:{uuid.uuid4()}"
        intent = gateway.create_setup_intent(
            customer_id=customer.gateway_customer_id, idempotency_key=key, metadata={"user": str(user.pk)}
        )
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    setup = CardSetup.objects.create(
        user=user, gateway_customer_id=customer.gateway_customer_id, setup_intent_id=intent.id
    )
    return CardSetupStarted(setup, intent.client_secret)


def card_setup_succeeded(setup_intent_id: str, *, user: User | None = None) -> SavedPaymentMethod | None:
    """The SetupIntent says it succeeded: keep its card as the user's saved
    card, once. Reads the SetupIntent from the gateway (status, payment
    method, brand, last 4, expiry) rather than trusting the caller. ``user``
    (the card page) must own the set-up, else ``NotFound``; the webhook passes
    none. Returns the user's saved card afterwards (None if they have none).

    Never replaces a card saved by a newer set-up, and never saves one whose
    set-up was cancelled (the card was removed after it started): such a
    set-up ends ``superseded``/``cancelled`` and its card is detached at the
    gateway. Idempotent: a set-up already decided changes nothing."""
    setup = CardSetup.objects.filter(setup_intent_id=setup_intent_id or "").first()
    if setup is None or (user is not None and setup.user_id != user.pk):
        raise NotFound(_("No such card set-up."))
    if setup.status != CardSetup.Status.STARTED:
        return SavedPaymentMethod.objects.filter(user_id=setup.user_id).first()
    try:
        intent = get_gateway().retrieve_setup_intent(setup.setup_intent_id)
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    if intent.status != "succeeded" or not intent.payment_method_id:
        if intent.status == "canceled":
            CardSetup.objects.filter(pk=setup.pk, status=CardSetup.Status.STARTED).update(
                status=CardSetup.Status.FAILED, error=intent.last_error[:300] or "canceled", decided_at=timezone.now()
            )
        raise Conflict(
            intent.last_error or _("The card was not saved: the bank has not confirmed it. Try again."),
            code="card_not_saved",
        )
    if intent.customer_id and intent.customer_id != setup.gateway_customer_id:
        raise Conflict(_("This card set-up belongs to another customer."), code="setup_customer_mismatch")
    detach: list[str] = []
    with transaction.atomic():
        _lock_user(setup.user)
        setup = CardSetup.objects.select_for_update(no_key=True).get(pk=setup.pk)
        current = SavedPaymentMethod.objects.select_related("setup").filter(user_id=setup.user_id).first()
        now = timezone.now()
        if setup.status != CardSetup.Status.STARTED:
            return current
        newer = current is not None and current.setup is not None and current.setup.created_at > setup.created_at
        if newer:
            setup.status = CardSetup.Status.SUPERSEDED
            detach.append(intent.payment_method_id)
        else:
            if current is not None and current.gateway_payment_method_id != intent.payment_method_id:
                detach.append(current.gateway_payment_method_id)
            current, _created = SavedPaymentMethod.objects.update_or_create(
                user_id=setup.user_id,
                defaults={
                    "gateway_customer_id": setup.gateway_customer_id,
                    "gateway_payment_method_id": intent.payment_method_id,
                    "brand": intent.card_brand[:20],
                    "last4": intent.card_last4[:4],
                    "exp_month": intent.card_exp_month,
                    "exp_year": intent.card_exp_year,
                    "setup": setup,
                },
            )
            setup.status = CardSetup.Status.SAVED
        setup.payment_method_id = intent.payment_method_id
        setup.decided_at = now
        setup.save(update_fields=["status", "payment_method_id", "decided_at"])
        for pm_id in detach:
            transaction.on_commit(lambda pm_id=pm_id: _detach_quietly(pm_id))
    return current


def _detach_quietly(payment_method_id: str) -> None:
    """A card we no longer use: detach it at the gateway (best effort; a
    failure leaves a card nobody charges, and is logged)."""
    if not payment_method_id:
        return
    try:
        get_gateway().detach_payment_method(payment_method_id)
    except GatewayError as exc:
        logger.warning("Could not detach payment method %s: %s", payment_method_id, exc.message)


def payment_method_save(user: User, *, card_number: str, exp_month: int = 12, exp_year: int = 2034) -> SavedPaymentMethod:
    """Simulated gateway only (the demo's card form): the same set-up flow as
    Stripe's Payment Element, with a test card confirmed server side.
    A declined card raises ``CardDeclined`` and nothing is saved."""
    _require_customer(user)
    gateway = get_gateway()
    if not gateway.is_simulated:
        raise ApplicationError(_("Save your card with the card form."), code="use_payment_element")
    started = card_setup_start(user)
    try:
        gateway.confirm_setup_intent(
            started.setup.setup_intent_id, card_number, exp_month=exp_month, exp_year=exp_year
        )
    except CardDeclined:
        CardSetup.objects.filter(pk=started.setup.pk, status=CardSetup.Status.STARTED).update(
            status=CardSetup.Status.FAILED, error="declined", decided_at=timezone.now()
        )
        raise
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    card = card_setup_succeeded(started.setup.setup_intent_id, user=user)
    assert card is not None  # noqa: S101 - a succeeded set-up of the only card saves it
    return card


def payment_method_remove(user: User) -> bool:
    """Forget the saved card: instant booking of this customer's tasks stops.
    Set-ups still waiting are cancelled (a late success can't bring the card
    back) and the card is detached at the gateway. Returns whether there was one."""
    with transaction.atomic():
        _lock_user(user)
        card = SavedPaymentMethod.objects.filter(user=user).first()
        CardSetup.objects.filter(user=user, status=CardSetup.Status.STARTED).update(
            status=CardSetup.Status.CANCELLED, decided_at=timezone.now()
        )
        if card is None:
            return False
        pm_id = card.gateway_payment_method_id
        card.delete()
        transaction.on_commit(lambda: _detach_quietly(pm_id))
    return True


# --- payout account (contractors) ---------------------------------------------------------


def connected_account_get_or_create(user: User) -> ConnectedAccount:
    """The contractor's payout account, created at the gateway on first use
    (key ``user:<id>:connected_account``) and stored before any onboarding
    link is made, so the gateway's ``account.updated`` finds it."""
    user_require_verified(user)
    if not user.is_contractor:
        raise PermissionDenied(_("Only contractors set up payouts."), code="not_contractor")
    account = ConnectedAccount.objects.filter(user=user).first()
    if account is not None:
        return account
    try:
        account_id = get_gateway().create_connected_account(
            user_email=user.email, idempotency_key=f"user:{user.pk}:connected_account"
        )
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    with transaction.atomic():
        _lock_user(user)
        account, _created = ConnectedAccount.objects.get_or_create(user=user, defaults={"gateway_account_id": account_id})
    return account


def payouts_onboarding_link(user: User, *, refresh_url: str, return_url: str) -> str:
    """The gateway's hosted onboarding page for the contractor's payout
    account (created first if needed)."""
    account = connected_account_get_or_create(user)
    try:
        return get_gateway().create_account_link(account.gateway_account_id, refresh_url=refresh_url, return_url=return_url)
    except GatewayError as exc:
        raise _unavailable(exc) from exc


def connected_account_refresh(user: User) -> ConnectedAccount | None:
    """Ask the gateway how far onboarding got and store its two flags (the
    ``account.updated`` webhook does the same; whichever comes first wins,
    the other finds nothing to change)."""
    account = ConnectedAccount.objects.filter(user=user).first()
    if account is None:
        return None
    try:
        status = get_gateway().retrieve_account(account.gateway_account_id)
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update(no_key=True).get(pk=account.pk)
        if (account.details_submitted, account.payouts_enabled) != (status.details_submitted, status.payouts_enabled):
            account.details_submitted = status.details_submitted
            account.payouts_enabled = status.payouts_enabled
            account.save(update_fields=["details_submitted", "payouts_enabled", "updated_at"])
    return account
