"""Escrows under concurrency, on PostgreSQL: threads with their own
connections racing the same escrow. Exactly one effect each: no second
release, no release and refund both, no double funding, one live escrow per
task; and a randomized suite of ~2,000 operations from 16 workers."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from core.errors import ApplicationError
from payments import ledger, services
from payments.models import Escrow, LedgerTransaction, Payout, Refund
from tests.factories import UserFactory
from tests.payments.factories import EscrowFactory, RecordingGateway, fund, unfunded_escrow
from tests.payments.ledger_support import assert_escrow_invariants, gateway_fixture  # noqa: F401
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls, timeout: float = 60):
    """Run the calls at the same moment, each in its own thread and database
    connection; return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = ("ok", call())
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def outcomes(results) -> Counter:
    return Counter(kind if kind == "ok" else type(value).__name__ for kind, value in results)


def test_two_releases_at_once_release_once(gateway):
    escrow = EscrowFactory(state="held")
    results = race(lambda: services.escrow_release(escrow), lambda: services.escrow_release(escrow))
    assert outcomes(results) == Counter({"ok": 1, "Conflict": 1})
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="release").count() == 1
    assert Payout.objects.filter(escrow=escrow).count() == 1
    assert_escrow_invariants(escrow)


def test_release_against_refund_each_happens_at_most_once_in_one_order(gateway):
    """Refund first: the release is refused. Release first: the refund still
    may take the money back inside the payout hold (no transfer yet)."""
    for _ in range(3):
        escrow = EscrowFactory(state="held")
        results = race(
            lambda escrow=escrow: services.escrow_release(escrow),
            lambda escrow=escrow: services.escrow_refund(escrow, reason="cancelled"),
        )
        escrow.refresh_from_db()
        kinds = list(escrow.transactions.order_by("id").values_list("kind", flat=True))
        if outcomes(results) == Counter({"ok": 2}):
            assert kinds == ["fund", "release", "refund"]
            assert Payout.objects.get(escrow=escrow).status == "cancelled"
        else:
            assert outcomes(results) == Counter({"ok": 1, "Conflict": 1})
            assert kinds == ["fund", "refund"]
        assert (escrow.status, escrow.refunded_cents, escrow.released_cents) == ("refunded", escrow.total_cents, 0)
        assert gateway.effects("create_refund") == Refund.objects.count()
        assert_escrow_invariants(escrow)


def test_refund_against_split_gives_exactly_one(gateway):
    escrow = EscrowFactory(state="held")
    results = race(
        lambda: services.escrow_split(escrow, contractor_cents=4_500, reason="call-out"),
        lambda: services.escrow_refund(escrow, reason="cancelled"),
    )
    assert outcomes(results) == Counter({"ok": 1, "Conflict": 1})
    assert escrow.transactions.filter(kind__in=["split", "refund"]).count() == 1
    assert Refund.objects.filter(escrow=escrow).count() == 1
    assert_escrow_invariants(escrow)


def test_the_same_payment_event_delivered_twice_at_once_funds_once(gateway):
    escrow = unfunded_escrow()
    results = race(lambda: fund(escrow), lambda: fund(escrow))
    assert outcomes(results) == Counter({"ok": 2})
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="fund").count() == 1
    escrow.refresh_from_db()
    assert escrow.status == "held"
    assert_escrow_invariants(escrow)


def test_two_payments_for_one_task_at_once_book_one_and_refund_the_other(gateway):
    task = TaskFactory(photos=0)
    first = unfunded_escrow(task=task)
    second = unfunded_escrow(task=task, offer=OfferFactory(task=task))
    results = race(lambda: fund(first), lambda: fund(second))
    assert outcomes(results) == Counter({"ok": 2})
    statuses = sorted(Escrow.objects.filter(task=task).values_list("status", flat=True))
    assert statuses == ["held", "refunded"]
    refunded = Escrow.objects.get(task=task, status="refunded")
    assert Refund.objects.get(escrow=refunded).status == "succeeded"
    assert gateway.effects("create_refund") == 1
    for escrow in (first, second):
        assert_escrow_invariants(escrow)


# --- the randomized suite --------------------------------------------------------------------------------

TASKS = 40
WORKERS = 16
OPERATIONS = 2_000


def test_randomized_operations_from_16_workers_have_no_double_effects(monkeypatch):
    gateway = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: gateway)
    customer = UserFactory()
    contractors = [UserFactory(is_contractor=True) for _ in range(2)]
    tasks = [TaskFactory(customer=customer, photos=0) for _ in range(TASKS)]
    offers = [[OfferFactory(task=task, contractor=c, price_cents=1_000 + 37 * i) for c in contractors] for i, task in enumerate(tasks)]
    rng = random.Random(20261123)
    plan = [(rng.randrange(TASKS), rng.randrange(2), rng.random(), rng.choice(OPS)) for _ in range(OPERATIONS)]
    queue = list(plan)
    lock = threading.Lock()
    unexpected: list[BaseException] = []
    done = Counter()

    def escrow_of(offer, statuses=None):
        query = Escrow.objects.filter(offer=offer).order_by("-pk")
        if statuses:
            query = query.filter(status__in=statuses)
        return query.first()

    def perform(task_index, side, x, op):
        offer = offers[task_index][side]
        task = tasks[task_index]
        if op in ("accept", "double_accept"):
            services.checkout_start(offer, by=customer)
            if op == "double_accept":
                services.checkout_start(offer, by=customer)
        elif op in ("fund", "replay_fund"):
            escrow = escrow_of(offer, None if op == "replay_fund" else ["unfunded"])
            if escrow is not None:
                fund(escrow)
        elif op == "release":
            escrow = Escrow.objects.filter(task=task, status="held").first()
            if escrow is not None:
                services.escrow_release(escrow)
        elif op == "refund":
            escrow = Escrow.objects.filter(task=task, status__in=["held", "released"]).first()
            if escrow is not None:
                services.escrow_refund(escrow, reason="random refund")
        elif op == "split":
            escrow = Escrow.objects.filter(task=task, status__in=["held", "released"]).first()
            if escrow is not None:
                services.escrow_split(escrow, contractor_cents=max(1, int(escrow.price_cents * x)), reason="random split")

    def worker():
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                try:
                    perform(*item)
                    outcome = "ok"
                except ApplicationError:
                    outcome = "refused"
                except Exception as exc:  # noqa: BLE001
                    outcome = "unexpected"
                    unexpected.append(exc)
                with lock:
                    done[outcome] += 1
        finally:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started

    assert unexpected == [], unexpected[:3]
    assert done["ok"] + done["refused"] == OPERATIONS
    assert done["ok"] > OPERATIONS // 2
    escrows = list(Escrow.objects.all())
    assert len(escrows) >= TASKS  # something happened to every task
    for escrow in escrows:
        assert_escrow_invariants(escrow)
    for task in tasks:
        assert Escrow.objects.filter(task=task, status__in=services.LIVE).count() <= 1
    # No double effects anywhere: one fund/release/refund/split per escrow,
    # one gateway refund per refund decided, the ledger balanced.
    per_kind = Counter(LedgerTransaction.objects.values_list("escrow_id", "kind"))
    assert max(per_kind.values()) == 1
    assert gateway.effects("create_refund") == Refund.objects.count()
    assert Refund.objects.filter(status="succeeded").count() == Refund.objects.count()
    assert ledger.trial_balance() == 0
    captured = Escrow.objects.aggregate(total=Sum("captured_cents"))["total"] or 0
    assert -ledger.balance_of("customer_funds_in") == captured
    assert ledger.balance_of("refunds_out") == (Escrow.objects.aggregate(total=Sum("refunded_cents"))["total"] or 0)
    payable = sum(ledger.balance_of("contractor_payable", c) for c in contractors)
    live_payouts = Payout.objects.exclude(status="cancelled").aggregate(total=Sum("amount_cents"))["total"] or 0
    assert payable == live_payouts
    statuses = Counter(e.status for e in escrows)
    assert statuses["held"] + statuses["released"] + statuses["split"] + statuses["refunded"] > 0
    print(f"\n{OPERATIONS} operations by {WORKERS} workers in {elapsed:.1f}s: {dict(done)}; escrows {dict(statuses)}")
    assert elapsed < 60


OPS = ["accept", "accept", "double_accept", "fund", "fund", "replay_fund", "release", "refund", "split"]


def test_two_payout_sweeps_at_once_transfer_once(gateway):
    from tests.payments.factories import payouts_enabled

    escrow = EscrowFactory(state="released")
    payouts_enabled(escrow.contractor)
    later = Payout.objects.get(escrow=escrow).available_at + __import__("datetime").timedelta(seconds=1)
    race(lambda: services.payout_sweep(now=later), lambda: services.payout_sweep(now=later))
    payout = Payout.objects.get(escrow=escrow)
    assert payout.status == "paid"
    assert gateway.effects("create_transfer") == 1
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="payout").count() == 1
    assert_escrow_invariants(escrow)
