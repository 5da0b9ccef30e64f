"""Builders for the matching tests (features, ranking, selectors): a
contractor's history of jobs, offers, reviews and logged outcomes, built as
rows (factories are the one place allowed to skip services)."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.utils import timezone

from matching.models import MatchEvent
from reputation.models import Review
from tasks.models import Task
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory
from tests.tasks.factories import TaskFactory

LA = ZoneInfo("America/Los_Angeles")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=LA)


def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def electrical():
    return CategoryFactory(name="Electrical", slug="electrical")


def done_task(contractor, *, customer=None, category=None, price=10_000, completed_at=None, title=None, **extra) -> Task:
    """A completed job of ``contractor`` (assigned a day before it was completed)."""
    completed_at = completed_at or timezone.now() - dt.timedelta(days=3)
    kwargs = dict(
        customer=customer or UserFactory(),
        contractor=contractor,
        category=category or plumbing(),
        status=Task.Status.COMPLETED,
        agreed_price_cents=price,
        published_at=completed_at - dt.timedelta(days=2),
        assigned_at=completed_at - dt.timedelta(days=1),
        completed_at=completed_at,
        photos=0,
        **extra,
    )
    if title:
        kwargs["title"] = title
    return TaskFactory(**kwargs)


def cancelled_task(contractor, *, category=None, cancelled_at=None) -> Task:
    cancelled_at = cancelled_at or timezone.now() - dt.timedelta(days=2)
    return TaskFactory(
        contractor=contractor,
        category=category or plumbing(),
        status=Task.Status.CANCELLED,
        agreed_price_cents=9_000,
        assigned_at=cancelled_at - dt.timedelta(days=1),
        cancelled_at=cancelled_at,
        cancelled_by=contractor,
        photos=0,
    )


def review(task: Task, stars: int) -> Review:
    now = timezone.now()
    return Review.objects.create(
        task=task,
        reviewer=task.customer,
        reviewee=task.contractor,
        role=Review.Role.CUSTOMER_TO_CONTRACTOR,
        stars=stars,
        window_closes_at=now + dt.timedelta(days=14),
        published_at=now - dt.timedelta(hours=1),
    )


def make_contractor(*, lat=37.7509, lon=-122.4153, radius=25, rate=8500, bio="Licensed plumber, 12 years in the Bay Area.", trades=None, **kw):
    return ContractorProfileFactory(
        latitude=lat, longitude=lon, service_radius_km=radius, hourly_rate_cents=rate, bio=bio,
        trades=trades if trades is not None else [plumbing()], **kw
    ).user


def simulated_history(*, tasks: int = 60, contractors: int = 8, seed: int = 7, start=None):
    """A small market: ``contractors`` plumbers around the Mission with hidden
    quality (rating, trust) and distance; each task is shown to all of them,
    the nearer/better ones offer, the best offer is hired. Returns (contractors, tasks)."""
    from reputation.models import TrustScore

    rng = random.Random(seed)
    start = start or timezone.now() - dt.timedelta(days=tasks // 2 + 10)
    category = plumbing()
    pros = []
    for i in range(contractors):
        user = make_contractor(lat=37.7509 + rng.uniform(-0.15, 0.15), lon=-122.4153 + rng.uniform(-0.15, 0.15))
        quality = (i + 1) / contractors
        TrustScore.objects.create(user=user, score=int(30 + 60 * quality))
        pros.append((user, quality))
    made = []
    for n in range(tasks):
        posted = start + dt.timedelta(hours=12 * n)
        task = TaskFactory(
            category=category,
            latitude=37.7509 + rng.uniform(-0.1, 0.1),
            longitude=-122.4153 + rng.uniform(-0.1, 0.1),
            published_at=posted,
            deadline=posted + dt.timedelta(days=5),
            photos=0,
        )
        from core.geo import distance_km

        utilities = []
        for user, quality in pros:
            profile = user.contractor_profile
            d = distance_km(profile.latitude, profile.longitude, task.latitude, task.longitude)
            utilities.append((quality * 2 - d / 10 + rng.gauss(0, 0.3), user))
        utilities.sort(key=lambda u: -u[0])
        for position, (_u, user) in enumerate(utilities):
            MatchEvent.objects.create(task=task, contractor=user, kind=MatchEvent.Kind.SHOWN, position=position)
        for _u, user in utilities[:2]:
            MatchEvent.objects.create(task=task, contractor=user, kind=MatchEvent.Kind.OFFERED)
        MatchEvent.objects.create(task=task, contractor=utilities[0][1], kind=MatchEvent.Kind.ACCEPTED)
        made.append(task)
    # Events are stamped "now" by auto_now_add; spread them over the tasks' life.
    for task in made:
        MatchEvent.objects.filter(task=task).update(created_at=task.published_at + dt.timedelta(hours=1))
    return [u for u, _q in pros], made
