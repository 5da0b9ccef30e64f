"""A newcomer signs up as a contractor, verifies by email, goes live, and sees
their public profile: in real Chromium, with a screenshot of every page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from PIL import Image
from playwright.sync_api import expect

from accounts import services
from accounts.models import ContractorProfile, User
from tests.accounts.photos import png_bytes
from tests.browser.conftest import shot
from tests.factories import PASSWORD, CategoryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)")
# Valencia St at 20th, inside ZIP 94110.
MISSION = {"latitude": 37.7590, "longitude": -122.4215}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "geolocation": MISSION, "permissions": ["geolocation"]}


def test_contractor_signs_up_verifies_onboards_and_sees_public_profile(page, live_server):
    # live_server needs a transactional database, so trades are made here.
    CategoryFactory(name="Plumbing", slug="plumbing", sort_order=1)
    CategoryFactory(name="Electrical", slug="electrical", sort_order=2)
    CategoryFactory(name="Painting", slug="painting", sort_order=3)
    page.set_default_timeout(15_000)

    page.goto(live_server.url + "/")
    shot(page, "01-home")
    page.get_by_role("link", name="I want to find work").click()
    page.wait_for_url("**/accounts/signup/?role=contractor")

    expect(page.get_by_label("I want to find work (contractor)")).to_be_checked()
    page.get_by_label("Full name").fill("Nia Newcomer")
    page.get_by_label("Email").fill("nia@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    shot(page, "02-signup")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/accounts/confirm-email/")
    expect(page.get_by_role("heading", name="Verify your email address")).to_be_visible()
    shot(page, "03-verification-sent")

    assert len(mail.outbox) == 1
    path = CONFIRM_LINK.search(mail.outbox[0].body).group(1)
    page.goto(live_server.url + path)
    expect(page.get_by_role("heading", name="Confirm Email Address")).to_be_visible()
    shot(page, "04-confirm-email")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/onboarding/")
    expect(page.get_by_role("heading", name="Set up your work profile")).to_be_visible()
    user = User.objects.get(email="nia@example.com")
    assert user.email_verified_at is not None
    assert user.is_contractor is True
    shot(page, "05-onboarding")

    page.get_by_label("Plumbing").check()
    page.get_by_label("Electrical").check()
    page.get_by_label("About you").fill("Licensed plumber, ten years in the Mission. Small electrical jobs too.")
    page.get_by_label("Hourly rate (US dollars)").fill("85.50")
    page.get_by_label("Where you work from: ZIP code or address").fill("94110")
    page.get_by_label("How far you travel (km)").fill("20")
    page.get_by_role("button", name="Use my location").click()
    expect(page.locator("#location-status")).to_contain_text("Got it")
    for day, start, end in (("Monday", "08:00", "17:00"), ("Wednesday", "09:00", "12:30")):
        page.get_by_label(day, exact=True).check()
        page.get_by_label(f"{day} from").fill(start)
        page.get_by_label(f"{day} until").fill(end)
    page.get_by_label("Profile photo").set_input_files(
        files=[{"name": "nia.png", "mimeType": "image/png", "buffer": png_bytes(size=(300, 300), colour=(40, 120, 90))}]
    )
    shot(page, "06-onboarding-filled")
    page.get_by_role("button", name="Go live").click()

    profile = ContractorProfile.objects.get(user=user)
    page.wait_for_url(f"**/pros/{profile.slug}/")
    expect(page.get_by_role("heading", name="Nia Newcomer")).to_be_visible()
    expect(page.get_by_text("You're live!")).to_be_visible()
    body = page.locator("main")
    expect(body).to_contain_text("$85.50/hour")
    expect(body).to_contain_text("San Francisco, CA")
    expect(body).to_contain_text("Works within 20 km of San Francisco.")
    expect(body).to_contain_text("Plumbing")
    expect(body).to_contain_text("Electrical")
    expect(body).to_contain_text("Monday08:00–17:00")
    expect(body).to_contain_text("Wednesday09:00–12:30")
    expect(body).to_contain_text("Email verified")
    photo = page.locator("img.avatar")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 300
    shot(page, "07-public-profile")

    profile.refresh_from_db()
    assert profile.onboarded_at is not None
    assert profile.hourly_rate_cents == 8550
    assert sorted(profile.trades.values_list("slug", flat=True)) == ["electrical", "plumbing"]
    assert (profile.latitude, profile.longitude) == (MISSION["latitude"], MISSION["longitude"])
    assert list(profile.availability.values_list("weekday", "start_time", "end_time")) == [
        (0, *map(_time, ("08:00", "17:00"))),
        (2, *map(_time, ("09:00", "12:30"))),
    ]
    user.refresh_from_db()
    with user.photo.open("rb") as stored, Image.open(stored) as image:
        assert (image.format, image.size) == ("JPEG", (300, 300))


def test_bad_onboarding_input_shows_errors_in_the_browser(page, live_server):
    CategoryFactory(name="Plumbing", slug="plumbing")
    user = User.objects.create_user(email="pat@example.com", password=PASSWORD, full_name="Pat Pro", is_contractor=True)
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    services.user_mark_email_verified(user=user)
    services.user_set_roles(user=user, is_customer=False, is_contractor=True)
    page.set_default_timeout(15_000)

    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Email").fill("pat@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "10-login")
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/onboarding/")

    page.get_by_label("Plumbing").check()
    page.get_by_label("Hourly rate (US dollars)").fill("85.555")
    page.get_by_label("Where you work from: ZIP code or address").fill("00000")
    page.get_by_label("How far you travel (km)").fill("20")
    page.get_by_label("Tuesday", exact=True).check()
    page.get_by_label("Tuesday from").fill("17:00")
    page.get_by_label("Tuesday until").fill("09:00")
    page.get_by_role("button", name="Go live").click()
    page.wait_for_load_state()

    expect(page.locator("#id_hourly_rate_error")).to_have_text(re.compile("Use at most two decimal places"))
    expect(page.locator("#id_day_1_end_error")).to_have_text(re.compile("The end time must be after the start time."))
    expect(page.get_by_label("Hourly rate (US dollars)")).to_have_attribute("aria-invalid", "true")
    shot(page, "11-onboarding-errors")
    assert ContractorProfile.objects.get(user=user).hourly_rate_cents is None
    assert ContractorProfile.objects.get(user=user).onboarded_at is None

    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboard/")
    expect(page.locator("main")).to_contain_text("Not live yet")
    shot(page, "12-dashboard-not-live")
    page.get_by_role("link", name="Profile", exact=True).click()
    page.wait_for_url("**/profile/")
    page.get_by_label("Phone").fill("(415) 555-0134")
    page.get_by_label("ZIP code").fill("94110")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    expect(page.locator("main")).to_contain_text("San Francisco, CA")
    shot(page, "13-profile")


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)
