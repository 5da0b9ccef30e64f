"""Where payments attach to the task lifecycle.

Each hook is called by ``tasks.services`` inside the service's transaction,
with the task row locked, so a payment write that fails rolls the transition
back with it. The money itself moves in ``payments.services`` (escrow, ledger);
the gateway is called after commit, never while the task is locked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Offer, Task
    from .policies import CancelRule

logger = logging.getLogger(__name__)


def on_assigned(task: Task, offer: Offer) -> None:
    """An offer was accepted (or the task booked instantly): a HELD escrow
    must pay for it, or ``Conflict(code="payment_required")`` undoes the
    booking. Nothing is assigned without money."""
    from payments.services import require_held_escrow

    require_held_escrow(task, offer)


def on_completed(task: Task) -> None:
    """The customer approved the work (or it was approved automatically):
    release the held escrow to the contractor (payable after the payout
    hold). A frozen escrow (chargeback) stays frozen for staff to decide."""
    from payments.models import Escrow
    from payments.services import escrow_release, live_escrow

    escrow = live_escrow(task)
    if escrow is None:
        logger.warning("Task %s completed with no escrow to release", task.pk)
        return
    if escrow.status == Escrow.Status.HELD:
        escrow_release(escrow)
    else:
        logger.warning("Task %s completed with its escrow %s; not released", task.pk, escrow.status)


def on_cancelled(task: Task, refund_rule: CancelRule) -> None:
    """The task was cancelled: "full" refunds the customer everything,
    "partial" pays the contractor ``refund_rule.contractor_cents`` (the
    call-out fee) and refunds the rest, "none" moves nothing."""
    from payments.services import settle_cancellation

    settle_cancellation(task, refund=refund_rule.refund, contractor_cents=refund_rule.contractor_cents)
