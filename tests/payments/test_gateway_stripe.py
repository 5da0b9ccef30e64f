"""StripeGateway through the real stripe library against localstripe (payments)
and the loopback fake (Connect, transfers). No database needed."""

from __future__ import annotations

import datetime as dt

import pytest

from payments.gateway import CardDeclined, GatewayError, get_gateway
from payments.gateway.simulated import SimulatedGateway
from payments.gateway.stripe_gateway import StripeGateway
from tests.payments.stripe_fixtures import (  # noqa: F401 - fixtures
    API_KEY,
    fake_stripe_fixture,
    make_gateway,
    saved_card,
    stripe_gateway_fixture,
)


def charge(gateway, key="escrow:1:payment_intent", number="4242424242424242", amount=5_250, **kwargs):
    customer_id, pm_id = saved_card(gateway, number, email=f"{key}@example.com")
    return gateway.create_payment_intent(
        amount_cents=amount,
        currency="USD",
        idempotency_key=key,
        transfer_group="task:abc",
        metadata={"escrow": "e-1", "task": "t-1"},
        customer_id=customer_id,
        payment_method_id=pm_id,
        off_session=True,
        confirm=True,
        **kwargs,
    )


def test_an_off_session_charge_succeeds_with_its_key_group_and_metadata(stripe_gateway, fake_stripe):
    result = charge(stripe_gateway)

    assert result.status == "succeeded"
    assert result.charge_id.startswith("ch_")
    assert (result.amount_cents, result.currency) == (5_250, "USD")
    assert result.metadata == {"escrow": "e-1", "task": "t-1"}
    [sent] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert sent["idempotency_key"] == "escrow:1:payment_intent"
    assert sent["params"]["amount"] == "5250"
    assert sent["params"]["currency"] == "usd"
    assert sent["params"]["transfer_group"] == "task:abc"
    assert sent["params"]["off_session"] == "true"
    again = stripe_gateway.retrieve_payment_intent(result.id)
    assert (again.status, again.charge_id) == ("succeeded", result.charge_id)


def test_the_same_key_returns_the_same_payment_and_charges_once(stripe_gateway, fake_stripe):
    customer_id, pm_id = saved_card(stripe_gateway, email="once@example.com")
    params = {
        "amount_cents": 5_250,
        "currency": "USD",
        "idempotency_key": "escrow:1:payment_intent",
        "transfer_group": "task:abc",
        "metadata": {"escrow": "e-1"},
        "customer_id": customer_id,
        "payment_method_id": pm_id,
        "off_session": True,
        "confirm": True,
    }
    first = stripe_gateway.create_payment_intent(**params)
    second = stripe_gateway.create_payment_intent(**params)

    assert (second.id, second.charge_id) == (first.id, first.charge_id)
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 2
    assert [c.reference for c in stripe_gateway.list_charges()].count(first.id) == 1


def test_a_key_reused_with_other_parameters_is_refused(stripe_gateway, fake_stripe):
    first = charge(stripe_gateway, key="escrow:2:payment_intent")
    with pytest.raises(GatewayError) as caught:
        stripe_gateway.create_payment_intent(
            amount_cents=9_999, currency="USD", idempotency_key="escrow:2:payment_intent", transfer_group="task:abc",
            metadata={}, confirm=False,
        )
    assert caught.value.retryable is False
    assert caught.value.code == "idempotency_error"
    assert len(stripe_gateway.list_charges()) >= 1
    assert [c.reference for c in stripe_gateway.list_charges()].count(first.id) == 1


def test_a_checkout_intent_waits_for_the_card_and_can_be_cancelled(stripe_gateway):
    intent = stripe_gateway.create_payment_intent(
        amount_cents=1_999, currency="USD", idempotency_key="escrow:3:payment_intent", transfer_group="task:3",
        metadata={"escrow": "e-3"},
    )
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(intent.id + "_secret_")
    assert intent.charge_id is None

    cancelled = stripe_gateway.cancel_payment_intent(intent.id, idempotency_key="escrow:3:cancel")
    assert cancelled.status == "canceled"


def test_a_declined_card_is_card_declined_with_a_readable_message_and_not_retried(stripe_gateway, fake_stripe):
    with pytest.raises(CardDeclined) as caught:
        charge(stripe_gateway, key="escrow:4:payment_intent", number="4000000000000341")

    assert caught.value.retryable is False
    assert caught.value.message == "Your card was declined."
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 1


def test_refunds_partial_then_listed_and_idempotent(stripe_gateway):
    paid = charge(stripe_gateway, key="escrow:5:payment_intent")

    refund = stripe_gateway.create_refund(
        payment_intent_id=paid.id, amount_cents=1_250, idempotency_key="escrow:5:refund", metadata={"escrow": "e-5"}
    )
    again = stripe_gateway.create_refund(
        payment_intent_id=paid.id, amount_cents=1_250, idempotency_key="escrow:5:refund", metadata={"escrow": "e-5"}
    )

    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount_cents, refund.payment_intent_id) == ("succeeded", 1_250, paid.id)
    assert again.id == refund.id
    assert [r.id for r in stripe_gateway.list_payment_intent_refunds(paid.id)] == [refund.id]
    listed = [r for r in stripe_gateway.list_refunds() if r.reference == paid.id]
    assert [(r.id, r.amount_cents) for r in listed] == [(refund.id, 1_250)]


def test_refunding_a_payment_that_never_succeeded_is_refused(stripe_gateway):
    intent = stripe_gateway.create_payment_intent(
        amount_cents=1_000, currency="USD", idempotency_key="escrow:6:payment_intent", transfer_group="t",
        metadata={},
    )
    with pytest.raises(GatewayError) as caught:
        stripe_gateway.create_refund(
            payment_intent_id=intent.id, amount_cents=1_000, idempotency_key="escrow:6:refund", metadata={}
        )
    assert caught.value.retryable is False


def test_connect_onboarding_and_transfers(stripe_gateway, fake_stripe):
    account_id = stripe_gateway.create_connected_account(user_email="bob@example.com", idempotency_key="user:7:acct")
    assert account_id.startswith("acct_")
    assert stripe_gateway.create_connected_account(
        user_email="bob@example.com", idempotency_key="user:7:acct"
    ) == account_id
    [sent] = fake_stripe.calls("POST", "/v1/accounts")[:1]
    assert sent["params"]["type"] == "express"
    assert sent["params"]["capabilities"] == {"transfers": {"requested": "true"}}

    url = stripe_gateway.create_account_link(
        account_id, refresh_url="https://bt.test/payouts/refresh", return_url="https://bt.test/payouts/done"
    )
    assert url.startswith("https://")
    link = fake_stripe.calls("POST", "/v1/account_links")[0]["params"]
    assert link["type"] == "account_onboarding" and link["return_url"] == "https://bt.test/payouts/done"

    status = stripe_gateway.retrieve_account(account_id)
    assert (status.details_submitted, status.payouts_enabled) == (False, False)
    with pytest.raises(GatewayError) as caught:
        stripe_gateway.create_transfer(
            amount_cents=4_500, currency="USD", destination_account_id=account_id, transfer_group="task:7",
            idempotency_key="escrow:7:transfer", metadata={"escrow": "e-7"},
        )
    assert caught.value.retryable is False

    fake_stripe.enable_payouts(account_id)
    assert stripe_gateway.retrieve_account(account_id).payouts_enabled is True
    transfer = stripe_gateway.create_transfer(
        amount_cents=4_500, currency="USD", destination_account_id=account_id, transfer_group="task:7",
        idempotency_key="escrow:7:transfer:2", metadata={"escrow": "e-7"},
    )
    assert (transfer.amount_cents, transfer.destination_account_id) == (4_500, account_id)
    [listed] = stripe_gateway.list_transfers()
    assert (listed.id, listed.amount_cents, listed.transfer_group, listed.metadata) == (
        transfer.id, 4_500, "task:7", {"escrow": "e-7"}
    )


def test_lists_since_a_time(stripe_gateway):
    charge(stripe_gateway, key="escrow:8:payment_intent")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)

    assert stripe_gateway.list_charges(since=future) == []
    assert any(c.amount_cents == 5_250 for c in stripe_gateway.list_charges(since=past))
    assert stripe_gateway.list_refunds(since=future) == []


def test_an_unknown_object_is_a_non_retryable_error(stripe_gateway):
    with pytest.raises(GatewayError) as caught:
        stripe_gateway.retrieve_payment_intent("pi_does_not_exist")
    assert caught.value.retryable is False


def test_a_refused_api_key_is_not_retried(fake_stripe):
    gateway = StripeGateway(api_key="rk_not_a_secret_key", api_base=fake_stripe.url)
    with pytest.raises(GatewayError) as caught:
        gateway.retrieve_payment_intent("pi_x")
    assert caught.value.retryable is False
    assert len(fake_stripe.calls("GET", "/v1/payment_intents/pi_x")) == 1


def test_get_gateway_follows_the_settings(settings, fake_stripe):
    settings.PAYMENTS_GATEWAY = "simulated"
    assert isinstance(get_gateway(), SimulatedGateway)
    assert get_gateway() is get_gateway()

    settings.PAYMENTS_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = fake_stripe.url
    gateway = get_gateway()
    assert isinstance(gateway, StripeGateway)
    assert gateway is get_gateway()
    with pytest.raises(GatewayError):
        gateway.retrieve_payment_intent("pi_missing")
    assert fake_stripe.calls("GET", "/v1/payment_intents/pi_missing")
    assert make_gateway(fake_stripe) is not gateway
