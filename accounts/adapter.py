from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.urls import reverse

from . import services


class AccountAdapter(DefaultAccountAdapter):
    def confirm_email(self, request: HttpRequest, email_address) -> None:
        super().confirm_email(request, email_address)
        if email_address.primary or email_address.email.lower() == email_address.user.email.lower():
            services.user_mark_email_verified(user=email_address.user)

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        user = request.user
        profile = getattr(user, "contractor_profile", None) if user.is_contractor else None
        if profile is not None and not profile.is_onboarded:
            return reverse("accounts:onboarding")
        return super().get_login_redirect_url(request)
