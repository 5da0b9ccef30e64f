"""Matching pieces other pages include, so their views need no change:

- ``{% matching_invite_panel %}`` on the task page (``task`` and ``user`` in
  context): the customer's ranked "Invite pros" list, while the task is open;
- ``{% matching_work_links %}`` on My jobs: invitations waiting, alert
  settings, time off and calendar.
"""

from __future__ import annotations

import logging

from django import template

from accounts.models import ContractorProfile

from .. import queries
from ..models import Invitation

logger = logging.getLogger(__name__)
register = template.Library()

PANEL_SIZE = 10


def _ranked(task) -> tuple[list, str | None, bool]:
    """(rows, ranker name, failed). Recommendations are a help, not the page:
    if ranking breaks, the task page still renders and says so."""
    try:
        from ..ranking import get_ranker
        from ..selectors import best_contractors_for

        rows = best_contractors_for(task, limit=PANEL_SIZE)
        return list(rows), str(get_ranker().name), False
    except Exception:  # noqa: BLE001 - see docstring
        logger.exception("Invite panel: ranking failed for task %s", task.pk)
        return [], None, True


@register.inclusion_tag("matching/includes/invite_panel.html", takes_context=True)
def matching_invite_panel(context) -> dict:
    task = context.get("task")
    user = context.get("user")
    if task is None or user is None or not user.is_authenticated or user.pk != task.customer_id or task.status != task.Status.OPEN:
        return {"show": False}
    rows, ranker, failed = _ranked(task)
    invited = queries.invited_ids(task)
    offered = set(task.offers.filter(status="pending").values_list("contractor_id", flat=True))
    profiles = {
        p.user_id: p for p in ContractorProfile.objects.filter(user_id__in=[c.pk for c, _s, _r in rows]).only("user_id", "slug", "onboarded_at")
    }
    pros = []
    for contractor, score, reasons in rows:
        if contractor.pk == task.customer_id:
            continue
        pros.append(
            {
                "contractor": contractor,
                "profile": profiles.get(contractor.pk),
                "score": score,
                "reasons": list(reasons or [])[:4],
                "invitation": invited.get(contractor.pk),
                "offered": contractor.pk in offered,
            }
        )
    return {
        "show": True,
        "task": task,
        "pros": pros,
        "is_model": bool(ranker and ranker.startswith("model:")),
        "ranker": ranker,
        "failed": failed,
        "Status": Invitation.Status,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("matching/includes/work_links.html", takes_context=True)
def matching_work_links(context) -> dict:
    user = context.get("user")
    if user is None or not user.is_authenticated or not user.is_contractor:
        return {"show": False}
    return {"show": True, "waiting": queries.open_invitation_count(user)}
