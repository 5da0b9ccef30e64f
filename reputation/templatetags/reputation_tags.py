"""Reputation pieces other pages include, as tags so their views need no change:

- ``{% reputation_task_panel %}`` on the task page (``task`` and ``user`` in context);
- ``{% reputation_profile owner %}`` on the public contractor profile;
- ``{% reputation_dashboard %}`` on the owner's dashboard;
- ``{{ review.stars|stars }}`` for a star row with a text alternative.
"""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from .. import selectors, services
from ..forms import ReplyForm, ReviewForm
from ..models import Review

register = template.Library()


@register.filter
def stars(value) -> str:
    """★★★★☆ with "4 out of 5 stars" for screen readers."""
    try:
        n = max(0, min(5, int(round(float(value)))))
    except (TypeError, ValueError):
        return ""
    label = _("%(n)s out of 5 stars") % {"n": value}
    return format_html(
        '<span class="stars" role="img" aria-label="{}"><span aria-hidden="true">{}{}</span></span>',
        label,
        "★" * n,
        "☆" * (5 - n),
    )


@register.inclusion_tag("reputation/includes/task_panel_body.html", takes_context=True)
def reputation_task_panel(context) -> dict:
    task = context.get("task")
    user = context.get("user")
    if task is None or user is None or not user.is_authenticated or task.completed_at is None:
        return {"show": False}
    role = services.review_role_for(task, user)
    reviews = selectors.reviews_on_task(task, user)
    if role is None and not user.is_staff:
        return {"show": False}
    mine = next((r for r in reviews if r.reviewer_id == user.pk), None)
    theirs = next((r for r in reviews if r.reviewer_id != user.pk), None)
    closes = services.review_window_closes(task)
    window_open = closes is not None and timezone.now() <= closes
    can_write = (
        role is not None
        and task.status in (task.Status.COMPLETED, task.Status.DISPUTED)
        and window_open
        and (mine is None or mine.published_at is None)
    )
    other_reviewed_hidden = (
        role is not None
        and theirs is None
        and Review.objects.filter(task=task, reviewee=user, published_at__isnull=True).exists()
    )
    other = None
    if role == Review.Role.CUSTOMER_TO_CONTRACTOR:
        other = task.contractor
    elif role == Review.Role.CONTRACTOR_TO_CUSTOMER:
        other = task.customer
    return {
        "show": True,
        "task": task,
        "user": user,
        "role": role,
        "other": other,
        "mine": mine,
        "theirs": theirs,
        "staff_reviews": reviews if role is None else [],
        "can_write": can_write,
        "form": ReviewForm(initial=ReviewForm.initial_from(mine), role=role) if can_write else None,
        "closes_at": closes,
        "other_reviewed_hidden": other_reviewed_hidden,
        "reply_form": ReplyForm(),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("reputation/includes/profile_section.html", takes_context=True)
def reputation_profile(context, owner) -> dict:
    viewer = context.get("user")
    is_owner = bool(viewer is not None and viewer.is_authenticated and viewer.pk == owner.pk)
    bayesian, raw, count = selectors.contractor_rating(owner)
    reviews = list(selectors.public_reviews_for(owner)[:20])
    distribution = dict.fromkeys(range(5, 0, -1), 0)
    for value in selectors.public_reviews_for(owner).values_list("stars", flat=True):
        distribution[value] += 1
    trust = selectors.trust_view(owner)
    return {
        "owner": owner,
        "viewer": viewer,
        "is_owner": is_owner,
        "bayesian": bayesian,
        "raw": raw,
        "count": count,
        "distribution": [{"stars": k, "count": v, "pct": round(100 * v / count) if count else 0} for k, v in distribution.items()],
        "reviews": reviews,
        "achievements": selectors.achievements_for(owner),
        "jobs_completed": selectors.jobs_completed(owner),
        "trust": trust,
        "reply_form": ReplyForm(),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("reputation/includes/dashboard_card.html", takes_context=True)
def reputation_dashboard(context) -> dict:
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"show": False}
    return {
        "show": True,
        "user": user,
        "trust": selectors.trust_view(user),
        "pending": selectors.reviews_to_write(user),
        "achievements": selectors.achievements_for(user),
    }
