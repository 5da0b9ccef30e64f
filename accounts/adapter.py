from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse

from . import services


class AccountAdapter(DefaultAccountAdapter):
    def confirm_email(self, request: HttpRequest, email_address) -> bool:
        # allauth reads the result: a falsy one makes it treat the link as
        # failed (no login on confirmation, the "invalid link" path).
        confirmed = super().confirm_email(request, email_address)
        if confirmed and (
            email_address.primary or email_address.email.lower() == email_address.user.email.lower()
        ):
            services.user_mark_email_verified(user=email_address.user)
        return confirmed

    def _onboarding_url(self, request: HttpRequest) -> str | None:
        # A contractor who has not gone live yet has one thing to do next.
        user = request.user
        profile = getattr(user, "contractor_profile", None) if user.is_contractor else None
        if profile is not None and not profile.is_onboarded:
            return reverse("accounts:onboarding")
        return None

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return self._onboarding_url(request) or super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        # Used for the first login, right after the verification link.
        return self._onboarding_url(request) or super().get_signup_redirect_url(request)
