"""Celery tasks for reputation: thin wrappers around services. Disputes' own
jobs may live beside these (``reputation.sweep_disputes``)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

RECENT_ACTIVITY_EVERY = dt.timedelta(minutes=10)
# A little overlap with the previous run, so an event committed during the
# last run's query is not missed.
RECENT_ACTIVITY_OVERLAP = dt.timedelta(minutes=2)


@shared_task(name="reputation.recompute_trust", ignore_result=True, soft_time_limit=60, time_limit=90)
def recompute_trust(user_id: int, reason: str = "") -> int | None:
    """Recompute one user's trust score (and award achievements). Idempotent:
    it reads the current history and writes the current score."""
    from accounts.models import User

    from .services import trust_recompute

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    return trust_recompute(user=user, reason=reason or "event").score


@shared_task(name="reputation.publish_due_reviews", ignore_result=True, soft_time_limit=50, time_limit=55)
def publish_due_reviews() -> int:
    """Beat, every few minutes: publish reviews whose 14-day window closed."""
    from .services import reviews_publish_due

    return reviews_publish_due()


@shared_task(name="reputation.recompute_recent", ignore_result=True, soft_time_limit=500, time_limit=550)
def recompute_recent() -> int:
    """Beat, every 10 minutes: recompute everyone touched by task events or
    messages since the last run (task completion, cancellation, check-ins and
    offers happen in services owned elsewhere; this picks them up without
    hooks in their code)."""
    from .services import users_with_recent_activity

    since = timezone.now() - RECENT_ACTIVITY_EVERY - RECENT_ACTIVITY_OVERLAP
    user_ids = sorted(users_with_recent_activity(since=since))
    for user_id in user_ids:
        recompute_trust.delay(user_id, "recent_activity")
    return len(user_ids)


# Dispute deadlines (reputation/dispute_tasks.py), registered with the worker from here.
from .dispute_tasks import sweep_disputes  # noqa: E402, F401
