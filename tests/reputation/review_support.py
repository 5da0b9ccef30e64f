"""Helpers for the review, scoring and achievement tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from messaging.models import Notification
from reputation.models import Review, ReviewReply, ReviewReport, TrustScore, TrustScoreHistory, UserAchievement
from tasks.models import Task
from tests.tasks.factories import TaskFactory

MODELS = (Review, ReviewReply, ReviewReport, TrustScore, TrustScoreHistory, UserAchievement, Notification)


def completed_task(customer, contractor, *, completed_at: dt.datetime | None = None, **kwargs) -> Task:
    """A task ``contractor`` completed for ``customer`` (default: an hour ago)."""
    completed_at = completed_at or timezone.now() - dt.timedelta(hours=1)
    return TaskFactory(
        customer=customer,
        contractor=contractor,
        status=Task.Status.COMPLETED,
        agreed_price_cents=12_000,
        assigned_at=completed_at - dt.timedelta(days=1),
        started_at=completed_at - dt.timedelta(hours=3),
        submitted_at=completed_at - dt.timedelta(hours=2),
        completed_at=completed_at,
        photos=0,
        **kwargs,
    )


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)
