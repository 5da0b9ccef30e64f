"""The database itself refuses an unbalanced or rewritten ledger."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from payments.models import LedgerAccount, LedgerEntry, LedgerTransaction

pytestmark = pytest.mark.django_db(transaction=True)


def accounts():
    cash = LedgerAccount.objects.create(code=LedgerAccount.Code.CUSTOMER_FUNDS_IN)
    held = LedgerAccount.objects.create(code=LedgerAccount.Code.ESCROW_HELD)
    return cash, held


def test_a_balanced_transaction_commits():
    cash, held = accounts()
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(kind="adjustment", idempotency_key="t1")
        LedgerEntry.objects.create(transaction=txn, account=cash, amount_cents=-500)
        LedgerEntry.objects.create(transaction=txn, account=held, amount_cents=500)
    assert sum(e.amount_cents for e in txn.entries.all()) == 0


def test_an_unbalanced_transaction_is_refused_at_commit_and_nothing_is_written():
    cash, held = accounts()
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        txn = LedgerTransaction.objects.create(kind="adjustment", idempotency_key="t2")
        LedgerEntry.objects.create(transaction=txn, account=cash, amount_cents=-500)
        LedgerEntry.objects.create(transaction=txn, account=held, amount_cents=499)
    assert not LedgerTransaction.objects.filter(idempotency_key="t2").exists()
    assert LedgerEntry.objects.count() == 0


def test_entries_and_transactions_cannot_be_changed_or_deleted():
    cash, held = accounts()
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(kind="adjustment", idempotency_key="t3")
        LedgerEntry.objects.create(transaction=txn, account=cash, amount_cents=-500)
        LedgerEntry.objects.create(transaction=txn, account=held, amount_cents=500)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(transaction=txn).update(amount_cents=7)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_ledgertransaction WHERE id = %s", [txn.pk])
    assert sorted(e.amount_cents for e in LedgerEntry.objects.filter(transaction=txn)) == [-500, 500]
