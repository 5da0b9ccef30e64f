"""payments.ledger: posting balanced transactions, idempotency, balances and
an escrow's derived state."""

from __future__ import annotations

import pytest

from payments import ledger
from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction
from tests.payments.factories import EscrowFactory, unfunded_escrow
from tests.payments.ledger_support import gateway_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def test_post_writes_one_balanced_transaction_and_creates_accounts_once(contractor):
    txn = ledger.post(
        "adjustment",
        None,
        [("platform_revenue", None, -300), ("contractor_payable", contractor, 200), ("contractor_payable", contractor, 100)],
        idempotency_key="adj:1",
        memo="goodwill",
    )
    rows = sorted(txn.entries.values_list("account__code", "account__owner_id", "amount_cents"))
    assert rows == [("contractor_payable", contractor.pk, 300), ("platform_revenue", None, -300)]
    assert ledger.balance_of("contractor_payable", contractor) == 300
    assert ledger.balance(ledger.account("platform_revenue")) == -300
    ledger.post("adjustment", None, [("platform_revenue", None, -1), ("refunds_out", None, 1)], idempotency_key="adj:2")
    assert LedgerAccount.objects.filter(code="platform_revenue", owner=None).count() == 1
    assert ledger.trial_balance() == 0


def test_posting_the_same_key_again_returns_the_first_and_writes_nothing():
    legs = [("customer_funds_in", None, -500), ("escrow_held", None, 500)]
    first = ledger.post("adjustment", None, legs, idempotency_key="same")
    again = ledger.post("adjustment", None, legs, idempotency_key="same")
    assert again.pk == first.pk
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == (1, 2)


@pytest.mark.parametrize(
    ("legs", "code"),
    [
        ([("customer_funds_in", None, -500), ("escrow_held", None, 499)], "ledger_unbalanced"),
        ([("customer_funds_in", None, -500)], "ledger_unbalanced"),
        ([("customer_funds_in", None, -5.0), ("escrow_held", None, 5.0)], "ledger_invalid"),
        ([("customer_funds_in", None, "-5"), ("escrow_held", None, "5")], "ledger_invalid"),
        ([("no_such_account", None, -5), ("escrow_held", None, 5)], "ledger_invalid"),
        ([("customer_funds_in", -5)], "ledger_invalid"),
    ],
)
def test_bad_legs_are_refused_and_nothing_is_written(legs, code):
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.post("adjustment", None, legs, idempotency_key="bad")
    assert caught.value.code == code
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count(), LedgerAccount.objects.count()) == (0, 0, 0)


def test_a_key_reused_for_another_kind_is_refused():
    ledger.post("adjustment", None, [("customer_funds_in", None, -5), ("escrow_held", None, 5)], idempotency_key="k")
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.post("fund", None, [("customer_funds_in", None, -5), ("escrow_held", None, 5)], idempotency_key="k")
    assert caught.value.code == "ledger_key_reused"
    assert LedgerTransaction.objects.count() == 1


def test_a_second_terminal_event_of_a_kind_for_an_escrow_is_refused(gateway):
    escrow = EscrowFactory(state="held")
    with pytest.raises(ledger.LedgerError) as caught:
        ledger.post(
            "fund", escrow, [("customer_funds_in", None, -5), ("escrow_held", None, 5)], idempotency_key="second-fund"
        )
    assert caught.value.code == "ledger_duplicate_event"
    assert escrow.transactions.filter(kind="fund").count() == 1


@pytest.mark.parametrize(
    ("state", "derived"),
    [
        ("unfunded", "unfunded"),
        ("held", "held"),
        ("released", "released"),
        ("refunded", "refunded"),
        ("split", "split"),
        ("frozen", "frozen"),
        ("paid_out", "released"),
    ],
)
def test_an_escrows_state_is_derived_from_its_entries(state, derived, gateway):
    escrow = EscrowFactory(state=state)
    assert ledger.derived_state(escrow) == derived
    assert ledger.status_agrees(escrow)


def test_escrow_balance_follows_the_money(gateway):
    escrow = unfunded_escrow()
    assert ledger.escrow_balance(escrow) == 0
    from tests.payments.factories import fund

    escrow = fund(escrow)
    assert ledger.escrow_balance(escrow) == escrow.total_cents
    from payments import services

    services.escrow_release(escrow)
    assert ledger.escrow_balance(escrow) == 0
    assert ledger.holdings_by_code(ledger.escrow_holdings(escrow)) == {
        "customer_funds_in": -escrow.total_cents,
        "contractor_payable": escrow.price_cents - escrow.commission_cents,
        "platform_revenue": escrow.service_fee_cents + escrow.commission_cents,
    }
