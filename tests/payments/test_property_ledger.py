"""Property test (hypothesis): random sequences of fund, release, refund,
split, freeze/unfreeze, bank disputes opened and closed (won, lost, partial),
payouts, webhook replays and gateway failures never
create or destroy a cent; every transaction balances (checked by PostgreSQL
statement by statement here: constraints set IMMEDIATE); each escrow's state
derived from its ledger matches its status; released + refunded never exceeds
captured; a refused operation writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from core.errors import ApplicationError
from payments import ledger, services
from payments.gateway.base import GatewayError
from payments.models import Escrow, LedgerEntry, LedgerTransaction, Payout
from tests.factories import UserFactory
from tests.payments.factories import RecordingGateway, fund, payouts_enabled, unfunded_escrow
from tests.payments.ledger_support import assert_escrow_invariants, row_counts
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db

N = 4  # escrows 0 and 1 compete for the same task; 2 and 3 have their own

operation = st.one_of(
    st.tuples(st.just("fund"), st.integers(0, N - 1)),
    st.tuples(st.just("fund_wrong_amount"), st.integers(0, N - 1)),
    st.tuples(st.just("payment_failed"), st.integers(0, N - 1)),
    st.tuples(st.just("release"), st.integers(0, N - 1)),
    st.tuples(st.just("refund"), st.integers(0, N - 1)),
    st.tuples(st.just("refund_part"), st.integers(0, N - 1), st.integers(-50, 20_000)),
    st.tuples(st.just("split"), st.integers(0, N - 1), st.integers(-50, 13_000)),
    st.tuples(st.just("freeze"), st.integers(0, N - 1)),
    st.tuples(st.just("unfreeze"), st.integers(0, N - 1)),
    st.tuples(st.just("dispute_open"), st.integers(0, N - 1), st.booleans()),
    st.tuples(st.just("dispute_close"), st.integers(0, N - 1), st.booleans(), st.sampled_from(["won", "lost", "warning_closed"])),
    st.tuples(st.just("payout_sweep"), st.integers(0, 100)),
    st.tuples(st.just("enable_payouts"), st.integers(0, N - 1)),
    st.tuples(st.just("fail_next"), st.sampled_from(["create_transfer", "create_refund"]), st.booleans()),
    st.tuples(st.just("replay"), st.integers(0, 10)),
)


def _run(op, escrows, staff, gateway, history, clock):
    name, *args = op
    escrow = escrows[args[0]] if name not in ("payout_sweep", "fail_next", "replay") else None
    if name == "fund":
        fund(escrow)
    elif name == "fund_wrong_amount":
        services.escrow_funded(escrow, payment_intent_id=escrow.payment_intent_id, charge_id="ch", amount_cents=escrow.total_cents + 1)
    elif name == "payment_failed":
        services.escrow_payment_failed(escrow, reason="declined")
    elif name == "release":
        services.escrow_release(escrow)
    elif name == "refund":
        services.escrow_refund(escrow, reason="property refund")
    elif name == "refund_part":
        services.escrow_refund(escrow, amount_cents=args[1], reason="property refund")
    elif name == "split":
        services.escrow_split(escrow, contractor_cents=args[1], reason="property split")
    elif name == "freeze":
        services.escrow_freeze(escrow, reason="chargeback")
    elif name == "unfreeze":
        services.escrow_unfreeze(escrow, by=staff)
    elif name in ("dispute_open", "dispute_close"):
        partial = args[1]
        dispute = {
            "dispute_id": f"dp_{escrow.pk}_{'partial' if partial else 'full'}",
            "amount_cents": 100 if partial else escrow.total_cents,
        }
        if name == "dispute_open":
            services.chargeback_opened(escrow, **dispute)
        else:
            chargeback = services.chargeback_closed(escrow, outcome=args[2], **dispute)
            event(f"chargeback closed: {chargeback.status}")  # --hypothesis-show-statistics
    elif name == "payout_sweep":
        clock[0] += dt.timedelta(hours=args[0])
        services.payout_sweep(now=clock[0])
    elif name == "enable_payouts":
        payouts_enabled(escrow.contractor)
    elif name == "fail_next":
        gateway.fail_next(args[0], GatewayError("boom", retryable=args[1]), after_effect=args[1])
    elif name == "replay" and history:
        _run(history[args[0] % len(history)], escrows, staff, gateway, [], clock)


def _check_all(escrows):
    for escrow in escrows:
        assert_escrow_invariants(escrow)
    assert ledger.trial_balance() == 0
    per_txn = LedgerEntry.objects.values("transaction").annotate(total=Sum("amount_cents")).filter(total__gt=0)
    assert not per_txn.exists()
    # One live escrow per task, whatever order the payments came in.
    assert Escrow.objects.filter(task=escrows[0].task, status__in=services.LIVE).count() <= 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=25))
# Chargebacks lost in every money state (held, released and paid out, split), then everything else refused.
@example(ops=[("fund", 2), ("dispute_open", 2, False), ("dispute_close", 2, False, "lost"), ("refund", 2), ("unfreeze", 2)])
@example(
    ops=[("fund", 0), ("release", 0), ("enable_payouts", 0), ("payout_sweep", 100), ("dispute_close", 0, False, "lost"),
         ("replay", 4), ("fund", 1), ("split", 3, 5), ("fund", 3), ("split", 3, 5), ("dispute_open", 3, False),
         ("dispute_close", 3, False, "lost"), ("payout_sweep", 100)]
)
@example(ops=[("fund", 2), ("dispute_open", 2, True), ("dispute_close", 2, True, "lost"), ("dispute_open", 2, False),
              ("dispute_close", 2, False, "won"), ("release", 2)])
def test_random_sequences_never_create_or_destroy_a_cent(ops, monkeypatch, django_capture_on_commit_callbacks):
    gateway = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: gateway)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        staff = UserFactory(is_staff=True)
        shared = TaskFactory(photos=0)
        escrows = [
            unfunded_escrow(task=shared, offer=OfferFactory(task=shared, price_cents=11_000)),
            unfunded_escrow(task=shared, offer=OfferFactory(task=shared, price_cents=12_345)),
            unfunded_escrow(price_cents=999),
            unfunded_escrow(price_cents=7),
        ]
        clock = [timezone.now()]
        history: list = []
        for op in ops:
            before = row_counts()
            ledger_before = LedgerTransaction.objects.count()
            try:
                with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                    _run(op, escrows, staff, gateway, history, clock)
            except ApplicationError as exc:
                if op[0] == "dispute_close":
                    event(f"chargeback close refused: {exc.code}")
                assert exc.message
                assert row_counts() == before, op
                assert LedgerTransaction.objects.count() == ledger_before
            history.append(op)
            for escrow in escrows:
                escrow.refresh_from_db()
            _check_all(escrows)
        # What the gateway really did matches the ledger: one transfer per paid payout,
        # never more refunded at the gateway than the ledger says.
        paid = Payout.objects.filter(escrow__in=escrows, status="paid").count()
        assert gateway.effects("create_transfer") == paid
        assert gateway.effects("create_refund") <= sum(1 for e in escrows if e.refunded_cents)
        transaction.set_rollback(True)
