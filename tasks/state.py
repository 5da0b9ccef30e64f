"""The task state machine: one table of allowed transitions.

Services call ``check(task, action)`` under a row lock before they change a
task's status; pages and the API ask ``allowed(task, action)`` to decide which
buttons to show. Who may take an action (customer, contractor, admin) is the
services' and ``tasks/policies.py``'s business; this table only says from which
states an action may start and where it leads.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from core.errors import Conflict

from .models import Task

S = Task.Status


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


TRANSITIONS: dict[str, Transition] = {
    "publish": Transition(frozenset({S.DRAFT}), S.OPEN),
    "accept_offer": Transition(frozenset({S.OPEN}), S.ASSIGNED),
    "instant_book": Transition(frozenset({S.OPEN}), S.ASSIGNED),
    "check_in": Transition(frozenset({S.ASSIGNED}), S.IN_PROGRESS),
    "submit_proof": Transition(frozenset({S.IN_PROGRESS}), S.SUBMITTED),
    "request_changes": Transition(frozenset({S.SUBMITTED}), S.IN_PROGRESS),
    "approve": Transition(frozenset({S.SUBMITTED}), S.COMPLETED),
    "auto_approve": Transition(frozenset({S.SUBMITTED}), S.COMPLETED),
    "cancel": Transition(frozenset({S.DRAFT, S.OPEN, S.ASSIGNED, S.IN_PROGRESS}), S.CANCELLED),
    # reputation.disputes: on submitted work, or on approved work while the
    # payout hold runs (reputation checks the hold); settled back to completed
    # (release, split) or cancelled (full refund).
    "dispute": Transition(frozenset({S.SUBMITTED, S.COMPLETED}), S.DISPUTED),
    "resolve_dispute_completed": Transition(frozenset({S.DISPUTED}), S.COMPLETED),
    "resolve_dispute_cancelled": Transition(frozenset({S.DISPUTED}), S.CANCELLED),
}

# Editing details (title, budget, photos...) is not a status change, but it is
# only allowed while nobody has been hired.
EDITABLE = frozenset({S.DRAFT, S.OPEN})


class IllegalTransition(Conflict):
    default_code = "illegal_transition"


def allowed(task: Task, action: str) -> bool:
    return task.status in TRANSITIONS[action].sources


def check(task: Task, action: str) -> str:
    """Return the target status, or raise IllegalTransition with a clear message."""
    transition = TRANSITIONS[action]
    if task.status not in transition.sources:
        raise IllegalTransition(
            _("This task is %(status)s, so it can't be %(action)s now.")
            % {"status": task.get_status_display().lower(), "action": ACTION_LABELS.get(action, action)},
            extra={"status": task.status, "action": action},
        )
    return transition.target


ACTION_LABELS = {
    "publish": "posted",
    "accept_offer": "booked",
    "instant_book": "booked",
    "check_in": "checked in to",
    "submit_proof": "submitted",
    "request_changes": "sent back for changes",
    "approve": "approved",
    "auto_approve": "approved",
    "cancel": "cancelled",
    "dispute": "disputed",
    "resolve_dispute_completed": "resolved",
    "resolve_dispute_cancelled": "resolved",
}
