"""Two admins deciding the same dispute at the same moment, as real
concurrent transactions on PostgreSQL: one decision, one money movement."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.db.models import Sum

from core.errors import Conflict
from payments.models import LedgerEntry, LedgerTransaction
from reputation import disputes
from reputation.dispute_models import Dispute, DisputeEvent
from tasks.models import Task
from tests.payments.factories import EscrowFactory, RecordingGateway
from tests.reputation.dispute_support import TEXT, mediator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(name="gateway")
def gateway_fixture(monkeypatch) -> RecordingGateway:
    """Refunds and transfers go to a recording gateway at the interface."""
    fake = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: fake)
    return fake


def race(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            call()
            outcomes[index] = "ok"
        except Conflict as exc:
            outcomes[index] = exc.code
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            outcomes[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_two_admins_deciding_at_once_give_one_decision(customer, contractor, gateway, monkeypatch):
    escrow = EscrowFactory(state="held", customer=customer, contractor=contractor, price_cents=11_000)
    Task.objects.filter(pk=escrow.task_id).update(status=Task.Status.SUBMITTED)
    dispute = disputes.dispute_open(Task.objects.get(pk=escrow.task_id), by=customer, reason="damage", text=TEXT)
    disputes.dispute_escalate(dispute, by=customer)
    mia, max_ = mediator("mia@example.com"), mediator("max@example.com")

    # Hold the winner inside its transaction a little, so the loser is
    # certainly waiting on the lock rather than arriving after the commit.
    real_move = disputes._move_money

    def slow_move(*args, **kwargs):
        import time

        time.sleep(0.3)
        return real_move(*args, **kwargs)

    monkeypatch.setattr(disputes, "_move_money", slow_move)
    outcomes = race(
        lambda: disputes.dispute_decide(
            Dispute.objects.get(pk=dispute.pk), by=mia, outcome="refund", reason="The tap was never fixed at all."
        ),
        lambda: disputes.dispute_decide(
            Dispute.objects.get(pk=dispute.pk),
            by=max_,
            outcome="split",
            contractor_cents=5_000,
            reason="Half the job was done properly.",
        ),
    )
    assert sorted(outcomes) == ["dispute_resolved", "ok"]
    dispute.refresh_from_db()
    winner = mia if outcomes[0] == "ok" else max_
    assert dispute.decided_by == winner
    assert DisputeEvent.objects.filter(dispute=dispute, kind="decided").count() == 1
    # One money movement: a refund or a split, never both.
    moved = LedgerTransaction.objects.filter(escrow=escrow, kind__in=["refund", "split"])
    assert moved.count() == 1
    assert moved.get().kind == ("refund" if winner == mia else "split")
    assert LedgerEntry.objects.aggregate(total=Sum("amount_cents"))["total"] == 0
