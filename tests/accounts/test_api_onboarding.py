"""POST /api/v1/me/onboarding/complete: going live through the API."""

from __future__ import annotations

import pytest

from accounts.models import ContractorProfile
from tests.accounts.api_support import account_state, token_client
from tests.factories import CategoryFactory, ContractorProfileFactory

pytestmark = pytest.mark.django_db

COMPLETE = "/api/v1/me/onboarding/complete"


def newcomer_profile(**overrides) -> ContractorProfile:
    fields = {
        "user__email": "nina@example.com",
        "user__full_name": "Nina New",
        "slug": "nina-new",
        "hourly_rate_cents": None,
        "latitude": None,
        "longitude": None,
        "onboarded_at": None,
        "trades": [],
        "weekly_hours": False,
    }
    fields.update(overrides)
    return ContractorProfileFactory(**fields)


def test_an_empty_profile_cannot_go_live_and_hears_what_is_missing(db):
    profile = newcomer_profile()
    response = token_client(profile.user).post(COMPLETE)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "profile_incomplete",
            "message": "Your profile is missing: trades, hourly rate, service area, availability.",
            "fields": {},
            "extra": {"missing": ["trades", "hourly rate", "service area", "availability"]},
        }
    }
    profile.refresh_from_db()
    assert profile.onboarded_at is None


def test_a_complete_profile_goes_live_and_becomes_public(api_client, db):
    profile = newcomer_profile(
        hourly_rate_cents=7000, latitude=37.7509, longitude=-122.4153, weekly_hours=None,
        trades=[CategoryFactory(name="Plumbing", slug="plumbing")],
    )
    assert api_client.get("/api/v1/contractors/nina-new").status_code == 404

    response = token_client(profile.user).post(COMPLETE)
    assert response.status_code == 200
    assert response.json()["contractor_profile"]["onboarded"] is True
    assert response.json()["contractor_profile"]["missing"] == []
    profile.refresh_from_db()
    assert profile.onboarded_at is not None
    assert api_client.get("/api/v1/contractors/nina-new").status_code == 200


def test_going_live_twice_keeps_the_first_date(contractor):
    first = ContractorProfile.objects.get(user=contractor).onboarded_at
    response = token_client(contractor).post(COMPLETE)
    assert response.status_code == 200
    assert ContractorProfile.objects.get(user=contractor).onboarded_at == first


def test_unverified_contractor_cannot_go_live(api_as, db):
    profile = newcomer_profile(
        user__email_verified_at=None, hourly_rate_cents=7000, latitude=37.7509, longitude=-122.4153,
        weekly_hours=None, trades=[CategoryFactory(name="Plumbing", slug="plumbing")],
    )
    before = account_state(profile.user)
    # A session, since an unverified account gets no token.
    response = api_as(profile.user).post(COMPLETE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_not_verified"
    assert account_state(profile.user) == before


def test_a_customer_has_nothing_to_publish(customer):
    before = account_state(customer)
    response = token_client(customer).post(COMPLETE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_contractor"
    assert account_state(customer) == before


def test_going_live_only_publishes_my_own_profile(contractor, db):
    waiting = newcomer_profile(
        hourly_rate_cents=7000, latitude=37.7509, longitude=-122.4153, weekly_hours=None,
        trades=[CategoryFactory(name="Plumbing", slug="plumbing")],
    )
    token_client(contractor).post(COMPLETE)
    waiting.refresh_from_db()
    assert waiting.onboarded_at is None


def test_going_live_needs_a_login(api_client):
    assert api_client.post(COMPLETE).status_code == 401
