"""Reads for the accounts pages: who may see what, and the figures pages show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .models import AvailabilitySlot, ContractorProfile, User

CURRENCY_SYMBOLS = {"USD": "$"}


def money_display(cents: int, currency: str = "USD") -> str:
    """12345, "USD" -> "$123.45". Exact: Decimal, never float."""
    amount = Decimal(cents) / 100
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol:
        return f"{symbol}{amount:,.2f}"
    return f"{amount:,.2f} {currency}"


def contractor_profiles_public() -> QuerySet[ContractorProfile]:
    """Profiles anyone may see: finished onboarding, account active."""
    return (
        ContractorProfile.objects.filter(onboarded_at__isnull=False, user__is_active=True, user__is_contractor=True)
        .select_related("user")
        .prefetch_related("trades", Prefetch("availability", queryset=AvailabilitySlot.objects.order_by("weekday", "start_time")))
    )


def contractor_profile_for_user(user: User) -> ContractorProfile | None:
    if not user.is_authenticated or not user.is_contractor:
        return None
    return (
        ContractorProfile.objects.filter(user=user)
        .prefetch_related("trades", Prefetch("availability", queryset=AvailabilitySlot.objects.order_by("weekday", "start_time")))
        .first()
    )


@dataclass(frozen=True)
class WeeklyHours:
    day: str
    hours: str


def weekly_hours(profile: ContractorProfile) -> list[WeeklyHours]:
    """One line per working day, "Monday: 08:00–17:00, 18:00–20:00"."""
    by_day: dict[int, list[str]] = {}
    for slot in profile.availability.all():
        by_day.setdefault(slot.weekday, []).append(f"{slot.start_time:%H:%M}–{slot.end_time:%H:%M}")
    return [
        WeeklyHours(day=AvailabilitySlot.Weekday(day).label, hours=", ".join(windows))
        for day, windows in sorted(by_day.items())
    ]


def user_photo_url(user: User) -> str:
    """Where a page may load the user's photo from ('' when there is none).
    The file name is part of the query so a new photo is not served stale."""
    if not user.photo:
        return ""
    version = user.photo.name.rsplit("/", 1)[-1].split(".", 1)[0]
    return reverse("accounts:photo", kwargs={"public_id": user.public_id}) + f"?v={version}"


def user_photo_visible_to(owner: User, viewer: User) -> bool:
    """A contractor's photo is public once their profile is; anyone else's is
    seen only by themselves and staff (tasks will add their counterparts)."""
    if viewer.is_authenticated and (viewer.pk == owner.pk or viewer.is_staff):
        return True
    if not owner.is_active:
        return False
    return contractor_profiles_public().filter(user=owner).exists()


@dataclass(frozen=True)
class Badge:
    label: str
    verified_at: dt.datetime | None


def user_badges(user: User) -> list[Badge]:
    return [
        Badge(label=_("Email"), verified_at=user.email_verified_at),
        Badge(label=_("Phone"), verified_at=user.phone_verified_at),
        Badge(label=_("ID"), verified_at=user.id_verified_at),
    ]
