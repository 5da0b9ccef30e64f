"""Reads about disputes: who may see one, lists, the mediation bundle, and
the dispute figures the trust score and the admin dashboard use."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from core.errors import NotFound
from tasks.models import Task

from .dispute_models import Dispute, DisputeEvent, DisputeEvidence, DisputeProposal

VIEW_PERMISSIONS = ("reputation.decide_dispute", "reputation.view_dispute")


def _authenticated(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def staff_may_view(user: Any) -> bool:
    """Staff who mediate (or may look at) disputes."""
    return _authenticated(user) and user.is_staff and any(user.has_perm(p) for p in VIEW_PERMISSIONS)


def dispute_can_view(dispute: Dispute, user: Any) -> bool:
    if not _authenticated(user):
        return False
    return user.pk in dispute.party_ids() or staff_may_view(user)


def dispute_get_for_user(public_id: uuid.UUID | str, user: Any) -> Dispute:
    """The dispute if ``user`` is one of its parties or permitted staff;
    NotFound for everyone else (a stranger can't tell it exists)."""
    try:
        key = uuid.UUID(str(public_id))
    except ValueError as exc:
        raise NotFound(_("No such dispute.")) from exc
    dispute = (
        Dispute.objects.select_related("task", "opened_by", "against", "escrow", "decided_by")
        .filter(public_id=key)
        .first()
    )
    if dispute is None or not dispute_can_view(dispute, user):
        raise NotFound(_("No such dispute."))
    return dispute


def evidence_get_for_user(public_id: uuid.UUID | str, user: Any) -> DisputeEvidence:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError as exc:
        raise NotFound(_("No such file.")) from exc
    row = DisputeEvidence.objects.select_related("dispute").filter(public_id=key).first()
    if row is None or not dispute_can_view(row.dispute, user):
        raise NotFound(_("No such file."))
    return row


def proposal_get_for_user(public_id: uuid.UUID | str, user: Any) -> DisputeProposal:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError as exc:
        raise NotFound(_("No such proposal.")) from exc
    row = DisputeProposal.objects.select_related("dispute").filter(public_id=key).first()
    if row is None or not _authenticated(user) or user.pk not in row.dispute.party_ids():
        raise NotFound(_("No such proposal."))
    return row


def disputes_for_user(user: Any) -> QuerySet[Dispute]:
    if not _authenticated(user):
        return Dispute.objects.none()
    return (
        Dispute.objects.filter(Q(opened_by=user) | Q(against=user))
        .select_related("task", "opened_by", "against")
        .order_by("-opened_at")
    )


def open_dispute_for_task(task: Task) -> Dispute | None:
    return Dispute.objects.filter(task=task, status__in=Dispute.OPEN_STATUSES).first()


def latest_dispute_for_task(task: Task, user: Any) -> Dispute | None:
    """The task's most recent dispute, if this viewer may see it (task page)."""
    if not _authenticated(user):
        return None
    dispute = Dispute.objects.filter(task=task).order_by("-opened_at").first()
    if dispute is None or not dispute_can_view(dispute, user):
        return None
    return dispute


def timeline(dispute: Dispute) -> list[DisputeEvent]:
    return list(dispute.events.select_related("actor").order_by("created_at", "id"))


def evidence(dispute: Dispute) -> list[DisputeEvidence]:
    return list(dispute.evidence.select_related("by").order_by("created_at", "id"))


def proposals(dispute: Dispute) -> list[DisputeProposal]:
    return list(dispute.proposals.select_related("by").order_by("created_at", "id"))


def open_proposal(dispute: Dispute) -> DisputeProposal | None:
    return dispute.proposals.filter(status=DisputeProposal.Status.OPEN).select_related("by").first()


def chat_history(dispute: Dispute, *, limit: int = 500) -> list:
    """The messages between the two parties about this task, oldest first
    (for the mediation screen)."""
    from messaging.models import Message

    task = dispute.task
    return list(
        Message.objects.filter(
            conversation__task=task,
            conversation__customer_id=task.customer_id,
            conversation__contractor_id=task.contractor_id,
        )
        .select_related("sender")
        .order_by("conversation_id", "seq")[:limit]
    )


# --- figures ------------------------------------------------------------------------


def _rate(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def dispute_stats(user: Any) -> dict[str, Any]:
    """Dispute figures for one user, for the trust score.

    - ``opened_against``: disputes the other side opened against this user;
    - ``lost``: resolved disputes that went fully against this user (as the
      contractor: a full refund; as the customer: full payment to the
      contractor). A split is lost by neither;
    - ``rate``: tasks of this user's (either side) that had a dispute, over
      their completed tasks plus those disputed and not completed (0.0 with none).
    """
    opened_against = Dispute.objects.filter(against=user).count()
    as_contractor_lost = Dispute.objects.filter(
        status=Dispute.Status.RESOLVED, outcome=Dispute.Outcome.REFUND, task__contractor=user
    ).count()
    as_customer_lost = Dispute.objects.filter(
        status=Dispute.Status.RESOLVED, outcome=Dispute.Outcome.RELEASE, task__customer=user
    ).count()
    mine = Q(customer=user) | Q(contractor=user)
    disputed_tasks = Task.objects.filter(mine, disputes__isnull=False).distinct()
    disputed = disputed_tasks.count()
    completed = Task.objects.filter(mine, status=Task.Status.COMPLETED).count()
    disputed_not_completed = disputed_tasks.exclude(status=Task.Status.COMPLETED).count()
    return {
        "opened_against": opened_against,
        "lost": as_contractor_lost + as_customer_lost,
        "disputed": disputed,
        "completed": completed,
        "rate": _rate(disputed, completed + disputed_not_completed),
    }


def platform_dispute_rate() -> dict[str, Any]:
    """Tasks with a dispute over tasks that reached completion or a dispute,
    platform-wide, with the open count (shown to admins)."""
    disputed = Task.objects.filter(disputes__isnull=False).distinct().count()
    completed = Task.objects.filter(status=Task.Status.COMPLETED).count()
    disputed_not_completed = (
        Task.objects.filter(disputes__isnull=False).exclude(status=Task.Status.COMPLETED).distinct().count()
    )
    return {
        "disputed": disputed,
        "completed": completed,
        "open": Dispute.objects.filter(status__in=Dispute.OPEN_STATUSES).count(),
        "in_mediation": Dispute.objects.filter(status=Dispute.Status.MEDIATION).count(),
        "rate": _rate(disputed, completed + disputed_not_completed),
    }
