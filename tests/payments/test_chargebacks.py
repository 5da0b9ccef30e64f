"""A bank dispute's outcome (``charge.dispute.closed``): lost sends the frozen
money out in one balanced ``chargeback`` transaction and ends the escrow; won
lifts the freeze (and releases money whose task was approved meanwhile).
Through the signed webhook endpoint like the other handlers: replays,
duplicates and every order of arrival end in the same state; bad events
change nothing; staff see it on the admin money timeline."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import Conflict
from messaging.models import Notification
from payments import handlers, ledger, services
from payments.gateway import GatewayError, get_gateway
from payments.models import Chargeback, Escrow, LedgerTransaction, Payout, WebhookEvent
from tasks.models import Task
from tests.payments.factories import EscrowFactory, payouts_enabled
from tests.payments.helpers import fund
from tests.payments.ledger_support import (  # noqa: F401 - fixture
    assert_escrow_invariants,
    by_account,
    entries,
    gateway_fixture,
    kinds,
)
from tests.payments.webhook_helpers import (  # noqa: F401 - fixtures
    deliver_fixture,
    dispute_obj,
    event,
    post,
    settle,
    webhook_secret_fixture,
)
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import text


def opened(escrow: Escrow, **extra) -> dict:
    return event("charge.dispute.created", dispute_obj(escrow) | extra)


def closed(escrow: Escrow, status: str, *, event_id: str | None = None, **extra) -> dict:
    obj = dispute_obj(escrow) | {"status": status} | extra
    return event("charge.dispute.closed", obj, event_id=event_id or f"evt_closed_{obj['id']}_{status}")


def state(escrow: Escrow) -> tuple:
    escrow.refresh_from_db()
    return escrow.status, sorted(kinds(escrow)), Chargeback.objects.filter(escrow=escrow).values_list("status", flat=True).first()


pytestmark = pytest.mark.django_db


# --- lost --------------------------------------------------------------------------------------------


def test_a_lost_chargeback_sends_the_frozen_money_out_in_one_balanced_transaction(deliver, staff):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    assert state(escrow)[0] == Escrow.Status.FROZEN
    assert by_account(escrow) == {"customer_funds_in": -escrow.total_cents, "chargebacks": escrow.total_cents}

    stored = deliver(closed(escrow, "lost"))

    assert stored.status == "processed", stored.error
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.CHARGEBACK
    [txn] = LedgerTransaction.objects.filter(escrow=escrow, kind="chargeback")
    assert txn.idempotency_key == f"escrow:{escrow.public_id}:chargeback"
    assert entries(escrow, "chargeback") == sorted(
        [("chargebacks", None, -escrow.total_cents), ("chargebacks_out", None, escrow.total_cents)]
    )
    assert by_account(escrow) == {"customer_funds_in": -escrow.total_cents, "chargebacks_out": escrow.total_cents}
    assert ledger.derived_state(escrow) == Escrow.Status.CHARGEBACK
    assert_escrow_invariants(escrow)
    chargeback = Chargeback.objects.get(escrow=escrow)
    assert (chargeback.status, chargeback.gateway_status, chargeback.amount_cents) == ("lost", "lost", escrow.total_cents)
    assert chargeback.closed_at is not None
    assert Notification.objects.filter(user=staff, title="Chargeback lost").exists()
    assert Notification.objects.filter(user=escrow.contractor, title__contains="reversed").exists()


def test_lost_while_the_payout_waited_cancels_it(deliver, gateway):
    escrow = EscrowFactory(state="released")
    share = Payout.objects.get(escrow=escrow).amount_cents
    deliver(opened(escrow))
    deliver(closed(escrow, "lost"))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.CHARGEBACK
    assert Payout.objects.get(escrow=escrow).status == Payout.Status.CANCELLED
    assert by_account(escrow) == {"customer_funds_in": -escrow.total_cents, "chargebacks_out": escrow.total_cents}
    assert share > 0
    # The sweep never pays it now.
    services.payout_sweep(now=timezone.now() + dt.timedelta(days=10))
    assert gateway.effects("create_transfer") == 0
    assert_escrow_invariants(escrow)


def test_lost_after_the_contractor_was_paid_is_covered_by_the_platform(deliver, gateway):
    escrow = EscrowFactory(state="paid_out")
    payout = Payout.objects.get(escrow=escrow)
    assert payout.status == Payout.Status.PAID
    deliver(opened(escrow))
    frozen = escrow.total_cents - payout.amount_cents  # commission + service fee were still on the platform
    assert by_account(escrow)["chargebacks"] == frozen

    deliver(closed(escrow, "lost"))

    assert entries(escrow, "chargeback") == sorted(
        [
            ("chargebacks", None, -frozen),
            ("chargebacks_out", None, escrow.total_cents),
            ("platform_revenue", None, -payout.amount_cents),
        ]
    )
    money = by_account(escrow)
    assert money["payouts_out"] == payout.amount_cents  # the contractor keeps what they were paid
    assert money["chargebacks_out"] == escrow.total_cents
    assert sum(money.values()) == 0
    assert_escrow_invariants(escrow)


def _chargeback_during_the_transfer(escrow: Escrow, gateway, dispute_id: str = "dp_in_flight") -> Payout:
    """The payout sweep is at the gateway (the transfer is being made) when
    the bank's ``charge.dispute.created`` is processed."""
    payout = Payout.objects.get(escrow=escrow)
    payouts_enabled(escrow.contractor)
    transfer = gateway.create_transfer

    def transfer_while_the_bank_disputes(**kwargs):
        services.chargeback_opened(escrow, dispute_id=dispute_id, amount_cents=escrow.total_cents)
        return transfer(**kwargs)

    gateway.create_transfer = transfer_while_the_bank_disputes
    return services.payout_attempt(payout, now=timezone.now() + dt.timedelta(days=4))


def test_a_chargeback_while_the_transfer_is_made_leaves_no_negative_earnings(gateway):
    escrow = EscrowFactory(state="released")
    payout = _chargeback_during_the_transfer(escrow, gateway)
    assert payout.status == Payout.Status.PAID

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.FROZEN
    money = by_account(escrow)
    assert money.get("contractor_payable", 0) == 0  # paid out, not owed back by the contractor
    assert money["payouts_out"] == payout.amount_cents
    assert money["chargebacks"] == escrow.total_cents - payout.amount_cents

    services.chargeback_closed(escrow, dispute_id="dp_in_flight", outcome="lost", amount_cents=escrow.total_cents)

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.CHARGEBACK
    assert by_account(escrow) == {
        "customer_funds_in": -escrow.total_cents,
        "payouts_out": payout.amount_cents,  # the contractor keeps what was paid
        "chargebacks_out": escrow.total_cents,
        "platform_revenue": -payout.amount_cents,  # which the platform covers
    }
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.PAID
    assert_escrow_invariants(escrow)


def test_won_after_a_chargeback_during_the_transfer_leaves_the_payout_paid_once(gateway):
    escrow = EscrowFactory(state="released")
    payout = _chargeback_during_the_transfer(escrow, gateway)
    assert payout.status == Payout.Status.PAID

    services.chargeback_closed(escrow, dispute_id="dp_in_flight", outcome="won", amount_cents=escrow.total_cents)

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.RELEASED
    money = by_account(escrow)
    assert money.get("contractor_payable", 0) == 0
    assert money["payouts_out"] == payout.amount_cents
    assert money.get("chargebacks", 0) == 0
    services.payout_sweep(now=timezone.now() + dt.timedelta(days=10))
    assert gateway.effects("create_transfer") == 1
    assert_escrow_invariants(escrow)


def test_lost_after_a_transfer_that_failed_while_frozen_sends_the_unpaid_share_out_too(gateway):
    escrow = EscrowFactory(state="released")
    gateway.fail_next("create_transfer", GatewayError("Account closed", retryable=False, code="account_invalid"))
    payout = _chargeback_during_the_transfer(escrow, gateway, dispute_id="dp_failed")
    assert payout.status == Payout.Status.FAILED

    services.chargeback_closed(escrow, dispute_id="dp_failed", outcome="lost", amount_cents=escrow.total_cents)

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.CHARGEBACK
    assert by_account(escrow) == {"customer_funds_in": -escrow.total_cents, "chargebacks_out": escrow.total_cents}
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.CANCELLED
    assert_escrow_invariants(escrow)


@pytest.mark.django_db(transaction=True)
def test_a_chargeback_processed_on_another_connection_during_the_transfer(gateway):
    """The same race on two database connections: the payout sweep waits at
    the gateway while the bank's dispute is processed and committed."""
    escrow = EscrowFactory(state="released")
    payout = Payout.objects.get(escrow=escrow)
    payouts_enabled(escrow.contractor)
    at_gateway, frozen = threading.Event(), threading.Event()
    transfer = gateway.create_transfer

    def slow_transfer(**kwargs):
        at_gateway.set()
        frozen.wait(20)
        return transfer(**kwargs)

    gateway.create_transfer = slow_transfer
    errors: list[BaseException] = []

    def sweep():
        try:
            services.payout_sweep(now=timezone.now() + dt.timedelta(days=4))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def bank():
        try:
            assert at_gateway.wait(20)
            services.chargeback_opened(
                Escrow.objects.get(pk=escrow.pk), dispute_id="dp_threads", amount_cents=escrow.total_cents
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            frozen.set()
            connection.close()

    threads = [threading.Thread(target=sweep), threading.Thread(target=bank)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    payout.refresh_from_db()
    assert payout.status == Payout.Status.PAID
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.FROZEN
    assert by_account(escrow).get("contractor_payable", 0) == 0

    services.chargeback_closed(escrow, dispute_id="dp_threads", outcome="lost", amount_cents=escrow.total_cents)
    assert by_account(escrow) == {
        "customer_funds_in": -escrow.total_cents,
        "payouts_out": payout.amount_cents,
        "chargebacks_out": escrow.total_cents,
        "platform_revenue": -payout.amount_cents,
    }
    assert_escrow_invariants(escrow)


def test_a_partial_chargeback_is_left_frozen_for_staff(deliver, staff):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow, amount=1_000))
    before = sorted(kinds(escrow))
    stored = deliver(closed(escrow, "lost", amount=1_000))

    assert stored.status == "processed"
    assert state(escrow) == (Escrow.Status.FROZEN, before, "needs_staff")
    assert "settle by hand" in Chargeback.objects.get(escrow=escrow).note
    assert Notification.objects.filter(user=staff, title__contains="needs staff").exists()


def test_a_lost_chargeback_on_refunded_money_is_left_for_staff(deliver, gateway):
    escrow = EscrowFactory(state="refunded")
    deliver(opened(escrow))
    deliver(closed(escrow, "lost"))
    assert state(escrow) == (Escrow.Status.REFUNDED, ["fund", "refund"], "needs_staff")
    assert_escrow_invariants(escrow)


# --- won -----------------------------------------------------------------------------------------------


def test_a_won_chargeback_lifts_the_freeze(deliver):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    deliver(closed(escrow, "won"))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.HELD
    assert by_account(escrow) == {"customer_funds_in": -escrow.total_cents, "escrow_held": escrow.total_cents}
    assert Chargeback.objects.get(escrow=escrow).status == "won"
    assert not LedgerTransaction.objects.filter(escrow=escrow, kind="chargeback").exists()
    assert_escrow_invariants(escrow)


def test_won_after_the_task_was_approved_meanwhile_releases_the_money(deliver):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    # Approved while frozen: tasks.payment_hooks.on_completed leaves a frozen escrow alone.
    Task.objects.filter(pk=escrow.task_id).update(status=Task.Status.COMPLETED)
    deliver(closed(escrow, "warning_closed"))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.RELEASED
    assert Payout.objects.get(escrow=escrow).status == Payout.Status.PENDING
    assert "released" in Chargeback.objects.get(escrow=escrow).note
    assert_escrow_invariants(escrow)


def test_won_on_a_task_cancelled_meanwhile_holds_the_money_and_alerts_staff(deliver, staff):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    Task.objects.filter(pk=escrow.task_id).update(status=Task.Status.CANCELLED)
    deliver(closed(escrow, "won"))

    assert state(escrow)[0] == Escrow.Status.HELD
    assert Notification.objects.filter(user=staff, title__contains="cancelled task").exists()


def test_won_does_not_lift_a_freeze_made_by_a_dispute_between_the_parties(deliver):
    escrow = EscrowFactory(state="frozen")  # frozen before the chargeback (e.g. a dispute on the task)
    deliver(opened(escrow))
    deliver(closed(escrow, "won"))
    assert state(escrow)[0] == Escrow.Status.FROZEN
    assert Chargeback.objects.get(escrow=escrow).froze_escrow is False


# --- replays, duplicates, order ---------------------------------------------------------------------------


def test_replays_and_duplicates_have_one_effect(deliver, client, django_capture_on_commit_callbacks):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    body = closed(escrow, "lost")
    deliver(body)
    deliver(body)  # the same event again: stored once
    deliver(closed(escrow, "lost", event_id="evt_other_delivery"))  # a duplicate with another id
    deliver(closed(escrow, "won", event_id="evt_contradiction"))  # closed already: ignored

    assert WebhookEvent.objects.filter(type="charge.dispute.closed").count() == 3
    assert state(escrow) == (Escrow.Status.CHARGEBACK, ["adjustment", "chargeback", "fund"], "lost")
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="chargeback").count() == 1
    assert_escrow_invariants(escrow)


@pytest.mark.parametrize("outcome", ["lost", "won"])
def test_closed_before_created_ends_the_same(deliver, outcome):
    in_order, reordered = EscrowFactory(state="held"), EscrowFactory(state="held")
    deliver(opened(in_order))
    deliver(closed(in_order, outcome))

    deliver(closed(reordered, outcome))
    late = deliver(opened(reordered))

    assert late.status == "processed"
    assert state(reordered)[0] == state(in_order)[0]
    assert state(reordered)[2] == state(in_order)[2] == outcome
    assert by_account(reordered) == by_account(in_order)
    if outcome == "won":
        assert state(reordered)[0] == Escrow.Status.HELD and "nothing to freeze" in late.error
    assert_escrow_invariants(reordered)


def test_closed_before_the_payment_is_recorded_waits(deliver, django_capture_on_commit_callbacks):
    escrow = EscrowFactory()
    stored = deliver(closed(escrow, "lost"))
    assert stored.status == "failed" and stored.error.startswith("deferred")
    assert not Chargeback.objects.exists()

    services.escrow_funded(
        escrow, payment_intent_id=escrow.payment_intent_id, charge_id="ch_x", amount_cents=escrow.total_cents
    )
    settle(django_capture_on_commit_callbacks)
    stored.refresh_from_db()
    assert stored.status == "processed"
    assert state(escrow)[0] == Escrow.Status.CHARGEBACK


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{"status": "needs_response"}, {"status": ""}, {"amount": None}, {"amount": "lots"}, {"amount": -5}, {"id": ""}],
)
def test_a_bad_closed_event_changes_nothing(deliver, extra):
    escrow = EscrowFactory(state="held")
    deliver(opened(escrow))
    before = (state(escrow), by_account(escrow))
    obj = dispute_obj(escrow) | {"status": "lost"} | extra
    stored = deliver(event("charge.dispute.closed", obj, event_id="evt_bad_closed"))

    assert stored.status == "failed" and stored.error
    assert (state(escrow), by_account(escrow)) == before
    assert Chargeback.objects.get(escrow=escrow).status == "open"


def test_a_closed_event_with_a_bad_signature_is_refused(client):
    escrow = EscrowFactory(state="held")
    response = post(client, closed(escrow, "lost"), secret="whsec_wrong")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert state(escrow)[0] == Escrow.Status.HELD


def test_a_dispute_cannot_be_moved_to_another_escrow(deliver):
    first, second = EscrowFactory(state="held"), EscrowFactory(state="held")
    deliver(opened(first))
    obj = dispute_obj(second) | {"id": dispute_obj(first)["id"], "status": "lost"}
    stored = deliver(event("charge.dispute.closed", obj, event_id="evt_wrong_escrow"))
    assert stored.status == "failed" and "another payment" in stored.error
    assert state(second)[0] == Escrow.Status.HELD
    assert state(first)[0] == Escrow.Status.FROZEN


def test_an_unknown_outcome_is_refused_by_the_service_and_nothing_is_written():
    escrow = EscrowFactory(state="held")
    with pytest.raises(Conflict) as caught:
        services.chargeback_closed(escrow, dispute_id="dp_x", outcome="maybe", amount_cents=escrow.total_cents)
    assert caught.value.code == "invalid_dispute"
    assert not Chargeback.objects.exists()
    assert state(escrow)[0] == Escrow.Status.HELD


# --- end to end with the simulated gateway, and the admin -----------------------------------------------------


@pytest.fixture
def webhooks_at_once(monkeypatch):
    from payments.tasks_webhooks import process_webhook_event

    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: process_webhook_event.delay(pk))


def test_simulated_bank_dispute_lost_end_to_end_and_on_the_admin_timeline(client, staff, customer, contractor, webhooks_at_once):
    held = fund(OfferFactory(task=TaskFactory(customer=customer, title="Paint the fence"), contractor=contractor))
    gateway = get_gateway()
    dispute_id = gateway.open_dispute(held.payment_intent_id)
    assert state(held)[0] == Escrow.Status.FROZEN
    gateway.close_dispute(dispute_id, status="lost")
    gateway.close_dispute(dispute_id, status="lost")  # twice: one event

    assert state(held) == (Escrow.Status.CHARGEBACK, ["adjustment", "chargeback", "fund"], "lost")
    assert WebhookEvent.objects.filter(type="charge.dispute.closed", status="processed").count() == 1

    client.force_login(staff)
    page = text(client.get(f"/admin/payments/escrow/{held.pk}/change/"))
    assert "Chargeback" in page and "Chargebacks lost (returned by the bank)" in page
    assert dispute_id in page
    assert client.get("/admin/payments/chargeback/").status_code == 200
    assert client.post(f"/admin/payments/chargeback/{Chargeback.objects.get().pk}/delete/", {"post": "yes"}).status_code == 403
    client.force_login(customer)
    assert client.get("/admin/payments/chargeback/").status_code == 302  # not staff: to the login page


# --- concurrency -------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_created_and_closed_at_once_end_with_one_chargeback(client, monkeypatch):
    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: None)  # processed below, from two threads at once
    escrow = EscrowFactory(state="held")
    bodies = [opened(escrow), closed(escrow, "lost")]
    stored = []
    for body in bodies:
        post_response = post(client, body)  # stored; processing queued after commit
        assert post_response.status_code == 200
        stored.append(WebhookEvent.objects.get(event_id=body["id"]).pk)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(pk):
        try:
            barrier.wait()
            handlers.process_event(pk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in stored]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for pk in stored:  # a created that lost the race to closed is processed (nothing to do), not failed
        handlers.process_event(pk)
    assert Chargeback.objects.count() == 1
    assert state(escrow) == (Escrow.Status.CHARGEBACK, ["adjustment", "chargeback", "fund"], "lost")
    assert_escrow_invariants(escrow)
