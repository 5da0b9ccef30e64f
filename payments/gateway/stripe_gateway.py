"""StripeGateway: the gateway on Stripe, through the official ``stripe`` library.

Marketplace shape: "separate charges and transfers". The customer's payment is
a PaymentIntent on the platform (captured at once, ``transfer_group`` per task);
the contractor has a Connect Express account and gets a Transfer after the
payout hold.

- One ``stripe.StripeClient`` per gateway, with timeouts on its HTTP client and
  ``max_network_retries=2``: the library retries connection errors, timeouts,
  409 and 5xx answers (with the same idempotency key), never a refused request
  or a declined card.
- Every call that creates or moves money carries the caller's idempotency key
  (derived from intent, e.g. ``escrow:<id>:payment_intent``), so a retry after a
  timeout gets the first call's object back.
- ``STRIPE_API_BASE`` points the client elsewhere (a local fake in tests).
- stripe 16 returns ``StripeObject`` instances, not dicts: ``to_dict()`` first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import stripe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .base import (
    AccountStatus,
    CardDeclined,
    GatewayError,
    GatewayRecord,
    PaymentGateway,
    PaymentIntentResult,
    RefundResult,
    SetupIntentResult,
    TransferResult,
)

T = TypeVar("T")

DECLINE_MESSAGES = {
    "insufficient_funds": gettext_lazy("Your card has insufficient funds."),
    "expired_card": gettext_lazy("Your card has expired."),
    "incorrect_cvc": gettext_lazy("Your card's security code is incorrect."),
    "processing_error": gettext_lazy("An error occurred while processing your card. Try again in a little bit."),
}


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _map_error(exc: stripe.StripeError) -> GatewayError:
    """Stripe's exceptions -> GatewayError / CardDeclined (retryable or not)."""
    code = getattr(exc, "code", None) or ""
    message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    if isinstance(exc, stripe.CardError):
        error = getattr(exc, "error", None)
        decline_code = getattr(error, "decline_code", None) or code or ""
        text = DECLINE_MESSAGES.get(decline_code)
        intent = getattr(error, "payment_intent", None)
        intent_id = (intent.get("id") if isinstance(intent, dict) else getattr(intent, "id", None)) or ""
        return CardDeclined(
            str(text) if text else (getattr(exc, "user_message", None) or _("Your card was declined.")),
            code=code or "card_declined",
            decline_code=decline_code,
            payment_intent_id=intent_id,
        )
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return GatewayError(message, retryable=True, code=code or "api_connection_error")
    if isinstance(exc, stripe.IdempotencyError):
        return GatewayError(message, retryable=False, code=code or "idempotency_error")
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError, stripe.InvalidRequestError)):
        return GatewayError(message, retryable=False, code=code or "invalid_request")
    status = getattr(exc, "http_status", None)
    return GatewayError(message, retryable=status is None or status >= 500 or status == 409, code=code or "api_error")


def _intent_result(pi: dict[str, Any]) -> PaymentIntentResult:
    latest = pi.get("latest_charge")
    if isinstance(latest, dict):
        latest = latest.get("id")
    error = pi.get("last_payment_error") or {}
    return PaymentIntentResult(
        id=pi["id"],
        status=pi.get("status", ""),
        client_secret=pi.get("client_secret") or "",
        charge_id=latest or None,
        amount_cents=int(pi.get("amount") or 0),
        currency=str(pi.get("currency") or "usd").upper(),
        metadata=dict(pi.get("metadata") or {}),
        last_error=(error or {}).get("message", "") if isinstance(error, dict) else "",
    )


def _record(kind: str, obj: dict[str, Any], reference: Any) -> GatewayRecord:
    if isinstance(reference, dict):
        reference = reference.get("id")
    created = obj.get("created")
    return GatewayRecord(
        kind=kind,
        id=obj["id"],
        amount_cents=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "usd").upper(),
        status=str(obj.get("status") or ("reversed" if obj.get("reversed") else "")),
        created=dt.datetime.fromtimestamp(created, tz=dt.UTC) if created else None,
        reference=reference or "",
        transfer_group=obj.get("transfer_group") or "",
        metadata=dict(obj.get("metadata") or {}),
    )


class StripeGateway(PaymentGateway):
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_network_retries: int = 2,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if not api_key:
            raise GatewayError("A Stripe secret key is needed", code="configuration")
        base_addresses = {"api": api_base} if api_base else None
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=max_network_retries,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
        )

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _map_error(exc) from exc

    # --- PaymentIntents -------------------------------------------------------
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
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "metadata": {k: str(v) for k, v in (metadata or {}).items()},
            "payment_method_types": ["card"],
        }
        if transfer_group:
            params["transfer_group"] = transfer_group
        if customer_id:
            params["customer"] = customer_id
        if payment_method_id:
            params["payment_method"] = payment_method_id
        if confirm:
            params["confirm"] = True
            if off_session:
                params["off_session"] = True
        pi = self._call(self.client.v1.payment_intents.create, params, {"idempotency_key": idempotency_key})
        return _intent_result(_as_dict(pi))

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntentResult:
        return _intent_result(_as_dict(self._call(self.client.v1.payment_intents.retrieve, intent_id)))

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> PaymentIntentResult:
        pi = self._call(self.client.v1.payment_intents.cancel, intent_id, {}, {"idempotency_key": idempotency_key})
        return _intent_result(_as_dict(pi))

    # --- Refunds --------------------------------------------------------------
    def create_refund(
        self, *, payment_intent_id: str, amount_cents: int, idempotency_key: str, metadata: dict[str, Any]
    ) -> RefundResult:
        params = {
            "payment_intent": payment_intent_id,
            "amount": amount_cents,
            "metadata": {k: str(v) for k, v in (metadata or {}).items()},
        }
        refund = _as_dict(self._call(self.client.v1.refunds.create, params, {"idempotency_key": idempotency_key}))
        return RefundResult(
            id=refund["id"],
            status=refund.get("status") or "pending",
            amount_cents=int(refund.get("amount") or 0),
            payment_intent_id=refund.get("payment_intent") or payment_intent_id,
        )

    def list_payment_intent_refunds(self, payment_intent_id: str) -> list[RefundResult]:
        page = self._call(self.client.v1.refunds.list, {"payment_intent": payment_intent_id, "limit": 100})
        return [
            RefundResult(
                id=r["id"],
                status=r.get("status") or "",
                amount_cents=int(r.get("amount") or 0),
                payment_intent_id=r.get("payment_intent") or payment_intent_id,
            )
            for r in (_as_dict(item) for item in self._call(lambda: list(page.auto_paging_iter())))
        ]

    # --- Connect ----------------------------------------------------------------
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
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "destination": destination_account_id,
            "metadata": {k: str(v) for k, v in (metadata or {}).items()},
        }
        if transfer_group:
            params["transfer_group"] = transfer_group
        transfer = _as_dict(self._call(self.client.v1.transfers.create, params, {"idempotency_key": idempotency_key}))
        return TransferResult(
            id=transfer["id"],
            amount_cents=int(transfer.get("amount") or 0),
            destination_account_id=transfer.get("destination") or destination_account_id,
        )

    def create_connected_account(self, *, user_email: str, idempotency_key: str) -> str:
        params = {
            "type": "express",
            "email": user_email,
            "capabilities": {"transfers": {"requested": True}},
        }
        account = _as_dict(self._call(self.client.v1.accounts.create, params, {"idempotency_key": idempotency_key}))
        return account["id"]

    def create_account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        params = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        return _as_dict(self._call(self.client.v1.account_links.create, params))["url"]

    def retrieve_account(self, account_id: str) -> AccountStatus:
        account = _as_dict(self._call(self.client.v1.accounts.retrieve, account_id))
        return AccountStatus(
            id=account["id"],
            details_submitted=bool(account.get("details_submitted")),
            payouts_enabled=bool(account.get("payouts_enabled")),
        )

    # --- Saved cards ------------------------------------------------------------
    def create_customer(self, email: str, idempotency_key: str) -> str:
        customer = self._call(self.client.v1.customers.create, {"email": email}, {"idempotency_key": idempotency_key})
        return _as_dict(customer)["id"]

    def create_setup_intent(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, Any] | None = None
    ) -> SetupIntentResult:
        params: dict[str, Any] = {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]}
        if metadata:
            params["metadata"] = {k: str(v) for k, v in metadata.items()}
        seti = _as_dict(self._call(self.client.v1.setup_intents.create, params, {"idempotency_key": idempotency_key}))
        return self._setup_result(seti)

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentResult:
        seti = _as_dict(
            self._call(self.client.v1.setup_intents.retrieve, setup_intent_id, {"expand": ["payment_method"]})
        )
        return self._setup_result(seti)

    def detach_payment_method(self, payment_method_id: str) -> None:
        self._call(self.client.v1.payment_methods.detach, payment_method_id)

    @staticmethod
    def _setup_result(seti: dict[str, Any]) -> SetupIntentResult:
        pm = seti.get("payment_method")
        card = (pm.get("card") or {}) if isinstance(pm, dict) else {}
        customer = seti.get("customer")
        error = seti.get("last_setup_error") or {}
        return SetupIntentResult(
            id=seti["id"],
            status=seti.get("status", ""),
            client_secret=seti.get("client_secret") or "",
            payment_method_id=(pm.get("id") if isinstance(pm, dict) else pm) or None,
            card_brand=card.get("brand", "") or "",
            card_last4=card.get("last4", "") or "",
            card_exp_month=card.get("exp_month") or None,
            card_exp_year=card.get("exp_year") or None,
            customer_id=(customer.get("id") if isinstance(customer, dict) else customer) or "",
            last_error=(error.get("message") or "") if isinstance(error, dict) else "",
        )

    # --- Reconciliation -----------------------------------------------------------
    def _list(self, service: Any, since: dt.datetime | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 100}
        if since is not None:
            params["created"] = {"gt": int(since.timestamp()) - 1}

        def fetch() -> list[dict[str, Any]]:
            return [_as_dict(item) for item in service.list(params).auto_paging_iter()]

        items = self._call(fetch)
        if since is not None:
            floor = since.timestamp()
            items = [item for item in items if (item.get("created") or 0) >= int(floor)]
        return items

    def list_charges(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [
            _record("charge", c, c.get("payment_intent"))
            for c in self._list(self.client.v1.charges, since)
            if c.get("status") == "succeeded"
        ]

    def list_refunds(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [_record("refund", r, r.get("payment_intent")) for r in self._list(self.client.v1.refunds, since)]

    def list_transfers(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [_record("transfer", t, t.get("destination")) for t in self._list(self.client.v1.transfers, since)]
