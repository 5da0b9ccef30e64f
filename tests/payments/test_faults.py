"""Faults between us and Stripe, through the real stripe library and the
loopback fake: 5xx and dropped connections are retried with the same
idempotency key and never charge twice; refused requests are not retried; a
transfer that fails leaves the money payable and is retried."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from payments import ledger, services
from payments.gateway import GatewayError
from payments.gateway.stripe_gateway import StripeGateway
from payments.models import LedgerAccount, Payout
from tests.payments.factories import EscrowFactory, RecordingGateway, payouts_enabled
from tests.payments.stripe_fixtures import (  # noqa: F401 - fixtures
    API_KEY,
    fake_stripe_fixture,
    make_gateway,
    saved_card,
    stripe_gateway_fixture,
)


def charge_params(gateway, key: str) -> dict:
    customer_id, pm_id = saved_card(gateway, email=f"{key}@example.com")
    return {
        "amount_cents": 11_550,
        "currency": "USD",
        "idempotency_key": key,
        "transfer_group": "task:f",
        "metadata": {"escrow": key},
        "customer_id": customer_id,
        "payment_method_id": pm_id,
        "off_session": True,
        "confirm": True,
    }


def charges_for(gateway, intent_id: str) -> list:
    return [c for c in gateway.list_charges() if c.reference == intent_id]


def test_a_500_then_success_is_retried_with_the_same_key(stripe_gateway, fake_stripe):
    params = charge_params(stripe_gateway, "escrow:f1:payment_intent")
    fake_stripe.fail_next("POST", "/v1/payment_intents", "500")

    result = stripe_gateway.create_payment_intent(**params)

    assert result.status == "succeeded"
    sent = fake_stripe.calls("POST", "/v1/payment_intents")
    assert [c["idempotency_key"] for c in sent] == ["escrow:f1:payment_intent"] * 2
    assert len(charges_for(stripe_gateway, result.id)) == 1


def test_a_connection_dropped_after_the_charge_is_retried_and_charges_once(stripe_gateway, fake_stripe):
    params = charge_params(stripe_gateway, "escrow:f2:payment_intent")
    charges_before = len(stripe_gateway.list_charges())
    fake_stripe.fail_next("POST", "/v1/payment_intents", "drop_after")

    result = stripe_gateway.create_payment_intent(**params)

    assert result.status == "succeeded"
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 2
    assert len(charges_for(stripe_gateway, result.id)) == 1
    assert len(stripe_gateway.list_charges()) == charges_before + 1


def test_a_timeout_after_the_charge_then_our_retry_with_the_key_gives_one_charge(fake_stripe):
    # No library retries and a short read timeout: the caller sees the timeout
    # (retryable) and retries later with the key it stored first.
    impatient = make_gateway(fake_stripe, timeout=(2.0, 0.5), max_network_retries=0)
    params = charge_params(impatient, "escrow:f3:payment_intent")
    charges_before = len(impatient.list_charges())
    fake_stripe.fail_next("POST", "/v1/payment_intents", "slow_after", delay=1.5)

    with pytest.raises(GatewayError) as caught:
        impatient.create_payment_intent(**params)
    assert caught.value.retryable is True

    result = impatient.create_payment_intent(**params)
    assert result.status == "succeeded"
    assert len(charges_for(impatient, result.id)) == 1
    assert len(impatient.list_charges()) == charges_before + 1


def test_persistent_5xx_ends_retryable_after_two_retries_and_nothing_is_made(stripe_gateway, fake_stripe):
    intent = stripe_gateway.create_payment_intent(**charge_params(stripe_gateway, "escrow:f4:payment_intent"))
    fake_stripe.fail_next("POST", "/v1/refunds", "500", times=3)

    with pytest.raises(GatewayError) as caught:
        stripe_gateway.create_refund(
            payment_intent_id=intent.id, amount_cents=500, idempotency_key="escrow:f4:refund", metadata={}
        )
    assert caught.value.retryable is True
    assert len(fake_stripe.calls("POST", "/v1/refunds")) == 3  # the call and two retries
    assert stripe_gateway.list_payment_intent_refunds(intent.id) == []

    refund = stripe_gateway.create_refund(
        payment_intent_id=intent.id, amount_cents=500, idempotency_key="escrow:f4:refund", metadata={}
    )
    assert [r.id for r in stripe_gateway.list_payment_intent_refunds(intent.id)] == [refund.id]


def test_a_refused_request_is_not_retried(stripe_gateway, fake_stripe):
    with pytest.raises(GatewayError) as caught:
        stripe_gateway.create_transfer(
            amount_cents=100, currency="USD", destination_account_id="acct_nobody", transfer_group="t",
            idempotency_key="escrow:f5:transfer", metadata={},
        )
    assert caught.value.retryable is False
    assert len(fake_stripe.calls("POST", "/v1/transfers")) == 1


def test_an_unreachable_gateway_is_retryable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    gateway = StripeGateway(api_key=API_KEY, api_base=f"http://127.0.0.1:{port}", max_network_retries=0)
    with pytest.raises(GatewayError) as caught:
        gateway.retrieve_payment_intent("pi_x")
    assert caught.value.retryable is True
    assert caught.value.code == "api_connection_error"


@pytest.mark.django_db
def test_a_failed_transfer_keeps_the_money_payable_and_the_retry_pays_once(monkeypatch, fake_stripe):
    recording = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", lambda: recording)
    escrow = EscrowFactory(state="released")
    payout = Payout.objects.get(escrow=escrow)

    gateway = make_gateway(fake_stripe, max_network_retries=0)
    account_id = gateway.create_connected_account(user_email="bob@example.com", idempotency_key="acct:f6")
    fake_stripe.enable_payouts(account_id)
    account = payouts_enabled(escrow.contractor)
    account.gateway_account_id = account_id
    account.save()
    monkeypatch.setattr(services, "_gateway", lambda: gateway)
    payable_before = ledger.balance_of(LedgerAccount.Code.CONTRACTOR_PAYABLE, escrow.contractor)
    due = payout.available_at + dt.timedelta(seconds=1)

    fake_stripe.fail_next("POST", "/v1/transfers", "500")
    failed = services.payout_attempt(payout, now=due)

    assert failed.status == Payout.Status.FAILED
    assert failed.attempts == 1 and failed.last_error and failed.next_attempt_at > due
    assert ledger.balance_of(LedgerAccount.Code.CONTRACTOR_PAYABLE, escrow.contractor) == payable_before
    assert gateway.list_transfers() == []

    paid = services.payout_attempt(payout, now=failed.next_attempt_at + dt.timedelta(seconds=1))

    assert paid.status == Payout.Status.PAID
    transfers = gateway.list_transfers()
    assert [(t.id, t.amount_cents) for t in transfers] == [(paid.transfer_id, payout.amount_cents)]
    keys = {c["idempotency_key"] for c in fake_stripe.calls("POST", "/v1/transfers")}
    assert keys == {f"escrow:{escrow.public_id}:transfer"}
    assert ledger.balance_of(LedgerAccount.Code.CONTRACTOR_PAYABLE, escrow.contractor) == payable_before - payout.amount_cents
