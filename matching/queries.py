"""Reads for the product side of matching: learned preferences, busy time,
invitations, alert settings and time zones.

Nothing here writes. ``preferences_for`` and ``busy_intervals`` are what the
ranking features (``matching/features.py``) read; they import this module,
which imports only models, so there is no cycle with ``matching.services``.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _

from core.errors import NotFound
from tasks.models import Offer, Task

from .models import AlertSettings, BusyBlock, CalendarFeed, Invitation, Preference

if TYPE_CHECKING:
    from accounts.models import User

S = Task.Status

# A booked job blocks the contractor's time from assignment until the work is
# sent in (after that the customer checks it; the contractor is free again).
BOOKED_STATUSES = frozenset({S.ASSIGNED, S.IN_PROGRESS})
# Jobs in the calendar feed: theirs and not finished.
FEED_STATUSES = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED})
# A flexible-schedule job has no window; with a proposed start it blocks the
# estimated hours from there (this long when the task has no estimate).
DEFAULT_JOB_LENGTH = dt.timedelta(hours=2)


# --- time zones ---------------------------------------------------------------


def valid_time_zone(name: str) -> bool:
    if not name or "/" not in name and name != "UTC":
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def time_zone_for(user: User) -> zoneinfo.ZoneInfo:
    """The contractor's own time zone (set on their alert settings), else the site's."""
    name = AlertSettings.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
    if name and valid_time_zone(name):
        return zoneinfo.ZoneInfo(name)
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


# --- alert settings -----------------------------------------------------------


def alert_settings_for(user: User) -> AlertSettings:
    """The saved settings, or an unsaved row with the defaults (nothing written)."""
    found = AlertSettings.objects.filter(user_id=user.pk).first()
    return found or AlertSettings(user=user, time_zone=settings.TIME_ZONE)


# --- preferences --------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """What a user has leaned towards: contractors (a customer's) and trades
    (a contractor's), as weights around 0 (positive = prefers)."""

    contractors: dict[int, float] = field(default_factory=dict)
    categories: dict[int, float] = field(default_factory=dict)

    def for_contractor(self, contractor_id: int) -> float:
        return self.contractors.get(contractor_id, 0.0)

    def for_category(self, category_id: int) -> float:
        return self.categories.get(category_id, 0.0)


def preferences_for(user: User | int) -> Preferences:
    """One query: ``user``'s learned weights by contractor id and by category id."""
    user_id = user if isinstance(user, int) else user.pk
    contractors: dict[int, float] = {}
    categories: dict[int, float] = {}
    for kind, contractor_id, category_id, weight in Preference.objects.filter(user_id=user_id).values_list(
        "kind", "contractor_id", "category_id", "weight"
    ):
        if kind == Preference.Kind.CONTRACTOR:
            contractors[contractor_id] = weight
        else:
            categories[category_id] = weight
    return Preferences(contractors=contractors, categories=categories)


def preferences_for_many(user_ids: list[int]) -> dict[int, Preferences]:
    """``preferences_for`` for many users in one query (batched features)."""
    out: dict[int, dict[str, dict[int, float]]] = {uid: {"c": {}, "k": {}} for uid in user_ids}
    rows = Preference.objects.filter(user_id__in=user_ids).values_list("user_id", "kind", "contractor_id", "category_id", "weight")
    for user_id, kind, contractor_id, category_id, weight in rows:
        if kind == Preference.Kind.CONTRACTOR:
            out[user_id]["c"][contractor_id] = weight
        else:
            out[user_id]["k"][category_id] = weight
    return {uid: Preferences(contractors=v["c"], categories=v["k"]) for uid, v in out.items()}


# --- busy time ----------------------------------------------------------------


def job_window(task: Task, proposed_start: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime] | None:
    """When a booked job happens: its window, or (flexible jobs) the accepted
    offer's proposed start plus the estimated hours. None when unknown."""
    if task.schedule_type == Task.ScheduleType.WINDOW and task.window_start and task.window_end:
        return task.window_start, task.window_end
    if proposed_start is not None:
        hours = dt.timedelta(hours=task.estimated_hours) if task.estimated_hours else DEFAULT_JOB_LENGTH
        return proposed_start, proposed_start + hours
    return None


def accepted_starts(task_ids: list[int]) -> dict[int, dt.datetime]:
    return dict(
        Offer.objects.filter(task_id__in=task_ids, status=Offer.Status.ACCEPTED, proposed_start__isnull=False).values_list(
            "task_id", "proposed_start"
        )
    )


def _merge(intervals: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def busy_intervals(user: User | int, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The contractor's busy time overlapping ``[start, end)``, merged and
    sorted: their time off, imported calendar busy times, and the jobs booked
    to them (assigned or in progress). Intervals are not clipped to the range.
    Two queries."""
    user_id = user if isinstance(user, int) else user.pk
    intervals = list(
        BusyBlock.objects.filter(user_id=user_id, starts_at__lt=end, ends_at__gt=start).values_list("starts_at", "ends_at")
    )
    jobs = list(
        Task.objects.filter(contractor_id=user_id, status__in=BOOKED_STATUSES)
        .filter(Q(schedule_type=Task.ScheduleType.WINDOW, window_start__lt=end, window_end__gt=start) | Q(schedule_type=Task.ScheduleType.FLEXIBLE))
        .only("pk", "schedule_type", "window_start", "window_end", "estimated_hours")
    )
    flexible = [t.pk for t in jobs if t.schedule_type == Task.ScheduleType.FLEXIBLE]
    starts = accepted_starts(flexible) if flexible else {}
    for task in jobs:
        window = job_window(task, starts.get(task.pk))
        if window and window[0] < end and window[1] > start:
            intervals.append(window)
    return _merge(intervals)


def time_off_for(user: User) -> list[BusyBlock]:
    return list(BusyBlock.objects.filter(user=user, source=BusyBlock.Source.TIME_OFF).order_by("starts_at"))


def imported_for(user: User) -> list[BusyBlock]:
    return list(BusyBlock.objects.filter(user=user, source=BusyBlock.Source.IMPORTED).order_by("starts_at"))


def time_off_get(user: User, pk: Any) -> BusyBlock:
    """The user's own time-off block, or NotFound (also for anyone else's)."""
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise NotFound(_("No such time off.")) from None
    block = BusyBlock.objects.filter(pk=key, user_id=user.pk, source=BusyBlock.Source.TIME_OFF).first()
    if block is None:
        raise NotFound(_("No such time off."))
    return block


# --- calendar feed ------------------------------------------------------------


def feed_owner(secret: str) -> Any:
    """The active contractor whose feed has this secret, or None."""
    if not secret or len(secret) > 64:
        return None
    feed = CalendarFeed.objects.select_related("user").filter(secret=secret).first()
    if feed is None or not feed.user.is_active or not feed.user.is_contractor:
        return None
    return feed.user


def feed_tasks(user: User) -> list[Task]:
    return list(
        Task.objects.filter(contractor_id=user.pk, status__in=FEED_STATUSES).select_related("category").order_by("pk")
    )


# --- invitations --------------------------------------------------------------


def invitations_for_contractor(user: User) -> list[Invitation]:
    return list(
        Invitation.objects.filter(contractor=user)
        .select_related("task", "task__category", "invited_by")
        .order_by("-created_at", "-pk")
    )


def open_invitation_count(user: User) -> int:
    return Invitation.objects.filter(contractor=user, status=Invitation.Status.SENT, task__status=S.OPEN).count()


def invitation_get_for_contractor(user: User, public_id: Any) -> Invitation:
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(_("No such invitation.")) from None
    invitation = Invitation.objects.select_related("task").filter(public_id=key, contractor_id=user.pk).first()
    if invitation is None:
        raise NotFound(_("No such invitation."))
    return invitation


def invited_ids(task: Task) -> dict[int, str]:
    """contractor id -> invitation status, for the customer's invite panel."""
    return dict(Invitation.objects.filter(task=task).values_list("contractor_id", "status"))
