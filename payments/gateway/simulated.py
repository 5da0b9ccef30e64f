"""The simulated gateway: Stripe's states and webhook events, offline.

Used by ``make run``, the demo and tests whenever no Stripe key is set. No card
is charged: the checkout page takes Stripe's test card numbers and calls
``confirm(intent_id, card_number)``:

- ``4242 4242 4242 4242`` succeeds,
- ``4000 0000 0000 0002`` is declined (generic decline),
- ``4000 0000 0000 9995`` is declined for insufficient funds,
- ``4000 0000 0000 0341`` can be saved but is declined when charged (off session),
- ``4000 0025 0000 3155`` can be saved, but its bank asks the cardholder to
  authenticate each payment: charged off session it fails with
  ``authentication_required`` (on the checkout page, with the customer there, it pays),
- anything else is refused as "not a test card".

State lives in this process's memory (``STORE``), keyed by idempotency key, so
the same key always returns the same object (ids are derived from the key, so
they are stable too). Each state change produces the event Stripe would send,
built like Stripe's (``evt_...``, ``data.object``), signed the way Stripe signs
(``stripe.WebhookSignature``) and handed to the same function the webhook
endpoint uses (``payments.webhooks.receive``), so it goes through the same
verification, storage-once and Celery processing as a real event. The signing
secret is the first of ``STRIPE_WEBHOOK_SECRETS``, or one derived from
``SECRET_KEY`` (accepted by the endpoint only while the simulated gateway is
the configured one).

Helpers for the demo and tests: ``confirm``, ``confirm_setup_intent``,
``complete_onboarding``, ``open_dispute``, ``close_dispute``, ``fail_next`` (make the next call of
an operation raise) and ``reset``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

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

logger = logging.getLogger(__name__)

API_VERSION = "2025-simulated"

# card number -> (outcome, decline_code, brand)
TEST_CARDS: dict[str, tuple[str, str, str]] = {
    "4242424242424242": ("succeeded", "", "visa"),
    "4000000000000002": ("declined", "generic_decline", "visa"),
    "4000000000009995": ("declined", "insufficient_funds", "visa"),
    "4000000000000341": ("declined_on_charge", "generic_decline", "visa"),
    "4000002500003155": ("auth_on_charge", "authentication_required", "visa"),
    "5555555555554444": ("succeeded", "", "mastercard"),
}


def simulated_webhook_secret() -> str:
    """The secret the simulated gateway signs with when no Stripe secret is set.

    Derived from SECRET_KEY so it is not public; the endpoint accepts it only
    while PAYMENTS_GATEWAY is "simulated"."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"payments.simulated-webhooks", hashlib.sha256).hexdigest()
    return f"whsec_sim_{digest[:32]}"


def signing_secret() -> str:
    secrets = list(getattr(settings, "STRIPE_WEBHOOK_SECRETS", []) or [])
    return secrets[0] if secrets else simulated_webhook_secret()


def _id(prefix: str, key: str) -> str:
    return f"{prefix}_sim_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _decline_message(decline_code: str) -> str:
    if decline_code == "insufficient_funds":
        return _("Your card has insufficient funds.")
    if decline_code == "authentication_required":
        return _("Your bank asks you to confirm this payment.")
    return _("Your card was declined.")


def _normalize_card(card_number: str) -> str:
    return "".join(ch for ch in str(card_number) if ch.isdigit())


class _Store:
    """Every simulated object, by id, plus idempotency keys -> ids."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    # ``make run`` seeds the demo in one process and serves it from another:
    # with PAYMENTS_SIMULATED_STATE_FILE set, every gateway call reads the
    # objects from that file first and writes them back after, so a demo
    # escrow funded by seed_demo can still be refunded or paid out by the site.
    @staticmethod
    def _path() -> str:
        return getattr(settings, "PAYMENTS_SIMULATED_STATE_FILE", "") or ""

    def load(self) -> None:
        path = self._path()
        if not path:
            return
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            return
        if mtime == self._loaded_mtime:
            return
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        self.by_key = state.get("by_key", {})
        self.objects = state.get("objects", {})
        self._loaded_mtime = mtime

    def save(self) -> None:
        path = self._path()
        if not path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"by_key": self.by_key, "objects": self.objects}, handle)
        os.replace(tmp, path)
        self._loaded_mtime = os.path.getmtime(path)

    def reset(self) -> None:
        with self.lock:
            self.by_key: dict[str, str] = {}
            self.objects: dict[str, dict[str, Any]] = {}
            self.failures: dict[str, list[Exception]] = {}
            self.events: list[dict[str, Any]] = []
            self.delivered: list[tuple[str, int]] = []  # (event id, HTTP status)
            self._loaded_mtime: float | None = None
            self.depth = 0

    def idempotent(self, key: str, operation: str, create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The object made for this key, or a new one. Like Stripe, reusing a key
        for a different operation is an error."""
        with self.lock:
            full = f"{operation}:{key}"
            if full in self.by_key:
                return self.objects[self.by_key[full]]
            for existing in self.by_key:
                if existing.split(":", 1)[1] == key:
                    raise GatewayError(
                        f"Idempotency key {key!r} was used for another request", retryable=False, code="idempotency_error"
                    )
            self._maybe_fail(operation)
            obj = create()
            self.objects[obj["id"]] = obj
            self.by_key[full] = obj["id"]
            return obj

    def _maybe_fail(self, operation: str) -> None:
        queue = self.failures.get(operation)
        if queue:
            raise queue.pop(0)

    def get(self, object_id: str, kind: str) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise GatewayError(f"No such {kind}: {object_id!r}", retryable=False, code="resource_missing")
        return obj

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [obj for obj in self.objects.values() if obj["object"] == kind]


STORE = _Store()


def reset() -> None:
    """Forget every simulated object and event (tests)."""
    STORE.reset()


def fail_next(operation: str, error: Exception | None = None, *, times: int = 1) -> None:
    """Make the next ``times`` calls of ``operation`` (a method name such as
    ``create_transfer``) raise ``error`` (default: a retryable GatewayError),
    before anything is created."""
    error = error or GatewayError("Simulated gateway outage", retryable=True, code="api_connection_error")
    with STORE.lock:
        STORE.failures.setdefault(operation, []).extend([error] * times)


def build_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """An event shaped like Stripe's. The id is derived from the type and the
    object's whole state, so the same transition gives the same event id and
    every new state a new one."""
    created = int(time.time())
    return {
        "id": event_id or _id("evt", f"{event_type}:{json.dumps(obj, sort_keys=True, default=str)}"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": json.loads(json.dumps(obj))},
    }


def sign(payload: str, secret: str | None = None, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for ``payload`` (as Stripe computes it)."""
    import stripe

    return stripe.WebhookSignature.generate_signature_header(payload, secret or signing_secret(), timestamp=timestamp)


def deliver(event: dict[str, Any]) -> int:
    """Sign ``event`` and hand it to the webhook endpoint's ``receive``: the same
    verification, storing once and processing as a real delivery. Returns the
    HTTP status the endpoint answered."""
    from payments import webhooks

    payload = json.dumps(event, separators=(",", ":"))
    status, _body = webhooks.receive(payload.encode(), sign(payload))
    with STORE.lock:
        STORE.events.append(event)
        STORE.delivered.append((event["id"], status))
    if status >= 300:
        logger.error("Simulated webhook %s %s was refused with %s", event["type"], event["id"], status)
    return status


def _emit(event_type: str, obj: dict[str, Any]) -> None:
    deliver(build_event(event_type, obj))


def _intent_result(pi: dict[str, Any]) -> PaymentIntentResult:
    error = pi.get("last_payment_error") or {}
    return PaymentIntentResult(
        id=pi["id"],
        status=pi["status"],
        client_secret=pi["client_secret"],
        charge_id=pi.get("latest_charge"),
        amount_cents=pi["amount"],
        currency=pi["currency"].upper(),
        metadata=dict(pi.get("metadata") or {}),
        last_error=error.get("message", ""),
    )


def _record(kind: str, obj: dict[str, Any], reference: str) -> GatewayRecord:
    return GatewayRecord(
        kind=kind,
        id=obj["id"],
        amount_cents=obj["amount"],
        currency=obj["currency"].upper(),
        status=obj.get("status", ""),
        created=dt.datetime.fromtimestamp(obj["created"], tz=dt.UTC),
        reference=reference or "",
        transfer_group=obj.get("transfer_group") or "",
        metadata=dict(obj.get("metadata") or {}),
    )


def _since(objs: list[dict[str, Any]], since: dt.datetime | None) -> list[dict[str, Any]]:
    if since is None:
        return sorted(objs, key=lambda o: (o["created"], o["id"]))
    floor = since.timestamp()
    return sorted((o for o in objs if o["created"] >= floor), key=lambda o: (o["created"], o["id"]))


@contextlib.contextmanager
def _file_lock():
    """Across processes (make run's site and its schedule runner): one gateway
    call at a time reads, changes and writes the state file."""
    path = STORE._path()
    if not path:
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _persisted(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with STORE.lock:
            if STORE.depth == 0:
                with _file_lock():
                    return _call(method, args, kwargs)
            return _call(method, args, kwargs)

    return wrapper


def _call(method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    # Nested calls (a webhook delivered during a call calls the gateway again)
    # share the outer call's file lock and state.
    STORE.load()
    STORE.depth += 1
    try:
        return method(*args, **kwargs)
    finally:
        STORE.depth -= 1
        STORE.save()


class SimulatedGateway(PaymentGateway):
    name = "simulated"
    is_simulated = True

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
        if not isinstance(amount_cents, int) or amount_cents <= 0:
            raise GatewayError("amount_cents must be a positive whole number of cents", code="invalid_request")

        def create() -> dict[str, Any]:
            pi_id = _id("pi", idempotency_key)
            return {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount_cents,
                "amount_received": 0,
                "currency": currency.lower(),
                "status": "requires_payment_method",
                "client_secret": f"{pi_id}_secret_{_id('s', pi_id)[6:18]}",
                "customer": customer_id,
                "payment_method": payment_method_id,
                "latest_charge": None,
                "transfer_group": transfer_group,
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "last_payment_error": None,
                "created": int(time.time()),
            }

        pi = STORE.idempotent(idempotency_key, "create_payment_intent", create)
        if confirm and pi["status"] == "requires_payment_method":
            if not payment_method_id:
                raise GatewayError("confirm needs a payment method", code="invalid_request")
            pm = STORE.get(payment_method_id, "payment_method")
            if customer_id and pm.get("customer") != customer_id:
                raise GatewayError(
                    "The provided PaymentMethod does not belong to this customer (detached?).", code="resource_missing"
                )
            self._charge(pi, pm["card_number"], at_charge=True)
        return _intent_result(pi)

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntentResult:
        return _intent_result(STORE.get(intent_id, "payment_intent"))

    def confirm(self, intent_id: str, card_number: str) -> PaymentIntentResult:
        """The checkout page's "Pay" with a test card. Success delivers
        ``payment_intent.succeeded``; a decline delivers
        ``payment_intent.payment_failed`` and raises ``CardDeclined``."""
        pi = STORE.get(intent_id, "payment_intent")
        number = _normalize_card(card_number)
        if number not in TEST_CARDS:
            raise CardDeclined(
                _("This demo takes test cards only, e.g. 4242 4242 4242 4242. No real card is charged."),
                code="incorrect_number",
            )
        with STORE.lock:
            if pi["status"] == "succeeded":
                return _intent_result(pi)
            if pi["status"] == "canceled":
                raise GatewayError(_("This payment was cancelled. Start the checkout again."), code="payment_intent_unexpected_state")
        self._charge(pi, number, at_charge=False)
        return _intent_result(pi)

    def _charge(self, pi: dict[str, Any], number: str, *, at_charge: bool) -> None:
        outcome, decline_code, brand = TEST_CARDS[number]
        declined = outcome == "declined" or (outcome in ("declined_on_charge", "auth_on_charge") and at_charge)
        if declined:
            code = "authentication_required" if outcome == "auth_on_charge" else "card_declined"
            with STORE.lock:
                pi["status"] = "requires_payment_method"
                pi["last_payment_error"] = {
                    "code": code,
                    "decline_code": decline_code,
                    "message": _decline_message(decline_code),
                }
                attempt = sum(1 for e in STORE.events if e["data"]["object"].get("id") == pi["id"]) + 1
            # Each failed attempt is its own event (Stripe sends one per attempt).
            deliver(build_event("payment_intent.payment_failed", pi, event_id=_id("evt", f"fail:{pi['id']}:{attempt}")))
            raise CardDeclined(
                _decline_message(decline_code), code=code, decline_code=decline_code, payment_intent_id=pi["id"]
            )
        with STORE.lock:
            charge_id = _id("ch", pi["id"])
            charge = {
                "id": charge_id,
                "object": "charge",
                "amount": pi["amount"],
                "amount_captured": pi["amount"],
                "amount_refunded": 0,
                "currency": pi["currency"],
                "payment_intent": pi["id"],
                "paid": True,
                "captured": True,
                "refunded": False,
                "disputed": False,
                "status": "succeeded",
                "transfer_group": pi["transfer_group"],
                "metadata": dict(pi["metadata"]),
                "payment_method_details": {"card": {"brand": brand, "last4": number[-4:]}},
                "created": int(time.time()),
            }
            STORE.objects[charge_id] = charge
            pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge_id, last_payment_error=None)
        _emit("charge.succeeded", charge)
        _emit("payment_intent.succeeded", pi)

    def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> PaymentIntentResult:
        pi = STORE.get(intent_id, "payment_intent")
        with STORE.lock:
            STORE._maybe_fail("cancel_payment_intent")
            if pi["status"] == "canceled":
                return _intent_result(pi)
            if pi["status"] == "succeeded":
                raise GatewayError(
                    "You cannot cancel this PaymentIntent because it has a status of succeeded.",
                    code="payment_intent_unexpected_state",
                )
            pi["status"] = "canceled"
        _emit("payment_intent.canceled", pi)
        return _intent_result(pi)

    # --- Refunds --------------------------------------------------------------
    def create_refund(
        self, *, payment_intent_id: str, amount_cents: int, idempotency_key: str, metadata: dict[str, Any]
    ) -> RefundResult:
        pi = STORE.get(payment_intent_id, "payment_intent")
        if not isinstance(amount_cents, int) or amount_cents <= 0:
            raise GatewayError("amount_cents must be a positive whole number of cents", code="invalid_request")

        def create() -> dict[str, Any]:
            if pi["status"] != "succeeded":
                raise GatewayError("This PaymentIntent has no successful charge to refund.", code="charge_not_refundable")
            charge = STORE.objects[pi["latest_charge"]]
            if charge["amount_refunded"] + amount_cents > charge["amount"]:
                raise GatewayError(
                    f"Refund amount ({amount_cents}) is greater than unrefunded amount on charge "
                    f"({charge['amount'] - charge['amount_refunded']})",
                    code="amount_too_large",
                )
            charge["amount_refunded"] += amount_cents
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return {
                "id": _id("re", idempotency_key),
                "object": "refund",
                "amount": amount_cents,
                "currency": pi["currency"],
                "charge": charge["id"],
                "payment_intent": pi["id"],
                "status": "succeeded",
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "created": int(time.time()),
            }

        with STORE.lock:
            known = f"create_refund:{idempotency_key}" in STORE.by_key
            refund = STORE.idempotent(idempotency_key, "create_refund", create)
            charge = dict(STORE.objects[refund["charge"]])
            charge["refunds"] = {
                "object": "list",
                "data": [r for r in STORE.of_kind("refund") if r["charge"] == charge["id"]],
            }
        if not known:
            _emit("refund.created", refund)
            _emit("charge.refunded", charge)
        return RefundResult(
            id=refund["id"], status=refund["status"], amount_cents=refund["amount"], payment_intent_id=pi["id"]
        )

    def list_payment_intent_refunds(self, payment_intent_id: str) -> list[RefundResult]:
        return [
            RefundResult(id=r["id"], status=r["status"], amount_cents=r["amount"], payment_intent_id=r["payment_intent"])
            for r in _since(STORE.of_kind("refund"), None)
            if r["payment_intent"] == payment_intent_id
        ]

    def open_dispute(self, payment_intent_id: str, *, reason: str = "fraudulent") -> str:
        """The customer's bank disputes the charge: delivers ``charge.dispute.created``."""
        pi = STORE.get(payment_intent_id, "payment_intent")
        if not pi.get("latest_charge"):
            raise GatewayError("No charge to dispute", code="invalid_request")
        with STORE.lock:
            charge = STORE.objects[pi["latest_charge"]]
            charge["disputed"] = True
            dispute = {
                "id": _id("dp", charge["id"]),
                "object": "dispute",
                "amount": charge["amount"],
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": pi["id"],
                "reason": reason,
                "status": "needs_response",
                "created": int(time.time()),
            }
            STORE.objects[dispute["id"]] = dispute
        _emit("charge.dispute.created", dispute)
        return dispute["id"]

    def close_dispute(self, dispute_id: str, *, status: str) -> dict[str, Any]:
        """The bank decides: delivers ``charge.dispute.closed`` with ``status``
        won, lost or warning_closed (closing twice changes nothing)."""
        if status not in ("won", "lost", "warning_closed"):
            raise GatewayError("A dispute closes as won, lost or warning_closed", code="invalid_request")
        dispute = STORE.get(dispute_id, "dispute")
        with STORE.lock:
            if dispute["status"] in ("won", "lost", "warning_closed"):
                return dispute
            dispute["status"] = status
        _emit("charge.dispute.closed", dispute)
        return dispute

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
        if not isinstance(amount_cents, int) or amount_cents <= 0:
            raise GatewayError("amount_cents must be a positive whole number of cents", code="invalid_request")
        account = STORE.get(destination_account_id, "account")
        with STORE.lock:
            known = f"create_transfer:{idempotency_key}" in STORE.by_key
            if not known and not account["payouts_enabled"]:
                raise GatewayError(
                    "The destination account needs to finish onboarding before it can receive transfers.",
                    code="account_invalid",
                )

            def create() -> dict[str, Any]:
                return {
                    "id": _id("tr", idempotency_key),
                    "object": "transfer",
                    "amount": amount_cents,
                    "currency": currency.lower(),
                    "destination": destination_account_id,
                    "transfer_group": transfer_group,
                    "reversed": False,
                    "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                    "created": int(time.time()),
                }

            transfer = STORE.idempotent(idempotency_key, "create_transfer", create)
        if not known:
            _emit("transfer.created", transfer)
        return TransferResult(id=transfer["id"], amount_cents=transfer["amount"], destination_account_id=destination_account_id)

    def create_connected_account(self, *, user_email: str, idempotency_key: str) -> str:
        def create() -> dict[str, Any]:
            return {
                "id": _id("acct", idempotency_key),
                "object": "account",
                "type": "express",
                "email": user_email,
                "details_submitted": False,
                "payouts_enabled": False,
                "charges_enabled": False,
                "created": int(time.time()),
            }

        return STORE.idempotent(idempotency_key, "create_connected_account", create)["id"]

    def create_account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        """Stripe's hosted onboarding is not simulated as a form: the demo
        contractor is onboarded at once (``account.updated`` is delivered) and
        the link goes straight back to ``return_url``."""
        STORE.get(account_id, "account")
        self.complete_onboarding(account_id)
        separator = "&" if "?" in return_url else "?"
        return f"{return_url}{separator}simulated_onboarding=1"

    def complete_onboarding(self, account_id: str, *, payouts_enabled: bool = True) -> AccountStatus:
        account = STORE.get(account_id, "account")
        with STORE.lock:
            changed = account["payouts_enabled"] != payouts_enabled or not account["details_submitted"]
            account.update(details_submitted=True, payouts_enabled=payouts_enabled, charges_enabled=payouts_enabled)
        if changed:
            _emit("account.updated", account)
        return self.retrieve_account(account_id)

    def retrieve_account(self, account_id: str) -> AccountStatus:
        account = STORE.get(account_id, "account")
        return AccountStatus(
            id=account["id"],
            details_submitted=bool(account["details_submitted"]),
            payouts_enabled=bool(account["payouts_enabled"]),
        )

    # --- Saved cards ------------------------------------------------------------
    def create_customer(self, email: str, idempotency_key: str) -> str:
        def create() -> dict[str, Any]:
            return {"id": _id("cus", idempotency_key), "object": "customer", "email": email, "created": int(time.time())}

        return STORE.idempotent(idempotency_key, "create_customer", create)["id"]

    def create_setup_intent(
        self, *, customer_id: str, idempotency_key: str, metadata: dict[str, Any] | None = None
    ) -> SetupIntentResult:
        STORE.get(customer_id, "customer")

        def create() -> dict[str, Any]:
            seti_id = _id("seti", idempotency_key)
            return {
                "id": seti_id,
                "object": "setup_intent",
                "customer": customer_id,
                "usage": "off_session",
                "status": "requires_payment_method",
                "client_secret": f"{seti_id}_secret_{_id('s', seti_id)[6:18]}",
                "payment_method": None,
                "metadata": {k: str(v) for k, v in (metadata or {}).items()},
                "created": int(time.time()),
            }

        return self._setup_result(STORE.idempotent(idempotency_key, "create_setup_intent", create))

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentResult:
        return self._setup_result(STORE.get(setup_intent_id, "setup_intent"))

    def confirm_setup_intent(
        self, setup_intent_id: str, card_number: str, *, exp_month: int = 12, exp_year: int = 2034
    ) -> SetupIntentResult:
        """What Stripe's Payment Element does in the browser: save a test card
        for off-session charges (instant book). Success delivers
        ``setup_intent.succeeded``; a declined card raises ``CardDeclined``."""
        seti = STORE.get(setup_intent_id, "setup_intent")
        number = _normalize_card(card_number)
        if number not in TEST_CARDS:
            raise CardDeclined(
                _("This demo takes test cards only, e.g. 4242 4242 4242 4242. No real card is charged."),
                code="incorrect_number",
            )
        outcome, decline_code, brand = TEST_CARDS[number]
        if outcome == "declined":
            raise CardDeclined(_decline_message(decline_code), decline_code=decline_code)
        with STORE.lock:
            if seti["status"] == "succeeded":
                return self._setup_result(seti)
            if seti["status"] == "canceled":
                raise GatewayError("This SetupIntent was cancelled.", code="setup_intent_unexpected_state")
            pm_id = _id("pm", f"{seti['id']}:{number}")
            STORE.objects[pm_id] = {
                "id": pm_id,
                "object": "payment_method",
                "type": "card",
                "customer": seti["customer"],
                "card_number": number,
                "card": {"brand": brand, "last4": number[-4:], "exp_month": exp_month, "exp_year": exp_year},
                "created": int(time.time()),
            }
            seti.update(status="succeeded", payment_method=pm_id)
            event = dict(seti)
            event["payment_method"] = pm_id
        _emit("setup_intent.succeeded", event)
        return self._setup_result(seti)

    def detach_payment_method(self, payment_method_id: str) -> None:
        pm = STORE.get(payment_method_id, "payment_method")
        with STORE.lock:
            pm["customer"] = None

    def _setup_result(self, seti: dict[str, Any]) -> SetupIntentResult:
        card: dict[str, Any] = {}
        if seti.get("payment_method"):
            card = STORE.objects[seti["payment_method"]]["card"]
        return SetupIntentResult(
            id=seti["id"],
            status=seti["status"],
            client_secret=seti["client_secret"],
            payment_method_id=seti.get("payment_method"),
            card_brand=card.get("brand", ""),
            card_last4=card.get("last4", ""),
            card_exp_month=card.get("exp_month"),
            card_exp_year=card.get("exp_year"),
            customer_id=seti.get("customer") or "",
        )

    # --- Reconciliation -----------------------------------------------------------
    def list_charges(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [_record("charge", c, c["payment_intent"]) for c in _since(STORE.of_kind("charge"), since)]

    def list_refunds(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [_record("refund", r, r["payment_intent"]) for r in _since(STORE.of_kind("refund"), since)]

    def list_transfers(self, since: dt.datetime | None = None) -> list[GatewayRecord]:
        return [_record("transfer", t, t["destination"]) for t in _since(STORE.of_kind("transfer"), since)]


# Every public gateway call reads and writes the optional state file (see _Store.load).
for _name, _method in list(vars(SimulatedGateway).items()):
    if callable(_method) and not _name.startswith("_"):
        setattr(SimulatedGateway, _name, _persisted(_method))
