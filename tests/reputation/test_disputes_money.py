"""Dispute outcomes move exactly the right cents through the payments
services, and the ledger stays balanced.

The escrows are built through the payment services (tests/payments/factories):
an $110.00 price, 5 % service fee ($5.50) paid on top, 10 % commission
($11.00) kept from the price:

    customer pays            11,550
    contractor's full share   9,900  (price - commission)
    platform on a release     1,650  (commission + service fee)

A split of X cents of the price gives the contractor X minus the commission
on X (proportional, rounded half up), the platform that commission, and
refunds the customer 11,550 - X (the service fee comes back).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.errors import Conflict
from payments import ledger
from payments import services as payment_services
from payments.models import Escrow, LedgerEntry, LedgerTransaction, Payout
from reputation import disputes
from reputation.dispute_models import Dispute
from tasks.models import Task
from tests.payments.factories import EscrowFactory, RecordingGateway, payouts_enabled
from tests.reputation.dispute_support import TEXT, mediator, row, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture(name="gateway")
def gateway_fixture(monkeypatch) -> RecordingGateway:
    """Refunds and transfers go to a recording gateway at the interface."""
    fake = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: fake)
    return fake

TOTAL, SHARE, PLATFORM = 11_550, 9_900, 1_650
REASON = "The photos and the chat show the valve was never replaced."


def submitted(escrow: Escrow) -> Task:
    """The escrow's task with proof submitted (rows set directly: the work
    steps are not what these tests are about)."""
    now = timezone.now()
    Task.objects.filter(pk=escrow.task_id).update(
        status=Task.Status.SUBMITTED, started_at=now, submitted_at=now, auto_approve_at=now + dt.timedelta(hours=72)
    )
    return Task.objects.get(pk=escrow.task_id)


def completed(escrow: Escrow) -> Task:
    Task.objects.filter(pk=escrow.task_id).update(status=Task.Status.COMPLETED, completed_at=timezone.now())
    return Task.objects.get(pk=escrow.task_id)


def holdings(escrow: Escrow) -> dict[str, int]:
    """Where this escrow's money is, by account (contractor payable is the
    contractor's own account), zero balances left out."""
    escrow.refresh_from_db()
    out: dict[str, int] = {}
    for (code, owner_id), cents in ledger.escrow_holdings(escrow).items():
        if cents:
            if code in ("contractor_payable", "payouts_out"):
                assert owner_id == escrow.contractor_id
            out[code] = out.get(code, 0) + cents
    return out


def assert_balanced(escrow: Escrow) -> None:
    per_transaction = (
        LedgerEntry.objects.filter(transaction__escrow=escrow)
        .values("transaction")
        .annotate(total=Sum("amount_cents"))
    )
    assert per_transaction and all(row["total"] == 0 for row in per_transaction)
    assert LedgerEntry.objects.aggregate(total=Sum("amount_cents"))["total"] == 0
    assert ledger.status_agrees(escrow), (escrow.status, ledger.derived_state(escrow))


@pytest.fixture
def held(customer, contractor, gateway):
    escrow = EscrowFactory(state="held", customer=customer, contractor=contractor, price_cents=11_000)
    assert (escrow.total_cents, escrow.price_cents, escrow.commission_cents) == (TOTAL, 11_000, 1_100)
    submitted(escrow)
    return escrow


@pytest.fixture
def released(customer, contractor, gateway):
    escrow = EscrowFactory(state="released", customer=customer, contractor=contractor, price_cents=11_000)
    completed(escrow)
    return escrow


def open_on(escrow: Escrow, by) -> Dispute:
    return disputes.dispute_open(Task.objects.get(pk=escrow.task_id), by=by, reason="poor_quality", text=TEXT)


# --- opening freezes -------------------------------------------------------------------


def test_opening_freezes_held_money(held, customer):
    dispute = open_on(held, customer)
    held.refresh_from_db()
    assert dispute.escrow == held
    assert (held.status, held.status_before_freeze) == ("frozen", "held")
    assert holdings(held) == {"customer_funds_in": -TOTAL, "chargebacks": TOTAL}
    assert_balanced(held)


def test_opening_after_approval_stops_the_payout(released, contractor, customer):
    payouts_enabled(contractor)
    open_on(released, customer)
    payout = Payout.objects.get(escrow=released)
    # The hold ends and the sweep runs: nothing is transferred while disputed.
    payment_services.payout_sweep(now=payout.available_at + dt.timedelta(minutes=1))
    payout.refresh_from_db()
    released.refresh_from_db()
    assert released.status == "frozen" and payout.status != "paid"
    assert "payouts_out" not in holdings(released)


def test_dispute_after_payout_hold_refused(released, customer):
    Escrow.objects.filter(pk=released.pk).update(payout_due_at=timezone.now() - dt.timedelta(minutes=1))
    task = Task.objects.get(pk=released.task_id)
    before, escrow_row, task_row = row_counts(), row(released), row(task)
    with pytest.raises(Conflict) as exc:
        disputes.dispute_open(task, by=customer, reason="damage", text=TEXT)
    assert exc.value.code == "dispute_window_closed"
    assert row_counts() == before and row(released) == escrow_row and row(task) == task_row


def test_dispute_after_payout_made_refused(customer, contractor, gateway):
    escrow = EscrowFactory(state="paid_out", customer=customer, contractor=contractor, price_cents=11_000)
    task = completed(escrow)
    before, escrow_row = row_counts(), row(escrow)
    with pytest.raises(Conflict) as exc:
        disputes.dispute_open(task, by=customer, reason="damage", text=TEXT)
    assert exc.value.code == "dispute_window_closed"
    assert row_counts() == before and row(escrow) == escrow_row


# --- outcomes on held money ------------------------------------------------------------


def test_accepted_full_refund_returns_everything(held, customer, contractor, gateway):
    dispute = open_on(held, customer)
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="full_refund")
    assert (proposal.contractor_cents, proposal.refund_cents) == (0, TOTAL)
    disputes.dispute_accept_proposal(proposal, by=customer)
    dispute.refresh_from_db()
    assert (dispute.outcome, dispute.contractor_cents, dispute.refund_cents) == ("refund", 0, TOTAL)
    assert holdings(held) == {"customer_funds_in": -TOTAL, "refunds_out": TOTAL}
    assert (held.status, held.refunded_cents, held.released_cents) == ("refunded", TOTAL, 0)
    assert not Payout.objects.filter(escrow=held, status__in=["pending", "available"]).exists()
    assert Task.objects.get(pk=held.task_id).status == "cancelled"
    assert_balanced(held)


def test_accepted_release_pays_the_contractor_share(held, customer, contractor):
    dispute = open_on(held, contractor)
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="release")
    disputes.dispute_accept_proposal(proposal, by=customer)
    dispute.refresh_from_db()
    assert (dispute.outcome, dispute.contractor_cents, dispute.refund_cents) == ("release", 11_000, 0)
    assert holdings(held) == {
        "customer_funds_in": -TOTAL,
        "contractor_payable": SHARE,
        "platform_revenue": PLATFORM,
    }
    payout = Payout.objects.get(escrow=held)
    assert (payout.amount_cents, payout.status, payout.contractor) == (SHARE, "pending", contractor)
    assert Task.objects.get(pk=held.task_id).status == "completed"
    assert_balanced(held)


def test_accepted_partial_refund_splits_exactly(held, customer, contractor):
    dispute = open_on(held, customer)
    disputes.dispute_respond(dispute, by=contractor, text="Most of it was done.", proposal_kind="partial_refund", percent=25)
    proposal = dispute.proposals.get()
    # 25 % of the 11,000 price back: contractor keeps 8,250 gross; commission
    # on it 825 (1,100 x 8,250 / 11,000); the customer gets 11,550 - 8,250.
    assert (proposal.contractor_cents, proposal.refund_cents) == (8_250, 3_300)
    disputes.dispute_accept_proposal(proposal, by=customer)
    dispute.refresh_from_db()
    assert (dispute.outcome, dispute.contractor_cents, dispute.refund_cents) == ("split", 8_250, 3_300)
    assert holdings(held) == {
        "customer_funds_in": -TOTAL,
        "contractor_payable": 7_425,
        "platform_revenue": 825,
        "refunds_out": 3_300,
    }
    assert Payout.objects.get(escrow=held).amount_cents == 7_425
    assert_balanced(held)


def test_admin_split_with_odd_cents(held, customer, contractor):
    dispute = open_on(held, customer)
    disputes.dispute_escalate(dispute, by=customer)
    disputes.dispute_decide(dispute, by=mediator(), outcome="split", contractor_cents=3_333, reason=REASON)
    # commission on 3,333: (2 x 3,333 x 1,100 + 11,000) // 22,000 = 333 (333.3 rounded half up)
    assert holdings(held) == {
        "customer_funds_in": -TOTAL,
        "contractor_payable": 3_000,
        "platform_revenue": 333,
        "refunds_out": 8_217,
    }
    dispute.refresh_from_db()
    assert (dispute.contractor_cents, dispute.refund_cents, dispute.decision_reason) == (3_333, 8_217, REASON)
    assert_balanced(held)


def test_admin_refund_and_release_decisions(customer, contractor, gateway):
    refund_escrow = EscrowFactory(state="held", customer=customer, contractor=contractor, price_cents=11_000)
    submitted(refund_escrow)
    dispute = open_on(refund_escrow, customer)
    disputes.dispute_escalate(dispute, by=contractor)
    mia = mediator()
    disputes.dispute_decide(dispute, by=mia, outcome="refund", reason=REASON)
    assert holdings(refund_escrow) == {"customer_funds_in": -TOTAL, "refunds_out": TOTAL}
    assert LedgerTransaction.objects.filter(escrow=refund_escrow, kind="refund").get().created_by == mia
    assert_balanced(refund_escrow)


# --- outcomes after approval (released, payout hold running) ----------------------------


def test_refund_after_approval_cancels_the_payout(released, customer, contractor):
    dispute = open_on(released, customer)
    disputes.dispute_escalate(dispute, by=customer)
    disputes.dispute_decide(dispute, by=mediator(), outcome="refund", reason=REASON)
    assert holdings(released) == {"customer_funds_in": -TOTAL, "refunds_out": TOTAL}
    assert Payout.objects.get(escrow=released).status == "cancelled"
    # Approved, then refunded in full by the dispute: the booking ends cancelled.
    assert Task.objects.get(pk=released.task_id).status == "cancelled"
    assert_balanced(released)


def test_release_after_approval_lets_the_payout_go_on(released, customer, contractor):
    due = released.payout_due_at
    dispute = open_on(released, customer)
    proposal = disputes.dispute_propose(dispute, by=customer, kind="release")
    disputes.dispute_accept_proposal(proposal, by=contractor)
    assert holdings(released) == {
        "customer_funds_in": -TOTAL,
        "contractor_payable": SHARE,
        "platform_revenue": PLATFORM,
    }
    released.refresh_from_db()
    payout = Payout.objects.get(escrow=released)
    assert (released.status, payout.status, payout.amount_cents, released.payout_due_at) == (
        "released",
        "pending",
        SHARE,
        due,
    )
    assert_balanced(released)


def test_split_after_approval(released, customer, contractor):
    dispute = open_on(released, contractor)
    proposal = disputes.dispute_propose(dispute, by=customer, kind="partial_refund", percent=50)
    disputes.dispute_accept_proposal(proposal, by=contractor)
    # 5,500 gross to the contractor, commission 550, refund 11,550 - 5,500.
    assert holdings(released) == {
        "customer_funds_in": -TOTAL,
        "contractor_payable": 4_950,
        "platform_revenue": 550,
        "refunds_out": 6_050,
    }
    assert Payout.objects.get(escrow=released).amount_cents == 4_950
    assert_balanced(released)


# --- a bank dispute (chargeback) on the same payment ----------------------------------------


def test_a_dispute_is_not_settled_while_the_bank_disputes_the_same_payment(held, customer, contractor, gateway):
    """The customer opened a dispute, then also asked their bank for the money
    (a chargeback, which finds the escrow frozen by the dispute). Settling the
    dispute now would refund the customer (or pay the contractor) money the
    bank is taking back: it waits for the bank's decision."""
    dispute = open_on(held, customer)
    payment_services.chargeback_opened(held, dispute_id="dp_both", amount_cents=TOTAL)
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="full_refund")
    before, escrow_row = row_counts(), row(held)

    with pytest.raises(Conflict) as exc:
        disputes.dispute_accept_proposal(proposal, by=customer)

    assert exc.value.code == "chargeback_open"
    assert row_counts() == before and row(held) == escrow_row
    assert gateway.effects("create_refund") == 0

    # The bank decides: lost, so the customer got the money back from the bank;
    # the dispute then settles with nothing more refunded.
    payment_services.chargeback_closed(held, dispute_id="dp_both", outcome="lost", amount_cents=TOTAL)
    disputes.dispute_accept_proposal(proposal, by=customer)
    dispute.refresh_from_db()
    assert (dispute.status, dispute.refund_cents) == ("resolved", 0)
    assert holdings(held) == {"customer_funds_in": -TOTAL, "chargebacks_out": TOTAL}
    assert gateway.effects("create_refund") == 0
    assert_balanced(held)


def test_a_dispute_settles_normally_after_the_bank_dispute_is_won(held, customer, contractor, gateway):
    dispute = open_on(held, customer)
    payment_services.chargeback_opened(held, dispute_id="dp_won", amount_cents=TOTAL)
    payment_services.chargeback_closed(held, dispute_id="dp_won", outcome="won", amount_cents=TOTAL)
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="full_refund")
    disputes.dispute_accept_proposal(proposal, by=customer)
    assert holdings(held) == {"customer_funds_in": -TOTAL, "refunds_out": TOTAL}
    assert_balanced(held)
