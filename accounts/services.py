"""Writes to accounts. Pages, the API and the admin call these; none of them
saves a User or ContractorProfile directly."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from core.errors import ApplicationError, PermissionDenied
from core.geo import GeocodeError, distance_km, geocode
from core.images import ImageRejected, clean_image
from tasks.models import Category

from .models import AvailabilitySlot, ContractorProfile, User

# A browser position may refine the ZIP centroid, but not move the service
# area to another town: a stray or spoofed fix is refused.
MAX_GEOLOCATION_DRIFT_KM = 50.0


class EmailNotVerified(PermissionDenied):
    default_code = "email_not_verified"

    def __init__(self) -> None:
        super().__init__("Verify your email address first: follow the link we emailed you.")


def user_require_verified(user: User) -> None:
    """Refuse work-related actions (posting, offering, accepting, going live)
    for accounts whose email is not verified. Browsing stays open."""
    if not user.is_authenticated or not user.is_active:
        raise PermissionDenied("Log in to do this.", code="not_authenticated")
    if not user.is_email_verified:
        raise EmailNotVerified()


@transaction.atomic
def user_mark_email_verified(*, user: User, at: dt.datetime | None = None) -> User:
    """Record the first verification of the account's email (a badge with a date)."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if locked.email_verified_at is None:
        locked.email_verified_at = at or timezone.now()
        locked.save(update_fields=["email_verified_at"])
    user.email_verified_at = locked.email_verified_at
    return locked


def _unique_slug(full_name: str, email: str) -> str:
    base = slugify(full_name)[:50] or slugify(email.split("@")[0])[:50] or "pro"
    for _attempt in range(20):
        candidate = f"{base}-{uuid.uuid4().hex[:6]}"
        if not ContractorProfile.objects.filter(slug=candidate).exists():
            return candidate
    raise ApplicationError("Could not create a profile address; try again.", code="slug_exhausted")


@transaction.atomic
def user_set_roles(*, user: User, is_customer: bool, is_contractor: bool) -> User:
    """Set which sides of the marketplace the account uses; creates the
    contractor profile on first becoming a contractor (kept if they stop)."""
    if not (is_customer or is_contractor):
        raise ApplicationError(
            "Choose at least one: hiring, working, or both.", code="no_role", fields={"role": ["Choose a role."]}
        )
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    locked.is_customer = is_customer
    locked.is_contractor = is_contractor
    locked.save(update_fields=["is_customer", "is_contractor"])
    if is_contractor:
        ContractorProfile.objects.get_or_create(
            user=locked, defaults={"slug": _unique_slug(locked.full_name, locked.email)}
        )
    user.is_customer, user.is_contractor = is_customer, is_contractor
    return locked


@transaction.atomic
def user_update_profile(
    *,
    user: User,
    full_name: str | None = None,
    phone: str | None = None,
    postal_code: str | None = None,
) -> User:
    """Update the personal details every user has. A ZIP code is geocoded
    offline and its city and state stored with it."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    fields: dict[str, str] = {}
    changed: list[str] = []
    if full_name is not None:
        full_name = full_name.strip()
        if not full_name:
            fields["full_name"] = ["Enter your name."]
        elif len(full_name) > 150:
            fields["full_name"] = ["Use at most 150 characters."]
        else:
            locked.full_name = full_name
            changed.append("full_name")
    if phone is not None:
        cleaned = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
        if phone.strip() and not (7 <= len(cleaned.lstrip("+")) <= 15):
            fields["phone"] = ["Enter a phone number with 7 to 15 digits."]
        else:
            if cleaned != locked.phone:
                locked.phone_verified_at = None
                changed.append("phone_verified_at")
            locked.phone = cleaned
            changed.append("phone")
    if postal_code is not None:
        if postal_code.strip():
            try:
                place = geocode(postal_code)
            except GeocodeError as exc:
                fields["postal_code"] = [str(exc)]
            else:
                locked.postal_code, locked.city, locked.state = place.postal_code, place.city, place.state
                changed += ["postal_code", "city", "state"]
        else:
            locked.postal_code = locked.city = locked.state = ""
            changed += ["postal_code", "city", "state"]
    if fields:
        raise ApplicationError(next(iter(fields.values()))[0], code="validation_error", fields=fields)
    if changed:
        locked.save(update_fields=sorted(set(changed)))
    return locked


def user_set_photo(*, user: User, upload: IO[bytes]) -> User:
    """Replace the profile photo with a checked, EXIF-free, 512px JPEG."""
    try:
        cleaned = clean_image(upload, max_bytes=settings.MAX_PROFILE_PHOTO_BYTES, max_side=512)
    except ImageRejected as exc:
        raise ApplicationError(str(exc), code="invalid_image", fields={"photo": [str(exc)]}) from exc
    with transaction.atomic():
        locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        old_name = locked.photo.name if locked.photo else ""
        locked.photo.save("photo.jpg", cleaned.content, save=False)
        locked.save(update_fields=["photo"])
        if old_name:
            # Delete the old file only once the new one is committed.
            transaction.on_commit(lambda: default_storage.delete(old_name))
    user.photo = locked.photo
    return locked


@dataclass(frozen=True)
class AvailabilityWindow:
    weekday: int
    start_time: dt.time
    end_time: dt.time


def _check_availability(windows: list[AvailabilityWindow]) -> list[str]:
    errors = []
    by_day: dict[int, list[AvailabilityWindow]] = {}
    for window in windows:
        if not 0 <= window.weekday <= 6:
            errors.append("A day of the week is not valid.")
            continue
        if window.end_time <= window.start_time:
            day = AvailabilitySlot.Weekday(window.weekday).label
            errors.append(f"On {day}, the end time must be after the start time.")
        by_day.setdefault(window.weekday, []).append(window)
    for weekday, day_windows in by_day.items():
        day_windows.sort(key=lambda w: w.start_time)
        for before, after in zip(day_windows, day_windows[1:], strict=False):
            if after.start_time < before.end_time:
                day = AvailabilitySlot.Weekday(weekday).label
                errors.append(f"On {day}, two time windows overlap.")
    return errors


@transaction.atomic
def contractor_profile_update(
    *,
    user: User,
    bio: str | None = None,
    trade_ids: list[int] | None = None,
    hourly_rate_cents: int | None = None,
    location: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    service_radius_km: int | None = None,
    availability: list[AvailabilityWindow] | None = None,
) -> ContractorProfile:
    """Update what a contractor offers. All fields are validated together and
    nothing is written if any is wrong. ``location`` is a ZIP code or an
    address containing one; ``latitude``/``longitude`` (from the browser) may
    refine it within 50 km of that ZIP."""
    if not user.is_contractor:
        raise PermissionDenied("Only contractors have a contractor profile.", code="not_contractor")
    profile = ContractorProfile.objects.select_for_update(no_key=True).get(user=user)
    fields: dict[str, list[str]] = {}
    changed: list[str] = []

    if bio is not None:
        bio = bio.strip()
        if len(bio) > 2000:
            fields["bio"] = ["Use at most 2,000 characters."]
        else:
            profile.bio = bio
            changed.append("bio")
    if hourly_rate_cents is not None:
        if not 0 < hourly_rate_cents <= ContractorProfile.MAX_HOURLY_RATE_CENTS:
            fields["hourly_rate_cents"] = ["Enter an hourly rate between $0.01 and $1,000.00."]
        else:
            profile.hourly_rate_cents = hourly_rate_cents
            changed.append("hourly_rate_cents")
    if service_radius_km is not None:
        if not ContractorProfile.MIN_RADIUS_KM <= service_radius_km <= ContractorProfile.MAX_RADIUS_KM:
            fields["service_radius_km"] = ["Choose a radius between 1 and 160 km."]
        else:
            profile.service_radius_km = service_radius_km
            changed.append("service_radius_km")
    if location is not None:
        try:
            place = geocode(location)
        except GeocodeError as exc:
            fields["location"] = [str(exc)]
        else:
            lat, lon = place.latitude, place.longitude
            if latitude is not None and longitude is not None:
                if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
                    fields["location"] = ["Your browser sent a position that is not valid."]
                elif distance_km(lat, lon, latitude, longitude) > MAX_GEOLOCATION_DRIFT_KM:
                    fields["location"] = [
                        f"Your browser's position is far from ZIP {place.postal_code}. Check the ZIP code."
                    ]
                else:
                    lat, lon = latitude, longitude
            address = location.strip() if location.strip() != place.postal_code else ""
            profile.address = address[:200]
            profile.postal_code, profile.city, profile.state = place.postal_code, place.city, place.state
            profile.latitude, profile.longitude = lat, lon
            changed += ["address", "postal_code", "city", "state", "latitude", "longitude"]
    trades: list[Category] | None = None
    if trade_ids is not None:
        wanted = set(trade_ids)
        trades = list(Category.objects.filter(pk__in=wanted, is_active=True))
        if len(trades) != len(wanted):
            fields["trades"] = ["One of the chosen trades does not exist."]
        elif len(trades) > 10:
            fields["trades"] = ["Choose at most 10 trades."]
    if availability is not None:
        errors = _check_availability(availability)
        if errors:
            fields["availability"] = errors
        elif len(availability) > 28:
            fields["availability"] = ["Use at most 28 weekly windows."]

    if fields:
        raise ApplicationError(next(iter(fields.values()))[0], code="validation_error", fields=fields)

    if changed:
        profile.save(update_fields=sorted(set(changed)) + ["updated_at"])
    if trades is not None:
        profile.trades.set(trades)
    if availability is not None:
        profile.availability.all().delete()
        AvailabilitySlot.objects.bulk_create(
            AvailabilitySlot(profile=profile, weekday=w.weekday, start_time=w.start_time, end_time=w.end_time)
            for w in availability
        )
    return profile


def contractor_profile_missing(profile: ContractorProfile) -> list[str]:
    """What a contractor still has to fill in before going live."""
    missing = []
    if not profile.trades.exists():
        missing.append("trades")
    if profile.hourly_rate_cents is None:
        missing.append("hourly rate")
    if profile.latitude is None:
        missing.append("service area")
    if not profile.availability.exists():
        missing.append("availability")
    return missing


@transaction.atomic
def contractor_onboarding_complete(*, user: User) -> ContractorProfile:
    """Go live: the public profile opens and matching may show the contractor
    nearby tasks. Needs a verified email and a complete profile."""
    user_require_verified(user)
    profile = ContractorProfile.objects.select_for_update(no_key=True).get(user=user)
    missing = contractor_profile_missing(profile)
    if missing:
        raise ApplicationError(
            "Your profile is missing: " + ", ".join(missing) + ".",
            code="profile_incomplete",
            extra={"missing": missing},
        )
    if profile.onboarded_at is None:
        profile.onboarded_at = timezone.now()
        profile.save(update_fields=["onboarded_at", "updated_at"])
    return profile


@transaction.atomic
def user_mark_id_verified(*, user: User, at: dt.datetime | None = None) -> User:
    """Record that staff checked the person's ID (a badge with a date). Kept
    once set: a second check does not move the date."""
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if locked.id_verified_at is None:
        locked.id_verified_at = at or timezone.now()
        locked.save(update_fields=["id_verified_at"])
    user.id_verified_at = locked.id_verified_at
    return locked
