"""The verification dashboard in the Django admin.

One page with the queues and their counts (IDs to review, photo verdicts
needing review, failed checks, flagged duplicates), and a review screen per
item with the evidence side by side and approve/reject with a reason. The
decisions go through ``accounts.verification.id_review`` and
``tasks.verification.photo_check_review``, which audit and notify.

Access: the admin's own login wall first (non-staff are redirected to the
admin login); then staff without ``accounts.review_verifications`` get 403.
The URLs hang off ``IdentityDocumentAdmin.get_urls`` (see admin.py):
``/admin/accounts/identitydocument/verification/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError

from . import selectors, verification
from .models import AuditEntry, IdentityDocument

QUEUE_LIMIT = 50


def _photo_checks():
    """V1's photo-check module, or None while it isn't installed."""
    try:
        from tasks import verification as photo_verification
        from tasks.models import PhotoCheck  # noqa: F401
    except ImportError:  # pragma: no cover - both land together in the tasks app
        return None
    return photo_verification


class ReviewForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (the person is told it; it goes into the audit log)"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": gettext_lazy("Give a reason for the decision.")},
    )


def _require_reviewer(request: HttpRequest) -> None:
    if not verification.id_reviewer(request.user):
        raise PermissionDenied


@dataclass
class Queue:
    key: str
    title: str
    help: str
    count: int
    oldest: Any  # a datetime or None
    items: list[dict[str, Any]]


def _photo_items(qs: QuerySet, site_name: str) -> list[dict[str, Any]]:
    items = []
    for check in qs[:QUEUE_LIMIT]:
        task = check.proof.task
        items.append(
            {
                "url": reverse(f"{site_name}:accounts_verification_photo", args=[check.pk]),
                "label": task.title,
                "who": check.proof.contractor.public_name,
                "since": check.created_at,
                "detail": check.get_status_display() + (" · " + _("duplicate") if check.has_duplicate else ""),
            }
        )
    return items


def dashboard(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    _require_reviewer(request)
    site_name = model_admin.admin_site.name
    pending_ids = IdentityDocument.objects.filter(status=IdentityDocument.Status.PENDING).select_related("user").order_by(
        "submitted_at", "pk"
    )
    queues = [
        Queue(
            key="ids",
            title=_("IDs to review"),
            help=_("Contractors waiting for the ID verified badge."),
            count=pending_ids.count(),
            oldest=pending_ids.values_list("submitted_at", flat=True).first(),
            items=[
                {
                    "url": reverse(f"{site_name}:accounts_verification_id", args=[doc.public_id]),
                    "label": doc.user.get_full_name(),
                    "who": doc.user.email,
                    "since": doc.submitted_at,
                    "detail": _("ID document and selfie"),
                }
                for doc in pending_ids[:QUEUE_LIMIT]
            ],
        )
    ]
    photo = _photo_checks()
    if photo is not None:
        for key, title, help_text, qs in (
            ("review", _("Photo verdicts needing review"), _("The automatic check wasn't sure, or the AI couldn't answer."), photo.checks_needing_review()),
            ("failed", _("Failed checks"), _("Photos the automatic check failed; the customer was told."), photo.failed_checks()),
            ("duplicates", _("Flagged duplicates"), _("A proof photo matched an earlier photo on the platform."), photo.flagged_duplicates()),
        ):
            queues.append(
                Queue(
                    key=key,
                    title=title,
                    help=help_text,
                    count=qs.count(),
                    oldest=qs.values_list("created_at", flat=True).first(),
                    items=_photo_items(qs, site_name),
                )
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Verification dashboard"),
        "queues": queues,
        "photo_checks_available": photo is not None,
        "recent": AuditEntry.objects.select_related("actor")[:15],
        "now": timezone.now(),
        "queue_limit": QUEUE_LIMIT,
    }
    return render(request, "admin/accounts/verification/dashboard.html", context)


def id_review(request: HttpRequest, model_admin: admin.ModelAdmin, public_id) -> HttpResponse:
    _require_reviewer(request)
    site_name = model_admin.admin_site.name
    doc = get_object_or_404(IdentityDocument.objects.select_related("user", "reviewed_by"), public_id=public_id)
    form = ReviewForm()
    status = 200
    if request.method == "POST":
        form = ReviewForm(request.POST)
        decision = request.POST.get("decision", "")
        if form.is_valid():
            try:
                verification.id_review(doc, by=request.user, decision=decision, reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                if "reason" in exc.fields:
                    form.add_error("reason", exc.fields["reason"])
                else:
                    messages.error(request, exc.message)
                doc.refresh_from_db()  # another reviewer may have decided meanwhile
                status = exc.status_code
            else:
                done = _("approved") if decision == "approve" else _("rejected")
                messages.success(
                    request,
                    _("ID of %(name)s %(done)s. They have been notified.") % {"name": doc.user.get_full_name(), "done": done},
                )
                return redirect(f"{site_name}:accounts_verification")
        else:
            status = 400
    person = doc.user
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Review ID: %(name)s") % {"name": person.get_full_name()},
        "doc": doc,
        "person": person,
        "badges": selectors.user_badges(person),
        "photo_url": selectors.user_photo_url(person),
        "earlier": IdentityDocument.objects.filter(user=person).exclude(pk=doc.pk).order_by("-submitted_at")[:10],
        "audit": AuditEntry.objects.filter(subject_type__model="identitydocument", subject_id=str(doc.pk))[:20],
        "form": form,
        "dashboard_url": reverse(f"{site_name}:accounts_verification"),
    }
    return render(request, "admin/accounts/verification/id_review.html", context, status=status)


def photo_review(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    _require_reviewer(request)
    photo = _photo_checks()
    if photo is None:  # pragma: no cover
        raise PermissionDenied
    from tasks.models import PhotoCheck, TaskPhoto

    site_name = model_admin.admin_site.name
    check = get_object_or_404(
        PhotoCheck.objects.select_related("proof__task__customer", "proof__contractor", "reviewed_by"), pk=pk
    )
    form = ReviewForm()
    status = 200
    if request.method == "POST":
        form = ReviewForm(request.POST)
        decision = request.POST.get("decision", "")
        if form.is_valid():
            try:
                photo.photo_check_review(check, by=request.user, decision=decision, reason=form.cleaned_data["reason"])
            except ApplicationError as exc:
                for field, errors in exc.fields.items():
                    form.add_error("reason" if field == "reason" else None, errors)
                if not exc.fields:
                    messages.error(request, exc.message)
                check.refresh_from_db()
                status = exc.status_code
            else:
                messages.success(
                    request,
                    _("Photo check for “%(title)s” marked %(decision)s. The customer and the contractor have been notified.")
                    % {"title": check.proof.task.title, "decision": decision},
                )
                return redirect(f"{site_name}:accounts_verification")
        else:
            status = 400
    task = check.proof.task
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Review photos: %(title)s") % {"title": task.title},
        "check": check,
        "task": task,
        "proof": check.proof,
        "before": TaskPhoto.objects.filter(task=task, kind=TaskPhoto.Kind.PROBLEM).order_by("pk"),
        "after": check.proof.photos.order_by("pk"),
        "duplicates": photo.duplicate_matches(check),
        "verdict_json": json.dumps(check.ai_verdict, indent=2, ensure_ascii=False) if check.ai_verdict else "",
        "findings_json": json.dumps(check.local_findings, indent=2, ensure_ascii=False, default=str) if check.local_findings else "",
        "reviewable": check.reviewed_at is None and check.status in ("needs_review", "fail"),
        "audit": AuditEntry.objects.filter(subject_type__model="photocheck", subject_id=str(check.pk))[:20],
        "form": form,
        "dashboard_url": reverse(f"{site_name}:accounts_verification"),
    }
    return render(request, "admin/accounts/verification/photo_review.html", context, status=status)
