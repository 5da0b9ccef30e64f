"""POST/DELETE /api/v1/auth/token: logging in by API, and revoking."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.accounts.api_support import token_client
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"

WRONG = {
    "error": {"code": "invalid_credentials", "message": "The email or password is not right.", "fields": {}}
}


def test_login_returns_a_token_that_opens_me(api_client, customer):
    response = api_client.post(TOKEN, {"email": "dana@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    key = response.json()["token"]
    assert list(response.json()) == ["token"]
    assert Token.objects.get(user=customer).key == key

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    me = api_client.get(ME)
    assert me.status_code == 200
    assert me.json()["email"] == "dana@example.com"


def test_login_again_gives_the_same_token_and_ignores_email_case(api_client, customer):
    first = api_client.post(TOKEN, {"email": "dana@example.com", "password": PASSWORD}, format="json").json()
    second = api_client.post(TOKEN, {"email": " DANA@Example.COM ", "password": PASSWORD}, format="json")
    assert second.status_code == 200
    assert second.json() == first
    assert Token.objects.filter(user=customer).count() == 1


def test_wrong_password_and_unknown_email_get_the_same_answer(api_client, customer):
    wrong_password = api_client.post(TOKEN, {"email": "dana@example.com", "password": "nope-nope-nope"}, format="json")
    unknown_email = api_client.post(TOKEN, {"email": "nobody@example.com", "password": PASSWORD}, format="json")
    assert wrong_password.status_code == unknown_email.status_code == 400
    assert wrong_password.json() == unknown_email.json() == WRONG
    assert Token.objects.count() == 0


def test_inactive_account_is_refused_like_a_wrong_password(api_client):
    UserFactory(email="gone@example.com", is_active=False)
    response = api_client.post(TOKEN, {"email": "gone@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 400
    assert response.json() == WRONG
    assert Token.objects.count() == 0


def test_unverified_email_gets_no_token(api_client):
    UserFactory(email="new@example.com", unverified=True)
    response = api_client.post(TOKEN, {"email": "new@example.com", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "email_not_verified"
    assert error["message"] == "Verify your email address first: follow the link we emailed you."
    assert Token.objects.count() == 0


def test_missing_or_malformed_fields_are_named(api_client, customer):
    response = api_client.post(TOKEN, {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"] == {
        "email": ["Enter a valid email address."],
        "password": ["This field is required."],
    }
    assert Token.objects.count() == 0


def test_login_is_throttled_after_ten_attempts_a_minute(api_client, customer):
    for _attempt in range(10):
        response = api_client.post(TOKEN, {"email": "dana@example.com", "password": "guess-guess-1"}, format="json")
        assert response.status_code == 400
    blocked = api_client.post(TOKEN, {"email": "dana@example.com", "password": PASSWORD}, format="json")
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "throttled"
    assert "Retry-After" in blocked
    assert Token.objects.count() == 0


def test_revoking_deletes_the_token_and_it_stops_working(customer):
    client = token_client(customer)
    assert client.get(ME).status_code == 200

    response = client.delete(TOKEN)
    assert response.status_code == 204
    assert not Token.objects.filter(user=customer).exists()

    after = client.get(ME)
    assert after.status_code == 401
    assert after.json() == {"error": {"code": "authentication_failed", "message": "Invalid token.", "fields": {}}}


def test_revoking_my_token_leaves_other_users_tokens_alone(customer, outsider):
    mine, theirs = token_client(customer), token_client(outsider)
    their_key = Token.objects.get(user=outsider).key

    assert mine.delete(TOKEN).status_code == 204
    assert Token.objects.get(user=outsider).key == their_key
    assert theirs.get(ME).json()["email"] == "charlie@example.com"


def test_revoking_needs_a_token(api_client):
    response = api_client.delete(TOKEN)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] == "not_authenticated"
