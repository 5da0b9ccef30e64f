"""payments.selectors: a contractor's earnings and a customer's payments."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from payments import selectors, services
from payments.models import Payout
from tests.factories import UserFactory
from tests.payments.factories import EscrowFactory, payouts_enabled, ready_contractor
from tests.payments.ledger_support import gateway_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def test_contractor_earnings_are_in_escrow_then_pending_then_available_then_paid(gateway):
    bob = ready_contractor("bob-earns@example.com")
    held = EscrowFactory(state="held", contractor=bob, price_cents=10_000)  # share 90.00
    released = EscrowFactory(state="released", contractor=bob, price_cents=20_000)  # share 180.00
    paid = EscrowFactory(state="paid_out", contractor=bob, price_cents=5_000)  # share 45.00
    EscrowFactory(state="refunded", contractor=bob)
    EscrowFactory(state="released")  # someone else's

    now = timezone.now()
    earnings = selectors.contractor_earnings(bob, now=now)
    assert (earnings.in_escrow_cents, earnings.pending_cents, earnings.available_cents, earnings.paid_cents) == (
        9_000, 18_000, 0, 4_500
    )
    assert [(row.task_public_id, row.state, row.amount_cents) for row in earnings.by_task] == [
        (str(paid.task.public_id), "paid", 4_500),
        (str(released.task.public_id), "pending", 18_000),
        (str(held.task.public_id), "in_escrow", 9_000),
    ]
    later = Payout.objects.get(escrow=released).available_at + dt.timedelta(minutes=1)
    assert selectors.contractor_earnings(bob, now=later).available_cents == 18_000
    payouts_enabled(bob)
    services.payout_sweep(now=later)
    after = selectors.contractor_earnings(bob, now=later)
    assert (after.available_cents, after.paid_cents) == (0, 22_500)


def test_a_failed_transfer_shows_as_available_with_its_error(gateway):
    escrow = EscrowFactory(state="released")
    payouts_enabled(escrow.contractor)
    later = Payout.objects.get(escrow=escrow).available_at + dt.timedelta(seconds=1)
    gateway.fail_next("create_transfer")
    services.payout_sweep(now=later)
    [row] = selectors.contractor_earnings(escrow.contractor, now=later).by_task
    assert (row.state, row.last_error) == ("available", "Gateway timed out")


def test_customer_payments_list_only_their_paid_checkouts_with_refunds(gateway, django_capture_on_commit_callbacks):
    dana = UserFactory()
    refunded = EscrowFactory(state="held", customer=dana)
    with django_capture_on_commit_callbacks(execute=True):
        services.escrow_refund(refunded, reason="Cancelled before check-in")
    held = EscrowFactory(state="held", customer=dana)
    EscrowFactory(state="unfunded", customer=dana)  # abandoned: not a payment
    EscrowFactory(state="held")  # someone else's
    payments = list(selectors.customer_payments(dana))
    assert [p.pk for p in payments] == [held.pk, refunded.pk]
    assert [(r.amount_cents, r.status) for r in payments[1].refunds.all()] == [(refunded.total_cents, "succeeded")]


def test_only_the_parties_and_staff_see_an_escrow(customer, contractor, outsider, staff, gateway):
    escrow = EscrowFactory(state="held", customer=customer, contractor=contractor)
    for user in (customer, contractor, staff):
        assert selectors.escrow_for_user(user, escrow.public_id) == escrow
    assert selectors.escrow_for_user(outsider, escrow.public_id) is None
    assert selectors.escrow_for_user(customer, "not-a-uuid") is None
