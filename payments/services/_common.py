"""What every escrow service shares: the status table, the lock order, the
conditional status move, ledger legs, gateway bookkeeping (``GatewayOperation``).

``_gateway()`` looks the gateway up through the package (``payments.services._gateway``)
at call time, so tests that patch that one name reach every sub-module.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, NotFound, PermissionDenied
from tasks.models import Task

from .. import ledger
from ..models import (
    Escrow,
    GatewayOperation,
    LedgerAccount,
    LedgerTransaction,
    Payout,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

ES = Escrow.Status
Code = LedgerAccount.Code
Kind = LedgerTransaction.Kind

FUNDABLE = (ES.UNFUNDED, ES.FAILED, ES.EXPIRED)
LIVE = (ES.HELD, ES.RELEASED, ES.SPLIT, ES.FROZEN)
# Accounts that hold an escrow's money before it leaves the platform.
INSIDE = (Code.ESCROW_HELD, Code.CONTRACTOR_PAYABLE, Code.PLATFORM_REVENUE, Code.CHARGEBACKS)
TRANSITIONS: dict[str, frozenset[str]] = {
    ES.UNFUNDED: frozenset({ES.HELD, ES.FAILED, ES.EXPIRED, ES.REFUNDED}),
    ES.FAILED: frozenset({ES.HELD, ES.REFUNDED}),
    ES.EXPIRED: frozenset({ES.HELD, ES.REFUNDED}),
    ES.HELD: frozenset({ES.RELEASED, ES.REFUNDED, ES.SPLIT, ES.FROZEN}),
    ES.RELEASED: frozenset({ES.REFUNDED, ES.SPLIT, ES.FROZEN}),
    ES.SPLIT: frozenset({ES.FROZEN}),
    ES.FROZEN: frozenset({ES.HELD, ES.RELEASED, ES.SPLIT, ES.CHARGEBACK}),
    ES.REFUNDED: frozenset(),
    ES.CHARGEBACK: frozenset(),
}
PAYOUT_LEASE = dt.timedelta(minutes=5)
MAX_BACKOFF = dt.timedelta(hours=24)


def _gateway():
    """The configured gateway, looked up through the package at call time."""
    from payments import services

    return services._gateway()


def _gateway_errors() -> tuple[type[Exception], type[Exception]]:
    from ..gateway.base import CardDeclined, GatewayError

    return GatewayError, CardDeclined


def _payout_hold() -> dt.timedelta:
    return dt.timedelta(hours=settings.PAYMENTS_PAYOUT_HOLD_HOURS)


def _key(escrow: Escrow, what: str) -> str:
    return f"escrow:{escrow.public_id}:{what}"


# --- helpers ----------------------------------------------------------------------


def amount_due_cents(task: Task, price_cents: int) -> int:
    """What booking at ``price_cents`` costs before fees: the price on a fixed
    task, the hourly rate times the estimated hours on an hourly one."""
    if task.budget_type == Task.BudgetType.HOURLY:
        return price_cents * (task.estimated_hours or 1)
    return price_cents


def _lock(escrow: Escrow) -> tuple[Task, Escrow]:
    """Lock the escrow's task, then the escrow (the fixed order)."""
    try:
        task = Task.objects.select_for_update(no_key=True).get(pk=escrow.task_id)
        locked = Escrow.objects.select_for_update(no_key=True).get(pk=escrow.pk)
    except (Task.DoesNotExist, Escrow.DoesNotExist) as exc:
        raise NotFound(_("This payment no longer exists.")) from exc
    return task, locked


def _move(escrow: Escrow, to: str, **fields: Any) -> None:
    """Conditional update of the (locked) escrow's status; refuses moves the
    table does not allow and moves somebody else made first."""
    if to not in TRANSITIONS.get(escrow.status, frozenset()):
        raise Conflict(
            _("This payment is %(status)s, so it can't be %(action)s.")
            % {"status": escrow.get_status_display().lower(), "action": ES(to).label.lower()},
            code="escrow_state",
            extra={"status": escrow.status},
        )
    updated = Escrow.objects.filter(pk=escrow.pk, status=escrow.status).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if updated != 1:
        raise Conflict(_("This payment changed a moment ago. Reload and try again."), code="escrow_changed")
    escrow.status = to
    for name, value in fields.items():
        setattr(escrow, name, value)


def _require_system_or_staff(by: User | None) -> None:
    if by is not None and not by.is_staff:
        raise PermissionDenied(_("Only BittieTasks staff can move this money."), code="not_staff")


def _holdings(escrow: Escrow) -> dict[str, int]:
    """This escrow's money inside the platform, by account code."""
    inside: dict[str, int] = {}
    for (code, _owner), cents in ledger.escrow_holdings(escrow).items():
        if code in INSIDE:
            inside[code] = inside.get(code, 0) + cents
    return inside


def _legs_to(escrow: Escrow, target: dict[str, int], outflows: dict[str, int]) -> list[ledger.Leg]:
    """Legs that move this escrow's money from where it is to ``target``
    (inside accounts) plus ``outflows`` (refunds_out, payouts_out)."""
    current = _holdings(escrow)
    owner_of = {Code.CONTRACTOR_PAYABLE: escrow.contractor, Code.PAYOUTS_OUT: escrow.contractor}
    legs: list[ledger.Leg] = []
    for code in INSIDE:
        delta = target.get(code, 0) - current.get(code, 0)
        if delta:
            legs.append((code, owner_of.get(code), delta))
    for code, cents in outflows.items():
        if cents:
            legs.append((code, owner_of.get(code), cents))
    return legs


def _payable_in_flight(escrow: Escrow) -> int:
    """The cents of the contractor's payable that a transfer is taking out
    right now: the payout sweep called the gateway (or is retrying a call
    that did not answer) and has not recorded it as paid yet. Locks the
    escrow's payout (after the escrow: the fixed order), so a sweep deciding
    on it is waited for. A freeze or a lost chargeback leaves this money
    where it is: ``_payout_paid`` takes it from the payable when the
    transfer is confirmed."""
    payout = Payout.objects.select_for_update(no_key=True).filter(escrow=escrow).first()
    if payout is None or payout.status in (Payout.Status.PAID, Payout.Status.CANCELLED):
        return 0
    started = GatewayOperation.objects.filter(
        escrow=escrow, operation="create_transfer", status=GatewayOperation.Status.STARTED, attempts__gt=0
    ).exists()
    if not started:
        return 0
    return max(0, min(payout.amount_cents, _holdings(escrow).get(Code.CONTRACTOR_PAYABLE, 0)))


def _notify(user: User, *, title: str, body: str, task: Task, dedupe_key: str) -> None:
    from messaging.notifications import notify

    try:
        notify(user, kind="task_update", title=title, body=body, task=task, dedupe_key=dedupe_key)
    except Exception:  # noqa: BLE001 - a notification must never undo a money movement
        logger.exception("Payment notification %s failed", dedupe_key)


def _operation(escrow: Escrow | None, key: str, operation: str, request: dict[str, Any]) -> GatewayOperation:
    """The stored intent for ``key`` (created now if new); a retry finds it."""
    op, _created = GatewayOperation.objects.get_or_create(
        idempotency_key=key, defaults={"operation": operation, "escrow": escrow, "request": request}
    )
    return op


def _op_started(op: GatewayOperation) -> None:
    GatewayOperation.objects.filter(pk=op.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())


def _op_done(op: GatewayOperation, *, response_id: str = "", error: str = "", failed: bool = False) -> None:
    status = GatewayOperation.Status.FAILED if failed else (
        GatewayOperation.Status.STARTED if error else GatewayOperation.Status.SUCCEEDED
    )
    GatewayOperation.objects.filter(pk=op.pk).update(
        status=status, response_id=response_id or F("response_id"), error=error[:500], updated_at=timezone.now()
    )



def live_escrow(task: Task) -> Escrow | None:
    return Escrow.objects.select_for_update(no_key=True).filter(task=task, status__in=LIVE).first()
