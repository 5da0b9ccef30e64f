"""The payment gateway interface: what escrow services ask of a card processor.

Two implementations: ``StripeGateway`` (payments/gateway/stripe_gateway.py, the
official ``stripe`` library) and ``SimulatedGateway`` (payments/gateway/simulated.py,
offline, for ``make run``, the demo and tests). Services get one from
``payments.gateway.get_gateway()``.

Rules every implementation keeps:
- Amounts are integer cents; currencies are ISO codes (lowercase at the gateway,
  results carry them upper case like the rest of the project).
- Every call that moves money takes an ``idempotency_key``; the same key returns
  the same object, so a retry after a timeout never charges twice.
- Errors are ``GatewayError`` with ``retryable`` telling the caller whether
  trying again later can help (network trouble, 5xx, rate limits) or not
  (bad request, card declined). A card decline is ``CardDeclined`` with a
  message a customer can read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _


class GatewayError(Exception):
    """The gateway refused or could not be reached.

    ``retryable``: True for network errors, timeouts, 5xx and rate limits (the
    same call with the same idempotency key may succeed later); False when the
    request itself was refused.
    """

    def __init__(self, message: str, *, retryable: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code or "gateway_error"


class CardDeclined(GatewayError):
    """The card was declined; ``message`` can be shown to the customer."""

    def __init__(
        self, message: str | None = None, *, code: str = "card_declined", decline_code: str = "", payment_intent_id: str = ""
    ) -> None:
        super().__init__(str(message or _("Your card was declined.")), retryable=False, code=code)
        self.decline_code = decline_code
        # The PaymentIntent the decline belongs to, when the gateway says (Stripe does on 402s).
        self.payment_intent_id = payment_intent_id

    @property
    def needs_authentication(self) -> bool:
        """The bank wants the cardholder to confirm (3-D Secure): an off-session
        charge can't go through without them."""
        return "authentication_required" in (self.code, self.decline_code)


@dataclass(frozen=True)
class PaymentIntentResult:
    id: str
    status: str  # requires_payment_method, requires_confirmation, requires_action, processing, succeeded, canceled
    client_secret: str = ""
    charge_id: str | None = None
    amount_cents: int = 0
    currency: str = "USD"
    metadata: dict[str, str] = field(default_factory=dict)
    last_error: str = ""


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending, succeeded, failed, canceled
    amount_cents: int = 0
    payment_intent_id: str = ""


@dataclass(frozen=True)
class TransferResult:
    id: str
    amount_cents: int = 0
    destination_account_id: str = ""


@dataclass(frozen=True)
class AccountStatus:
    id: str
    details_submitted: bool
    payouts_enabled: bool


@dataclass(frozen=True)
class SetupIntentResult:
    id: str
    status: str  # requires_payment_method, requires_confirmation, requires_action, processing, succeeded, canceled
    client_secret: str = ""
    payment_method_id: str | None = None
    card_brand: str = ""
    card_last4: str = ""
    card_exp_month: int | None = None
    card_exp_year: int | None = None
    customer_id: str = ""
    last_error: str = ""


@dataclass(frozen=True)
class GatewayRecord:
    """One money movement as the gateway recorded it (for reconciliation).

    ``kind``: charge, refund or transfer. ``reference``: the charge's payment
    intent, the refund's payment intent, the transfer's destination account.
    """

    kind: str
    id: str
    amount_cents: int
    currency: str
    status: str
    created: dt.datetime | None
    reference: str = ""
    transfer_group: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class PaymentGateway:
    """The interface. Keyword-only arguments, as the contract lists them."""

    name = "base"
    is_simulated = False

    # --- PaymentIntents (charges on the platform, "separate charges and transfers")
    def create_payment_intent(
        self,
        *,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        transfer_group: str,
        metadata: dict[str, Any],
        customer_id: str | None = None,
        payment_method_id: str | None = None,
        off_session: bool = False,
        confirm: bool = False,
    ) -> PaymentIntentResult:
        raise NotImplementedError

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntentResult:
        raise NotImplementedError

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> PaymentIntentResult:
        raise NotImplementedError

    # --- Refunds
    def create_refund(
        self, *, payment_intent_id: str, amount_cents: int, idempotency_key: str, metadata: dict[str, Any]
    ) -> RefundResult:
        raise NotImplementedError

    def list_payment_intent_refunds(self, payment_intent_id: str) -> list[RefundResult]:
        raise NotImplementedError

    # --- Connect: accounts, onboarding links, transfers
    def create_transfer(
        self,
        *,
        amount_cents: int,
        currency: str,
        destination_account_id: str,
        transfer_group: str,
        idempotency_key: str,
        metadata: dict[str, Any],
    ) -> TransferResult:
        raise NotImplementedError

    def create_connected_account(self, *, user_email: str, idempotency_key: str) -> str:
        raise NotImplementedError

    def create_account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        raise NotImplementedError

    def retrieve_account(self, account_id: str) -> AccountStatus:
        raise NotImplementedError

    # --- Saved cards (instant book)
    def create_customer(self, email: str, idempotency_key: str) -> str:
        raise NotImplementedError

    def create_setup_intent(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, Any] | None = None
    ) -> SetupIntentResult:
        """A SetupIntent with ``usage=off_session`` for the customer: the
        browser confirms it (Stripe's Payment Element) and the card it saves
        can then be charged without the customer (instant booking)."""
        raise NotImplementedError

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentResult:
        """The SetupIntent now, with its payment method's card details."""
        raise NotImplementedError

    def detach_payment_method(self, payment_method_id: str) -> None:
        """Forget a saved card at the gateway (it can't be charged any more)."""
        raise NotImplementedError

    # --- Reconciliation
    def list_charges(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        raise NotImplementedError

    def list_refunds(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        raise NotImplementedError

    def list_transfers(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        raise NotImplementedError
