"""Services for the people's accounts at the gateway: a customer's saved card
(instant booking charges it off session) and a contractor's payout account
(Stripe Connect Express, onboarded through the gateway's hosted link).

Gateway calls are made outside any lock; their results are stored in short
transactions that lock the user's row, so two tabs saving a card at once end
with one card. Idempotency keys are derived from the intent
(``user:<id>:connected_account``), so a retry reuses them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.services import user_require_verified
from core.errors import ApplicationError, PermissionDenied

from .gateway import CardDeclined, GatewayError, get_gateway
from .models import ConnectedAccount, SavedPaymentMethod

if TYPE_CHECKING:
    from accounts.models import User


def _lock_user(user: User) -> None:
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).first()


def _unavailable(exc: GatewayError) -> ApplicationError:
    if exc.retryable:
        return ApplicationError(_("The payment service did not answer. Try again in a moment."), code="gateway_unavailable")
    return ApplicationError(exc.message, code=exc.code or "gateway_error")


# --- saved card (customers) -----------------------------------------------------------


def payment_method_save(user: User, *, card_number: str) -> SavedPaymentMethod:
    """Simulated gateway: save a test card through the set-up flow (customer,
    SetupIntent, confirmation) and keep it as the user's one saved card.
    A declined card raises ``CardDeclined`` and nothing is saved. Only a
    verified customer."""
    user_require_verified(user)
    if not user.is_customer:
        raise PermissionDenied(_("Only customers save a card for instant booking."), code="not_customer")
    gateway = get_gateway()
    if not gateway.is_simulated:
        raise ApplicationError(_("Save your card with the card form."), code="use_payment_element")
    existing = SavedPaymentMethod.objects.filter(user=user).first()
    try:
        customer_id = existing.gateway_customer_id if existing else gateway.create_customer(
            user.email, f"user:{user.pk}:customer"
        )
        setup = gateway.create_setup_intent(customer_id=customer_id, idempotency_key=f"user:{user.pk}:setup:{uuid.uuid4()}")
        setup = gateway.confirm_setup_intent(setup.id, card_number)
    except CardDeclined:
        raise
    except GatewayError as exc:
        raise _unavailable(exc) from exc
    with transaction.atomic():
        _lock_user(user)
        card, _created = SavedPaymentMethod.objects.update_or_create(
            user=user,
            defaults={
                "gateway_customer_id": customer_id,
                "gateway_payment_method_id": setup.payment_method_id or "",
                "brand": setup.card_brand[:20],
                "last4": setup.card_last4[:4],
            },
        )
    return card


def payment_method_remove(user: User) -> None:
    """Forget the saved card: instant booking of this customer's tasks stops."""
    with transaction.atomic():
        _lock_user(user)
        SavedPaymentMethod.objects.filter(user=user).delete()


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
