"""Public endpoints: categories and live contractors' profiles."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from accounts.models import User
from tests.factories import CategoryFactory, ContractorProfileFactory

pytestmark = pytest.mark.django_db

CATEGORIES = "/api/v1/categories"


def test_anyone_lists_active_categories_in_order(api_client):
    CategoryFactory(name="Plumbing", slug="plumbing", description="Leaks, taps, drains.", sort_order=2)
    CategoryFactory(name="Electrical", slug="electrical", sort_order=1)
    CategoryFactory(name="Assembly", slug="assembly", sort_order=2)
    CategoryFactory(name="Chimney sweeping", slug="chimney", is_active=False)
    response = api_client.get(CATEGORIES)
    assert response.status_code == 200
    assert response.json() == [
        {"name": "Electrical", "slug": "electrical", "description": ""},
        {"name": "Assembly", "slug": "assembly", "description": ""},
        {"name": "Plumbing", "slug": "plumbing", "description": "Leaks, taps, drains."},
    ]


def test_listing_categories_is_one_query(api_client, django_assert_max_num_queries):
    for n in range(15):
        CategoryFactory(name=f"Trade {n}", slug=f"trade-{n}")
    with django_assert_max_num_queries(1):
        assert len(api_client.get(CATEGORIES).json()) == 15


def test_public_profile_shows_what_customers_need(api_client, contractor):
    contractor.phone = "+14155550100"
    contractor.id_verified_at = timezone.now()
    contractor.save()
    response = api_client.get("/api/v1/contractors/bob-builder")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "slug": "bob-builder",
        "name": "Bob Builder",
        "photo_url": "",
        "bio": "Licensed plumber, 12 years in the Bay Area.",
        "trades": [{"name": "Plumbing", "slug": "plumbing"}],
        "hourly_rate_cents": 8500,
        "currency": "USD",
        "city": "San Francisco",
        "state": "CA",
        "service_radius_km": 25,
        "availability": [{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(5)],
        "verified": {"email": True, "phone": False, "id": True},
        "member_since": body["member_since"],
    }


def test_public_profile_never_shows_address_coordinates_email_or_phone(api_client, contractor):
    contractor.phone = "+14155550100"
    contractor.save()
    profile = contractor.contractor_profile
    profile.address = "742 Evergreen Terrace, San Francisco, CA 94110"
    profile.save()
    raw = api_client.get("/api/v1/contractors/bob-builder").content.decode()
    body = json.loads(raw)
    for secret in ("bob@example.com", "4155550100", "742 Evergreen", "37.7509", "-122.4153", "94110"):
        assert secret not in raw
    assert not {"address", "latitude", "longitude", "email", "phone", "postal_code"} & set(body)


@pytest.mark.parametrize(
    "change",
    ["not_onboarded", "inactive", "stopped_working", "unknown"],
)
def test_only_live_contractors_are_public(api_client, contractor, change):
    slug = "bob-builder"
    if change == "not_onboarded":
        ContractorProfileFactory(slug="half-done", onboarded_at=None)
        slug = "half-done"
    elif change == "inactive":
        User.objects.filter(pk=contractor.pk).update(is_active=False)
    elif change == "stopped_working":
        User.objects.filter(pk=contractor.pk).update(is_contractor=False)
    else:
        slug = "nobody-here"
    response = api_client.get(f"/api/v1/contractors/{slug}")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def test_public_profile_is_a_fixed_number_of_queries(api_client, contractor, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert api_client.get("/api/v1/contractors/bob-builder").status_code == 200
