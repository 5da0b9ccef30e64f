from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from .models import ContractorProfile


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/dashboard.html")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html")


@login_required
def onboarding(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/onboarding.html")


def public_profile(request: HttpRequest, slug: str) -> HttpResponse:
    profile = get_object_or_404(ContractorProfile.objects.select_related("user"), slug=slug, onboarded_at__isnull=False)
    return render(request, "accounts/public_profile.html", {"profile": profile})
