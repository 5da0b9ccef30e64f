"""Matching pages: the contractor's invitations, alert settings, time off and
calendar (feed address, reset, import), the private ICS feed, and the
customer's invite and the contractor's "Not for me" actions.

Views parse input, check who is asking, call one service and render. Every
page is the signed-in user's own: there is nothing of anyone else's to reach
(another person's time off or invitation is a 404). The feed needs no login:
its secret address is the permission.
"""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from core.errors import ApplicationError, NotFound, PermissionDenied
from tasks import selectors as task_selectors

from . import calendar as ics
from . import queries, services
from .forms import AlertSettingsForm, IcsImportForm, InviteForm, TimeOffForm, add_service_errors
from .models import Invitation

FORM_FIELD_MAP = {"upload": "file"}


def _not_contractor(request: HttpRequest) -> HttpResponse:
    return render(request, "matching/not_contractor.html", status=403)


def _task_for(request: HttpRequest, public_id: UUID):
    try:
        return task_selectors.task_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _refused(request: HttpRequest, exc: ApplicationError, fallback: str) -> HttpResponse:
    """A refused action: 404 for what is not theirs, 403 for what they may not
    do, else back to the page with the reason at the top."""
    if isinstance(exc, NotFound):
        raise Http404(exc.message) from exc
    if isinstance(exc, PermissionDenied):
        return render(request, "matching/refused.html", {"error": exc.message, "back": fallback}, status=403)
    messages.error(request, exc.message)
    return redirect(fallback)


# --- the customer's invitations --------------------------------------------------


@login_required
@require_POST
def invite(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    back = reverse("tasks:detail", args=[task.public_id]) + "#invite"
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a pro to invite."))
        return redirect(back)
    contractor = User.objects.filter(public_id=form.cleaned_data["contractor"], is_active=True).first()
    if contractor is None:
        messages.error(request, _("That pro is no longer on BittieTasks."))
        return redirect(back)
    try:
        services.invite(task, by=request.user, contractor=contractor)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(
        request, _("%(name)s is invited. They'll see your task and can send an offer.") % {"name": contractor.public_name}
    )
    return redirect(back)


# --- the contractor's side ---------------------------------------------------------


@login_required
@require_GET
def invitations(request: HttpRequest) -> HttpResponse:
    if not request.user.is_contractor:
        return _not_contractor(request)
    with timezone.override(queries.time_zone_for(request.user)):
        return render(
            request,
            "matching/invitations.html",
            {"invitations": queries.invitations_for_contractor(request.user), "Status": Invitation.Status},
        )


@login_required
@require_POST
def invitation_decline(request: HttpRequest, public_id: UUID) -> HttpResponse:
    back = reverse("matching:invitations")
    try:
        invitation = queries.invitation_get_for_contractor(request.user, public_id)
        services.invitation_decline(invitation, by=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(request, _("Invitation declined. The customer won't wait for your offer."))
    return redirect(back)


@login_required
@require_POST
def task_skip(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    back = _safe_next(request, reverse("tasks:find_work"))
    try:
        services.task_skip(task, by=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(request, _("Noted: “%(title)s” is not for you. We'll show you fewer jobs like it.") % {"title": task.title})
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def alert_settings(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_contractor:
        return _not_contractor(request)
    current = queries.alert_settings_for(user)
    initial = {
        "enabled": current.enabled,
        "daily_cap": current.daily_cap,
        "quiet_start": current.quiet_start,
        "quiet_end": current.quiet_end,
        "time_zone": current.time_zone,
    }
    form = AlertSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.alert_settings_update(
                user=user,
                enabled=data["enabled"],
                daily_cap=data["daily_cap"],
                quiet_start=data["quiet_start"],
                quiet_end=data["quiet_end"],
                time_zone=data["time_zone"],
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Alert settings saved."))
            return redirect("matching:alert_settings")
    return render(
        request,
        "matching/alert_settings.html",
        {"form": form, "current": current, "sent_today": services.alerts_sent_today(user.pk, current, timezone.now())},
        status=400 if form.errors else 200,
    )


def _feed_url(feed) -> str:
    return settings.SITE_URL + reverse("matching:calendar_feed", args=[feed.secret])


def _availability(request: HttpRequest, *, time_off_form=None, import_form=None, status: int = 200) -> HttpResponse:
    user = request.user
    feed = services.calendar_feed_get_or_create(user=user)
    url = _feed_url(feed)
    context = {
        "time_off": queries.time_off_for(user),
        "imported": queries.imported_for(user),
        "time_off_form": time_off_form or TimeOffForm(),
        "import_form": import_form or IcsImportForm(),
        "feed_url": url,
        "webcal_url": "webcal://" + url.split("://", 1)[-1],
        "time_zone": str(timezone.get_current_timezone()),
    }
    return render(request, "matching/availability.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def availability(request: HttpRequest) -> HttpResponse:
    """Time off (list and add), the calendar feed and the import, on one page."""
    user = request.user
    if not user.is_contractor:
        return _not_contractor(request)
    with timezone.override(queries.time_zone_for(user)):
        if request.method == "GET":
            return _availability(request)
        form = TimeOffForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.time_off_create(user=user, starts_at=data["starts_at"], ends_at=data["ends_at"], summary=data["summary"])
            except ApplicationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Time off added. You won't be matched to jobs then."))
                return redirect("matching:availability")
        return _availability(request, time_off_form=form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def time_off_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    if not user.is_contractor:
        return _not_contractor(request)
    try:
        block = queries.time_off_get(user, pk)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    with timezone.override(queries.time_zone_for(user)):
        initial = {"starts_at": timezone.localtime(block.starts_at), "ends_at": timezone.localtime(block.ends_at), "summary": block.summary}
        form = TimeOffForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.time_off_update(block, by=user, starts_at=data["starts_at"], ends_at=data["ends_at"], summary=data["summary"])
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except ApplicationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Time off changed."))
                return redirect("matching:availability")
        return render(request, "matching/time_off_edit.html", {"form": form, "block": block}, status=400 if form.errors else 200)


@login_required
@require_POST
def time_off_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    back = reverse("matching:availability")
    try:
        block = queries.time_off_get(user, pk)
        services.time_off_delete(block, by=user)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(request, _("Time off removed."))
    return redirect(back)


@login_required
@require_POST
def calendar_reset(request: HttpRequest) -> HttpResponse:
    back = reverse("matching:availability") + "#calendar"
    try:
        services.calendar_feed_reset(user=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(request, _("New calendar address made. The old one no longer works: subscribe again with the new one."))
    return redirect(back)


@login_required
@require_POST
def calendar_import(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_contractor:
        return _not_contractor(request)
    form = IcsImportForm(request.POST, request.FILES)
    with timezone.override(queries.time_zone_for(user)):
        if form.is_valid():
            try:
                blocks = services.ics_import(user=user, upload=form.cleaned_data["file"])
            except ApplicationError as exc:
                add_service_errors(form, exc, FORM_FIELD_MAP)
            else:
                messages.success(
                    request,
                    ngettext(
                        "Imported %(n)d busy time. It replaces your previous import.",
                        "Imported %(n)d busy times. They replace your previous import.",
                        len(blocks),
                    )
                    % {"n": len(blocks)},
                )
                return redirect(reverse("matching:availability") + "#import")
        return _availability(request, import_form=form, status=400)


@login_required
@require_POST
def calendar_import_clear(request: HttpRequest) -> HttpResponse:
    back = reverse("matching:availability") + "#import"
    try:
        removed = services.ics_import_clear(user=request.user)
    except ApplicationError as exc:
        return _refused(request, exc, back)
    messages.success(
        request, ngettext("Removed %(n)d imported busy time.", "Removed %(n)d imported busy times.", removed) % {"n": removed}
    )
    return redirect(back)


@never_cache
@require_GET
def calendar_feed(request: HttpRequest, secret: str) -> HttpResponse:
    """The private ICS feed. A wrong or reset secret is a plain 404."""
    owner = queries.feed_owner(secret)
    if owner is None:
        raise Http404(_("No such calendar."))
    response = HttpResponse(ics.feed_ics(owner), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="bittietasks-jobs.ics"'
    response["X-Robots-Tag"] = "noindex"
    return response
