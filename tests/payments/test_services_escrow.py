"""Escrow services: each one's ledger entries to the cent, its refusals
(nothing written), and the task flow around them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import ApplicationError, Conflict, PermissionDenied
from payments import ledger, services
from payments.models import Escrow, GatewayOperation, LedgerTransaction, Payout, Refund
from tasks import services as task_services
from tasks.models import Offer, Task
from tests.payments.factories import EscrowFactory, fund, payouts_enabled, ready_contractor, unfunded_escrow
from tests.payments.ledger_support import (  # noqa: F401  (gateway is a fixture)
    assert_escrow_invariants,
    by_account,
    entries,
    gateway_fixture,
    kinds,
    row_counts,
)
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db

# Offer price 110.00: fee 5.50, commission 11.00, total 115.50, contractor's share 99.00.
PRICE, FEE, COMMISSION, TOTAL, SHARE = 11_000, 550, 1_100, 11_550, 9_900


# --- checkout -------------------------------------------------------------------------------------


def test_checkout_start_stores_the_key_then_creates_the_intent_and_leaves_the_task_open(customer, gateway):
    task = TaskFactory(customer=customer)
    offer = OfferFactory(task=task, price_cents=PRICE)
    escrow = services.checkout_start(offer, by=customer)
    assert (escrow.status, escrow.price_cents, escrow.service_fee_cents, escrow.commission_cents, escrow.total_cents) == (
        "unfunded", PRICE, FEE, COMMISSION, TOTAL
    )
    key = f"escrow:{escrow.public_id}:payment_intent"
    [(operation, used_key, params)] = gateway.calls
    assert (operation, used_key, params["amount_cents"]) == ("create_payment_intent", key, TOTAL)
    assert params["metadata"] == {"escrow": str(escrow.public_id), "task": str(task.public_id)}
    assert escrow.payment_intent_id == "pi_1"
    assert escrow.transfer_group == f"task:{task.public_id}"
    assert GatewayOperation.objects.get(idempotency_key=key).status == "succeeded"
    assert 14 <= (escrow.checkout_expires_at - timezone.now()).total_seconds() / 60 <= 15
    task.refresh_from_db()
    offer.refresh_from_db()
    assert (task.status, offer.status) == ("open", "pending")
    assert escrow.transactions.count() == 0


def test_accepting_again_returns_the_same_checkout(customer, gateway):
    offer = OfferFactory(task=TaskFactory(customer=customer), price_cents=PRICE)
    first = services.checkout_start(offer, by=customer)
    again = services.checkout_start(offer, by=customer)
    assert again.pk == first.pk
    assert Escrow.objects.count() == 1
    assert len(gateway.calls) == 1


def test_hourly_tasks_are_paid_for_the_estimated_hours(customer, gateway):
    task = TaskFactory(customer=customer, budget_type="hourly", budget_cents=5_000, estimated_hours=3)
    escrow = services.checkout_start(OfferFactory(task=task, price_cents=4_000), by=customer)
    assert (escrow.price_cents, escrow.total_cents) == (12_000, 12_600)


@pytest.mark.parametrize("who", ["outsider", "contractor"])
def test_only_the_customer_can_start_a_checkout(customer, outsider, contractor, who, gateway):
    offer = OfferFactory(task=TaskFactory(customer=customer), contractor=contractor)
    before = row_counts()
    with pytest.raises(PermissionDenied):
        services.checkout_start(offer, by={"outsider": outsider, "contractor": contractor}[who])
    assert row_counts() == before and gateway.calls == []


@pytest.mark.parametrize("case", ["declined_offer", "assigned_task", "cancelled_task"])
def test_no_checkout_for_an_offer_that_cannot_be_accepted(customer, case, gateway):
    task = TaskFactory(customer=customer)
    offer = OfferFactory(task=task)
    if case == "declined_offer":
        Offer.objects.filter(pk=offer.pk).update(status="declined")
    else:
        Task.objects.filter(pk=task.pk).update(status="cancelled" if case == "cancelled_task" else "open")
        if case == "assigned_task":
            EscrowFactory(task=task, state="held")
    before = row_counts()
    with pytest.raises(Conflict):
        services.checkout_start(offer, by=customer)
    assert row_counts() == before


def test_a_declined_card_fails_the_checkout_and_the_offer_stays_acceptable(customer, gateway):
    from payments.gateway.base import CardDeclined

    offer = OfferFactory(task=TaskFactory(customer=customer))
    gateway.fail_next("create_payment_intent", CardDeclined("Your card has insufficient funds."))
    with pytest.raises(Conflict, match="insufficient funds"):
        services.checkout_start(offer, by=customer)
    escrow = Escrow.objects.get()
    assert escrow.status == "failed"
    offer.refresh_from_db()
    assert offer.status == "pending"
    # A new try starts a new checkout.
    again = services.checkout_start(offer, by=customer)
    assert again.pk != escrow.pk and again.status == "unfunded"


def test_a_gateway_timeout_after_the_charge_is_retried_with_the_same_key_and_charges_once(customer, gateway):
    offer = OfferFactory(task=TaskFactory(customer=customer))
    gateway.fail_next("create_payment_intent", after_effect=True)  # made it, then the answer was lost
    with pytest.raises(ApplicationError) as caught:
        services.checkout_start(offer, by=customer)
    assert caught.value.code == "gateway_unavailable"
    escrow = Escrow.objects.get()
    assert (escrow.status, escrow.payment_intent_id) == ("unfunded", "")
    again = services.checkout_start(offer, by=customer)
    assert again.pk == escrow.pk and again.payment_intent_id == "pi_1"
    keys = [key for op, key, _ in gateway.calls if op == "create_payment_intent"]
    assert keys == [f"escrow:{escrow.public_id}:payment_intent"] * 2
    assert gateway.effects("create_payment_intent") == 1
    assert GatewayOperation.objects.get(idempotency_key=keys[0]).attempts == 2


# --- funding ----------------------------------------------------------------------------------------


def test_funding_holds_the_money_and_books_the_task(customer, gateway, django_capture_on_commit_callbacks):
    escrow = unfunded_escrow(customer=customer, price_cents=PRICE)
    rival = OfferFactory(task=escrow.task)
    with django_capture_on_commit_callbacks(execute=True):
        escrow = fund(escrow)
    assert (escrow.status, escrow.captured_cents, escrow.charge_id != "") == ("held", TOTAL, True)
    assert entries(escrow, "fund") == [("customer_funds_in", None, -TOTAL), ("escrow_held", None, TOTAL)]
    assert ledger.escrow_balance(escrow) == TOTAL
    task = Task.objects.get(pk=escrow.task_id)
    assert (task.status, task.contractor_id, task.agreed_price_cents) == ("assigned", escrow.contractor_id, PRICE)
    assert Offer.objects.get(pk=escrow.offer_id).status == "accepted"
    assert Offer.objects.get(pk=rival.pk).status == "declined"
    assert_escrow_invariants(escrow)


def test_a_replayed_funding_changes_nothing(customer, gateway):
    escrow = fund(unfunded_escrow(customer=customer))
    before = row_counts()
    again = fund(escrow)
    assert again.status == "held" and row_counts() == before


def test_payment_for_a_task_someone_else_booked_is_refunded_in_full(customer, gateway, django_capture_on_commit_callbacks):
    first = fund(unfunded_escrow(customer=customer))
    late = unfunded_escrow(task=first.task, offer=OfferFactory(task=first.task))
    with django_capture_on_commit_callbacks(execute=True):
        late = fund(late)
    assert (late.status, late.captured_cents, late.refunded_cents) == ("refunded", TOTAL, TOTAL)
    assert kinds(late) == ["fund", "refund"]
    assert entries(late, "refund") == [("escrow_held", None, -TOTAL), ("refunds_out", None, TOTAL)]
    refund = Refund.objects.get(escrow=late)
    assert (refund.status, refund.amount_cents, refund.gateway_refund_id) == ("succeeded", TOTAL, "re_1")
    assert [(op, key) for op, key, _ in gateway.calls] == [("create_refund", f"escrow:{late.public_id}:refund")]
    assert customer.notifications.filter(title="Your payment was refunded").count() == 1
    first.refresh_from_db()
    assert first.status == "held"
    assert_escrow_invariants(late)
    assert_escrow_invariants(first)


@pytest.mark.parametrize("amount", [TOTAL - 1, TOTAL + 1, 0, -5])
def test_funding_with_the_wrong_amount_is_refused_and_nothing_is_written(customer, gateway, amount):
    escrow = unfunded_escrow(customer=customer)
    before = row_counts()
    with pytest.raises(ApplicationError):
        services.escrow_funded(escrow, payment_intent_id=escrow.payment_intent_id, charge_id="ch_x", amount_cents=amount)
    assert row_counts() == before
    escrow.refresh_from_db()
    assert escrow.status == "unfunded"


def test_a_late_failure_event_does_not_unfund_a_held_escrow(customer, gateway):
    escrow = fund(unfunded_escrow(customer=customer))
    assert services.escrow_payment_failed(escrow, reason="late").status == "held"
    pending = unfunded_escrow(customer=customer)
    assert services.escrow_payment_failed(pending, reason="declined").status == "failed"
    # The customer pays with another card after all: funded from failed.
    assert fund(pending).status == "held"


def test_an_offer_cannot_be_accepted_without_a_held_escrow(customer):
    task = TaskFactory(customer=customer)
    offer = OfferFactory(task=task)
    unfunded_escrow(task=task, offer=offer)
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        task_services.offer_accept(offer, by=customer)
    assert caught.value.code == "payment_required"
    task.refresh_from_db()
    assert (task.status, Offer.objects.get(pk=offer.pk).status, row_counts()) == ("open", "pending", before)


# --- release -------------------------------------------------------------------------------------------


def test_approval_releases_the_share_and_starts_the_payout_hold(customer, gateway):
    escrow = EscrowFactory(state="held", customer=customer)
    Task.objects.filter(pk=escrow.task_id).update(status="submitted", submitted_at=timezone.now())
    task_services.task_approve(Task.objects.get(pk=escrow.task_id), by=customer)
    escrow.refresh_from_db()
    assert (escrow.status, escrow.released_cents) == ("released", PRICE)
    assert entries(escrow, "release") == sorted(
        [("escrow_held", None, -TOTAL), ("contractor_payable", escrow.contractor_id, SHARE), ("platform_revenue", None, FEE + COMMISSION)]
    )
    payout = Payout.objects.get(escrow=escrow)
    assert (payout.status, payout.amount_cents, payout.contractor_id) == ("pending", SHARE, escrow.contractor_id)
    hold = payout.available_at - escrow.released_at
    assert dt.timedelta(hours=71, minutes=59) < hold <= dt.timedelta(hours=72)
    assert ledger.balance_of("contractor_payable", escrow.contractor) == SHARE
    assert_escrow_invariants(escrow)


@pytest.mark.parametrize("state", ["unfunded", "refunded", "released", "split", "frozen"])
def test_only_a_held_escrow_is_released(state, gateway):
    escrow = EscrowFactory(state=state)
    before = row_counts()
    with pytest.raises(Conflict):
        services.escrow_release(escrow)
    assert row_counts() == before


# --- refund and split ------------------------------------------------------------------------------------


def test_refund_returns_everything_and_the_gateway_refund_follows_the_commit(gateway, django_capture_on_commit_callbacks):
    escrow = EscrowFactory(state="held")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.escrow_refund(escrow, reason="Cancelled before check-in")
    assert gateway.calls == []  # not while the transaction (and task lock) is open
    escrow.refresh_from_db()
    assert (escrow.status, escrow.refunded_cents, escrow.released_cents) == ("refunded", TOTAL, 0)
    assert entries(escrow, "refund") == [("escrow_held", None, -TOTAL), ("refunds_out", None, TOTAL)]
    for callback in callbacks:
        callback()
    refund = Refund.objects.get(escrow=escrow)
    assert (refund.status, refund.gateway_refund_id, refund.reason) == ("succeeded", "re_1", "Cancelled before check-in")
    [(op, key, params)] = gateway.calls
    assert (op, key, params) == (
        "create_refund", f"escrow:{escrow.public_id}:refund", {"payment_intent_id": escrow.payment_intent_id, "amount_cents": TOTAL}
    )
    assert_escrow_invariants(escrow)


def test_refund_inside_the_payout_hold_takes_the_money_back_from_payable_without_a_transfer(gateway):
    escrow = EscrowFactory(state="released")
    services.escrow_refund(escrow, reason="Dispute: work not done")
    escrow.refresh_from_db()
    assert escrow.status == "refunded"
    assert entries(escrow, "refund") == sorted(
        [("contractor_payable", escrow.contractor_id, -SHARE), ("platform_revenue", None, -(FEE + COMMISSION)), ("refunds_out", None, TOTAL)]
    )
    assert Payout.objects.get(escrow=escrow).status == "cancelled"
    assert ledger.balance_of("contractor_payable", escrow.contractor) == 0
    assert not [c for c in gateway.calls if c[0] == "create_transfer"]
    assert_escrow_invariants(escrow)


def test_split_pays_the_contractor_part_minus_its_commission_and_refunds_the_rest(gateway):
    escrow = EscrowFactory(state="held")
    services.escrow_split(escrow, contractor_cents=4_500, reason="Call-out fee")
    escrow.refresh_from_db()
    # Commission on 45.00 of a 110.00 price with 11.00 commission: 4.50.
    assert (escrow.status, escrow.released_cents, escrow.refunded_cents) == ("split", 4_500, TOTAL - 4_500)
    assert entries(escrow, "split") == sorted(
        [
            ("escrow_held", None, -TOTAL),
            ("contractor_payable", escrow.contractor_id, 4_050),
            ("platform_revenue", None, 450),
            ("refunds_out", None, TOTAL - 4_500),
        ]
    )
    assert Payout.objects.get(escrow=escrow).amount_cents == 4_050
    assert Refund.objects.get(escrow=escrow).amount_cents == 7_050
    assert_escrow_invariants(escrow)


def test_split_after_release_changes_the_pending_payout(gateway):
    escrow = EscrowFactory(state="released")
    due = Payout.objects.get(escrow=escrow).available_at
    services.escrow_split(escrow, contractor_cents=PRICE, reason="Dispute: customer pays the price only")
    escrow.refresh_from_db()
    payout = Payout.objects.get(escrow=escrow)
    assert (payout.amount_cents, payout.status, payout.available_at) == (SHARE, "pending", due)
    # The whole price to the contractor: the customer gets the service fee back.
    assert entries(escrow, "split") == [("platform_revenue", None, -FEE), ("refunds_out", None, FEE)]
    assert_escrow_invariants(escrow)


@pytest.mark.parametrize(
    ("state", "call", "code"),
    [
        ("held", lambda e: services.escrow_split(e, contractor_cents=0, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_split(e, contractor_cents=-100, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_split(e, contractor_cents=PRICE + 1, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_split(e, contractor_cents=TOTAL, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_split(e, contractor_cents=10.5, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_refund(e, amount_cents=100, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_refund(e, amount_cents=-TOTAL, reason="x"), "invalid_amount"),
        ("held", lambda e: services.escrow_refund(e, reason="  "), "invalid"),
        ("unfunded", lambda e: services.escrow_refund(e, reason="x"), "escrow_state"),
        ("refunded", lambda e: services.escrow_refund(e, reason="x"), "escrow_state"),
        ("refunded", lambda e: services.escrow_release(e), "escrow_state"),
        ("refunded", lambda e: services.escrow_split(e, contractor_cents=100, reason="x"), "escrow_state"),
        ("split", lambda e: services.escrow_refund(e, reason="x"), "escrow_state"),
        ("frozen", lambda e: services.escrow_refund(e, reason="x"), "escrow_frozen"),
        ("paid_out", lambda e: services.escrow_refund(e, reason="x"), "already_paid_out"),
        ("paid_out", lambda e: services.escrow_split(e, contractor_cents=100, reason="x"), "already_paid_out"),
    ],
)
def test_bad_refunds_and_splits_are_refused_and_nothing_is_written(state, call, code, gateway):
    escrow = EscrowFactory(state=state)
    before, status = row_counts(), Escrow.objects.get(pk=escrow.pk).status
    with pytest.raises(ApplicationError) as caught:
        call(escrow)
    assert caught.value.code == code
    assert caught.value.message
    assert (row_counts(), Escrow.objects.get(pk=escrow.pk).status) == (before, status)


def test_only_staff_or_the_system_moves_money_by_hand(customer, contractor, staff, gateway):
    escrow = EscrowFactory(state="held", customer=customer, contractor=contractor)
    before = row_counts()
    for user in (customer, contractor):
        calls = [
            lambda user=user: services.escrow_refund(escrow, reason="mine", by=user),
            lambda user=user: services.escrow_split(escrow, contractor_cents=100, reason="mine", by=user),
            lambda user=user: services.escrow_release(escrow, by=user),
            lambda user=user: services.escrow_freeze(escrow, by=user),
            lambda user=user: services.escrow_unfreeze(escrow, by=user),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied):
                call()
    assert row_counts() == before
    assert Escrow.objects.get(pk=escrow.pk).status == "held"
    services.escrow_refund(escrow, reason="Support refund", by=staff)
    assert LedgerTransaction.objects.get(escrow=escrow, kind="refund").created_by == staff


# --- chargebacks --------------------------------------------------------------------------------------------


def test_a_chargeback_freezes_the_money_and_alerts_staff_then_unfreezing_puts_it_back(staff, gateway):
    escrow = EscrowFactory(state="released")
    services.escrow_freeze(escrow, reason="charge.dispute.created")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.status_before_freeze) == ("frozen", "released")
    assert by_account(escrow)["chargebacks"] == TOTAL
    assert by_account(escrow).get("contractor_payable", 0) == 0
    assert staff.notifications.filter(title="Chargeback: money frozen").count() == 1
    assert services.escrow_freeze(escrow).status == "frozen"  # a replayed event
    assert staff.notifications.count() == 1
    assert_escrow_invariants(escrow)
    # The payout waits while frozen, even with payouts enabled and the hold over.
    payouts_enabled(escrow.contractor)
    services.payout_sweep(now=timezone.now() + dt.timedelta(days=4))
    assert Payout.objects.get(escrow=escrow).status == "pending"
    services.escrow_unfreeze(escrow, by=staff, reason="Won the dispute")
    escrow.refresh_from_db()
    assert escrow.status == "released"
    assert by_account(escrow)["contractor_payable"] == SHARE
    assert by_account(escrow).get("chargebacks", 0) == 0
    assert_escrow_invariants(escrow)


# --- cancellations through the task ----------------------------------------------------------------------------


def _booked_escrow(customer, contractor):
    task = TaskFactory(customer=customer, deadline=timezone.now() + dt.timedelta(hours=2))
    return EscrowFactory(state="held", task=task, offer=OfferFactory(task=task, contractor=contractor, price_cents=PRICE))


def test_customer_cancelling_before_check_in_gets_everything_back(customer, contractor, gateway, django_capture_on_commit_callbacks):
    escrow = _booked_escrow(customer, contractor)
    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_cancel(Task.objects.get(pk=escrow.task_id), by=customer, reason="Plans changed.")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.refunded_cents) == ("refunded", TOTAL)
    assert Refund.objects.get(escrow=escrow).status == "succeeded"


def test_customer_cancelling_after_check_in_pays_the_call_out_fee(customer, contractor, gateway, settings):
    settings.PAYMENTS_CALLOUT_FEE_CENTS = 4_500
    escrow = _booked_escrow(customer, contractor)
    Task.objects.filter(pk=escrow.task_id).update(status="in_progress", started_at=timezone.now())
    task_services.task_cancel(Task.objects.get(pk=escrow.task_id), by=customer, reason="Not needed any more.")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.released_cents, escrow.refunded_cents) == ("split", 4_500, TOTAL - 4_500)
    assert Payout.objects.get(escrow=escrow).amount_cents == 4_050
    assert_escrow_invariants(escrow)


def test_contractor_cancelling_refunds_the_customer_in_full(customer, contractor, gateway):
    escrow = _booked_escrow(customer, contractor)
    Task.objects.filter(pk=escrow.task_id).update(status="in_progress", started_at=timezone.now())
    task_services.task_cancel(Task.objects.get(pk=escrow.task_id), by=contractor, reason="I am sick today.")
    escrow.refresh_from_db()
    assert (escrow.status, escrow.refunded_cents) == ("refunded", TOTAL)


# --- payouts ------------------------------------------------------------------------------------------------------


def test_payout_waits_for_the_hold_then_transfers_when_payouts_are_enabled(gateway):
    escrow = EscrowFactory(state="released")
    payouts_enabled(escrow.contractor)
    payout = Payout.objects.get(escrow=escrow)
    assert services.payout_sweep(now=payout.available_at - dt.timedelta(minutes=1))["paid"] == 0
    assert gateway.calls == []
    counts = services.payout_sweep(now=payout.available_at + dt.timedelta(seconds=1))
    assert counts["paid"] == 1
    payout.refresh_from_db()
    assert (payout.status, payout.transfer_id, payout.last_error) == ("paid", "tr_1", "")
    [(op, key, params)] = gateway.calls
    assert (op, key, params) == (
        "create_transfer", f"escrow:{escrow.public_id}:transfer", {"amount_cents": SHARE, "destination": f"acct_test_{escrow.contractor_id}"}
    )
    assert entries(escrow, "payout") == sorted(
        [("contractor_payable", escrow.contractor_id, -SHARE), ("payouts_out", escrow.contractor_id, SHARE)]
    )
    # Swept again: nothing more.
    services.payout_sweep(now=payout.available_at + dt.timedelta(days=1))
    assert len(gateway.calls) == 1
    assert_escrow_invariants(escrow)


def test_earnings_wait_until_payouts_are_enabled(gateway):
    escrow = EscrowFactory(state="released")
    payout = Payout.objects.get(escrow=escrow)
    later = payout.available_at + dt.timedelta(minutes=1)
    services.payout_sweep(now=later)
    payout.refresh_from_db()
    assert payout.status == "available" and gateway.calls == []
    payouts_enabled(escrow.contractor, enabled=False)
    services.payout_sweep(now=later)
    assert gateway.calls == []
    payouts_enabled(escrow.contractor)
    services.payout_sweep(now=later)
    payout.refresh_from_db()
    assert payout.status == "paid"


def test_a_failed_transfer_keeps_the_money_payable_and_is_retried_with_the_same_key(gateway):
    escrow = EscrowFactory(state="released")
    payouts_enabled(escrow.contractor)
    payout = Payout.objects.get(escrow=escrow)
    now = payout.available_at + dt.timedelta(seconds=1)
    gateway.fail_next("create_transfer", after_effect=True)  # Stripe made it; we timed out
    services.payout_sweep(now=now)
    payout.refresh_from_db()
    assert (payout.status, payout.attempts, payout.last_error) == ("failed", 1, "Gateway timed out")
    assert payout.next_attempt_at == now + dt.timedelta(minutes=5)
    assert ledger.balance_of("contractor_payable", escrow.contractor) == SHARE
    assert escrow.transactions.filter(kind="payout").count() == 0
    # Before the backoff ends: not retried.
    services.payout_sweep(now=now + dt.timedelta(minutes=1))
    assert len(gateway.calls) == 1
    services.payout_sweep(now=now + dt.timedelta(minutes=6))
    payout.refresh_from_db()
    assert (payout.status, payout.attempts, payout.last_error) == ("paid", 2, "")
    assert {key for op, key, _ in gateway.calls} == {f"escrow:{escrow.public_id}:transfer"}
    assert gateway.effects("create_transfer") == 1
    assert ledger.balance_of("contractor_payable", escrow.contractor) == 0
    assert_escrow_invariants(escrow)


def test_a_refused_transfer_is_retried_later_under_a_new_key(gateway):
    from payments.gateway.base import GatewayError

    escrow = EscrowFactory(state="released")
    payouts_enabled(escrow.contractor)
    payout = Payout.objects.get(escrow=escrow)
    now = payout.available_at + dt.timedelta(seconds=1)
    gateway.fail_next("create_transfer", GatewayError("Account cannot receive transfers", retryable=False))
    services.payout_sweep(now=now)
    payout.refresh_from_db()
    assert (payout.status, payout.last_error) == ("failed", "Account cannot receive transfers")
    services.payout_sweep(now=now + dt.timedelta(hours=1))
    payout.refresh_from_db()
    assert payout.status == "paid"
    keys = [key for op, key, _ in gateway.calls]
    assert keys == [f"escrow:{escrow.public_id}:transfer", f"escrow:{escrow.public_id}:transfer:2"]


def test_a_failed_gateway_refund_stays_pending_and_the_sweep_retries_it(gateway, django_capture_on_commit_callbacks):
    escrow = EscrowFactory(state="held")
    gateway.fail_next("create_refund")
    with django_capture_on_commit_callbacks(execute=True):
        services.escrow_refund(escrow, reason="Cancelled")
    refund = Refund.objects.get(escrow=escrow)
    assert refund.status == "pending"
    services.payout_sweep(now=timezone.now() + dt.timedelta(minutes=2))
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert gateway.effects("create_refund") == 1


# --- abandoned checkouts ---------------------------------------------------------------------------------


def test_abandoned_checkouts_expire_and_their_intent_is_cancelled(customer, gateway):
    offer = OfferFactory(task=TaskFactory(customer=customer))
    escrow = services.checkout_start(offer, by=customer)
    assert services.checkout_expire_sweep(now=timezone.now() + dt.timedelta(minutes=10))["expired"] == 0
    counts = services.checkout_expire_sweep(now=timezone.now() + dt.timedelta(minutes=16))
    assert counts == {"expired": 1, "cancel_errors": 0}
    escrow.refresh_from_db()
    assert escrow.status == "expired"
    assert gateway.calls[-1][:2] == ("cancel_payment_intent", f"escrow:{escrow.public_id}:cancel")
    offer.refresh_from_db()
    assert offer.status == "pending"
    # A payment that still arrives is held and books the task.
    assert fund(escrow).status == "held"


# --- instant book -------------------------------------------------------------------------------------------


def test_instant_book_charges_the_saved_card_and_books_the_task(customer, contractor, gateway):
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=PRICE)
    gateway.intent_status = "succeeded"
    escrow = services.instant_book_start(task, by=contractor)
    task.refresh_from_db()
    assert (escrow.status, task.status, task.contractor_id) == ("held", "assigned", contractor.pk)
    accepted = Offer.objects.get(task=task, status="accepted")
    assert accepted.is_instant and escrow.offer_id == accepted.pk
    [(op, key, params)] = gateway.calls
    assert (params["customer_id"], params["payment_method_id"], params["off_session"]) == ("cus_1", "pm_1", True)
    assert_escrow_invariants(escrow)


def test_instant_book_without_a_saved_card_asks_for_an_offer(customer, contractor, gateway):
    task = TaskFactory(customer=customer, instant_book=True)
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        services.instant_book_start(task, by=contractor)
    assert caught.value.code == "no_saved_card"
    assert row_counts() == before and gateway.calls == []


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (dt.timedelta(days=400), "Propose a start time within a year."),
        (-dt.timedelta(hours=1), "Propose a start time in the future."),
        ("next tuesday", "Enter a valid date and time."),
    ],
)
def test_instant_book_refuses_a_bad_start_before_charging(customer, contractor, gateway, start, message):
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=PRICE)
    gateway.intent_status = "succeeded"
    offers = Offer.objects.count()
    before = row_counts()
    proposed = timezone.now() + start if isinstance(start, dt.timedelta) else start

    with pytest.raises(ApplicationError) as caught:
        services.instant_book_start(task, by=contractor, proposed_start=proposed)

    assert caught.value.code == "invalid"
    assert caught.value.fields == {"proposed_start": [message]}
    assert str(caught.value.message) == message
    assert gateway.calls == []  # nothing charged
    assert row_counts() == before and Offer.objects.count() == offers  # nothing written
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


@pytest.mark.parametrize("who", ["customer_self", "not_instant", "cancelled"])
def test_instant_book_refusals_come_before_the_charge(customer, contractor, gateway, who):
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=who != "not_instant", budget_cents=PRICE)
    if who == "cancelled":
        Task.objects.filter(pk=task.pk).update(status=Task.Status.CANCELLED)
    booker = customer if who == "customer_self" else contractor
    before = row_counts()
    with pytest.raises((Conflict, PermissionDenied, ApplicationError)):
        services.instant_book_start(task, by=booker)
    assert gateway.calls == [] and row_counts() == before


def test_instant_book_keeps_a_good_start_on_the_booking(customer, contractor, gateway):
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=PRICE)
    gateway.intent_status = "succeeded"
    start = timezone.now() + dt.timedelta(days=3)
    escrow = services.instant_book_start(task, by=contractor, proposed_start=start)
    assert escrow.status == "held"
    assert Offer.objects.get(task=task, status="accepted").proposed_start == start


def test_a_second_instant_booking_while_the_first_charge_is_made_charges_the_customer_nothing(
    customer, contractor, gateway
):
    """Two pros book at once: the second is refused under the task lock while
    the first one's charge is at the gateway, instead of charging the
    customer's card a second time (and refunding it days later)."""
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=PRICE)
    gateway.intent_status = "succeeded"
    other = ready_contractor()
    charge = gateway.create_payment_intent
    refused: list[str] = []

    def while_the_first_charge_is_made(**kwargs):
        if not refused:
            refused.append("")
            with pytest.raises(Conflict) as caught:
                services.instant_book_start(task, by=other)
            refused[0] = caught.value.code
        return charge(**kwargs)

    gateway.create_payment_intent = while_the_first_charge_is_made
    escrow = services.instant_book_start(task, by=contractor)

    assert refused == ["booking_in_progress"]
    task.refresh_from_db()
    assert (escrow.status, task.status, task.contractor_id) == ("held", "assigned", contractor.pk)
    assert gateway.effects("create_payment_intent") == 1  # one charge on the customer's card
    assert not Refund.objects.filter(escrow__task=task).exists()
    assert not Escrow.objects.filter(task=task, contractor=other).exists()
    assert_escrow_invariants(escrow)


def test_an_instant_booking_that_loses_the_race_after_the_charge_says_so(customer, contractor, gateway):
    """Everything is checked under the task lock, then the card is charged
    with no lock held: if the task is booked in between, the payment is
    refunded in full and the pro reads that someone else got it first (409
    ``already_booked``, as the API promises), not that the payment failed."""
    from payments.models import SavedPaymentMethod

    SavedPaymentMethod.objects.create(user=customer, gateway_customer_id="cus_1", gateway_payment_method_id="pm_1")
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=PRICE)
    gateway.intent_status = "succeeded"
    rival = ready_contractor()
    charge = gateway.create_payment_intent

    def booked_by_someone_else_meanwhile(**kwargs):
        Task.objects.filter(pk=task.pk).update(status=Task.Status.ASSIGNED, contractor=rival, agreed_price_cents=PRICE)
        return charge(**kwargs)

    gateway.create_payment_intent = booked_by_someone_else_meanwhile
    with pytest.raises(Conflict) as caught:
        services.instant_book_start(task, by=contractor)

    assert caught.value.code == "already_booked"
    assert "refunded in full" in str(caught.value.message)
    escrow = Escrow.objects.get(task=task, contractor=contractor)
    assert escrow.status == "refunded"
    assert Refund.objects.get(escrow=escrow).amount_cents == escrow.total_cents
    assert_escrow_invariants(escrow)
