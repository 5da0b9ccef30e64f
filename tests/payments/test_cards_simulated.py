"""Saved cards with the simulated gateway (make run, the demo): the same
set-up flow as Stripe's (a SetupIntent, ``setup_intent.succeeded`` through
the signed webhook endpoint), removing the card, and off-session charges that
need the cardholder (``authentication_required``) or are declined: the task
stays open and the contractor is told why. Also what the customer and the
contractor see after a lost chargeback."""

from __future__ import annotations

import pytest

from core.errors import Conflict
from messaging.models import Notification
from payments import accounts, services
from payments.gateway import get_gateway
from payments.models import (
    CardSetup,
    Escrow,
    GatewayCustomer,
    LedgerTransaction,
    Payout,
    SavedPaymentMethod,
    WebhookEvent,
)
from tasks.models import Task
from tests.factories import UserFactory
from tests.payments.factories import EscrowFactory
from tests.payments.helpers import fund, save_card
from tests.payments.ledger_support import gateway_fixture  # noqa: F401 - fixture
from tests.payments.webhook_helpers import dispute_obj, event, post
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import text

pytestmark = pytest.mark.django_db

NEEDS_AUTH = "4000002500003155"
DECLINED_ON_CHARGE = "4000000000000341"


@pytest.fixture(autouse=True)
def webhooks_at_once(monkeypatch):
    from payments.tasks_webhooks import process_webhook_event

    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: process_webhook_event.delay(pk))


def test_saving_a_test_card_goes_through_a_setup_intent_and_its_webhook(customer):
    card = save_card(customer)
    setup = CardSetup.objects.get(user=customer)
    assert (setup.status, setup.payment_method_id) == ("saved", card.gateway_payment_method_id)
    assert card.gateway_customer_id == GatewayCustomer.objects.get(user=customer).gateway_customer_id
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2034)
    stored = WebhookEvent.objects.get(type="setup_intent.succeeded")
    assert stored.status == "processed", stored.error
    # A second card replaces the first one (the newer set-up wins) on the same customer.
    second = save_card(customer, card="5555555555554444")
    assert SavedPaymentMethod.objects.filter(user=customer).count() == 1
    assert (second.brand, second.last4) == ("mastercard", "4444")
    assert GatewayCustomer.objects.filter(user=customer).count() == 1


def test_remove_card_on_the_page(client, customer):
    save_card(customer)
    client.force_login(customer)
    page = text(client.get("/payments/card"))
    assert "Saved: Visa ending in 4242. Expires 12/2034." in page and "Remove this card" in page
    response = client.post("/payments/card/remove", follow=True)
    assert "Card removed." in text(response)
    assert not SavedPaymentMethod.objects.filter(user=customer).exists()
    response = client.post("/payments/card/remove", follow=True)
    assert "There was no saved card." in text(response)


def test_a_removed_card_cannot_be_charged(customer, contractor, django_capture_on_commit_callbacks):
    card = save_card(customer)
    pm = card.gateway_payment_method_id
    with django_capture_on_commit_callbacks(execute=True):  # detached at the gateway after commit
        accounts.payment_method_remove(customer)
    task = TaskFactory(customer=customer, instant_book=True)
    with pytest.raises(Conflict) as caught:
        services.instant_book_start(task, by=contractor)
    assert caught.value.code == "no_saved_card"
    # Even with a stale row, the gateway refuses a detached card.
    SavedPaymentMethod.objects.create(
        user=customer, gateway_customer_id=GatewayCustomer.objects.get(user=customer).gateway_customer_id,
        gateway_payment_method_id=pm,
    )
    with pytest.raises(Conflict) as caught:
        services.instant_book_start(task, by=contractor)
    assert caught.value.code == "card_declined"
    assert Task.objects.get(pk=task.pk).status == Task.Status.OPEN


@pytest.mark.parametrize(
    ("number", "code", "says"),
    [
        (NEEDS_AUTH, "authentication_required", "The customer's bank wants them to confirm this payment themselves"),
        (DECLINED_ON_CHARGE, "card_declined", "The customer's saved card was declined"),
    ],
)
def test_off_session_refusals_leave_the_task_open(customer, contractor, number, code, says):
    save_card(customer, card=number)
    task = TaskFactory(customer=customer, instant_book=True, title="Mount the TV")
    with pytest.raises(Conflict) as caught:
        services.instant_book_start(task, by=contractor)
    assert caught.value.code == code and caught.value.message.startswith(says)
    escrow = Escrow.objects.get(task=task)
    assert escrow.status == Escrow.Status.FAILED and escrow.payment_intent_id
    assert not LedgerTransaction.objects.filter(escrow=escrow).exists()
    assert Task.objects.get(pk=task.pk).status == Task.Status.OPEN
    assert Notification.objects.filter(user=customer, title="Instant booking failed: check your card").exists()
    # The same card pays on the checkout page, with the customer there.
    offer = OfferFactory(task=task, contractor=contractor)
    escrow = services.checkout_start(offer, by=customer)
    if number == NEEDS_AUTH:
        get_gateway().confirm(escrow.payment_intent_id, number)
        assert Escrow.objects.get(pk=escrow.pk).status == Escrow.Status.HELD


def test_a_card_setup_is_the_customers_own(customer):
    save_card(customer)
    setup = CardSetup.objects.get(user=customer)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - NotFound for anyone else
        accounts.card_setup_succeeded(setup.setup_intent_id, user=UserFactory(email="x@example.com"))
    assert caught.value.__class__.__name__ == "NotFound"


# --- after a lost chargeback: what people see -------------------------------------------------------------------------


def test_pages_after_a_lost_chargeback(client, customer, contractor, staff, gateway, settings):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_test_new_0123456789abcdef"]
    escrow = EscrowFactory(state="paid_out", customer=customer, contractor=contractor)
    payout = Payout.objects.get(escrow=escrow)
    for status in ("created", "closed"):
        obj = dispute_obj(escrow) | ({"status": "lost"} if status == "closed" else {})
        post(client, event(f"charge.dispute.{status}", obj), secret="whsec_test_new_0123456789abcdef")
    assert Escrow.objects.get(pk=escrow.pk).status == Escrow.Status.CHARGEBACK

    client.force_login(customer)
    page = text(client.get(f"/tasks/{escrow.task.public_id}"))
    assert "Your bank took this payment back (a chargeback)" in page
    assert escrow.task.title in text(client.get("/payments/history"))

    client.force_login(contractor)
    earnings = text(client.get("/payments/earnings"))
    assert escrow.task.title in earnings  # what was paid out stays paid
    assert payout.status == Payout.Status.PAID


def test_a_chargeback_lost_before_the_payout_shows_nothing_owed(client, customer, contractor, settings):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_test_new_0123456789abcdef"]
    held = fund(OfferFactory(task=TaskFactory(customer=customer, title="Clean the gutters"), contractor=contractor))
    for status in ("created", "closed"):
        obj = dispute_obj(held) | ({"status": "lost"} if status == "closed" else {})
        post(client, event(f"charge.dispute.{status}", obj), secret="whsec_test_new_0123456789abcdef")
    client.force_login(contractor)
    page = text(client.get(f"/tasks/{held.task.public_id}"))
    assert "The customer's bank took this payment back" in page
    assert "Clean the gutters" not in text(client.get("/payments/earnings"))
