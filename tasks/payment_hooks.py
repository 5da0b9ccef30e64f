"""Where payments attach to the task lifecycle (filled in by the payments issue).

Each hook is called by ``tasks.services`` inside the service's transaction,
with the task row locked, so a payment write that fails rolls the transition
back with it. Until payments exist they do nothing: no money moves, and
nothing here claims that it did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Offer, Task
    from .policies import CancelRule


def on_assigned(task: Task, offer: Offer) -> None:
    """An offer was accepted (or the task booked instantly): fund the escrow
    for ``task.agreed_price_cents``."""


def on_completed(task: Task) -> None:
    """The customer approved the work (or it was approved automatically):
    release the escrow to the contractor."""


def on_cancelled(task: Task, refund_rule: CancelRule) -> None:
    """The task was cancelled: refund the customer as ``refund_rule.refund``
    says ("full", "partial" or "none")."""
