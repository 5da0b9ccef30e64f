"""API tokens: the writes behind POST/DELETE /api/v1/auth/token.

Kept apart from ``accounts.services`` because only the API issues tokens;
the rules are the same: one transaction each, nothing written when refused.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from core.errors import ApplicationError

from .models import User
from .services import EmailNotVerified


class InvalidCredentials(ApplicationError):
    default_code = "invalid_credentials"

    def __init__(self) -> None:
        # One message for an unknown email, a wrong password and an inactive
        # account, so the endpoint does not tell which emails have accounts.
        super().__init__(_("The email or password is not right."))


@transaction.atomic
def api_token_issue(*, request: HttpRequest | None, email: str, password: str) -> Token:
    """Check the credentials and return the account's API token (created on
    first use, the same one afterwards). Refuses wrong or inactive
    credentials (400 ``invalid_credentials``) and unverified email
    (403 ``email_not_verified``). ``authenticate`` hashes even for unknown
    emails, so the answer takes as long either way."""
    user = authenticate(request, email=email.strip().lower(), password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    if not user.is_email_verified:
        raise EmailNotVerified()
    token, _created = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def api_token_revoke(*, user: User) -> int:
    """Delete the account's API token; the next request with it gets 401.
    Returns how many were deleted (0 or 1)."""
    deleted, _detail = Token.objects.filter(user=user).delete()
    return deleted
