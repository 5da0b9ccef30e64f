"""ICS in and out, with the ``icalendar`` library.

- ``feed_ics(user)``: the contractor's private feed of their jobs (assigned,
  in progress, proof sent), for Google Calendar or Outlook to subscribe to.
- ``parse_busy_times(data, tz=..., now=...)``: the busy times in an uploaded
  calendar file, or an ``ApplicationError`` saying what is wrong with it.
  Parsing writes nothing; ``matching.services.ics_import`` stores the result.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING

import icalendar
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from tasks.selectors import task_location_for

from . import queries

if TYPE_CHECKING:
    from accounts.models import User

MAX_UPLOAD_BYTES = 1024 * 1024
# Busy times further out than this are a wrong date or a runaway export.
HORIZON = dt.timedelta(days=730)
MAX_EVENTS = 2000
PRODID = "-//BittieTasks//Jobs//EN"


# --- the feed -------------------------------------------------------------------


def _task_url(task) -> str:
    return settings.SITE_URL + reverse("tasks:detail", args=[task.public_id])


def feed_ics(user: User, *, now: dt.datetime | None = None) -> bytes:
    """The contractor's jobs as a VCALENDAR. A job without a known time (a
    flexible job with no proposed start) is an all-day event on its deadline.
    The address is shown as the task page shows it to them (they are booked,
    so they see it); the city always."""
    now = now or timezone.now()
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", _("BittieTasks jobs"))
    tasks = queries.feed_tasks(user)
    starts = queries.accepted_starts([t.pk for t in tasks])
    site_tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    for task in tasks:
        event = icalendar.Event()
        event.add("uid", f"task-{task.public_id}@bittietasks")
        event.add("dtstamp", now)
        event.add("summary", task.title)
        window = queries.job_window(task, starts.get(task.pk))
        if window is not None:
            event.add("dtstart", window[0])
            event.add("dtend", window[1])
        else:
            day = (task.deadline or now).astimezone(site_tz).date()
            event.add("dtstart", day)
            event.add("dtend", day + dt.timedelta(days=1))
        place = task_location_for(task, user)
        parts = [place["address"], place["city"], place["state"], place["postal_code"]]
        event.add("location", ", ".join(p for p in parts if p))
        url = _task_url(task)
        event.add("url", url)
        event.add("description", f"{task.get_status_display()} · {task.category.name}\n{url}")
        event.add("status", "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()


# --- importing busy times ----------------------------------------------------------


@dataclass(frozen=True)
class BusyTime:
    starts_at: dt.datetime
    ends_at: dt.datetime
    summary: str
    uid: str


def _refuse(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code, fields={"file": [message]})


def _aware(value, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A DTSTART/DTEND value as an aware datetime: all-day dates start at
    local midnight, floating (naive) times are the contractor's local time."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value
    return dt.datetime.combine(value, dt.time(0), tzinfo=tz)


def parse_busy_times(
    data: bytes, *, tz: zoneinfo.ZoneInfo, now: dt.datetime | None = None
) -> list[BusyTime]:
    """The busy times in an .ics file's VEVENTs.

    Skipped (not errors): cancelled and transparent ("free") events, events
    already over, zero-length events. Refused with a clear message: more
    than 1 MB, not a calendar, no events at all, nothing busy left to import,
    an event that ends before it starts or more than two years away, or too
    many events. Recurring events count once (their first occurrence)."""
    now = now or timezone.now()
    if len(data) > MAX_UPLOAD_BYTES:
        raise _refuse(_("The file is larger than 1 MB. Export a shorter range of your calendar."), "ics_too_large")
    if not data.strip():
        raise _refuse(_("The file is empty. Choose an .ics calendar file."), "ics_empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(_("This is not a calendar file (.ics). Export your calendar as iCalendar and try again."), "ics_invalid") from None
    if "BEGIN:VCALENDAR" not in text.upper():
        raise _refuse(_("This is not a calendar file (.ics). Export your calendar as iCalendar and try again."), "ics_invalid")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception:  # noqa: BLE001 - icalendar raises ValueError and friends for broken files
        raise _refuse(_("This calendar file could not be read. Export it again and retry."), "ics_invalid") from None

    events = list(calendar.walk("VEVENT"))
    if not events:
        raise _refuse(_("This calendar has no events to import."), "ics_no_events")
    if len(events) > MAX_EVENTS:
        raise _refuse(
            _("This calendar has more than %(n)d events. Export only the coming months.") % {"n": MAX_EVENTS},
            "ics_too_many_events",
        )
    horizon = now + HORIZON
    found: list[BusyTime] = []
    for event in events:
        summary = str(event.get("SUMMARY", "") or "")[:200]
        label = summary or _("an event without a title")
        if str(event.get("STATUS", "")).upper() == "CANCELLED" or str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
            continue
        try:
            start_prop = event.get("DTSTART")
            if start_prop is None:
                raise ValueError("no DTSTART")
            start_value = start_prop.dt
            end_prop = event.get("DTEND")
            if end_prop is not None:
                end_value = end_prop.dt
            elif event.get("DURATION") is not None:
                end_value = start_value + event.get("DURATION").dt
            elif isinstance(start_value, dt.datetime):
                end_value = start_value  # a point in time: nothing to block
            else:
                end_value = start_value + dt.timedelta(days=1)  # RFC 5545: an all-day event lasts the day
            starts_at, ends_at = _aware(start_value, tz), _aware(end_value, tz)
        except (ValueError, TypeError, AttributeError):
            raise _refuse(
                _("“%(event)s” has no usable start or end time.") % {"event": label}, "ics_bad_event"
            ) from None
        if ends_at < starts_at:
            raise _refuse(_("“%(event)s” ends before it starts.") % {"event": label}, "ics_bad_event")
        if starts_at > horizon:
            raise _refuse(
                _("“%(event)s” is more than two years away (%(date)s). Check the dates and export again.")
                % {"event": label, "date": starts_at.date().isoformat()},
                "ics_too_far",
            )
        if ends_at == starts_at or ends_at <= now:
            continue
        found.append(
            BusyTime(
                starts_at=starts_at.astimezone(dt.UTC),
                ends_at=ends_at.astimezone(dt.UTC),
                summary=summary,
                uid=str(event.get("UID", "") or "")[:255],
            )
        )
    if not found:
        raise _refuse(
            _("No busy times to import: the events are all past, cancelled or marked free."), "ics_nothing_busy"
        )
    return found
