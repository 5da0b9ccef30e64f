"""Every API error has one shape, on real endpoints:

    {"error": {"code": "...", "message": "...", "fields": {...}}}
"""

from __future__ import annotations

import pytest

from tests.accounts.api_support import token_client
from tests.factories import PASSWORD, ContractorProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, code: str, message: str | None = None, fields: dict | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message", "fields"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    if fields is not None:
        assert error["fields"] == fields
    return error


def test_400_validation_error_names_each_field(customer):
    response = token_client(customer).patch(
        "/api/v1/me", {"phone": "1", "postal_code": "00000"}, format="json"
    )
    assert_error_shape(
        response,
        400,
        "validation_error",
        message="Enter a phone number with 7 to 15 digits.",
        fields={
            "phone": ["Enter a phone number with 7 to 15 digits."],
            "postal_code": ["We don't know the ZIP code 00000. Check it and try again."],
        },
    )


def test_400_serializer_error_uses_the_same_shape(api_client):
    response = api_client.post("/api/v1/auth/token", {}, format="json")
    assert_error_shape(
        response,
        400,
        "validation_error",
        message="This field is required.",
        fields={"email": ["This field is required."], "password": ["This field is required."]},
    )


def test_400_malformed_json(customer):
    response = token_client(customer).generic("PATCH", "/api/v1/me", "{not json", content_type="application/json")
    error = assert_error_shape(response, 400, "parse_error", fields={})
    assert error["message"].startswith("JSON parse error")


def test_401_wrong_token(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    response = api_client.get("/api/v1/me")
    assert_error_shape(response, 401, "authentication_failed", message="Invalid token.", fields={})
    assert response["WWW-Authenticate"] == "Token"


def test_401_no_credentials(api_client):
    response = api_client.patch("/api/v1/me", {"full_name": "X"}, format="json")
    assert_error_shape(
        response, 401, "not_authenticated", message="Authentication credentials were not provided.", fields={}
    )


def test_403_unverified_email(api_as):
    profile = ContractorProfileFactory(user__unverified=True, onboarded_at=None)
    response = api_as(profile.user).post("/api/v1/me/onboarding/complete")
    assert_error_shape(
        response, 403, "email_not_verified", message="Verify your email address first: follow the link we emailed you."
    )


def test_403_unverified_email_at_login(api_client):
    UserFactory(email="new@example.com", unverified=True)
    response = api_client.post("/api/v1/auth/token", {"email": "new@example.com", "password": PASSWORD}, format="json")
    assert_error_shape(response, 403, "email_not_verified", fields={})


def test_404_unknown_contractor(api_client):
    assert_error_shape(api_client.get("/api/v1/contractors/nobody"), 404, "not_found", message="Not found.", fields={})


def test_405_wrong_method(customer):
    response = token_client(customer).delete("/api/v1/categories")
    assert_error_shape(response, 405, "method_not_allowed", message='Method "DELETE" not allowed.', fields={})


def test_415_json_where_a_file_upload_is_expected(customer):
    response = token_client(customer).put("/api/v1/me/photo", {"photo": "aGVsbG8="}, format="json")
    assert_error_shape(
        response, 415, "unsupported_media_type", message='Unsupported media type "application/json" in request.'
    )


def test_429_too_many_login_attempts(api_client, customer):
    for _attempt in range(10):
        api_client.post("/api/v1/auth/token", {"email": "dana@example.com", "password": "wrong-wrong-1"}, format="json")
    response = api_client.post("/api/v1/auth/token", {"email": "dana@example.com", "password": PASSWORD}, format="json")
    error = assert_error_shape(response, 429, "throttled", fields={})
    assert error["message"].startswith("Request was throttled.")
    assert int(response["Retry-After"]) > 0
