"""Notification pages: the centre, channel preferences, and unsubscribe.

Views parse input, call ``messaging.notifications`` and render; they never
write models themselves. Another user's notification is a 404, whoever asks.
The unsubscribe page needs no login: the signed token is the permission.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ApplicationError, NotFound

from . import notifications as service
from .models import Notification
from .sms import sms_offline

CHANNELS = ("in_app", "email", "sms")


class PreferencesForm(forms.Form):
    """One checkbox per kind and channel. Every kind has an SMS field, shown
    only where SMS is allowed, so a forged or stale POST asking for SMS
    elsewhere reaches the service and is refused with a message, not ignored."""

    def __init__(self, *args, initial_prefs: dict[str, service.Channels], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        labels = {
            "in_app": gettext_lazy("In the app"),
            "email": gettext_lazy("Email"),
            "sms": gettext_lazy("Text message"),
        }
        for kind in service.KINDS:
            current = initial_prefs[kind]
            for channel in CHANNELS:
                self.fields[f"{kind}__{channel}"] = forms.BooleanField(
                    required=False, label=labels[channel], initial=getattr(current, channel)
                )

    def values(self) -> dict[str, dict[str, bool]]:
        return {
            kind: {channel: self.cleaned_data[f"{kind}__{channel}"] for channel in CHANNELS}
            for kind in service.KINDS
        }

    def rows(self) -> list[dict]:
        return [
            {
                "kind": kind,
                "label": Notification.Kind(kind).label,
                "sms_allowed": service.sms_allowed(kind),
                "fields": {channel: self[f"{kind}__{channel}"] for channel in CHANNELS},
                "errors": self.errors.get(f"{kind}__sms", []),
            }
            for kind in service.KINDS
        ]


def _safe_next(request: HttpRequest, url: str, fallback: str) -> str:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return fallback


@login_required
@require_GET
def centre(request: HttpRequest) -> HttpResponse:
    items = service.notifications_for_user(request.user, limit=100)
    return render(
        request,
        "messaging/notifications/list.html",
        {"notifications": items, "unread": sum(1 for n in items if n.read_at is None)},
    )


@login_required
@require_POST
def mark_read(request: HttpRequest) -> HttpResponse:
    """Mark the posted ids (``id``, repeatable) or everything (``all``) read."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    target = "all" if request.POST.get("all") else request.POST.getlist("id")
    if not target:
        if wants_json:
            return JsonResponse({"error": {"code": "invalid", "message": _("Choose notifications to mark read."), "fields": {}}}, status=400)
        messages.error(request, _("Choose notifications to mark read."))
        return redirect("notifications:centre")
    try:
        changed = service.notification_mark_read(request.user, target)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if wants_json:
        return JsonResponse({"marked": changed, "unread": service.unread_count(request.user)})
    if target == "all":
        messages.success(request, _("All notifications marked read."))
    return redirect("notifications:centre")


@login_required
@require_POST
def open_notification(request: HttpRequest, public_id) -> HttpResponse:
    """Mark one read and go where it points."""
    try:
        notification = service.notification_get_for_user(request.user, public_id)
        service.notification_mark_read(request.user, [str(public_id)])
    except NotFound as exc:
        raise Http404(exc.message) from exc
    return redirect(_safe_next(request, notification.url, "/notifications/"))


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    current = service.preferences_get(user)
    form = PreferencesForm(request.POST or None, initial_prefs=current)
    if request.method == "POST" and form.is_valid():
        try:
            service.preferences_set(user=user, values=form.values())
        except ApplicationError as exc:
            for kind, errors in exc.fields.items():
                field = f"{kind}__sms" if f"{kind}__sms" in form.fields else None
                for error in errors:
                    form.add_error(field, error)
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Notification settings saved."))
            return redirect("notifications:preferences")
    return render(
        request,
        "messaging/notifications/preferences.html",
        {"form": form, "rows": form.rows(), "has_phone": bool(user.phone), "sms_offline": sms_offline()},
        status=400 if form.errors else 200,
    )


# RFC 8058 one-click: mail providers POST "List-Unsubscribe=One-Click" with no
# cookie and no CSRF token; the signed token in the URL is the permission.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        target = service.unsubscribe_read(token)
    except NotFound as exc:
        return render(request, "messaging/notifications/unsubscribe.html", {"invalid": True, "error": exc.message}, status=404)
    if request.method == "POST":
        service.unsubscribe_apply(token)
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse(_("Unsubscribed."), content_type="text/plain; charset=utf-8")
        return render(request, "messaging/notifications/unsubscribe.html", {"done": True, "target": target})
    return render(request, "messaging/notifications/unsubscribe.html", {"target": target})
