"""Matching pages and actions: the customer's Invite pros panel, invitations,
Not for me, alert settings, time off and calendar. Each is the signed-in
user's own; everyone else is refused with nothing changed."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from matching import services
from matching.models import AlertSettings, BusyBlock, CalendarFeed, Invitation, MatchEvent
from tests.factories import UserFactory

from .ma3_support import counts, open_task, pro
from .test_calendar import GOOD, vcal, vevent

pytestmark = pytest.mark.django_db

LA = zoneinfo.ZoneInfo("America/Los_Angeles")


def login(client, user):
    client.force_login(user)
    return client


def task_url(task) -> str:
    return reverse("tasks:detail", args=[task.public_id])


def text(response) -> str:
    return response.content.decode()


# --- the Invite pros panel ----------------------------------------------------------------


def test_customer_sees_ranked_pros_with_reasons_and_invite_buttons(client, customer, contractor):
    task = open_task(customer)
    page = text(login(client, customer).get(task_url(task)))
    assert "Invite pros" in page
    assert f'id="pro-{contractor.public_id}"' in page
    assert "Bob Builder" in page
    assert 'class="reasons"' in page
    assert f'value="{contractor.public_id}"' in page
    assert "Ranked by simple rules" in page


@pytest.mark.parametrize("who", ["outsider", "contractor", "anonymous"])
def test_nobody_else_sees_the_invite_panel(client, customer, contractor, outsider, who):
    task = open_task(customer)
    if who != "anonymous":
        login(client, {"outsider": outsider, "contractor": contractor}[who])
    response = client.get(task_url(task))
    assert response.status_code == 200
    assert "Invite pros" not in text(response)


def test_no_invite_panel_once_booked(client, customer, contractor):
    task = open_task(customer, status="assigned", contractor=contractor, agreed_price_cents=12_000)
    assert "Invite pros" not in text(login(client, customer).get(task_url(task)))


def test_customer_invites_from_the_panel(client, customer, contractor):
    task = open_task(customer)
    login(client, customer)
    response = client.post(reverse("matching:invite", args=[task.public_id]), {"contractor": str(contractor.public_id)})
    assert response.status_code == 302 and response["Location"] == task_url(task) + "#invite"
    assert Invitation.objects.filter(task=task, contractor=contractor, invited_by=customer).count() == 1
    page = text(client.get(task_url(task)))
    assert "Bob Builder is invited." in page
    assert "✓ Invited" in page
    again = client.post(reverse("matching:invite", args=[task.public_id]), {"contractor": str(contractor.public_id)}, follow=True)
    assert "You already invited Bob Builder." in text(again)
    assert Invitation.objects.count() == 1


@pytest.mark.parametrize("who", ["outsider", "contractor"])
def test_others_cannot_invite_on_my_task(client, customer, contractor, outsider, who):
    task = open_task(customer)
    login(client, {"outsider": outsider, "contractor": contractor}[who])
    response = client.post(reverse("matching:invite", args=[task.public_id]), {"contractor": str(contractor.public_id)})
    assert response.status_code == 403
    assert "Only the customer who posted this task can invite pros to it." in text(response)
    assert counts()["Invitation"] == 0 and counts()["MatchEvent"] == 0


def test_invite_refused_for_anonymous_hidden_tasks_and_bad_input(client, customer, contractor, outsider):
    task = open_task(customer)
    url = reverse("matching:invite", args=[task.public_id])
    assert client.post(url, {"contractor": str(contractor.public_id)})["Location"].startswith("/accounts/login/")
    draft = open_task(customer, status="draft", published_at=None)
    login(client, outsider)
    assert client.post(reverse("matching:invite", args=[draft.public_id]), {"contractor": str(contractor.public_id)}).status_code == 404
    login(client, customer)
    assert client.get(url).status_code == 405
    assert "Choose a pro to invite." in text(client.post(url, {"contractor": "not-a-uuid"}, follow=True))
    nobody = "00000000-0000-0000-0000-000000000000"
    assert "That pro is no longer on BittieTasks." in text(client.post(url, {"contractor": nobody}, follow=True))
    assert "Charlie Stranger doesn&#x27;t take Plumbing jobs on BittieTasks." in text(client.post(url, {"contractor": str(outsider.public_id)}, follow=True))
    assert counts()["Invitation"] == 0


# --- the contractor's invitations -----------------------------------------------------------


def test_contractor_sees_and_declines_their_invitations(client, customer, contractor):
    task = open_task(customer, title="Fix the shower valve")
    invitation = services.invite(task, by=customer, contractor=contractor)
    login(client, contractor)
    page = text(client.get(reverse("matching:invitations")))
    assert "Fix the shower valve" in page
    assert "Invited by Dana Lee" in page
    assert "View and make an offer" in page
    assert "1 waiting" in text(client.get(reverse("tasks:my_jobs")))
    response = client.post(reverse("matching:invitation_decline", args=[invitation.public_id]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert "View and make an offer" not in text(client.get(reverse("matching:invitations")))


def test_other_contractor_cannot_see_or_decline_my_invitation(client, customer, contractor):
    task = open_task(customer, title="Fix the shower valve")
    invitation = services.invite(task, by=customer, contractor=contractor)
    login(client, pro("olga@example.com"))
    page = text(client.get(reverse("matching:invitations")))
    assert "Fix the shower valve" not in page
    assert "No invitations yet." in page
    assert client.post(reverse("matching:invitation_decline", args=[invitation.public_id])).status_code == 404
    login(client, customer)
    assert client.post(reverse("matching:invitation_decline", args=[invitation.public_id])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.SENT


@pytest.mark.parametrize(
    "name",
    ["matching:invitations", "matching:alert_settings", "matching:availability"],
)
def test_contractor_pages_refuse_customers_and_anonymous(client, customer, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = login(client, customer).get(reverse(name))
    assert response.status_code == 403
    assert "This page is for contractors" in text(response)
    assert counts() == dict.fromkeys(counts(), 0)


# --- Not for me -------------------------------------------------------------------------------


def test_not_for_me_on_find_work(client, customer, contractor):
    task = open_task(customer, title="Fix the garden hose")
    login(client, contractor)
    page = text(client.get(reverse("tasks:find_work")))
    assert reverse("matching:task_skip", args=[task.public_id]) in page
    assert "Not for me" in page
    response = client.post(reverse("matching:task_skip", args=[task.public_id]), {"next": "/tasks/find?q=hose"})
    assert response.status_code == 302 and response["Location"] == "/tasks/find?q=hose"
    assert MatchEvent.objects.filter(task=task, contractor=contractor, kind="skipped").count() == 1
    # A foreign "next" is ignored.
    other = open_task(customer)
    response = client.post(reverse("matching:task_skip", args=[other.public_id]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("tasks:find_work")


def test_not_for_me_refused_for_others(client, customer, outsider):
    task = open_task(customer)
    url = reverse("matching:task_skip", args=[task.public_id])
    assert client.post(url)["Location"].startswith("/accounts/login/")
    assert login(client, outsider).post(url).status_code == 403
    draft = open_task(customer, status="draft", published_at=None)
    assert login(client, pro("olga@example.com")).post(reverse("matching:task_skip", args=[draft.public_id])).status_code == 404
    assert not MatchEvent.objects.exists()


# --- alert settings -------------------------------------------------------------------------------


def alert_form(**values) -> dict:
    return {"enabled": "on", "daily_cap": "5", "quiet_start": "", "quiet_end": "", "time_zone": "America/Los_Angeles", **values}


def test_alert_settings_page_shows_defaults_and_saves(client, contractor):
    login(client, contractor)
    page = text(client.get(reverse("matching:alert_settings")))
    assert 'name="daily_cap" value="5"' in page
    assert "0 alerts sent to you today." in page
    response = client.post(
        reverse("matching:alert_settings"), alert_form(daily_cap="3", quiet_start="22:00", quiet_end="07:00", time_zone="America/Denver")
    )
    assert response.status_code == 302
    row = AlertSettings.objects.get(user=contractor)
    assert (row.enabled, row.daily_cap, row.quiet_start, row.quiet_end, row.time_zone) == (
        True,
        3,
        dt.time(22),
        dt.time(7),
        "America/Denver",
    )
    client.post(reverse("matching:alert_settings"), alert_form(enabled=""))
    row.refresh_from_db()
    assert row.enabled is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"daily_cap": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"daily_cap": "51"}, "Ensure this value is less than or equal to 50."),
        ({"daily_cap": "lots"}, "Enter a whole number."),
        ({"quiet_start": "22:00"}, "Give both the start and the end of your quiet hours, or neither."),
        ({"quiet_start": "07:00", "quiet_end": "07:00"}, "Quiet hours must end at a different time than they start."),
        ({"quiet_end": "25:00"}, "Enter a valid time."),
        ({"time_zone": "Mars/Olympus"}, "Select a valid choice."),
    ],
)
def test_bad_alert_settings_shown_next_to_the_field(client, contractor, values, message):
    login(client, contractor)
    response = client.post(reverse("matching:alert_settings"), alert_form(**values))
    assert response.status_code == 400
    assert message in text(response)
    assert not AlertSettings.objects.exists()


def test_customer_cannot_post_alert_settings(client, customer):
    assert login(client, customer).post(reverse("matching:alert_settings"), alert_form()).status_code == 403
    assert not AlertSettings.objects.exists()


# --- time off and calendar -------------------------------------------------------------------------


def local(days: int, hour: int) -> dt.datetime:
    day = timezone.now().astimezone(LA).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=LA)


def field(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


def test_add_change_and_remove_time_off(client, contractor):
    login(client, contractor)
    response = client.post(
        reverse("matching:availability"), {"starts_at": field(local(3, 8)), "ends_at": field(local(5, 18)), "summary": "Fishing trip"}
    )
    assert response.status_code == 302
    block = BusyBlock.objects.get(user=contractor)
    # Read in the contractor's time zone (Los Angeles by default).
    assert (block.source, block.starts_at, block.ends_at, block.summary) == ("time_off", local(3, 8), local(5, 18), "Fishing trip")
    page = text(client.get(reverse("matching:availability")))
    assert "Fishing trip" in page and "Times are in America/Los_Angeles." in page

    edit = reverse("matching:time_off_edit", args=[block.pk])
    assert f'value="{field(local(3, 8))}"' in text(client.get(edit))
    assert client.post(edit, {"starts_at": field(local(4, 8)), "ends_at": field(local(4, 12)), "summary": ""}).status_code == 302
    block.refresh_from_db()
    assert (block.starts_at, block.ends_at) == (local(4, 8), local(4, 12))

    assert client.post(reverse("matching:time_off_delete", args=[block.pk])).status_code == 302
    assert not BusyBlock.objects.exists()


def test_bad_time_off_shows_the_error_and_writes_nothing(client, contractor):
    login(client, contractor)
    response = client.post(reverse("matching:availability"), {"starts_at": field(local(5, 8)), "ends_at": field(local(4, 8))})
    assert response.status_code == 400
    assert "The end must be after the start." in text(response)
    response = client.post(reverse("matching:availability"), {"starts_at": "soon", "ends_at": ""})
    assert response.status_code == 400
    assert "Enter a valid date/time." in text(response)
    assert not BusyBlock.objects.exists()


def test_other_contractor_cannot_see_change_or_remove_my_time_off(client, contractor):
    block = services.time_off_create(user=contractor, starts_at=local(3, 8), ends_at=local(3, 12), summary="Dentist")
    olga = pro("olga@example.com")
    login(client, olga)
    assert "Dentist" not in text(client.get(reverse("matching:availability")))
    edit = reverse("matching:time_off_edit", args=[block.pk])
    assert client.get(edit).status_code == 404
    assert client.post(edit, {"starts_at": field(local(6, 8)), "ends_at": field(local(6, 9))}).status_code == 404
    assert client.post(reverse("matching:time_off_delete", args=[block.pk])).status_code == 404
    block.refresh_from_db()
    assert (block.starts_at, block.summary) == (local(3, 8), "Dentist")
    login(client, UserFactory(email="cal@example.com"))
    assert client.post(reverse("matching:time_off_delete", args=[block.pk])).status_code == 404
    assert BusyBlock.objects.filter(pk=block.pk).exists()


def test_calendar_address_shown_reset_and_only_mine(client, contractor):
    login(client, contractor)
    page = text(client.get(reverse("matching:availability")))
    secret = CalendarFeed.objects.get(user=contractor).secret
    assert f"http://127.0.0.1:8000/calendar/{secret}.ics" in page
    assert f"webcal://127.0.0.1:8000/calendar/{secret}.ics" in page
    assert client.get(f"/calendar/{secret}.ics").status_code == 200

    assert client.post(reverse("matching:calendar_reset")).status_code == 302
    new = CalendarFeed.objects.get(user=contractor).secret
    assert new != secret
    assert client.get(f"/calendar/{secret}.ics").status_code == 404
    assert client.get(f"/calendar/{new}.ics").status_code == 200

    olga = pro("olga@example.com")
    olga_page = text(login(client, olga).get(reverse("matching:availability")))
    assert new not in olga_page
    client.post(reverse("matching:calendar_reset"))  # resets Olga's own, not Bob's
    assert CalendarFeed.objects.get(user=contractor).secret == new


def test_calendar_reset_and_import_refuse_customers_and_anonymous(client, customer):
    for name in ("matching:calendar_reset", "matching:calendar_import", "matching:calendar_import_clear"):
        assert client.post(reverse(name))["Location"].startswith("/accounts/login/")
    login(client, customer)
    assert client.post(reverse("matching:calendar_reset")).status_code == 403
    upload = SimpleUploadedFile("cal.ics", GOOD, content_type="text/calendar")
    assert client.post(reverse("matching:calendar_import"), {"file": upload}).status_code == 403
    assert client.post(reverse("matching:calendar_import_clear")).status_code == 403
    assert not CalendarFeed.objects.exists() and not BusyBlock.objects.exists()


def future_event_file() -> bytes:
    start = (timezone.now() + dt.timedelta(days=3)).astimezone(dt.UTC).strftime("%Y%m%dT%H0000Z")
    end = (timezone.now() + dt.timedelta(days=3, hours=2)).astimezone(dt.UTC).strftime("%Y%m%dT%H0000Z")
    return vcal(vevent("e1", "SUMMARY:Other job", f"DTSTART:{start}", f"DTEND:{end}"))


def test_import_busy_times_from_the_page(client, contractor):
    login(client, contractor)
    upload = SimpleUploadedFile("work.ics", future_event_file(), content_type="text/calendar")
    response = client.post(reverse("matching:calendar_import"), {"file": upload}, follow=True)
    assert "Imported 1 busy time." in text(response)
    assert "1 imported busy time" in text(response)
    assert list(BusyBlock.objects.filter(user=contractor).values_list("source", "summary")) == [("imported", "Other job")]
    client.post(reverse("matching:calendar_import_clear"))
    assert not BusyBlock.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a not a calendar", "This is not a calendar file (.ics)."),
        (vcal(), "This calendar has no events to import."),
        (vcal(vevent("far", "SUMMARY:Far", "DTSTART:20990310T170000Z", "DTEND:20990310T180000Z")), "is more than two years away"),
        (b"BEGIN:VCALENDAR\r\n" + b"X" * (1024 * 1024 + 10), "The file is larger than 1 MB."),
    ],
)
def test_bad_upload_refused_on_the_page_with_nothing_written(client, contractor, data, message):
    login(client, contractor)
    client.post(reverse("matching:calendar_import"), {"file": SimpleUploadedFile("work.ics", future_event_file())})
    before = list(BusyBlock.objects.values_list("pk", flat=True))
    response = client.post(reverse("matching:calendar_import"), {"file": SimpleUploadedFile("bad.ics", data)})
    assert response.status_code == 400
    assert message in text(response)
    assert list(BusyBlock.objects.values_list("pk", flat=True)) == before


def test_import_without_a_file_says_so(client, contractor):
    response = login(client, contractor).post(reverse("matching:calendar_import"), {})
    assert response.status_code == 400
    assert "This field is required." in text(response)
    assert not BusyBlock.objects.exists()


def test_my_jobs_links_to_alerts_invitations_and_calendar(client, contractor, customer):
    page = text(login(client, contractor).get(reverse("tasks:my_jobs")))
    for name in ("matching:invitations", "matching:alert_settings", "matching:availability"):
        assert reverse(name) in page
    assert reverse("matching:invitations") not in text(login(client, customer).get(reverse("tasks:my_jobs")))
