"""The private ICS feed of a contractor's jobs and the .ics import of busy times."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import icalendar
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.errors import ApplicationError, PermissionDenied
from matching import calendar as ics
from matching import services
from matching.models import BusyBlock, CalendarFeed
from tasks.models import Offer
from tests.tasks.factories import OfferFactory

from .ma3_support import booked_task, open_task, pro, window

pytestmark = pytest.mark.django_db

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
NY = zoneinfo.ZoneInfo("America/New_York")
UTC = dt.UTC


def feed_url(feed: CalendarFeed) -> str:
    return reverse("matching:calendar_feed", args=[feed.secret])


def parse(response) -> icalendar.Calendar:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


# --- the feed --------------------------------------------------------------------------


def test_feed_lists_the_contractors_current_jobs(client, customer, contractor):
    start = (timezone.now() + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    assigned = booked_task(customer, contractor, title="Replace the water heater", **window(start, hours=3))
    working = booked_task(customer, contractor, status="in_progress", title="Unblock the drain", budget_type="hourly", estimated_hours=2, budget_cents=6_000)
    OfferFactory(task=working, contractor=contractor, status=Offer.Status.ACCEPTED, proposed_start=start + dt.timedelta(days=1))
    sent_in = booked_task(customer, contractor, status="submitted", title="Fix the tap")
    # Not in the feed: finished, cancelled, open, someone else's.
    booked_task(customer, contractor, status="completed", title="Old job")
    open_task(customer, title="Open job")
    booked_task(customer, pro("olga@example.com"), title="Olga's job")

    feed = services.calendar_feed_get_or_create(user=contractor)
    cal = parse(client.get(feed_url(feed)))
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {f"task-{t.public_id}@bittietasks" for t in (assigned, working, sent_in)}

    heater = events[f"task-{assigned.public_id}@bittietasks"]
    assert str(heater["SUMMARY"]) == "Replace the water heater"
    assert heater["DTSTART"].dt == start and heater["DTEND"].dt == start + dt.timedelta(hours=3)
    # It is their job: the street address and the city.
    assert str(heater["LOCATION"]) == "3250 24th St, San Francisco, CA, 94110"
    assert str(heater["URL"]) == f"http://127.0.0.1:8000/tasks/{assigned.public_id}"

    drain = events[f"task-{working.public_id}@bittietasks"]
    assert drain["DTSTART"].dt == start + dt.timedelta(days=1)
    assert drain["DTEND"].dt == start + dt.timedelta(days=1, hours=2)

    # Flexible with no proposed start: an all-day event on the deadline.
    tap = events[f"task-{sent_in.public_id}@bittietasks"]
    assert tap["DTSTART"].dt == sent_in.deadline.astimezone(LA).date()


def test_feed_with_no_jobs_is_an_empty_calendar(client, contractor):
    feed = services.calendar_feed_get_or_create(user=contractor)
    cal = parse(client.get(feed_url(feed)))
    assert cal.walk("VEVENT") == []
    assert str(cal["X-WR-CALNAME"]) == "BittieTasks jobs"


def test_wrong_secret_is_404(client, contractor):
    services.calendar_feed_get_or_create(user=contractor)
    assert client.get(reverse("matching:calendar_feed", args=["not-the-secret"])).status_code == 404
    assert client.get("/calendar/.ics").status_code == 404


def test_reset_makes_a_new_address_and_the_old_one_stops_working(client, contractor):
    old = services.calendar_feed_get_or_create(user=contractor).secret
    assert services.calendar_feed_get_or_create(user=contractor).secret == old  # stable until reset
    new = services.calendar_feed_reset(user=contractor).secret
    assert new != old and len(new) >= 40
    assert client.get(reverse("matching:calendar_feed", args=[old])).status_code == 404
    assert client.get(reverse("matching:calendar_feed", args=[new])).status_code == 200


def test_feed_stops_when_the_account_is_closed(client, contractor):
    feed = services.calendar_feed_get_or_create(user=contractor)
    contractor.is_active = False
    contractor.save(update_fields=["is_active"])
    assert client.get(feed_url(feed)).status_code == 404


def test_only_contractors_get_a_feed(customer):
    with pytest.raises(PermissionDenied):
        services.calendar_feed_get_or_create(user=customer)
    with pytest.raises(PermissionDenied):
        services.calendar_feed_reset(user=customer)
    assert not CalendarFeed.objects.exists()


# --- importing busy times ------------------------------------------------------------------

NOW = dt.datetime(2030, 3, 5, 12, 0, tzinfo=UTC)


def vcal(*events: str) -> bytes:
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN", *events, "END:VCALENDAR", ""])
    return body.encode()


def vevent(uid: str, *lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20300101T000000Z", *lines, "END:VEVENT"])


GOOD = vcal(
    vevent("utc", "SUMMARY:Dentist", "DTSTART:20300310T170000Z", "DTEND:20300310T180000Z"),
    vevent("ny", "SUMMARY:Call", "DTSTART;TZID=America/New_York:20300311T090000", "DTEND;TZID=America/New_York:20300311T100000"),
    vevent("allday", "SUMMARY:Holiday", "DTSTART;VALUE=DATE:20300312", "DTEND;VALUE=DATE:20300314"),
    vevent("floating", "SUMMARY:Gym", "DTSTART:20300315T070000", "DURATION:PT90M"),
    vevent("cancelled", "SUMMARY:Off", "STATUS:CANCELLED", "DTSTART:20300316T170000Z", "DTEND:20300316T180000Z"),
    vevent("free", "SUMMARY:Maybe", "TRANSP:TRANSPARENT", "DTSTART:20300317T170000Z", "DTEND:20300317T180000Z"),
    vevent("past", "SUMMARY:Last year", "DTSTART:20290101T170000Z", "DTEND:20290101T180000Z"),
)


def upload(data: bytes, name: str = "calendar.ics") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/calendar")


def imported(user) -> list[tuple]:
    return list(
        BusyBlock.objects.filter(user=user, source="imported").order_by("starts_at").values_list("import_uid", "starts_at", "ends_at", "summary")
    )


def test_import_reads_busy_events_in_their_time_zones(contractor):
    blocks = services.ics_import(user=contractor, upload=upload(GOOD), now=NOW)
    assert len(blocks) == 4
    assert imported(contractor) == [
        ("utc", dt.datetime(2030, 3, 10, 17, tzinfo=UTC), dt.datetime(2030, 3, 10, 18, tzinfo=UTC), "Dentist"),
        ("ny", dt.datetime(2030, 3, 11, 9, tzinfo=NY), dt.datetime(2030, 3, 11, 10, tzinfo=NY), "Call"),
        # All-day and floating times are the contractor's local time (Los Angeles by default).
        ("allday", dt.datetime(2030, 3, 12, tzinfo=LA), dt.datetime(2030, 3, 14, tzinfo=LA), "Holiday"),
        ("floating", dt.datetime(2030, 3, 15, 7, tzinfo=LA), dt.datetime(2030, 3, 15, 8, 30, tzinfo=LA), "Gym"),
    ]


def test_import_replaces_the_previous_import_and_keeps_time_off(contractor):
    services.ics_import(user=contractor, upload=upload(GOOD), now=NOW)
    time_off = BusyBlock.objects.create(user=contractor, source="time_off", starts_at=NOW, ends_at=NOW + dt.timedelta(hours=1))
    other = pro("olga@example.com")
    services.ics_import(user=other, upload=upload(GOOD), now=NOW)
    services.ics_import(
        user=contractor,
        upload=upload(vcal(vevent("only", "SUMMARY:Only", "DTSTART:20300401T170000Z", "DTEND:20300401T180000Z"))),
        now=NOW,
    )
    assert [row[0] for row in imported(contractor)] == ["only"]
    assert BusyBlock.objects.filter(pk=time_off.pk).exists()
    assert len(imported(other)) == 4


TOO_BIG = vcal(vevent("big", "DTSTART:20300310T170000Z", "DTEND:20300310T180000Z", "DESCRIPTION:" + "x" * (1024 * 1024)))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "ics_invalid"),
        (b"just some notes, not a calendar", "ics_invalid"),
        (b"", "ics_empty"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n", "ics_invalid"),
        (vcal("BEGIN:VTODO\r\nUID:t\r\nSUMMARY:Buy pipes\r\nEND:VTODO"), "ics_no_events"),
        (TOO_BIG, "ics_too_large"),
        (vcal(vevent("far", "SUMMARY:Far", "DTSTART:20330310T170000Z", "DTEND:20330310T180000Z")), "ics_too_far"),
        (vcal(vevent("back", "SUMMARY:Back", "DTSTART:20300310T170000Z", "DTEND:20300310T160000Z")), "ics_bad_event"),
        (vcal(vevent("nostart", "SUMMARY:No start", "DTEND:20300310T160000Z")), "ics_bad_event"),
        (
            vcal(
                vevent("c", "STATUS:CANCELLED", "DTSTART:20300310T170000Z", "DTEND:20300310T180000Z"),
                vevent("p", "DTSTART:20290310T170000Z", "DTEND:20290310T180000Z"),
            ),
            "ics_nothing_busy",
        ),
    ],
)
def test_bad_files_are_refused_with_nothing_written(contractor, data, code):
    services.ics_import(user=contractor, upload=upload(GOOD), now=NOW)
    before = imported(contractor)
    with pytest.raises(ApplicationError) as exc:
        services.ics_import(user=contractor, upload=upload(data), now=NOW)
    assert exc.value.code == code
    assert exc.value.fields["file"] == [exc.value.message]
    assert imported(contractor) == before


def test_missing_file_is_refused(contractor):
    with pytest.raises(ApplicationError) as exc:
        services.ics_import(user=contractor, upload=None, now=NOW)
    assert exc.value.code == "ics_missing"
    assert not BusyBlock.objects.exists()


def test_parse_messages_say_what_is_wrong():
    far = vcal(vevent("far", "SUMMARY:Conference", "DTSTART:20330310T170000Z", "DTEND:20330310T180000Z"))
    with pytest.raises(ApplicationError) as exc:
        ics.parse_busy_times(far, tz=LA, now=NOW)
    assert exc.value.message == "“Conference” is more than two years away (2033-03-10). Check the dates and export again."


def test_customers_cannot_import(customer):
    with pytest.raises(PermissionDenied):
        services.ics_import(user=customer, upload=upload(GOOD), now=NOW)
    assert not BusyBlock.objects.exists()


def test_clear_removes_only_imports(contractor):
    services.ics_import(user=contractor, upload=upload(GOOD), now=NOW)
    BusyBlock.objects.create(user=contractor, source="time_off", starts_at=NOW, ends_at=NOW + dt.timedelta(hours=1))
    assert services.ics_import_clear(user=contractor) == 4
    assert list(BusyBlock.objects.values_list("source", flat=True)) == ["time_off"]
