"""Escrows in every state, built through the payment services so the ledger
is real (a held escrow has its FUND transaction, a released one its RELEASE and
payout...). Only the unfunded escrow row is written directly (it has no money
and the checkout's gateway call is not what these tests are about).

    EscrowFactory()                      # unfunded: open task, pending offer
    EscrowFactory(state="held")          # funded; the task is assigned
    EscrowFactory(state="released")      # + approved: payout pending
    EscrowFactory(state="refunded")      # held, then refunded in full
    EscrowFactory(state="split", contractor_cents=4500)
    EscrowFactory(state="frozen")        # held, then a chargeback
    EscrowFactory(state="paid_out")      # released and transferred

Pass ``task``/``offer``/``customer``/``contractor``/``price_cents`` to choose.
The gateway used for refunds and transfers is whatever ``payments.services
._gateway`` returns (tests patch it with ``RecordingGateway``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import factory
from django.db import transaction
from django.utils import timezone

from payments import fees, services
from payments.gateway.base import (
    GatewayError,
    PaymentIntentResult,
    RefundResult,
    TransferResult,
)
from payments.models import ConnectedAccount, Escrow, Payout
from tasks.models import Task
from tests.factories import ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

STATES = ("unfunded", "held", "released", "refunded", "split", "frozen", "paid_out")
_seq = itertools.count(1)


def ready_contractor(email: str | None = None):
    """A verified, onboarded contractor."""
    n = next(_seq)
    return ContractorProfileFactory(user__email=email or f"pro{n}-{id(object())}@example.com").user


def payouts_enabled(user, enabled: bool = True) -> ConnectedAccount:
    account, _ = ConnectedAccount.objects.update_or_create(
        user=user,
        defaults={"gateway_account_id": f"acct_test_{user.pk}", "details_submitted": True, "payouts_enabled": enabled},
    )
    return account


def fund(escrow: Escrow) -> Escrow:
    """What the payment_intent.succeeded webhook does."""
    return services.escrow_funded(
        escrow,
        payment_intent_id=escrow.payment_intent_id or f"pi_test_{escrow.public_id.hex[:16]}",
        charge_id=f"ch_test_{escrow.public_id.hex[:16]}",
        amount_cents=escrow.total_cents,
    )


def unfunded_escrow(*, task=None, offer=None, customer=None, contractor=None, price_cents: int = 11_000) -> Escrow:
    if task is None:
        task = TaskFactory(customer=customer or UserFactory(), photos=0)
    if offer is None:
        offer = OfferFactory(task=task, contractor=contractor or UserFactory(is_contractor=True), price_cents=price_cents)
    quote = fees.quote(services.amount_due_cents(task, offer.price_cents), task.category)
    escrow = Escrow.objects.create(
        task=task,
        offer=offer,
        customer_id=task.customer_id,
        contractor_id=offer.contractor_id,
        price_cents=quote.price_cents,
        service_fee_cents=quote.service_fee_cents,
        commission_cents=quote.commission_cents,
        total_cents=quote.total_cents,
        transfer_group=f"task:{task.public_id}",
        checkout_expires_at=timezone.now() + dt.timedelta(minutes=15),
    )
    escrow.payment_intent_id = f"pi_test_{escrow.public_id.hex[:16]}"
    escrow.save(update_fields=["payment_intent_id"])
    return escrow


def escrow_in(state: str, **kwargs: Any) -> Escrow:
    contractor_cents = kwargs.pop("contractor_cents", 4_500)
    escrow = unfunded_escrow(**kwargs)
    if state == "unfunded":
        return escrow
    escrow = fund(escrow)
    if state == "held":
        return escrow
    if state in ("released", "paid_out"):
        escrow = services.escrow_release(escrow)
        if state == "paid_out":
            payouts_enabled(escrow.contractor)
            payout = Payout.objects.get(escrow=escrow)
            services.payout_attempt(payout, now=payout.available_at + dt.timedelta(seconds=1))
        escrow.refresh_from_db()
        return escrow
    if state == "refunded":
        return services.escrow_refund(escrow, reason="Test refund")
    if state == "split":
        return services.escrow_split(escrow, contractor_cents=contractor_cents, reason="Test split")
    if state == "frozen":
        return services.escrow_freeze(escrow, reason="Test chargeback")
    raise ValueError(f"unknown escrow state {state!r}; one of {STATES}")


class EscrowFactory(factory.django.DjangoModelFactory):
    """``EscrowFactory(state=...)``; see the module docstring."""

    class Meta:
        model = Escrow

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        state = kwargs.pop("state", "unfunded")
        allowed = {"task", "offer", "customer", "contractor", "price_cents", "contractor_cents"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(f"EscrowFactory does not take {sorted(unknown)}")
        with transaction.atomic():
            return escrow_in(state, **kwargs)


def assigned_task(escrow: Escrow) -> Task:
    return Task.objects.get(pk=escrow.task_id)


# --- a gateway that records every call ----------------------------------------------


@dataclass
class RecordingGateway:
    """Stands in for the gateway at the interface: records each call with its
    idempotency key, returns the same object for the same key (as Stripe
    does), and can be told to fail the next calls of an operation, either
    before doing anything or after doing it (a timeout after the charge)."""

    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    objects: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, list[tuple[GatewayError, bool]]] = field(default_factory=dict)
    intent_status: str = "requires_payment_method"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, operation: str, error: GatewayError | None = None, *, after_effect: bool = False, times: int = 1):
        error = error or GatewayError("Gateway timed out", retryable=True, code="timeout")
        self.failures.setdefault(operation, []).extend([(error, after_effect)] * times)

    def effects(self, operation: str) -> int:
        """How many distinct objects the operation really created."""
        return len({key for op, key in self.objects if op == operation})

    def _do(self, operation: str, key: str, params: dict, make):
        with self.lock:
            self.calls.append((operation, key, params))
            pending = self.failures.get(operation) or []
            failure = pending.pop(0) if pending else None
            if failure and not failure[1]:
                raise failure[0]
            if (operation, key) not in self.objects:
                self.objects[(operation, key)] = make()
            result = self.objects[(operation, key)]
            if failure:
                raise failure[0]
            return result

    def create_payment_intent(self, *, amount_cents, currency, idempotency_key, transfer_group, metadata, **extra):
        status = "succeeded" if extra.get("confirm") and self.intent_status == "succeeded" else self.intent_status
        return self._do(
            "create_payment_intent",
            idempotency_key,
            {"amount_cents": amount_cents, "metadata": metadata, **extra},
            lambda: PaymentIntentResult(
                id=f"pi_{len(self.objects) + 1}", status=status, charge_id=f"ch_{len(self.objects) + 1}",
                amount_cents=amount_cents,
            ),
        )

    def cancel_payment_intent(self, intent_id, *, idempotency_key):
        return self._do(
            "cancel_payment_intent", idempotency_key, {"intent": intent_id},
            lambda: PaymentIntentResult(id=intent_id, status="canceled"),
        )

    def create_refund(self, *, payment_intent_id, amount_cents, idempotency_key, metadata):
        return self._do(
            "create_refund", idempotency_key, {"payment_intent_id": payment_intent_id, "amount_cents": amount_cents},
            lambda: RefundResult(id=f"re_{len(self.objects) + 1}", status="succeeded", amount_cents=amount_cents),
        )

    def create_transfer(self, *, amount_cents, currency, destination_account_id, transfer_group, idempotency_key, metadata):
        return self._do(
            "create_transfer", idempotency_key,
            {"amount_cents": amount_cents, "destination": destination_account_id},
            lambda: TransferResult(id=f"tr_{len(self.objects) + 1}", amount_cents=amount_cents),
        )
