"""Stripe duplicates, replays and reorders events: every order ends in the same
state. Also the same event at once from two threads on PostgreSQL, and the
simulated gateway's events going through the real endpoint end to end."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading

import pytest
from django.db import connection

from payments import handlers, reconcile, services, webhooks
from payments.gateway import CardDeclined, get_gateway, simulated
from payments.gateway.simulated import sign
from payments.models import Escrow, LedgerTransaction, Refund, WebhookEvent
from tasks.models import Task
from tests.payments.factories import EscrowFactory
from tests.payments.webhook_helpers import (  # noqa: F401 - fixtures
    NEW_SECRET,
    deliver_fixture,
    dispute_obj,
    event,
    intent_obj,
    post,
    settle,
    webhook_secret_fixture,
)
from tests.tasks.factories import OfferFactory, TaskFactory


def state(escrow: Escrow) -> tuple:
    escrow.refresh_from_db()
    kinds = sorted(LedgerTransaction.objects.filter(escrow=escrow).values_list("kind", flat=True))
    return escrow.status, escrow.captured_cents, kinds, Task.objects.get(pk=escrow.task_id).status


@pytest.mark.django_db
def test_a_chargeback_before_the_payment_waits_and_ends_frozen(deliver, django_capture_on_commit_callbacks):
    escrow = EscrowFactory()
    deliver(event("charge.dispute.created", dispute_obj(escrow)))
    dispute = WebhookEvent.objects.get(type="charge.dispute.created")
    assert dispute.status == "failed" and dispute.error.startswith("deferred")
    assert state(escrow)[0] == Escrow.Status.UNFUNDED

    deliver(event("payment_intent.succeeded", intent_obj(escrow)))
    assert state(escrow)[0] == Escrow.Status.HELD
    settle(django_capture_on_commit_callbacks)

    dispute.refresh_from_db()
    assert dispute.status == "processed" and dispute.attempts == 2
    assert state(escrow)[0] == Escrow.Status.FROZEN


@pytest.mark.django_db
def test_retries_wait_for_their_backoff(deliver):
    escrow = EscrowFactory()
    deliver(event("charge.dispute.created", dispute_obj(escrow)))
    stored = WebhookEvent.objects.get()

    assert handlers.retry_due_events(now=stored.received_at + dt.timedelta(seconds=5)) == 0
    assert handlers.retry_due_events(now=stored.received_at + dt.timedelta(seconds=31)) == 1


@pytest.mark.django_db
def test_every_order_of_replayed_events_ends_in_the_same_state(client, django_capture_on_commit_callbacks):
    """Failed attempt, success, a resend of the success, a chargeback and an
    unknown event, each order delivered with duplicates: always frozen, funded
    once, and nothing left failed."""
    outcomes = set()
    rng = random.Random(4)  # noqa: S311 - test shuffling
    for _round in range(6):
        escrow = EscrowFactory()
        events = [
            event("payment_intent.payment_failed", intent_obj(escrow, status="requires_payment_method"),
                  event_id=f"evt_fail_{escrow.pk}"),
            event("payment_intent.succeeded", intent_obj(escrow), event_id=f"evt_ok_{escrow.pk}"),
            event("payment_intent.succeeded", intent_obj(escrow), event_id=f"evt_ok_resent_{escrow.pk}"),
            event("charge.dispute.created", dispute_obj(escrow), event_id=f"evt_dp_{escrow.pk}"),
            event("charge.updated", {"id": "ch_x", "object": "charge"}, event_id=f"evt_unknown_{escrow.pk}"),
        ]
        deliveries = events + rng.sample(events, 3)  # replays
        rng.shuffle(deliveries)
        for body in deliveries:
            with django_capture_on_commit_callbacks(execute=True):
                assert post(client, body).status_code == 200
        settle(django_capture_on_commit_callbacks)

        status, captured, kinds, task_status = state(escrow)
        outcomes.add((status, captured == escrow.total_cents, tuple(k for k in kinds if k == "fund"), task_status))
        mine = WebhookEvent.objects.filter(event_id__endswith=f"_{escrow.pk}")
        assert mine.count() == 5
        assert set(mine.values_list("status", flat=True)) <= {"processed", "ignored"}
    assert outcomes == {(Escrow.Status.FROZEN, True, ("fund",), Task.Status.ASSIGNED)}


# --- two at once, on PostgreSQL ---------------------------------------------------


def _at_once(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work()
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_has_one_effect():
    escrow = EscrowFactory()
    payload = json.dumps(event("payment_intent.succeeded", intent_obj(escrow)))
    header = sign(payload, NEW_SECRET)

    results = _at_once(2, lambda: webhooks.receive(payload.encode(), header))

    assert sorted(r[0] for r in results) == [200, 200]
    assert sorted(r[1].get("duplicate", False) for r in results) == [False, True]
    assert WebhookEvent.objects.count() == 1
    assert WebhookEvent.objects.get().status == "processed"
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="fund").count() == 1
    assert state(escrow)[0] == Escrow.Status.HELD


@pytest.mark.django_db(transaction=True)
def test_one_stored_event_processed_twice_at_once_has_one_effect():
    escrow = EscrowFactory()
    body = event("payment_intent.succeeded", intent_obj(escrow))
    stored = WebhookEvent.objects.create(event_id=body["id"], type=body["type"], payload=body)

    results = _at_once(2, lambda: handlers.process_event(stored.pk))

    assert sorted(results) == ["processed", "processed"]
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == ("processed", 1)
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="fund").count() == 1


# --- the simulated gateway, end to end ------------------------------------------------


@pytest.fixture
def checkout(customer, contractor, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_WEBHOOK_SECRETS = []
    settings.PAYMENTS_GATEWAY = "simulated"
    simulated.reset()
    task = TaskFactory(customer=customer)
    offer = OfferFactory(task=task, contractor=contractor, price_cents=12_000)
    with django_capture_on_commit_callbacks(execute=True):
        escrow = services.checkout_start(offer, by=customer)
    assert escrow.payment_intent_id.startswith("pi_sim_")
    return escrow


@pytest.mark.django_db
def test_simulated_checkout_with_a_test_card_funds_through_the_webhook(checkout, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = get_gateway().confirm(checkout.payment_intent_id, "4242 4242 4242 4242")

    assert result.status == "succeeded"
    status, captured, kinds, task_status = state(checkout)
    assert (status, captured, kinds, task_status) == (
        Escrow.Status.HELD, checkout.total_cents, ["fund"], Task.Status.ASSIGNED
    )
    assert dict(WebhookEvent.objects.values_list("type", "status")) == {
        "charge.succeeded": "ignored",
        "payment_intent.succeeded": "processed",
    }
    assert checkout.charge_id.startswith("ch_sim_")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("card", "message"),
    [("4000000000000002", "Your card was declined."), ("4000 0000 0000 9995", "Your card has insufficient funds.")],
)
def test_simulated_declines_fail_the_checkout_and_leave_the_task_open(
    checkout, django_capture_on_commit_callbacks, card, message
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CardDeclined) as caught:
        get_gateway().confirm(checkout.payment_intent_id, card)

    assert caught.value.message == message
    assert state(checkout)[0] == Escrow.Status.FAILED
    assert Task.objects.get(pk=checkout.task_id).status == Task.Status.OPEN
    assert WebhookEvent.objects.get().type == "payment_intent.payment_failed"


@pytest.mark.django_db
def test_a_simulated_refund_goes_through_the_webhook_and_reconciles_cleanly(checkout, django_capture_on_commit_callbacks):
    gateway = get_gateway()
    with django_capture_on_commit_callbacks(execute=True):
        gateway.confirm(checkout.payment_intent_id, "4242424242424242")
    with django_capture_on_commit_callbacks(execute=True):
        services.escrow_refund(checkout, reason="Customer cancelled before check-in")

    refund = Refund.objects.get(escrow=checkout)
    assert refund.status == Refund.Status.SUCCEEDED and refund.gateway_refund_id.startswith("re_sim_")
    refunded_event = WebhookEvent.objects.get(type="charge.refunded")
    assert refunded_event.status == "processed"
    assert state(checkout)[0] == Escrow.Status.REFUNDED

    run = reconcile.run()
    assert run.differences == []
    assert run.checked >= 4


@pytest.mark.django_db
def test_a_simulated_chargeback_freezes_the_money(checkout, django_capture_on_commit_callbacks):
    gateway = get_gateway()
    with django_capture_on_commit_callbacks(execute=True):
        gateway.confirm(checkout.payment_intent_id, "4242424242424242")
    with django_capture_on_commit_callbacks(execute=True):
        gateway.open_dispute(checkout.payment_intent_id)

    assert state(checkout)[0] == Escrow.Status.FROZEN
    assert WebhookEvent.objects.get(type="charge.dispute.created").status == "processed"
