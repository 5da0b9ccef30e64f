"""Helpers for the payments core tests: the ledger as a test reads it."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from payments import ledger
from payments.models import Escrow, GatewayOperation, LedgerEntry, LedgerTransaction, Payout, Refund
from tests.payments.factories import RecordingGateway

MODELS = (Escrow, LedgerTransaction, LedgerEntry, Payout, Refund, GatewayOperation)


@pytest.fixture(name="gateway")
def gateway_fixture(monkeypatch) -> RecordingGateway:
    """The recording gateway in place of the configured one (import this
    name into a test module to use the ``gateway`` fixture)."""
    fake = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: fake)
    return fake


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def entries(escrow: Escrow, kind: str) -> list[tuple[str, int | None, int]]:
    """(account code, owner id, cents) of the escrow's transaction of ``kind``, sorted."""
    return sorted(
        LedgerEntry.objects.filter(transaction__escrow=escrow, transaction__kind=kind).values_list(
            "account__code", "account__owner_id", "amount_cents"
        )
    )


def kinds(escrow: Escrow) -> list[str]:
    return list(escrow.transactions.order_by("id").values_list("kind", flat=True))


def by_account(escrow: Escrow) -> dict[str, int]:
    return ledger.holdings_by_code(ledger.escrow_holdings(escrow))


def assert_escrow_invariants(escrow: Escrow) -> None:
    """What must hold for every escrow, whatever happened to it."""
    escrow.refresh_from_db()
    per_txn = LedgerEntry.objects.filter(transaction__escrow=escrow).values("transaction").annotate(total=Sum("amount_cents"))
    assert all(row["total"] == 0 for row in per_txn), "every transaction balances"
    money = by_account(escrow)
    assert -money.get("customer_funds_in", 0) == escrow.captured_cents
    assert money.get("refunds_out", 0) == escrow.refunded_cents
    assert escrow.released_cents + escrow.refunded_cents <= escrow.captured_cents
    assert sum(money.values()) == 0, "no cent created or destroyed"
    assert ledger.status_agrees(escrow), (escrow.status, ledger.derived_state(escrow))
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="refund").count() <= 1
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="release").count() <= 1
    payout = Payout.objects.filter(escrow=escrow).first()
    paid = money.get("payouts_out", 0)
    if payout is not None and payout.status == "paid":
        assert paid == payout.amount_cents
    else:
        assert paid == 0
    if escrow.status in ("released", "split"):
        share = money.get("contractor_payable", 0) + paid
        assert share == (payout.amount_cents if payout else 0)
    refunds = Refund.objects.filter(escrow=escrow).aggregate(total=Sum("amount_cents"))["total"] or 0
    assert refunds == escrow.refunded_cents
