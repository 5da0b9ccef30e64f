"""Helpers for the accounts API tests: token clients and a snapshot of
everything an account write could touch, to assert that a refusal changed
nothing."""

from __future__ import annotations

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AvailabilitySlot, ContractorProfile, User


def token_client(user: User) -> APIClient:
    """A client that sends ``Authorization: Token ...`` as a real API client does."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def account_state(user: User) -> dict:
    fresh = User.objects.get(pk=user.pk)
    profile = ContractorProfile.objects.filter(user=fresh).first()
    state = {
        "user": {
            field: getattr(fresh, field)
            for field in (
                "email",
                "full_name",
                "phone",
                "postal_code",
                "city",
                "state",
                "is_customer",
                "is_contractor",
                "phone_verified_at",
                "email_verified_at",
            )
        }
        | {"photo": fresh.photo.name},
        "profile": None,
    }
    if profile is not None:
        state["profile"] = {
            field: getattr(profile, field)
            for field in (
                "slug",
                "bio",
                "hourly_rate_cents",
                "currency",
                "address",
                "postal_code",
                "city",
                "state",
                "latitude",
                "longitude",
                "service_radius_km",
                "onboarded_at",
                "updated_at",
            )
        } | {
            "trades": sorted(profile.trades.values_list("slug", flat=True)),
            "availability": list(
                AvailabilitySlot.objects.filter(profile=profile)
                .order_by("weekday", "start_time")
                .values_list("weekday", "start_time", "end_time")
            ),
        }
    return state
