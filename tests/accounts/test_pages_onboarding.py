"""Contractor onboarding page: one form, three services, one transaction."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import io
import re

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from accounts import services
from accounts.models import AvailabilitySlot, ContractorProfile, User
from core.geo import geocode
from tests.accounts.photos import jpeg_bytes_with_gps, noisy_png_bytes, png_bytes, upload
from tests.factories import CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db

ONBOARDING = "/onboarding/"


def field_errors(html: str, field: str) -> list[str]:
    """The messages rendered right under one field (Django's id="id_<field>_error")."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    if not match:
        return []
    return [htmllib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


@pytest.fixture
def trades():
    return [
        CategoryFactory(name="Plumbing", slug="plumbing"),
        CategoryFactory(name="Electrical", slug="electrical"),
        CategoryFactory(name="Painting", slug="painting"),
    ]


@pytest.fixture
def newcomer(trades):
    """A verified contractor half-way through: old answers and a photo on file."""
    user = UserFactory(email="nia@example.com", full_name="Nia Newcomer", is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=user, slug="nia-newcomer")
    services.contractor_profile_update(
        user=user,
        bio="Old bio",
        trade_ids=[trades[2].pk],
        hourly_rate_cents=5000,
        location="10001",
        service_radius_km=10,
        availability=[services.AvailabilityWindow(weekday=5, start_time=dt.time(10), end_time=dt.time(14))],
    )
    services.user_set_photo(user=user, upload=upload("old.png", png_bytes(colour=(0, 0, 0)), "image/png"))
    user.refresh_from_db()
    return user


def snapshot(user: User) -> dict:
    """Everything onboarding may write, to prove a refusal wrote nothing."""
    user.refresh_from_db()
    profile = ContractorProfile.objects.get(user=user)
    folder = f"profile-photos/{user.public_id}"
    files = sorted(default_storage.listdir(folder)[1]) if default_storage.exists(folder) else []
    return {
        "profile": {
            f.attname: getattr(profile, f.attname) for f in ContractorProfile._meta.concrete_fields
        },
        "trades": sorted(profile.trades.values_list("slug", flat=True)),
        "availability": list(profile.availability.values_list("weekday", "start_time", "end_time")),
        "photo": user.photo.name,
        "files": files,
    }


def valid_data(categories, **overrides) -> dict:
    data = {
        "trades": [categories[0].pk, categories[1].pk],
        "bio": "Licensed plumber and electrician, 10 years in the Mission.",
        "hourly_rate": "85.50",
        "location": "94110",
        "service_radius_km": "20",
        "latitude": "",
        "longitude": "",
        "day_0": "on",
        "day_0_start": "08:00",
        "day_0_end": "17:00",
        "day_2": "on",
        "day_2_start": "09:00",
        "day_2_end": "12:30",
        "day_3_start": "08:00",
        "day_3_end": "17:00",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(ONBOARDING)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_form_offers_active_trades_and_phone_friendly_inputs(client, newcomer, trades):
    CategoryFactory(name="Retired trade", slug="retired", is_active=False)
    client.force_login(newcomer)
    html = client.get(ONBOARDING).content.decode()

    assert re.findall(r'name="trades" value="(\d+)"', html) == [str(t.pk) for t in sorted(trades, key=lambda t: t.name)]
    assert "Retired trade" not in html
    assert re.search(r'<input type="text" name="hourly_rate"[^>]*inputmode="decimal"', html)
    assert re.search(r'<input type="file" name="photo"[^>]*accept="image/\*"', html)
    assert len(re.findall(r'type="time"', html)) == 14
    assert '<label for="id_location">' in html
    assert 'value="50.00"' in html  # current rate, in dollars
    assert 'id="use-location"' in html


def test_happy_path_sets_everything_and_opens_public_profile(
    client, newcomer, trades, django_capture_on_commit_callbacks
):
    client.force_login(newcomer)
    data = valid_data(trades, photo=upload("me.jpg", jpeg_bytes_with_gps()))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(ONBOARDING, data)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:public_profile", kwargs={"slug": "nia-newcomer"})
    profile = ContractorProfile.objects.get(user=newcomer)
    place = geocode("94110")
    assert profile.bio == "Licensed plumber and electrician, 10 years in the Mission."
    assert profile.hourly_rate_cents == 8550
    assert (profile.postal_code, profile.city, profile.state) == ("94110", "San Francisco", "CA")
    assert (profile.latitude, profile.longitude) == (place.latitude, place.longitude)
    assert profile.address == ""
    assert profile.service_radius_km == 20
    assert sorted(profile.trades.values_list("slug", flat=True)) == ["electrical", "plumbing"]
    assert list(profile.availability.values_list("weekday", "start_time", "end_time")) == [
        (0, dt.time(8), dt.time(17)),
        (2, dt.time(9), dt.time(12, 30)),
    ]
    assert profile.onboarded_at is not None
    newcomer.refresh_from_db()
    assert newcomer.photo.name.startswith(f"profile-photos/{newcomer.public_id}/")
    # The old photo is removed once the new one is committed.
    assert default_storage.listdir(f"profile-photos/{newcomer.public_id}")[1] == [newcomer.photo.name.rsplit("/", 1)[1]]

    page = client.get(response["Location"]).content.decode()
    assert "You&#x27;re live!" in page


def test_uploaded_photo_is_stored_without_exif(client, newcomer, trades):
    original = jpeg_bytes_with_gps()
    with Image.open(io.BytesIO(original)) as source:
        assert source.getexif().get_ifd(0x8825)  # the upload really carries GPS
    client.force_login(newcomer)

    client.post(ONBOARDING, valid_data(trades, photo=upload("me.jpg", original)))

    newcomer.refresh_from_db()
    with default_storage.open(newcomer.photo.name, "rb") as stored, Image.open(stored) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info


def test_address_with_zip_and_nearby_browser_position_refine_the_location(client, newcomer, trades):
    client.force_login(newcomer)
    data = valid_data(
        trades, location="123 Valencia St, San Francisco, CA 94110", latitude="37.7680", longitude="-122.4220"
    )

    response = client.post(ONBOARDING, data)

    assert response.status_code == 302
    profile = ContractorProfile.objects.get(user=newcomer)
    assert (profile.latitude, profile.longitude) == (37.768, -122.422)
    assert profile.address == "123 Valencia St, San Francisco, CA 94110"
    assert profile.postal_code == "94110"


def assert_refused(response, before, user, field, message):
    html = response.content.decode()
    assert response.status_code == 400
    assert message in field_errors(html, field), field_errors(html, field)
    assert snapshot(user) == before


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("00000", "We don't know the ZIP code 00000. Check it and try again."),
        ("San Francisco", "Enter a 5-digit US ZIP code, or an address that ends with one."),
        ("9411", "Enter a 5-digit US ZIP code, or an address that ends with one."),
    ],
)
def test_bad_zip_is_refused_and_nothing_written(client, newcomer, trades, location, message):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, location=location, photo=upload("me.png", png_bytes(), "image/png")))
    assert_refused(response, before, newcomer, "location", message)


def test_browser_position_far_from_zip_is_refused(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    # Los Angeles coordinates with a San Francisco ZIP.
    response = client.post(ONBOARDING, valid_data(trades, latitude="34.0522", longitude="-118.2437"))
    assert_refused(response, before, newcomer, "location", "Your browser's position is far from ZIP 94110. Check the ZIP code.")


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("0", "Enter an hourly rate between $0.01 and $1,000.00."),
        ("0.00", "Enter an hourly rate between $0.01 and $1,000.00."),
        ("-5", "The rate cannot be negative."),
        ("abc", "Enter an amount in dollars, like 85 or 85.50."),
        ("1e3", "Enter an amount in dollars, like 85 or 85.50."),
        ("NaN", "Enter an amount in dollars, like 85 or 85.50."),
        ("85.555", "Use at most two decimal places (cents)."),
        ("85.500", "Use at most two decimal places (cents)."),
        ("1000.01", "Enter an hourly rate between $0.01 and $1,000.00."),
        ("99999999999", "Enter an hourly rate between $0.01 and $1,000.00."),
        ("", "This field is required."),
    ],
)
def test_bad_rate_is_refused_and_nothing_written(client, newcomer, trades, rate, message):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, hourly_rate=rate))
    assert_refused(response, before, newcomer, "hourly_rate", message)


@pytest.mark.parametrize(("rate", "cents"), [("85", 8500), ("$1,000", 100_000), ("0.01", 1), ("19.9", 1990), (" 42.05 ", 4205)])
def test_rate_in_dollars_becomes_exact_cents(client, newcomer, trades, rate, cents):
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, hourly_rate=rate))
    assert response.status_code == 302
    assert ContractorProfile.objects.get(user=newcomer).hourly_rate_cents == cents


@pytest.mark.parametrize(
    ("radius", "message"),
    [
        ("0", "Choose a radius between 1 and 160 km."),
        ("161", "Choose a radius between 1 and 160 km."),
        ("-3", "Choose a radius between 1 and 160 km."),
        ("ten", "Enter a whole number."),
    ],
)
def test_radius_out_of_range_is_refused_and_nothing_written(client, newcomer, trades, radius, message):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, service_radius_km=radius))
    assert_refused(response, before, newcomer, "service_radius_km", message)


def test_end_before_start_is_refused_next_to_that_day(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, day_2_start="14:00", day_2_end="09:00"))
    assert_refused(response, before, newcomer, "day_2_end", "The end time must be after the start time.")
    assert field_errors(response.content.decode(), "day_0_end") == []


def test_ticked_day_without_times_is_refused(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, day_0_start="", day_0_end="25:00"))
    assert_refused(response, before, newcomer, "day_0_start", "Enter the time you start.")
    assert field_errors(response.content.decode(), "day_0_end") == ["Enter a valid time."]


def test_no_working_day_is_refused(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, day_0=None, day_2=None))
    assert response.status_code == 400
    assert "Tick at least one day you work." in response.content.decode()
    assert snapshot(newcomer) == before


def test_no_trade_or_unknown_trade_is_refused(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, trades=[]))
    assert_refused(response, before, newcomer, "trades", "Choose at least one trade.")
    response = client.post(ONBOARDING, valid_data(trades, trades=["999999"]))
    assert field_errors(response.content.decode(), "trades") == [
        "Select a valid choice. 999999 is not one of the available choices."
    ]
    assert snapshot(newcomer) == before


def test_fake_image_is_refused_and_nothing_written(client, newcomer, trades):
    before = snapshot(newcomer)
    client.force_login(newcomer)
    fake = upload("holiday.jpg", b"This is not a photo, just text pretending.\n" * 20)
    response = client.post(ONBOARDING, valid_data(trades, photo=fake))
    assert_refused(response, before, newcomer, "photo", "This file is not a valid image. Upload a JPEG, PNG or WebP photo.")


def test_oversized_image_is_refused_and_nothing_written(client, newcomer, trades, settings):
    settings.MAX_PROFILE_PHOTO_BYTES = 1_048_576
    big = noisy_png_bytes()
    assert len(big) > settings.MAX_PROFILE_PHOTO_BYTES
    before = snapshot(newcomer)
    client.force_login(newcomer)
    response = client.post(ONBOARDING, valid_data(trades, photo=upload("big.png", big, "image/png")))
    size = f"{len(big) / 1_048_576:.1f}"
    assert_refused(response, before, newcomer, "photo", f"This file is {size} MB; the limit is 1 MB.")


def test_unverified_contractor_cannot_go_live_and_nothing_is_written(client, trades):
    user = UserFactory(unverified=True, is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=user, slug="unverified-pro")
    before = snapshot(user)
    client.force_login(user)

    page = client.get(ONBOARDING).content.decode()
    assert "Verify your email" in page
    assert 'name="action_send"' in page

    response = client.post(ONBOARDING, valid_data(trades, photo=upload("me.png", png_bytes(), "image/png")))

    assert response.status_code == 400
    assert "Verify your email address first: follow the link we emailed you." in response.content.decode()
    assert snapshot(user) == before
    assert snapshot(user)["files"] == []
    assert ContractorProfile.objects.get(user=user).onboarded_at is None
    assert client.get(reverse("accounts:public_profile", kwargs={"slug": "unverified-pro"})).status_code == 404


def test_resend_button_sends_a_new_verification_email(client, mailoutbox):
    user = UserFactory(unverified=True, email="late@example.com")
    client.force_login(user)
    response = client.post(reverse("account_email"), {"email": "late@example.com", "action_send": "1"})
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [["late@example.com"]]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


def test_editing_after_going_live_keeps_the_go_live_date(client, contractor, trades):
    went_live = contractor.contractor_profile.onboarded_at
    client.force_login(contractor)
    response = client.post(ONBOARDING, valid_data(trades, hourly_rate="90"))
    assert response.status_code == 302
    profile = ContractorProfile.objects.get(user=contractor)
    assert profile.onboarded_at == went_live
    assert profile.hourly_rate_cents == 9000


def test_customer_is_offered_to_become_a_contractor(client, customer):
    client.force_login(customer)
    page = client.get(ONBOARDING)
    assert page.status_code == 200
    assert "Become a contractor" in page.content.decode()
    assert not ContractorProfile.objects.filter(user=customer).exists()

    response = client.post(ONBOARDING, {"action": "become_contractor"})

    assert response["Location"] == ONBOARDING
    customer.refresh_from_db()
    assert (customer.is_customer, customer.is_contractor) == (True, True)
    assert ContractorProfile.objects.get(user=customer).onboarded_at is None


def test_customer_posting_onboarding_data_writes_nothing(client, customer, trades):
    client.force_login(customer)
    response = client.post(ONBOARDING, valid_data(trades))
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.is_contractor is False
    assert not ContractorProfile.objects.filter(user=customer).exists()
    assert AvailabilitySlot.objects.count() == 0
