"""Demo data for ``make run``: trade categories, a staff admin, customers and
contractors in San Francisco, all verified and able to log in.

Called by ``manage.py seed_demo`` (which refuses to run with DEBUG off, so a
production database never gets accounts with a published password).
Idempotent: a person who already exists is left exactly as they are, and each
person is created in one transaction, so an interrupted run leaves no half
person behind and the next run completes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import TextIO

from allauth.account.models import EmailAddress
from django.db import transaction
from django.urls import NoReverseMatch, reverse

from tasks.models import Category

from . import services
from .models import User

# One shared password, printed by seed_demo: this is demo data for a laptop.
DEMO_PASSWORD = "bittie-demo-2468"  # noqa: S105
ADMIN_EMAIL = "admin@bittietasks.local"

# (name, slug, description), in the order pages list them.
TRADES: list[tuple[str, str, str]] = [
    ("Plumbing", "plumbing", "Leaks, clogs, fixtures, water heaters and pipe repairs."),
    ("Electrical", "electrical", "Outlets, switches, lighting, fixtures and panel work by licensed electricians."),
    ("Carpentry", "carpentry", "Trim, doors, shelving, decks and custom woodwork."),
    ("Handyman", "handyman", "Small repairs and odd jobs around the home."),
    ("Painting", "painting", "Interior and exterior painting, patching and touch-ups."),
    ("Cleaning", "cleaning", "Regular, deep and move-out cleaning."),
    ("Moving help", "moving-help", "Loading, unloading and carrying furniture and boxes."),
    ("Appliance repair", "appliance-repair", "Washers, dryers, fridges, ovens and dishwashers."),
    ("HVAC", "hvac", "Heating, ventilation and air conditioning service and repair."),
    ("Landscaping", "landscaping", "Lawns, planting, pruning, yard clean-up and irrigation."),
    ("Furniture assembly", "furniture-assembly", "Flat-pack furniture, beds, desks and shelving put together."),
    ("Roofing", "roofing", "Roof inspections, leak repairs, shingles and gutters."),
]

WEEKDAYS = (0, 1, 2, 3, 4)
WEEKEND = (5, 6)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    full_name: str
    postal_code: str  # a real San Francisco ZIP, geocoded offline
    is_customer: bool = True
    is_contractor: bool = False
    # Contractors only:
    trades: tuple[str, ...] = ()
    hourly_rate_cents: int | None = None
    service_radius_km: int = 15
    bio: str = ""
    # (weekdays, start hour, end hour)
    hours: tuple[tuple[tuple[int, ...], int, int], ...] = field(default=())


PEOPLE: list[DemoPerson] = [
    DemoPerson("maya@bittietasks.local", "Maya Chen", "94117"),
    DemoPerson("james@bittietasks.local", "James Okafor", "94122"),
    DemoPerson("priya@bittietasks.local", "Priya Raman", "94107"),
    DemoPerson(
        "rosa@bittietasks.local",
        "Rosa Alvarez",
        "94110",
        is_customer=False,
        is_contractor=True,
        trades=("plumbing", "hvac"),
        hourly_rate_cents=9500,
        service_radius_km=20,
        bio="Licensed plumber, 14 years in the Mission. Leaks, water heaters, and furnace tune-ups.",
        hours=((WEEKDAYS, 7, 16),),
    ),
    DemoPerson(
        "marcus@bittietasks.local",
        "Marcus Reed",
        "94124",
        is_customer=False,
        is_contractor=True,
        trades=("electrical", "appliance-repair"),
        hourly_rate_cents=11000,
        service_radius_km=25,
        bio="Journeyman electrician in Bayview. Lighting, outlets, panels and appliance repairs.",
        hours=((WEEKDAYS, 8, 17), ((5,), 9, 13)),
    ),
    DemoPerson(
        "ana@bittietasks.local",
        "Ana Silva",
        "94114",
        is_customer=False,
        is_contractor=True,
        trades=("carpentry", "furniture-assembly", "painting"),
        hourly_rate_cents=8000,
        service_radius_km=12,
        bio="Carpenter in the Castro: shelves, trim, doors, and any flat-pack you dread.",
        hours=((WEEKDAYS, 9, 18),),
    ),
    DemoPerson(
        "tom@bittietasks.local",
        "Tom Nguyen",
        "94115",
        is_customer=False,
        is_contractor=True,
        trades=("handyman", "moving-help", "furniture-assembly"),
        hourly_rate_cents=6500,
        service_radius_km=15,
        bio="Handyman with a van. Small repairs, moving help and assembly, evenings and weekends too.",
        hours=((WEEKDAYS, 17, 21), (WEEKEND, 8, 18)),
    ),
    DemoPerson(
        "grace@bittietasks.local",
        "Grace Kim",
        "94133",
        is_customer=False,
        is_contractor=True,
        trades=("cleaning",),
        hourly_rate_cents=4500,
        service_radius_km=10,
        bio="Home and move-out cleaning in North Beach and nearby. Supplies included.",
        hours=((WEEKDAYS, 8, 14), ((5,), 9, 15)),
    ),
    # Both sides on one account: hires for some jobs, works others.
    DemoPerson(
        "leo@bittietasks.local",
        "Leo Martinez",
        "94112",
        is_customer=True,
        is_contractor=True,
        trades=("landscaping", "painting", "roofing"),
        hourly_rate_cents=5500,
        service_radius_km=18,
        bio="Gardens, fences and exterior paint in the Excelsior and the south of the city.",
        hours=((WEEKDAYS, 7, 15),),
    ),
]


def seed_categories(stdout: TextIO) -> list[Category]:
    """Create the trades that are missing; existing ones are left as they are
    (an admin may have renamed or reordered them)."""
    categories = []
    created_count = 0
    for order, (name, slug, description) in enumerate(TRADES, start=1):
        category, created = Category.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "sort_order": order * 10}
        )
        created_count += created
        categories.append(category)
    stdout.write(f"Trades: {created_count} created, {len(TRADES) - created_count} already there.\n")
    return categories


def _verify_email(user: User) -> None:
    # Both records: ours (the badge, and what services check) and allauth's
    # (what lets the mandatory-verification login through).
    services.user_mark_email_verified(user=user)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


@transaction.atomic
def _create_person(person: DemoPerson) -> User:
    user = User.objects.create_user(person.email, DEMO_PASSWORD, full_name=person.full_name)
    services.user_set_roles(user=user, is_customer=person.is_customer, is_contractor=person.is_contractor)
    services.user_update_profile(user=user, postal_code=person.postal_code)
    _verify_email(user)
    if person.is_contractor:
        trade_ids = list(Category.objects.filter(slug__in=person.trades).values_list("pk", flat=True))
        services.contractor_profile_update(
            user=user,
            bio=person.bio,
            trade_ids=trade_ids,
            hourly_rate_cents=person.hourly_rate_cents,
            location=person.postal_code,
            service_radius_km=person.service_radius_km,
            availability=[
                services.AvailabilityWindow(weekday=day, start_time=dt.time(start), end_time=dt.time(end))
                for days, start, end in person.hours
                for day in days
            ],
        )
        services.contractor_onboarding_complete(user=user)
    return user


@transaction.atomic
def _create_admin() -> User:
    user = User.objects.create_superuser(ADMIN_EMAIL, DEMO_PASSWORD, full_name="Demo Admin")
    _verify_email(user)
    return user


def _describe(user: User) -> str:
    if user.is_staff:
        return "staff: the Django admin at /admin/"
    parts = [str(user.roles_label).lower()]
    profile = getattr(user, "contractor_profile", None) if user.is_contractor else None
    if profile is not None:
        trades = ", ".join(t.name for t in profile.trades.all())
        parts.append(trades)
        with contextlib.suppress(NoReverseMatch):
            parts.append(reverse("accounts:public_profile", args=[profile.slug]))
    return ", ".join(p for p in parts if p)


def seed(stdout: TextIO) -> list[User]:
    """Create whatever demo data is missing and print the demo logins."""
    seed_categories(stdout)
    users = []
    created_count = 0
    existing = User.objects.filter(email=ADMIN_EMAIL).first()
    if existing is None:
        existing = _create_admin()
        created_count += 1
    users.append(existing)
    for person in PEOPLE:
        existing = User.objects.filter(email=person.email).first()
        if existing is None:
            existing = _create_person(person)
            created_count += 1
        users.append(existing)
    stdout.write(f"Demo people: {created_count} created, {len(users) - created_count} already there.\n")

    width = max(len(u.email) for u in users)
    stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):\n")
    for user in users:
        stdout.write(f"  {user.email.ljust(width)}  {_describe(user)}\n")
    return users
