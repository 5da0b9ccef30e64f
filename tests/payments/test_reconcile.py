"""manage.py reconcile_payments: the ledger against the gateway's record."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from payments import reconcile, services
from payments.gateway import GatewayRecord
from payments.models import Payout, ReconciliationRun
from tests.payments.factories import EscrowFactory, RecordingGateway

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


class GatewayRecordOf:
    """The gateway's lists, as a test says they are."""

    def __init__(self) -> None:
        self.charges: list[GatewayRecord] = []
        self.refunds: list[GatewayRecord] = []
        self.transfers: list[GatewayRecord] = []

    def list_charges(self, since=None):
        return list(self.charges)

    def list_refunds(self, since=None):
        return list(self.refunds)

    def list_transfers(self, since=None):
        return list(self.transfers)


def charge(escrow, cents=None, id_=None):
    return GatewayRecord("charge", id_ or f"ch_{escrow.pk}", cents or escrow.total_cents, "USD", "succeeded", NOW,
                         reference=escrow.payment_intent_id)


def refund(escrow, cents=None):
    return GatewayRecord("refund", f"re_{escrow.pk}", cents or escrow.refunded_cents, "USD", "succeeded", NOW,
                         reference=escrow.payment_intent_id)


def transfer(payout, cents=None, id_=None):
    return GatewayRecord("transfer", id_ or payout.transfer_id, cents or payout.amount_cents, "USD", "", NOW,
                         reference="acct_x", metadata={"escrow": str(payout.escrow.public_id)})


@pytest.fixture
def world(monkeypatch):
    """A held, a refunded and a paid-out escrow, and a gateway that agrees."""
    recording = RecordingGateway()
    monkeypatch.setattr(services, "_gateway", lambda: recording)
    held = EscrowFactory(state="held")
    refunded = EscrowFactory(state="refunded")
    paid = EscrowFactory(state="paid_out")
    payout = Payout.objects.get(escrow=paid)
    assert payout.status == Payout.Status.PAID and payout.transfer_id
    gateway = GatewayRecordOf()
    gateway.charges = [charge(held), charge(refunded), charge(paid)]
    gateway.refunds = [refund(refunded)]
    gateway.transfers = [transfer(payout)]
    monkeypatch.setattr(reconcile, "get_gateway", lambda: gateway)
    return {"held": held, "refunded": refunded, "paid": paid, "payout": payout, "gateway": gateway}


def run_command() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile_payments", stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_a_clean_run_has_no_differences_and_is_stored(world):
    code, out = run_command()

    assert code == 0
    assert "0 differences" in out
    run = ReconciliationRun.objects.get()
    assert run.differences == []
    assert run.checked == 3 + 3 + 1 + 1 + 1 + 1  # ledger + gateway records compared
    assert run.finished_at is not None


def test_a_charge_the_ledger_does_not_know_is_listed(world):
    stray = GatewayRecord("charge", "ch_stray", 5_000, "USD", "succeeded", NOW, reference="pi_stray")
    world["gateway"].charges.append(stray)

    code, out = run_command()

    assert code == 1
    [difference] = ReconciliationRun.objects.get().differences
    assert difference["kind"] == "charge"
    assert difference["problem"] == "missing_in_ledger"
    assert difference["gateway_id"] == "ch_stray"
    assert difference["gateway_cents"] == 5_000
    assert "charge: at the gateway but not in the ledger" in out and "ch_stray" in out


def test_a_charge_missing_at_the_gateway_is_listed(world):
    held = world["held"]
    world["gateway"].charges = [c for c in world["gateway"].charges if c.reference != held.payment_intent_id]

    code, _out = run_command()

    assert code == 1
    [difference] = ReconciliationRun.objects.get().differences
    assert (difference["kind"], difference["problem"]) == ("charge", "missing_at_gateway")
    assert difference["escrow"] == str(held.public_id)
    assert difference["ledger_cents"] == held.total_cents


def test_a_refund_amount_mismatch_is_listed(world):
    refunded = world["refunded"]
    world["gateway"].refunds = [refund(refunded, cents=refunded.refunded_cents - 100)]

    code, out = run_command()

    assert code == 1
    [difference] = ReconciliationRun.objects.get().differences
    assert (difference["kind"], difference["problem"]) == ("refund", "amount_mismatch")
    assert difference["ledger_cents"] == refunded.refunded_cents
    assert difference["gateway_cents"] == refunded.refunded_cents - 100
    assert "refund: amounts differ" in out


def test_a_transfer_the_ledger_does_not_know_is_listed(world):
    world["gateway"].transfers.append(
        GatewayRecord("transfer", "tr_unknown", 1_234, "USD", "", NOW, reference="acct_someone")
    )

    code, out = run_command()

    assert code == 1
    [difference] = ReconciliationRun.objects.get().differences
    assert (difference["kind"], difference["problem"], difference["gateway_id"]) == (
        "transfer",
        "missing_in_ledger",
        "tr_unknown",
    )
    assert "tr_unknown" in out


def test_every_difference_is_listed_together(world):
    world["gateway"].charges.append(GatewayRecord("charge", "ch_x", 100, "USD", "succeeded", NOW, reference="pi_x"))
    world["gateway"].refunds = []
    world["gateway"].transfers = [transfer(world["payout"], cents=world["payout"].amount_cents + 1)]

    code, _out = run_command()

    assert code == 1
    problems = sorted((d["kind"], d["problem"]) for d in ReconciliationRun.objects.get().differences)
    assert problems == [
        ("charge", "missing_in_ledger"),
        ("refund", "missing_at_gateway"),
        ("transfer", "amount_mismatch"),
    ]


def test_since_days_must_be_positive(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("reconcile_payments", "--since-days", "0", stdout=StringIO())
    assert not ReconciliationRun.objects.exists()
