"""The double-entry ledger: post balanced transactions, read balances.

Every movement of money is one ``LedgerTransaction`` whose entries sum to zero
per currency. That is checked here (before anything is written) and again by
PostgreSQL at commit (migration 0002). Balances are never stored: they are
sums of entries. Entries are append-only; a mistake is corrected by a new
transaction.

``post`` is idempotent by key: posting the same key again returns the first
transaction (a replayed webhook, a retried job) without writing anything, and
the unique key makes two concurrent posts of the same key end with one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from core.errors import ApplicationError

from .models import Escrow, LedgerAccount, LedgerEntry, LedgerTransaction

if TYPE_CHECKING:
    from accounts.models import User

Code = LedgerAccount.Code
Kind = LedgerTransaction.Kind
Leg = tuple[str, "User | None", int]


class LedgerError(ApplicationError):
    default_code = "ledger_invalid"


def account(code: str, owner: User | None = None, currency: str = "USD") -> LedgerAccount:
    """The account for (code, owner, currency), created on first use.

    Race-safe: two transactions creating the same account at once end with one
    row (the loser's insert fails on the unique constraint inside a savepoint
    and it reads the winner's row)."""
    if code not in Code.values:
        raise LedgerError(_("Unknown ledger account %(code)s.") % {"code": code})
    lookup = {"code": code, "currency": currency, "owner": owner}
    found = LedgerAccount.objects.filter(**lookup).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:
        return LedgerAccount.objects.get(**lookup)


def _merge(legs: Iterable[Leg]) -> dict[tuple[str, int | None], tuple[User | None, int]]:
    merged: dict[tuple[str, int | None], tuple[User | None, int]] = {}
    for leg in legs:
        try:
            code, owner, cents = leg
        except (TypeError, ValueError) as exc:
            raise LedgerError(_("A ledger leg is (account code, owner, cents).")) from exc
        if isinstance(cents, bool) or not isinstance(cents, int):
            raise LedgerError(_("Ledger amounts are whole cents, not %(value)r.") % {"value": cents})
        key = (code, owner.pk if owner is not None else None)
        previous = merged.get(key, (owner, 0))[1]
        merged[key] = (owner, previous + cents)
    return {key: value for key, value in merged.items() if value[1] != 0}


@transaction.atomic
def post(
    kind: str,
    escrow: Escrow | None,
    legs: Sequence[Leg],
    *,
    idempotency_key: str,
    memo: str = "",
    by: User | None = None,
    currency: str | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction (or return the one already posted
    under ``idempotency_key``).

    ``legs``: (account code, owner or None, cents); positive cents arrive in
    the account. Legs on the same account are merged and zero legs dropped, so
    a transaction may end with no entries (a marker, e.g. a freeze of money
    already paid out). Raises ``LedgerError`` and writes nothing when the legs
    do not sum to zero, an amount is not whole cents, the kind or an account
    code is unknown, or the key was used for a different kind or escrow."""
    if kind not in Kind.values:
        raise LedgerError(_("Unknown ledger transaction kind %(kind)s.") % {"kind": kind})
    if not idempotency_key:
        raise LedgerError(_("A ledger transaction needs an idempotency key."))
    currency = currency or (escrow.currency if escrow is not None else "USD")
    merged = _merge(legs)
    total = sum(cents for _owner, cents in merged.values())
    if total != 0:
        raise LedgerError(
            _("The ledger transaction does not balance: %(total)+d cents off.") % {"total": total},
            code="ledger_unbalanced",
        )
    existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        _same_intent(existing, kind, escrow)
        return existing
    try:
        with transaction.atomic():
            txn = LedgerTransaction.objects.create(
                escrow=escrow, kind=kind, idempotency_key=idempotency_key, memo=memo[:300], created_by=by
            )
    except IntegrityError:
        # The same key posted concurrently (its row is committed now), or a
        # second terminal event of this kind for the escrow.
        existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise LedgerError(
                _("This escrow already has a %(kind)s transaction.") % {"kind": kind}, code="ledger_duplicate_event"
            ) from None
        _same_intent(existing, kind, escrow)
        return existing
    LedgerEntry.objects.bulk_create(
        LedgerEntry(transaction=txn, account=account(code, owner, currency), amount_cents=cents, currency=currency)
        for (code, _pk), (owner, cents) in merged.items()
    )
    return txn


def _same_intent(existing: LedgerTransaction, kind: str, escrow: Escrow | None) -> None:
    if existing.kind != kind or existing.escrow_id != (escrow.pk if escrow is not None else None):
        raise LedgerError(
            _("The idempotency key %(key)s was already used for another movement.") % {"key": existing.idempotency_key},
            code="ledger_key_reused",
        )


# --- reading --------------------------------------------------------------------


def balance(acct: LedgerAccount) -> int:
    """The account's balance in cents: the sum of its entries."""
    return LedgerEntry.objects.filter(account=acct).aggregate(total=Sum("amount_cents"))["total"] or 0


def balance_of(code: str, owner: User | None = None, currency: str = "USD") -> int:
    """Balance by code/owner without creating the account."""
    found = LedgerAccount.objects.filter(code=code, owner=owner, currency=currency).first()
    return balance(found) if found is not None else 0


def escrow_holdings(escrow: Escrow) -> dict[tuple[str, int | None], int]:
    """Where this escrow's money is now: {(account code, owner id): cents},
    summed over the escrow's own transactions, zero balances left out."""
    rows = (
        LedgerEntry.objects.filter(transaction__escrow=escrow)
        .values_list("account__code", "account__owner_id")
        .annotate(total=Sum("amount_cents"))
    )
    return {(code, owner): total for code, owner, total in rows if total}


def escrow_balance(escrow: Escrow) -> int:
    """Cents this escrow holds in the escrow_held account (from entries)."""
    return escrow_holdings(escrow).get((Code.ESCROW_HELD, None), 0)


FREEZE_MARK = ":freeze:"
UNFREEZE_MARK = ":unfreeze:"
_STATE_BY_KIND = {
    Kind.FUND: Escrow.Status.HELD,
    Kind.RELEASE: Escrow.Status.RELEASED,
    Kind.REFUND: Escrow.Status.REFUNDED,
    Kind.SPLIT: Escrow.Status.SPLIT,
    Kind.CHARGEBACK: Escrow.Status.CHARGEBACK,
}


def derived_state(escrow: Escrow) -> str:
    """The escrow's state as its transactions tell it, replayed in order.

    No money movement: unfunded (the status may also say failed or expired:
    no money arrived either way). fund -> held; release -> released; refund ->
    refunded; split -> split; chargeback (a lost bank dispute) -> chargeback; a freeze marker -> frozen, an unfreeze marker ->
    the state before the freeze. Payouts move money the contractor was owed
    and leave the state as it was."""
    state = Escrow.Status.UNFUNDED
    before_freeze: list[str] = []
    for kind, key in escrow.transactions.order_by("id").values_list("kind", "idempotency_key"):
        if kind in _STATE_BY_KIND:
            state = _STATE_BY_KIND[kind]
        elif FREEZE_MARK in key:
            before_freeze.append(state)
            state = Escrow.Status.FROZEN
        elif UNFREEZE_MARK in key and before_freeze:
            state = before_freeze.pop()
    return state


def status_agrees(escrow: Escrow) -> bool:
    """Does the status column say what the ledger says?"""
    derived = derived_state(escrow)
    if derived == Escrow.Status.UNFUNDED:
        return escrow.status in (Escrow.Status.UNFUNDED, Escrow.Status.FAILED, Escrow.Status.EXPIRED)
    return escrow.status == derived


def trial_balance(currency: str = "USD") -> int:
    """The sum of every entry in the ledger: zero, always."""
    return LedgerEntry.objects.filter(currency=currency).aggregate(total=Sum("amount_cents"))["total"] or 0


def holdings_by_code(holdings: dict[tuple[str, int | None], int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (code, _owner), cents in holdings.items():
        out[code] += cents
    return dict(out)
