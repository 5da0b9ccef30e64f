"""Chargebacks and disputes: freezing an escrow's money, unfreezing it, and
a bank dispute's outcome (``chargeback_opened`` / ``chargeback_closed``, from
the ``charge.dispute.created`` / ``charge.dispute.closed`` webhooks).

A lost chargeback: the cardholder's bank took the disputed amount back from
the platform's balance. The escrow's money still on the platform (all of it
in the chargebacks account since the freeze) goes out to
``chargebacks_out``; if part of it had already been paid out to the
contractor before the chargeback, the platform covers that part from its
revenue (contractors are not clawed back); a payout not yet made is
cancelled. The escrow ends as ``chargeback``. A won chargeback (or an
inquiry closed without one) lifts the freeze this chargeback made; an escrow
held for a task approved meanwhile is then released.

Handled by staff, not here (the chargeback is stored as ``needs_staff`` and
staff alerted): a partial chargeback (less than what the customer still had
paid), and a lost chargeback on an escrow whose money had already left the
platform (refunded)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict
from tasks.models import Task

from .. import ledger
from ..models import Chargeback, Escrow, Payout

if TYPE_CHECKING:
    from accounts.models import User


from ._common import (
    ES,
    Code,
    Kind,
    _holdings,
    _legs_to,
    _lock,
    _move,
    _notify,
    _payable_in_flight,
    _require_system_or_staff,
)

logger = logging.getLogger(__name__)


# --- chargebacks ----------------------------------------------------------------------------


def _freeze_count(escrow: Escrow, mark: str) -> int:
    return escrow.transactions.filter(idempotency_key__contains=mark).count()


@transaction.atomic
def escrow_freeze(escrow: Escrow, *, reason: str = "", by: User | None = None) -> Escrow:
    """A chargeback (``charge.dispute.created``) or an opened dispute: the
    escrow's money on the platform moves to the chargebacks account (on
    hold), its payout stops, and staff are alerted. Idempotent (a frozen
    escrow stays as it is). System or staff."""
    _require_system_or_staff(by)
    task, escrow = _lock(escrow)
    if escrow.status == ES.FROZEN:
        return escrow
    if escrow.status not in (ES.HELD, ES.RELEASED, ES.SPLIT):
        raise Conflict(
            _("This payment is %(status)s, so it can't be frozen.") % {"status": escrow.get_status_display().lower()},
            code="escrow_state",
        )
    n = _freeze_count(escrow, ledger.FREEZE_MARK) + 1
    inside = sum(_holdings(escrow).values())
    # A transfer already at the gateway can't be stopped: its share stays
    # payable, and is paid out of it when the transfer is confirmed.
    leaving = _payable_in_flight(escrow)
    _move(escrow, ES.FROZEN, status_before_freeze=escrow.status, frozen_at=timezone.now())
    target = {Code.CHARGEBACKS: inside - leaving}
    if leaving:
        target[Code.CONTRACTOR_PAYABLE] = leaving
    legs = _legs_to(escrow, target, {})
    ledger.post(
        Kind.ADJUSTMENT,
        escrow,
        legs,
        idempotency_key=f"escrow:{escrow.public_id}{ledger.FREEZE_MARK}{n}",
        memo=(reason or "chargeback")[:300],
        by=by,
    )
    from accounts.models import User

    for admin in User.objects.filter(is_staff=True, is_active=True):
        _notify(
            admin,
            title=_("Dispute: money frozen") if reason.startswith("dispute") else _("Chargeback: money frozen"),
            body=_("The money for “%(task)s” is frozen until staff decide (%(reason)s).")
            % {"task": task.title, "reason": reason or _("chargeback")},
            task=task,
            dedupe_key=f"chargeback:{escrow.public_id}:{n}",
        )
    return escrow


@transaction.atomic
def escrow_unfreeze(escrow: Escrow, *, by: User | None, reason: str = "") -> Escrow:
    """Staff, or the system settling an agreed dispute (reputation.disputes):
    the chargeback was won or withdrawn, or the dispute is settled; the money
    goes back where it was before the freeze, the escrow to its earlier status."""
    _require_system_or_staff(by)
    _task, escrow = _lock(escrow)
    if escrow.status != ES.FROZEN:
        raise Conflict(_("This payment is not frozen."), code="escrow_state")
    n = _freeze_count(escrow, ledger.FREEZE_MARK)
    freeze = escrow.transactions.get(idempotency_key=f"escrow:{escrow.public_id}{ledger.FREEZE_MARK}{n}")
    legs = [(e.account.code, e.account.owner, -e.amount_cents) for e in freeze.entries.select_related("account__owner")]
    _move(escrow, escrow.status_before_freeze or ES.HELD, status_before_freeze="")
    ledger.post(
        Kind.ADJUSTMENT,
        escrow,
        legs,
        idempotency_key=f"escrow:{escrow.public_id}{ledger.UNFREEZE_MARK}{n}",
        memo=(reason or "chargeback resolved")[:300],
        by=by,
    )
    return escrow

# --- a bank dispute's outcome --------------------------------------------------------------------------

CLOSED_WON = ("won", "warning_closed")


def _alert_staff(task: Task, *, title: str, body: str, key: str) -> None:
    from accounts.models import User

    for admin in User.objects.filter(is_staff=True, is_active=True):
        _notify(admin, title=title, body=body, task=task, dedupe_key=key)


def _chargeback_row(escrow: Escrow, dispute_id: str, amount_cents: int, currency: str, reason: str) -> Chargeback:
    """The chargeback for ``dispute_id``, created on first sight (under the
    escrow lock, so a ``created`` and a ``closed`` racing end with one row)."""
    if not dispute_id or isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise Conflict(_("This bank dispute is not valid."), code="invalid_dispute")
    chargeback, _created = Chargeback.objects.select_for_update(no_key=True).get_or_create(
        dispute_id=dispute_id,
        defaults={
            "escrow": escrow,
            "amount_cents": amount_cents,
            "currency": (currency or escrow.currency).upper(),
            "reason": (reason or "")[:60],
        },
    )
    if chargeback.escrow_id != escrow.pk:
        raise Conflict(_("This bank dispute belongs to another payment."), code="dispute_escrow_mismatch")
    return chargeback


@transaction.atomic
def chargeback_opened(
    escrow: Escrow, *, dispute_id: str, amount_cents: int, currency: str = "", reason: str = ""
) -> Chargeback:
    """``charge.dispute.created``: record the chargeback once and freeze the
    escrow (staff alerted). A chargeback already closed (its ``closed``
    event came first) or replayed changes nothing. An escrow frozen already
    (a dispute between the parties) stays frozen by that dispute."""
    _task, escrow = _lock(escrow)
    chargeback = _chargeback_row(escrow, dispute_id, amount_cents, currency, reason)
    if chargeback.status != Chargeback.Status.OPEN or chargeback.froze_escrow:
        return chargeback
    if escrow.status in (ES.HELD, ES.RELEASED, ES.SPLIT):
        escrow_freeze(escrow, reason=f"chargeback {dispute_id}")
        chargeback.froze_escrow = True
        chargeback.save(update_fields=["froze_escrow"])
    elif escrow.status != ES.FROZEN:
        chargeback.note = f"escrow was {escrow.status} when the chargeback opened"
        chargeback.save(update_fields=["note"])
    return chargeback


@transaction.atomic
def chargeback_closed(
    escrow: Escrow, *, dispute_id: str, outcome: str, amount_cents: int, currency: str = "", reason: str = ""
) -> Chargeback:
    """``charge.dispute.closed`` with the gateway's final ``outcome`` (won,
    lost, warning_closed). Idempotent: a closed chargeback is returned as it
    is. Lost: a ``chargeback`` ledger transaction (the frozen money out to
    ``chargebacks_out``; what was already paid out covered from platform
    revenue), unpaid payout cancelled, escrow ``chargeback``; if the
    ``created`` event has not been processed yet, the escrow is frozen first.
    Won: the freeze this chargeback made is lifted (and a held escrow whose
    task was approved meanwhile released)."""
    if outcome not in (*CLOSED_WON, "lost"):
        raise Conflict(
            _("A bank dispute closes as won or lost, not %(status)s.") % {"status": outcome}, code="invalid_dispute"
        )
    task, escrow = _lock(escrow)
    chargeback = _chargeback_row(escrow, dispute_id, amount_cents, currency, reason)
    if chargeback.status != Chargeback.Status.OPEN:
        return chargeback
    chargeback.gateway_status = outcome
    chargeback.closed_at = timezone.now()
    if outcome == "lost":
        _chargeback_lost(task, escrow, chargeback)
    else:
        _chargeback_won(task, escrow, chargeback)
    chargeback.save(update_fields=["status", "gateway_status", "closed_at", "froze_escrow", "note"])
    return chargeback


def _chargeback_lost(task: Task, escrow: Escrow, chargeback: Chargeback) -> None:
    owed = escrow.captured_cents - escrow.refunded_cents  # what the cardholder still had paid
    if escrow.status in (ES.HELD, ES.RELEASED, ES.SPLIT) and chargeback.amount_cents == owed:
        # The closed event came before the created one: freeze first.
        escrow_freeze(escrow, reason=f"chargeback {chargeback.dispute_id}")
        escrow.refresh_from_db()
        chargeback.froze_escrow = True
    if escrow.status != ES.FROZEN or chargeback.amount_cents != owed:
        chargeback.status = Chargeback.Status.NEEDS_STAFF
        chargeback.note = f"lost {chargeback.amount_cents} of {owed} cents on a {escrow.status} escrow: settle by hand"
        _alert_staff(
            task,
            title=_("Chargeback lost: needs staff"),
            body=_("The bank dispute on “%(task)s” was lost and can't be settled automatically (%(note)s).")
            % {"task": task.title, "note": chargeback.note},
            key=f"chargeback-lost:{chargeback.dispute_id}",
        )
        return
    # All of the escrow's money still on the platform goes out (the frozen
    # money, and a share left payable when a transfer of it failed), except
    # a share a transfer is taking out right now (paid from the payable when
    # it is confirmed). What was paid out, or is being paid, the platform
    # covers from its revenue: contractors are not clawed back.
    leaving = _payable_in_flight(escrow)
    frozen = sum(_holdings(escrow).values()) - leaving
    legs = _legs_to(
        escrow,
        {Code.CONTRACTOR_PAYABLE: leaving, Code.PLATFORM_REVENUE: frozen - chargeback.amount_cents},
        {Code.CHARGEBACKS_OUT: chargeback.amount_cents},
    )
    _move(escrow, ES.CHARGEBACK, status_before_freeze="")
    ledger.post(
        Kind.CHARGEBACK,
        escrow,
        legs,
        idempotency_key=f"escrow:{escrow.public_id}:chargeback",
        memo=f"chargeback {chargeback.dispute_id} lost",
    )
    if not leaving:
        Payout.objects.filter(escrow=escrow).exclude(status=Payout.Status.PAID).update(
            status=Payout.Status.CANCELLED, next_attempt_at=None
        )
    chargeback.status = Chargeback.Status.LOST
    chargeback.note = f"{frozen} cents frozen went out; {chargeback.amount_cents - frozen} covered by the platform"
    _alert_staff(
        task,
        title=_("Chargeback lost"),
        body=_("The bank returned the payment for “%(task)s” to the cardholder.") % {"task": task.title},
        key=f"chargeback-lost:{chargeback.dispute_id}",
    )
    _notify(
        escrow.contractor,
        title=_("The customer's bank reversed a payment"),
        body=_("The bank took back the payment for “%(task)s”. Earnings not yet paid out for it are cancelled.")
        % {"task": task.title},
        task=task,
        dedupe_key=f"chargeback-lost-contractor:{chargeback.dispute_id}",
    )


def _chargeback_won(task: Task, escrow: Escrow, chargeback: Chargeback) -> None:
    chargeback.status = Chargeback.Status.WON
    if not (chargeback.froze_escrow and escrow.status == ES.FROZEN):
        chargeback.note = "nothing frozen by this chargeback"
        return
    escrow = escrow_unfreeze(escrow, by=None, reason=f"chargeback {chargeback.dispute_id} won")
    if escrow.status == ES.HELD and task.status == Task.Status.COMPLETED:
        # Approved while frozen (the release was skipped then): release it now.
        from .settlement import escrow_release

        escrow_release(escrow)
        chargeback.note = "freeze lifted; released (the task was approved meanwhile)"
    elif escrow.status == ES.HELD and task.status == Task.Status.CANCELLED:
        chargeback.note = "freeze lifted; the task was cancelled meanwhile: refund or split it in the admin"
        _alert_staff(
            task,
            title=_("Chargeback won on a cancelled task"),
            body=_("The money for “%(task)s” is held again; the task was cancelled meanwhile: refund or split it.")
            % {"task": task.title},
            key=f"chargeback-won:{chargeback.dispute_id}",
        )
    else:
        chargeback.note = f"freeze lifted; escrow {escrow.status}"
