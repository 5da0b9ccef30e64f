"""Reads about reviews, ratings, trust and achievements.

Who sees a review:
- published and not hidden: everyone, signed in or not;
- not yet published: its author only (the other side learns that a review
  exists and when it will appear, never what it says);
- hidden by staff: its author (marked hidden) and staff.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from tasks.models import Task

from . import achievements as ach
from . import scoring
from .models import Review, TrustScore, UserAchievement
from .services import REVIEW_WINDOW, review_role_for


def _authenticated(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _is_staff(user: Any) -> bool:
    return _authenticated(user) and user.is_staff


def _base() -> QuerySet[Review]:
    return Review.objects.select_related("task", "reviewer", "reviewee", "reply")


def review_visible_to(review: Review, viewer: Any) -> bool:
    if _is_staff(viewer):
        return True
    if _authenticated(viewer) and viewer.pk == review.reviewer_id:
        return True
    return review.published_at is not None and review.hidden_at is None


def visible_reviews_q(viewer: Any) -> Q:
    public = Q(published_at__isnull=False, hidden_at__isnull=True)
    if _is_staff(viewer):
        return Q()
    if _authenticated(viewer):
        return public | Q(reviewer=viewer)
    return public


def reviews_for(user: Any, viewer: Any, role: str | None = Review.Role.CUSTOMER_TO_CONTRACTOR) -> QuerySet[Review]:
    """Reviews ``user`` received (in ``role``; None for both) that ``viewer`` may read, newest first."""
    qs = _base().filter(reviewee=user).filter(visible_reviews_q(viewer))
    if role:
        qs = qs.filter(role=role)
    return qs.order_by("-published_at", "-submitted_at", "-pk")


def public_reviews_for(user: Any, role: str = Review.Role.CUSTOMER_TO_CONTRACTOR) -> QuerySet[Review]:
    """What everyone sees on a profile: published, not hidden."""
    return reviews_for(user, None, role)


def reviews_on_task(task: Task, viewer: Any) -> list[Review]:
    return list(_base().filter(task=task).filter(visible_reviews_q(viewer)).order_by("pk"))


def review_get_for_user(task: Task, role: str, viewer: Any) -> Review | None:
    review = _base().filter(task=task, role=role).first()
    if review is None or not review_visible_to(review, viewer):
        return None
    return review


def contractor_rating(user: Any) -> tuple[float, float | None, int]:
    """(Bayesian average, raw average or None, number of reviews) from customers."""
    rating = scoring.rating_for(user, Review.Role.CUSTOMER_TO_CONTRACTOR)
    return rating.bayesian, rating.raw, rating.count


def customer_rating(user: Any) -> tuple[float, float | None, int]:
    rating = scoring.rating_for(user, Review.Role.CONTRACTOR_TO_CUSTOMER)
    return rating.bayesian, rating.raw, rating.count


def trust_for(user: Any) -> TrustScore | None:
    """The stored trust score (None before the first computation)."""
    return TrustScore.objects.filter(user=user).first()


def score_for_matching(user: Any) -> float:
    """The contractor's trust score in [0, 1] for ranking offers and "Find
    work"; 0.5 (neutral) before the first computation."""
    trust = trust_for(user)
    return trust.score / 100 if trust is not None else scoring.NEUTRAL


def trust_view(user: Any) -> dict[str, Any]:
    """The stored scores with their factors as rows; before the first stored
    computation, computed now (not stored) and marked ``estimated``."""
    trust = trust_for(user)
    if trust is not None:
        return {
            "score": trust.score,
            "factors": factor_rows(trust.factors),
            "customer_score": trust.customer_score,
            "customer_factors": factor_rows(trust.customer_factors),
            "computed_at": trust.computed_at,
            "estimated": False,
        }
    contractor = scoring.contractor_breakdown(user)
    customer = scoring.customer_breakdown(user)
    return {
        "score": contractor.score,
        "factors": factor_rows(contractor.factors),
        "customer_score": customer.score,
        "customer_factors": factor_rows(customer.factors),
        "computed_at": None,
        "estimated": True,
    }


def factor_rows(factors: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Factors as rows for a page, biggest weight first."""
    rows = [{"name": name, **data} for name, data in factors.items()]
    return sorted(rows, key=lambda r: (-r.get("weight", 0), r["name"]))


@dataclass(frozen=True)
class EarnedAchievement:
    code: str
    title: str
    description: str
    icon: str
    earned_at: dt.datetime


def achievements_for(user: Any) -> list[EarnedAchievement]:
    out = []
    for row in UserAchievement.objects.filter(user=user).order_by("earned_at", "pk"):
        definition = ach.ACHIEVEMENTS.get(row.code)
        if definition is None:
            continue
        out.append(
            EarnedAchievement(row.code, str(definition.title), str(definition.description), definition.icon, row.earned_at)
        )
    return out


def jobs_completed(user: Any) -> int:
    return scoring.completed_jobs(user)


@dataclass(frozen=True)
class PendingReview:
    task: Task
    role: str
    other: Any
    closes_at: dt.datetime
    draft: Review | None


def reviews_to_write(user: Any, *, now: dt.datetime | None = None) -> list[PendingReview]:
    """Completed tasks of the user's whose window is open and whose review by
    them is missing or still editable (not published)."""
    if not _authenticated(user):
        return []
    now = now or timezone.now()
    tasks = (
        Task.objects.filter(Q(customer=user) | Q(contractor=user))
        .filter(
            status__in=[Task.Status.COMPLETED, Task.Status.DISPUTED],
            completed_at__isnull=False,
            completed_at__gt=now - REVIEW_WINDOW,
        )
        .select_related("customer", "contractor")
        .prefetch_related(Prefetch("reviews", queryset=Review.objects.filter(reviewer=user), to_attr="my_reviews"))
        .order_by("completed_at")
    )
    out = []
    for task in tasks:
        draft = task.my_reviews[0] if task.my_reviews else None
        if draft is not None and draft.published_at is not None:
            continue
        role = review_role_for(task, user)
        other = task.contractor if role == Review.Role.CUSTOMER_TO_CONTRACTOR else task.customer
        out.append(PendingReview(task, role, other, task.completed_at + REVIEW_WINDOW, draft))
    return out


def reviews_written(user: Any) -> QuerySet[Review]:
    return _base().filter(reviewer=user).order_by("-submitted_at", "-pk")


def reviews_received(user: Any) -> QuerySet[Review]:
    """What the user may read of reviews about them: published (hidden ones shown as hidden to no one but staff)."""
    return (
        _base()
        .filter(reviewee=user, published_at__isnull=False, hidden_at__isnull=True)
        .order_by("-published_at", "-pk")
    )


def reviews_waiting_on_me(user: Any) -> int:
    """Reviews about the user still hidden (they'll see them once they review or the window closes)."""
    return Review.objects.filter(reviewee=user, published_at__isnull=True).count()


def open_report_count() -> int:
    from .models import ReviewReport

    return ReviewReport.objects.filter(status=ReviewReport.Status.OPEN).count()

