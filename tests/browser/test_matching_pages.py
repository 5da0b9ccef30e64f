"""Matching pages in a real browser: the customer invites a pro from the task
page; the pro sees the invitation, sets job alerts, adds time off and
imports a calendar. Screenshots at 390 and 1280 px in test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import PASSWORD, ContractorProfileFactory, UserFactory
from tests.matching.ma3_support import open_task

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_load_state("load")


def test_invite_then_the_pro_manages_alerts_time_off_and_calendar(browser, browser_context_args, live_server, tmp_path):
    customer = UserFactory(email="dana@example.com", full_name="Dana Lee")
    bob = ContractorProfileFactory(user__email="bob@example.com", user__full_name="Bob Builder", slug="bob").user
    task = open_task(customer, title="Fix the leaking kitchen tap")
    base = live_server.url

    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, base, customer.email)
    page.goto(f"{base}/tasks/{task.public_id}")
    panel = page.locator("#invite")
    expect(panel.get_by_role("heading", name="Invite pros")).to_be_visible()
    expect(panel.get_by_text("Bob Builder")).to_be_visible()
    shot(page, "matching-invite-panel")
    panel.get_by_role("button", name="Invite Bob").click()
    expect(page.get_by_text("Bob Builder is invited.")).to_be_visible()
    expect(panel.get_by_text("✓ Invited")).to_be_visible()
    context.close()

    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, base, bob.email)
    page.goto(base + "/tasks/jobs")
    page.get_by_role("link", name="Invitations").click()
    expect(page.get_by_text("Invited by Dana Lee")).to_be_visible()
    shot(page, "matching-invitations")

    page.goto(base + "/matching/alerts")
    page.get_by_label("At most this many alerts a day").fill("0")
    page.get_by_role("button", name="Save alert settings").click()
    expect(page.get_by_text("Ensure this value is greater than or equal to 1.")).to_be_visible()
    page.get_by_label("At most this many alerts a day").fill("3")
    page.get_by_label("Quiet from").fill("22:00")
    page.get_by_label("Quiet until").fill("07:00")
    page.get_by_role("button", name="Save alert settings").click()
    expect(page.get_by_text("Alert settings saved.")).to_be_visible()
    shot(page, "matching-alert-settings")

    page.goto(base + "/matching/availability")
    start = (timezone.localtime() + dt.timedelta(days=3)).replace(hour=8, minute=0)
    page.get_by_label("From").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Until").fill((start - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Add time off").click()
    expect(page.get_by_text("The end must be after the start.")).to_be_visible()
    page.get_by_label("Until").fill((start + dt.timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Note (only you see it)").fill("Family wedding")
    page.get_by_role("button", name="Add time off").click()
    expect(page.get_by_text("Time off added.")).to_be_visible()
    expect(page.get_by_text("Family wedding")).to_be_visible()

    bad = tmp_path / "notes.ics"
    bad.write_text("just some notes")
    page.get_by_label("Calendar file (.ics, up to 1 MB)").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("This is not a calendar file (.ics).").first).to_be_visible()
    when = (timezone.now() + dt.timedelta(days=5)).astimezone(dt.UTC)
    good = tmp_path / "work.ics"
    good.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Other job\r\n"
        f"DTSTART:{when:%Y%m%dT%H0000Z}\r\nDTEND:{when + dt.timedelta(hours=2):%Y%m%dT%H0000Z}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    page.get_by_label("Calendar file (.ics, up to 1 MB)").set_input_files(str(good))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 1 busy time.")).to_be_visible()
    feed = page.locator("#feed-url").input_value()
    assert feed.startswith("http://127.0.0.1:8000/calendar/") and feed.endswith(".ics")
    shot(page, "matching-availability")
    context.close()
