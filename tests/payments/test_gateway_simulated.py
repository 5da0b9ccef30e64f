"""The simulated gateway keeps Stripe's rules: same key -> same object, test
cards, refunds within the charge, transfers only to onboarded accounts. Its
events are captured here instead of delivered (the webhook tests deliver them)."""

from __future__ import annotations

import pytest

from payments.gateway import CardDeclined, GatewayError, simulated
from payments.gateway.simulated import SimulatedGateway


@pytest.fixture
def sent(monkeypatch):
    simulated.reset()
    events: list[dict] = []
    monkeypatch.setattr(simulated, "deliver", lambda event: events.append(event) or 200)
    yield events
    simulated.reset()


@pytest.fixture
def gateway(sent) -> SimulatedGateway:
    return SimulatedGateway()


def intent(gateway, key="escrow:1:payment_intent", amount=5_000):
    return gateway.create_payment_intent(
        amount_cents=amount, currency="USD", idempotency_key=key, transfer_group="task:1", metadata={"escrow": "e1"}
    )


def test_the_same_key_gives_the_same_intent_and_other_operations_may_not_reuse_it(gateway):
    first = intent(gateway)
    assert intent(gateway).id == first.id
    assert first.status == "requires_payment_method" and first.client_secret
    with pytest.raises(GatewayError) as caught:
        gateway.create_refund(payment_intent_id=first.id, amount_cents=1, idempotency_key="escrow:1:payment_intent",
                              metadata={})
    assert caught.value.retryable is False


def test_a_test_card_pays_once_and_sends_the_events(gateway, sent):
    pi = intent(gateway)
    paid = gateway.confirm(pi.id, "4242 4242 4242 4242")
    again = gateway.confirm(pi.id, "4242424242424242")

    assert paid.status == "succeeded" and paid.charge_id
    assert again.charge_id == paid.charge_id
    assert [e["type"] for e in sent] == ["charge.succeeded", "payment_intent.succeeded"]
    assert sent[1]["data"]["object"]["metadata"] == {"escrow": "e1"}
    assert [c.id for c in gateway.list_charges()] == [paid.charge_id]


@pytest.mark.parametrize("card", ["4000000000000002", "4000000000009995"])
def test_declined_cards_send_payment_failed_and_can_try_again(gateway, sent, card):
    pi = intent(gateway)
    with pytest.raises(CardDeclined):
        gateway.confirm(pi.id, card)
    assert gateway.retrieve_payment_intent(pi.id).status == "requires_payment_method"
    assert [e["type"] for e in sent] == ["payment_intent.payment_failed"]

    assert gateway.confirm(pi.id, "4242424242424242").status == "succeeded"


def test_a_real_looking_card_is_refused_as_not_a_test_card(gateway, sent):
    with pytest.raises(CardDeclined) as caught:
        gateway.confirm(intent(gateway).id, "5105 1051 0510 5100")
    assert "test card" in caught.value.message
    assert sent == []


def test_refunds_stay_within_the_charge(gateway, sent):
    pi = intent(gateway)
    gateway.confirm(pi.id, "4242424242424242")
    gateway.create_refund(payment_intent_id=pi.id, amount_cents=4_000, idempotency_key="r1", metadata={})
    with pytest.raises(GatewayError):
        gateway.create_refund(payment_intent_id=pi.id, amount_cents=1_001, idempotency_key="r2", metadata={})
    assert sum(r.amount_cents for r in gateway.list_payment_intent_refunds(pi.id)) == 4_000
    assert [e["type"] for e in sent][-2:] == ["refund.created", "charge.refunded"]


def test_transfers_need_an_onboarded_account(gateway, sent):
    account = gateway.create_connected_account(user_email="bob@example.com", idempotency_key="acct:bob")
    kwargs = {"amount_cents": 4_500, "currency": "USD", "destination_account_id": account,
              "transfer_group": "task:1", "metadata": {}}
    with pytest.raises(GatewayError):
        gateway.create_transfer(idempotency_key="t1", **kwargs)

    link = gateway.create_account_link(account, refresh_url="/payouts/", return_url="/payouts/done")
    assert link == "/payouts/done?simulated_onboarding=1"
    assert gateway.retrieve_account(account).payouts_enabled is True
    assert "account.updated" in [e["type"] for e in sent]

    first = gateway.create_transfer(idempotency_key="t2", **kwargs)
    assert gateway.create_transfer(idempotency_key="t2", **kwargs).id == first.id
    assert [t.id for t in gateway.list_transfers()] == [first.id]


def test_fail_next_fails_before_anything_is_made(gateway):
    simulated.fail_next("create_payment_intent")
    with pytest.raises(GatewayError) as caught:
        intent(gateway)
    assert caught.value.retryable is True
    assert intent(gateway).status == "requires_payment_method"


def test_a_saved_card_is_charged_off_session(gateway, sent):
    customer = gateway.create_customer("dana@example.com", "cus:dana")
    setup = gateway.create_setup_intent(customer_id=customer, idempotency_key="seti:dana")
    saved = gateway.confirm_setup_intent(setup.id, "4000000000000341")
    assert (saved.status, saved.card_brand, saved.card_last4) == ("succeeded", "visa", "0341")

    with pytest.raises(CardDeclined):
        gateway.create_payment_intent(
            amount_cents=5_000, currency="USD", idempotency_key="escrow:9:payment_intent", transfer_group="task:9",
            metadata={}, customer_id=customer, payment_method_id=saved.payment_method_id, off_session=True,
            confirm=True,
        )
    good = gateway.confirm_setup_intent(
        gateway.create_setup_intent(customer_id=customer, idempotency_key="seti:dana:2").id, "4242424242424242"
    )
    paid = gateway.create_payment_intent(
        amount_cents=5_000, currency="USD", idempotency_key="escrow:10:payment_intent", transfer_group="task:10",
        metadata={}, customer_id=customer, payment_method_id=good.payment_method_id, off_session=True, confirm=True,
    )
    assert paid.status == "succeeded"


def test_with_a_state_file_a_charge_made_in_one_process_is_refunded_in_another(tmp_path, settings, sent):
    """make run: seed_demo pays in one process, the site refunds in another."""
    import subprocess
    import sys

    state = tmp_path / "simulated.json"
    settings.PAYMENTS_SIMULATED_STATE_FILE = str(state)
    simulated.reset()
    try:
        gateway = SimulatedGateway()
        pi = intent(gateway, key="escrow:file:payment_intent")
        gateway.confirm(pi.id, "4242424242424242")
        assert state.exists()

        code = (
            "import django, os; django.setup()\n"
            "from django.conf import settings\n"
            f"settings.PAYMENTS_SIMULATED_STATE_FILE = {str(state)!r}\n"
            "import payments.gateway.simulated as s\n"
            "s.deliver = lambda event: 200\n"
            "g = s.SimulatedGateway()\n"
            f"r = g.create_refund(payment_intent_id={pi.id!r}, amount_cents=5000, idempotency_key='rf', metadata={{}})\n"
            "print(r.status)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "succeeded"

        # And this process sees the other's refund.
        assert sum(r.amount_cents for r in gateway.list_payment_intent_refunds(pi.id)) == 5_000
    finally:
        settings.PAYMENTS_SIMULATED_STATE_FILE = ""
        simulated.reset()
