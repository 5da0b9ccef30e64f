"""Helpers for the matching product tests (test_services, test_alerts,
test_calendar, test_pages)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from matching.models import AlertLog, AlertSettings, BusyBlock, CalendarFeed, Invitation, MatchEvent, Preference
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory
from tests.tasks.factories import TaskFactory

MODELS = (MatchEvent, Invitation, AlertLog, AlertSettings, Preference, BusyBlock, CalendarFeed)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def electrical():
    return CategoryFactory(name="Electrical", slug="electrical")


def pro(email: str, **profile):
    """Another onboarded plumber in the Mission (near every factory task)."""
    return ContractorProfileFactory(user__email=email, user__full_name=email.split("@")[0].title(), **profile).user


def open_task(customer, **kw):
    return TaskFactory(customer=customer, category=plumbing(), **kw)


def booked_task(customer, contractor, status="assigned", **kw):
    """A task booked to ``contractor`` (rows built directly, as the tasks' factory does)."""
    now = timezone.now()
    values = {
        "customer": customer,
        "contractor": contractor,
        "category": plumbing(),
        "status": status,
        "agreed_price_cents": 12_000,
        "assigned_at": now,
    }
    if status in ("in_progress", "submitted", "completed"):
        values["started_at"] = now
    if status in ("submitted", "completed"):
        values["submitted_at"] = now
    if status == "completed":
        values["completed_at"] = now
    values.update(kw)
    return TaskFactory(**values)


def window(start: dt.datetime, hours: int = 3) -> dict:
    return {"schedule_type": "window", "window_start": start, "window_end": start + dt.timedelta(hours=hours), "deadline": None}


def customer_user(email: str):
    return UserFactory(email=email)


def pref(user, *, contractor=None, category=None) -> float | None:
    row = Preference.objects.filter(user=user, contractor=contractor, category=category).first()
    return None if row is None else round(row.weight, 4)
