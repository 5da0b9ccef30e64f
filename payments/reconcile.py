"""Reconciliation: the ledger against the gateway's own record.

Three kinds of money movement leave a trace on both sides:

- charges: each escrow's FUND transaction (money into ``escrow_held``) and the
  gateway's succeeded charge on the escrow's PaymentIntent;
- refunds: the money posted to ``refunds_out`` for an escrow (REFUND or SPLIT
  transactions) and the sum of the gateway's refunds on its PaymentIntent;
- transfers: each PAYOUT transaction (money into ``payouts_out``) and the
  gateway's transfer with the payout's ``transfer_id``.

Every difference is listed: missing in the ledger, missing at the gateway, or
amounts (or currencies) that disagree. ``run()`` stores a ``ReconciliationRun``
with the list; ``manage.py reconcile_payments`` prints it and exits 1 when it is
not empty.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from .gateway import GatewayRecord, PaymentGateway, get_gateway
from .models import Escrow, LedgerAccount, LedgerEntry, LedgerTransaction, Payout, ReconciliationRun

Code = LedgerAccount.Code
Kind = LedgerTransaction.Kind

MISSING_IN_LEDGER = "missing_in_ledger"
MISSING_AT_GATEWAY = "missing_at_gateway"
AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True)
class LedgerMovement:
    escrow: Escrow
    cents: int
    currency: str


def _ledger_sums(kinds: tuple[str, ...], code: str, since: dt.datetime | None) -> dict[int, tuple[int, str]]:
    """escrow pk -> (cents that arrived in ``code`` through ``kinds``, currency)."""
    entries = LedgerEntry.objects.filter(
        transaction__kind__in=kinds, transaction__escrow__isnull=False, account__code=code, amount_cents__gt=0
    )
    if since is not None:
        entries = entries.filter(transaction__created_at__gte=since)
    sums: dict[int, tuple[int, str]] = {}
    for row in entries.values("transaction__escrow", "currency").annotate(cents=Sum("amount_cents")):
        sums[row["transaction__escrow"]] = (row["cents"], row["currency"])
    return sums


def _difference(
    kind: str,
    problem: str,
    *,
    escrow: Escrow | None = None,
    gateway_id: str = "",
    ledger_cents: int | None = None,
    gateway_cents: int | None = None,
    currency: str = "",
    detail: str = "",
) -> dict:
    return {
        "kind": kind,
        "problem": problem,
        "escrow": str(escrow.public_id) if escrow else "",
        "gateway_id": gateway_id,
        "ledger_cents": ledger_cents,
        "gateway_cents": gateway_cents,
        "currency": currency,
        "detail": detail,
    }


def _by_reference(records: list[GatewayRecord]) -> dict[str, list[GatewayRecord]]:
    grouped: dict[str, list[GatewayRecord]] = defaultdict(list)
    for record in records:
        grouped[record.reference].append(record)
    return grouped


def compare_charges(gateway: PaymentGateway, since: dt.datetime | None) -> tuple[int, list[dict]]:
    ledger = _ledger_sums((Kind.FUND,), Code.ESCROW_HELD, since)
    escrows = Escrow.objects.in_bulk(list(ledger))
    charges = gateway.list_charges(since)
    by_intent = _by_reference(charges)
    by_charge_id = {c.id: c for c in charges}
    differences, matched = [], set()
    for pk, (cents, currency) in ledger.items():
        escrow = escrows[pk]
        found = by_intent.get(escrow.payment_intent_id) or (
            [by_charge_id[escrow.charge_id]] if escrow.charge_id in by_charge_id else []
        )
        if not found:
            differences.append(
                _difference("charge", MISSING_AT_GATEWAY, escrow=escrow, ledger_cents=cents, currency=currency,
                            detail=f"payment intent {escrow.payment_intent_id or '-'}")
            )
            continue
        matched.update(c.id for c in found)
        gateway_cents = sum(c.amount_cents for c in found)
        if gateway_cents != cents or any(c.currency != currency for c in found):
            differences.append(
                _difference("charge", AMOUNT_MISMATCH, escrow=escrow, gateway_id=",".join(c.id for c in found),
                            ledger_cents=cents, gateway_cents=gateway_cents, currency=currency)
            )
    for charge in charges:
        if charge.id not in matched:
            differences.append(
                _difference("charge", MISSING_IN_LEDGER, gateway_id=charge.id, gateway_cents=charge.amount_cents,
                            currency=charge.currency, detail=f"payment intent {charge.reference or '-'}",
                            escrow=_escrow_of(charge))
            )
    return len(ledger) + len(charges), differences


def _escrow_of(record: GatewayRecord) -> Escrow | None:
    escrow = None
    if record.kind in ("charge", "refund") and record.reference:
        escrow = Escrow.objects.filter(payment_intent_id=record.reference).first()
    if escrow is None and record.metadata.get("escrow"):
        try:
            public_id = uuid.UUID(str(record.metadata["escrow"]))
        except ValueError:
            return None
        escrow = Escrow.objects.filter(public_id=public_id).first()
    return escrow


def compare_refunds(gateway: PaymentGateway, since: dt.datetime | None) -> tuple[int, list[dict]]:
    ledger = _ledger_sums((Kind.REFUND, Kind.SPLIT), Code.REFUNDS_OUT, since)
    escrows = Escrow.objects.in_bulk(list(ledger))
    refunds = [r for r in gateway.list_refunds(since) if r.status not in ("failed", "canceled")]
    by_intent = _by_reference(refunds)
    differences, seen_intents = [], set()
    for pk, (cents, currency) in ledger.items():
        escrow = escrows[pk]
        found = by_intent.get(escrow.payment_intent_id, [])
        seen_intents.add(escrow.payment_intent_id)
        if not found:
            differences.append(
                _difference("refund", MISSING_AT_GATEWAY, escrow=escrow, ledger_cents=cents, currency=currency,
                            detail=f"payment intent {escrow.payment_intent_id or '-'}")
            )
            continue
        gateway_cents = sum(r.amount_cents for r in found)
        if gateway_cents != cents or any(r.currency != currency for r in found):
            differences.append(
                _difference("refund", AMOUNT_MISMATCH, escrow=escrow, gateway_id=",".join(r.id for r in found),
                            ledger_cents=cents, gateway_cents=gateway_cents, currency=currency)
            )
    for intent_id, found in by_intent.items():
        if intent_id in seen_intents:
            continue
        for refund in found:
            differences.append(
                _difference("refund", MISSING_IN_LEDGER, gateway_id=refund.id, gateway_cents=refund.amount_cents,
                            currency=refund.currency, detail=f"payment intent {intent_id or '-'}",
                            escrow=_escrow_of(refund))
            )
    return len(ledger) + len(refunds), differences


def compare_transfers(gateway: PaymentGateway, since: dt.datetime | None) -> tuple[int, list[dict]]:
    ledger = _ledger_sums((Kind.PAYOUT,), Code.PAYOUTS_OUT, since)
    escrows = Escrow.objects.in_bulk(list(ledger))
    payouts = {p.escrow_id: p for p in Payout.objects.filter(escrow_id__in=list(ledger))}
    transfers = gateway.list_transfers(since)
    by_id = {t.id: t for t in transfers}
    by_escrow_meta = defaultdict(list)
    for transfer in transfers:
        by_escrow_meta[transfer.metadata.get("escrow", "")].append(transfer)
    differences, matched = [], set()
    for pk, (cents, currency) in ledger.items():
        escrow = escrows[pk]
        payout = payouts.get(pk)
        found = [by_id[payout.transfer_id]] if payout and payout.transfer_id in by_id else []
        if not found:
            found = by_escrow_meta.get(str(escrow.public_id), [])
        if not found:
            differences.append(
                _difference("transfer", MISSING_AT_GATEWAY, escrow=escrow, ledger_cents=cents, currency=currency,
                            detail=f"transfer {payout.transfer_id if payout else '-'}")
            )
            continue
        matched.update(t.id for t in found)
        gateway_cents = sum(t.amount_cents for t in found)
        if gateway_cents != cents or any(t.currency != currency for t in found):
            differences.append(
                _difference("transfer", AMOUNT_MISMATCH, escrow=escrow, gateway_id=",".join(t.id for t in found),
                            ledger_cents=cents, gateway_cents=gateway_cents, currency=currency)
            )
    for transfer in transfers:
        if transfer.id not in matched:
            differences.append(
                _difference("transfer", MISSING_IN_LEDGER, gateway_id=transfer.id, gateway_cents=transfer.amount_cents,
                            currency=transfer.currency, detail=f"to {transfer.reference or '-'}",
                            escrow=_escrow_of(transfer))
            )
    return len(ledger) + len(transfers), differences


def run(*, since: dt.datetime | None = None, gateway: PaymentGateway | None = None) -> ReconciliationRun:
    """Compare everything (or what happened since ``since``); store and return the run."""
    gateway = gateway or get_gateway()
    recon = ReconciliationRun.objects.create()
    checked, differences = 0, []
    for compare in (compare_charges, compare_refunds, compare_transfers):
        n, found = compare(gateway, since)
        checked += n
        differences.extend(found)
    recon.checked = checked
    recon.differences = differences
    recon.finished_at = timezone.now()
    recon.save(update_fields=["checked", "differences", "finished_at"])
    return recon


def describe(difference: dict) -> str:
    """One line for a person reading the command's output or the admin."""
    what = {
        MISSING_IN_LEDGER: "at the gateway but not in the ledger",
        MISSING_AT_GATEWAY: "in the ledger but not at the gateway",
        AMOUNT_MISMATCH: "amounts differ",
    }[difference["problem"]]
    parts = [f"{difference['kind']}: {what}"]
    if difference.get("escrow"):
        parts.append(f"escrow {difference['escrow']}")
    if difference.get("gateway_id"):
        parts.append(f"gateway {difference['gateway_id']}")
    if difference.get("ledger_cents") is not None:
        parts.append(f"ledger {difference['ledger_cents']} {difference['currency']}")
    if difference.get("gateway_cents") is not None:
        parts.append(f"gateway {difference['gateway_cents']} {difference['currency']}")
    if difference.get("detail"):
        parts.append(difference["detail"])
    return "; ".join(parts)
