"""Contracts of accounts.services: what each accepts, refuses, and writes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts import services
from accounts.models import AvailabilitySlot, ContractorProfile
from core.errors import ApplicationError, PermissionDenied
from core.geo import distance_km, geocode
from tests.accounts.photos import png_bytes, upload
from tests.factories import CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db

W = services.AvailabilityWindow


@pytest.fixture
def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


@pytest.fixture
def pending(plumbing):
    """A verified contractor with an empty profile."""
    user = UserFactory(email="nia@example.com", full_name="Nia Newcomer", is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=user, slug="nia")
    return user


def profile_state(user) -> tuple:
    profile = ContractorProfile.objects.get(user=user)
    return (
        profile.bio,
        profile.hourly_rate_cents,
        profile.postal_code,
        profile.latitude,
        profile.longitude,
        profile.service_radius_km,
        profile.updated_at,
        sorted(profile.trades.values_list("pk", flat=True)),
        list(profile.availability.values_list("weekday", "start_time", "end_time")),
        profile.onboarded_at,
    )


def complete(user, category):
    services.contractor_profile_update(
        user=user,
        trade_ids=[category.pk],
        hourly_rate_cents=8500,
        location="94110",
        availability=[W(0, dt.time(8), dt.time(17))],
    )


# --- email and ID badges ---------------------------------------------------


def test_mark_email_verified_sets_date_once():
    user = UserFactory(unverified=True)
    first = timezone.now() - dt.timedelta(days=2)
    services.user_mark_email_verified(user=user, at=first)
    services.user_mark_email_verified(user=user, at=timezone.now())
    user.refresh_from_db()
    assert user.email_verified_at == first


def test_mark_id_verified_sets_date_once():
    user = UserFactory()
    first = timezone.now() - dt.timedelta(days=1)
    services.user_mark_id_verified(user=user, at=first)
    services.user_mark_id_verified(user=user)
    user.refresh_from_db()
    assert user.id_verified_at == first


def test_require_verified_refuses_unverified_and_inactive():
    with pytest.raises(PermissionDenied) as refused:
        services.user_require_verified(UserFactory(unverified=True))
    assert refused.value.code == "email_not_verified"
    with pytest.raises(PermissionDenied) as refused:
        services.user_require_verified(UserFactory(is_active=False))
    assert refused.value.code == "not_authenticated"
    services.user_require_verified(UserFactory())


# --- roles -----------------------------------------------------------------


def test_set_roles_needs_at_least_one_and_changes_nothing_otherwise(customer):
    with pytest.raises(ApplicationError) as refused:
        services.user_set_roles(user=customer, is_customer=False, is_contractor=False)
    assert refused.value.code == "no_role"
    customer.refresh_from_db()
    assert (customer.is_customer, customer.is_contractor) == (True, False)


def test_becoming_contractor_creates_profile_once_and_keeps_it(customer):
    services.user_set_roles(user=customer, is_customer=True, is_contractor=True)
    slug = ContractorProfile.objects.get(user=customer).slug
    assert slug.startswith("dana-lee-")
    services.user_set_roles(user=customer, is_customer=True, is_contractor=False)
    services.user_set_roles(user=customer, is_customer=False, is_contractor=True)
    assert list(ContractorProfile.objects.filter(user=customer).values_list("slug", flat=True)) == [slug]
    customer.refresh_from_db()
    assert (customer.is_customer, customer.is_contractor) == (False, True)


# --- personal details --------------------------------------------------------


def test_update_profile_geocodes_zip_and_normalises_phone(customer):
    services.user_update_profile(user=customer, full_name=" Dana Lee ", phone="+1 (415) 555-0134", postal_code="10001")
    customer.refresh_from_db()
    assert (customer.full_name, customer.phone) == ("Dana Lee", "+14155550134")
    assert (customer.postal_code, customer.city, customer.state) == ("10001", "New York", "NY")


def test_changing_phone_removes_its_badge_keeping_it_does_not(customer):
    services.user_update_profile(user=customer, phone="4155550134")
    verified = timezone.now()
    type(customer).objects.filter(pk=customer.pk).update(phone_verified_at=verified)
    services.user_update_profile(user=customer, phone="(415) 555-0134")
    customer.refresh_from_db()
    assert customer.phone_verified_at == verified
    services.user_update_profile(user=customer, phone="4155550199")
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


def test_update_profile_reports_every_bad_field_and_writes_nothing(customer):
    with pytest.raises(ApplicationError) as refused:
        services.user_update_profile(user=customer, full_name="", phone="12", postal_code="00000")
    assert refused.value.fields == {
        "full_name": ["Enter your name."],
        "phone": ["Enter a phone number with 7 to 15 digits."],
        "postal_code": ["We don't know the ZIP code 00000. Check it and try again."],
    }
    customer.refresh_from_db()
    assert (customer.full_name, customer.phone, customer.postal_code) == ("Dana Lee", "", "")


# --- photo -------------------------------------------------------------------


def test_set_photo_refuses_non_image_and_writes_nothing(customer):
    with pytest.raises(ApplicationError) as refused:
        services.user_set_photo(user=customer, upload=upload("a.jpg", b"%PDF-1.4 not an image"))
    assert refused.value.code == "invalid_image"
    assert list(refused.value.fields) == ["photo"]
    customer.refresh_from_db()
    assert customer.photo.name == ""
    assert not default_storage.exists(f"profile-photos/{customer.public_id}")


def test_set_photo_refuses_oversized_file(customer, settings):
    settings.MAX_PROFILE_PHOTO_BYTES = 1024
    with pytest.raises(ApplicationError) as refused:
        services.user_set_photo(user=customer, upload=upload("a.png", png_bytes(size=(400, 400)) + b"\0" * 2048, "image/png"))
    assert refused.value.code == "invalid_image"
    customer.refresh_from_db()
    assert customer.photo.name == ""


def test_new_photo_replaces_old_file_after_commit(customer, django_capture_on_commit_callbacks):
    services.user_set_photo(user=customer, upload=upload("a.png", png_bytes(), "image/png"))
    old = customer.photo.name
    with django_capture_on_commit_callbacks(execute=True):
        services.user_set_photo(user=customer, upload=upload("b.png", png_bytes(colour=(1, 2, 3)), "image/png"))
    customer.refresh_from_db()
    assert customer.photo.name != old
    assert default_storage.exists(customer.photo.name)
    assert not default_storage.exists(old)


# --- contractor profile -----------------------------------------------------------


def test_only_contractors_have_a_profile_to_update(customer):
    with pytest.raises(PermissionDenied) as refused:
        services.contractor_profile_update(user=customer, bio="hello")
    assert refused.value.code == "not_contractor"


def test_overlapping_windows_on_one_day_are_refused(pending):
    before = profile_state(pending)
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(
            user=pending,
            bio="changed",
            availability=[W(0, dt.time(8), dt.time(12)), W(0, dt.time(11), dt.time(15)), W(1, dt.time(8), dt.time(12))],
        )
    assert refused.value.fields == {"availability": ["On Monday, two time windows overlap."]}
    assert profile_state(pending) == before


def test_touching_windows_are_allowed(pending):
    services.contractor_profile_update(
        user=pending, availability=[W(0, dt.time(13), dt.time(17)), W(0, dt.time(8), dt.time(13))]
    )
    assert list(AvailabilitySlot.objects.values_list("weekday", "start_time", "end_time")) == [
        (0, dt.time(8), dt.time(13)),
        (0, dt.time(13), dt.time(17)),
    ]


def test_window_ending_before_it_starts_is_refused(pending):
    before = profile_state(pending)
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(user=pending, availability=[W(4, dt.time(17), dt.time(9))])
    assert refused.value.fields == {"availability": ["On Friday, the end time must be after the start time."]}
    assert profile_state(pending) == before


def test_new_availability_replaces_the_old(pending):
    services.contractor_profile_update(user=pending, availability=[W(0, dt.time(8), dt.time(9))])
    services.contractor_profile_update(user=pending, availability=[W(6, dt.time(10), dt.time(11))])
    assert list(AvailabilitySlot.objects.values_list("weekday", "start_time", "end_time")) == [
        (6, dt.time(10), dt.time(11))
    ]


def test_browser_position_within_50_km_refines_zip(pending):
    place = geocode("94110")
    services.contractor_profile_update(user=pending, location="94110", latitude=37.80, longitude=-122.27)  # Oakland
    profile = ContractorProfile.objects.get(user=pending)
    assert distance_km(place.latitude, place.longitude, 37.80, -122.27) < 50
    assert (profile.latitude, profile.longitude) == (37.80, -122.27)


def test_browser_position_drifting_over_50_km_is_refused(pending):
    before = profile_state(pending)
    place = geocode("94110")
    # San Jose: about 70 km from the Mission.
    assert distance_km(place.latitude, place.longitude, 37.3382, -121.8863) > 50
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(
            user=pending, hourly_rate_cents=9000, location="94110", latitude=37.3382, longitude=-121.8863
        )
    assert refused.value.fields == {"location": ["Your browser's position is far from ZIP 94110. Check the ZIP code."]}
    assert profile_state(pending) == before


def test_impossible_browser_position_is_refused(pending):
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(user=pending, location="94110", latitude=123.0, longitude=-122.4)
    assert refused.value.fields == {"location": ["Your browser sent a position that is not valid."]}


def test_inactive_or_unknown_trades_are_refused(pending, plumbing):
    retired = CategoryFactory(name="Retired", slug="retired", is_active=False)
    before = profile_state(pending)
    for trade_ids in ([plumbing.pk, retired.pk], [plumbing.pk, 987654]):
        with pytest.raises(ApplicationError) as refused:
            services.contractor_profile_update(user=pending, trade_ids=trade_ids)
        assert refused.value.fields == {"trades": ["One of the chosen trades does not exist."]}
    assert profile_state(pending) == before


def test_more_than_ten_trades_are_refused(pending):
    ids = [CategoryFactory().pk for _ in range(11)]
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(user=pending, trade_ids=ids)
    assert refused.value.fields == {"trades": ["Choose at most 10 trades."]}


def test_every_bad_field_is_reported_together_and_nothing_written(pending, plumbing):
    before = profile_state(pending)
    with pytest.raises(ApplicationError) as refused:
        services.contractor_profile_update(
            user=pending,
            bio="x" * 2001,
            trade_ids=[plumbing.pk],
            hourly_rate_cents=0,
            location="00000",
            service_radius_km=500,
            availability=[W(7, dt.time(8), dt.time(9))],
        )
    assert refused.value.fields == {
        "bio": ["Use at most 2,000 characters."],
        "hourly_rate_cents": ["Enter an hourly rate between $0.01 and $1,000.00."],
        "service_radius_km": ["Choose a radius between 1 and 160 km."],
        "location": ["We don't know the ZIP code 00000. Check it and try again."],
        "availability": ["A day of the week is not valid."],
    }
    assert profile_state(pending) == before


@pytest.mark.parametrize(("cents", "ok"), [(1, True), (100_000, True), (0, False), (-1, False), (100_001, False)])
def test_rate_bounds(pending, cents, ok):
    if ok:
        services.contractor_profile_update(user=pending, hourly_rate_cents=cents)
        assert ContractorProfile.objects.get(user=pending).hourly_rate_cents == cents
    else:
        with pytest.raises(ApplicationError):
            services.contractor_profile_update(user=pending, hourly_rate_cents=cents)
        assert ContractorProfile.objects.get(user=pending).hourly_rate_cents is None


# --- going live -----------------------------------------------------------------


def test_onboarding_needs_a_complete_profile(pending, plumbing):
    with pytest.raises(ApplicationError) as refused:
        services.contractor_onboarding_complete(user=pending)
    assert refused.value.code == "profile_incomplete"
    assert refused.value.extra == {"missing": ["trades", "hourly rate", "service area", "availability"]}
    assert ContractorProfile.objects.get(user=pending).onboarded_at is None

    complete(pending, plumbing)
    profile = services.contractor_onboarding_complete(user=pending)
    assert profile.onboarded_at is not None
    first = profile.onboarded_at
    assert services.contractor_onboarding_complete(user=pending).onboarded_at == first


def test_onboarding_refused_for_unverified_email(plumbing):
    user = UserFactory(unverified=True, is_contractor=True)
    ContractorProfile.objects.create(user=user, slug="unverified")
    complete(user, plumbing)
    with pytest.raises(PermissionDenied) as refused:
        services.contractor_onboarding_complete(user=user)
    assert refused.value.code == "email_not_verified"
    assert refused.value.message == "Verify your email address first: follow the link we emailed you."
    assert ContractorProfile.objects.get(user=user).onboarded_at is None
