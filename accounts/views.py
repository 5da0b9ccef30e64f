"""Account pages. Each view parses input, calls services, renders; every
write acts on ``request.user`` only, so no URL lets one user change another's
account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError

from . import selectors, services
from .forms import OnboardingForm, ProfileForm, RolesForm, add_service_errors
from .models import User

# The tasks app will name its "post a task" page; the dashboard links to it
# only once one of these exists (no placeholder pages).
POST_TASK_URL_NAMES = ("tasks:create", "tasks:task_create", "tasks:post")


def _first_url(names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return ""


def _forget_stored_photo(name: str) -> None:
    # The photo file is written to storage before the transaction commits; if
    # a later step refused, the row rolled back and this file belongs to no one.
    if name:
        default_storage.delete(name)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    profile = selectors.contractor_profile_for_user(user)
    context = {
        "profile": profile,
        "missing": services.contractor_profile_missing(profile) if profile else [],
        "post_task_url": _first_url(POST_TASK_URL_NAMES) if user.is_customer else "",
        "badges": selectors.user_badges(user),
        "photo_url": selectors.user_photo_url(user),
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    details_form = ProfileForm(initial=ProfileForm.initial_from(user))
    roles_form = RolesForm(initial={"is_customer": user.is_customer, "is_contractor": user.is_contractor})

    if request.method == "POST" and request.POST.get("action") == "roles":
        roles_form = RolesForm(request.POST)
        if roles_form.is_valid():
            was_contractor = user.is_contractor
            try:
                services.user_set_roles(
                    user=user,
                    is_customer=roles_form.cleaned_data["is_customer"],
                    is_contractor=roles_form.cleaned_data["is_contractor"],
                )
            except ApplicationError as exc:
                user.refresh_from_db()
                add_service_errors(roles_form, exc)
            else:
                messages.success(request, _("Your roles are saved."))
                if user.is_contractor and not was_contractor:
                    return redirect("accounts:onboarding")
                return redirect("accounts:profile")
    elif request.method == "POST":
        details_form = ProfileForm(request.POST, request.FILES)
        if details_form.is_valid():
            data = details_form.cleaned_data
            stored_photo = ""
            try:
                with transaction.atomic():
                    services.user_update_profile(
                        user=user, full_name=data["full_name"], phone=data["phone"], postal_code=data["postal_code"]
                    )
                    if data["photo"]:
                        stored_photo = services.user_set_photo(user=user, upload=data["photo"]).photo.name
            except ApplicationError as exc:
                _forget_stored_photo(stored_photo)
                user.refresh_from_db()
                add_service_errors(details_form, exc)
            else:
                messages.success(request, _("Your profile is saved."))
                return redirect("accounts:profile")

    context = {
        "details_form": details_form,
        "roles_form": roles_form,
        "badges": selectors.user_badges(user),
        "photo_url": selectors.user_photo_url(user),
        "contractor_profile": selectors.contractor_profile_for_user(user),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def onboarding(request: HttpRequest) -> HttpResponse:
    user = request.user
    profile = selectors.contractor_profile_for_user(user)
    if profile is None:
        return _become_contractor(request)

    if request.method == "GET":
        form = OnboardingForm(profile=profile)
        return render(request, "accounts/onboarding.html", {"form": form, "profile": profile})

    form = OnboardingForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        has_position = data["latitude"] is not None and data["longitude"] is not None
        stored_photo = ""
        was_onboarded = profile.is_onboarded
        try:
            # One transaction around all three: a refused photo or an
            # unverified email leaves the profile exactly as it was.
            with transaction.atomic():
                services.contractor_profile_update(
                    user=user,
                    bio=data["bio"],
                    trade_ids=[category.pk for category in data["trades"]],
                    hourly_rate_cents=data["hourly_rate"],
                    location=data["location"],
                    latitude=data["latitude"] if has_position else None,
                    longitude=data["longitude"] if has_position else None,
                    service_radius_km=data["service_radius_km"],
                    availability=data["availability"],
                )
                if data["photo"]:
                    stored_photo = services.user_set_photo(user=user, upload=data["photo"]).photo.name
                profile = services.contractor_onboarding_complete(user=user)
        except ApplicationError as exc:
            _forget_stored_photo(stored_photo)
            user.refresh_from_db()
            add_service_errors(form, exc, {"hourly_rate_cents": "hourly_rate"})
        else:
            if was_onboarded:
                messages.success(request, _("Your profile is saved."))
            else:
                messages.success(request, _("You're live! This is your public profile; customers nearby can now find you."))
            return redirect("accounts:public_profile", slug=profile.slug)
    return render(request, "accounts/onboarding.html", {"form": form, "profile": profile}, status=400)


def _become_contractor(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST" and request.POST.get("action") == "become_contractor":
        try:
            services.user_set_roles(user=user, is_customer=user.is_customer, is_contractor=True)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("You're now a contractor too. Tell customers what you do."))
            return redirect("accounts:onboarding")
    return render(request, "accounts/become_contractor.html")


def public_profile(request: HttpRequest, slug: str) -> HttpResponse:
    profile = get_object_or_404(selectors.contractor_profiles_public(), slug=slug)
    owner = profile.user
    context = {
        "profile": profile,
        "owner": owner,
        "rate": selectors.money_display(profile.hourly_rate_cents, profile.currency) if profile.hourly_rate_cents else "",
        "weekly_hours": selectors.weekly_hours(profile),
        "badges": selectors.user_badges(owner),
        "photo_url": selectors.user_photo_url(owner),
        "is_owner": request.user.is_authenticated and request.user.pk == owner.pk,
    }
    return render(request, "accounts/public_profile.html", context)


def user_photo(request: HttpRequest, public_id) -> FileResponse:
    """Profile photos come through here, never from a public media URL, so
    only people allowed to see a photo get it."""
    owner = get_object_or_404(User, public_id=public_id)
    if not owner.photo or not selectors.user_photo_visible_to(owner, request.user):
        raise Http404
    try:
        handle = default_storage.open(owner.photo.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
