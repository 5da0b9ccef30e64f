"""Phone and ID verification pages, and the staff-only ID file view.

Who sees ID files: only active staff with ``accounts.review_verifications``
(everyone else gets a 404, so a file's existence isn't revealed). The owner
sees the status and the reason of the decision, but not the files once sent:
an ID image is the most damaging thing to leak from a hijacked session, and
the owner already has the original.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import ApplicationError
from messaging.sms import sms_offline

from . import verification
from .forms import add_service_errors
from .forms_verification import CodeForm, IdentityForm, PhoneForm
from .models import IdentityDocument


@login_required
@require_http_methods(["GET", "POST"])
def verify_phone(request: HttpRequest) -> HttpResponse:
    user = request.user
    challenge = verification.phone_challenge(user)
    phone_form = PhoneForm(initial={"phone": challenge.phone if challenge else user.phone})
    code_form = CodeForm()
    status = 200
    resend_error = ""
    action = request.POST.get("action") if request.method == "POST" else None

    if action in ("send", "resend"):
        if action == "resend" and challenge is not None:
            phone_form = PhoneForm({"phone": challenge.phone})
        else:
            phone_form = PhoneForm(request.POST)
        if phone_form.is_valid():
            try:
                sent = verification.phone_send_code(user, phone_form.cleaned_data["phone"])
            except ApplicationError as exc:
                if action == "resend" and not exc.fields:
                    resend_error = exc.message  # shown beside the button that was pressed
                else:
                    add_service_errors(phone_form, exc)
                status = exc.status_code
            else:
                messages.success(request, _("We texted a 6-digit code to %(phone)s.") % {"phone": sent.phone})
                return redirect("accounts:verify_phone")
        else:
            status = 400
    elif action == "confirm":
        code_form = CodeForm(request.POST)
        if code_form.is_valid():
            try:
                verification.phone_confirm(user, code_form.cleaned_data["code"])
            except ApplicationError as exc:
                add_service_errors(code_form, exc)
                status = exc.status_code
            else:
                messages.success(request, _("Your phone number is verified."))
                return redirect("accounts:verify_phone")
        else:
            status = 400
    elif request.method == "POST":
        status = 400
        messages.error(request, _("Something went wrong with the form. Try again."))

    user.refresh_from_db(fields=["phone", "phone_verified_at"])
    context = {
        "challenge": verification.phone_challenge(user),
        "phone_form": phone_form,
        "code_form": code_form,
        "resend_error": resend_error,
        "sms_offline": sms_offline(),
    }
    return render(request, "accounts/verify/phone.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def verify_id(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = IdentityForm()
    status = 200
    if request.method == "POST":
        form = IdentityForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                verification.id_submit(user, form.cleaned_data["document"], form.cleaned_data["selfie"])
            except ApplicationError as exc:
                add_service_errors(form, exc)
                status = exc.status_code
            else:
                messages.success(request, _("Thanks! Staff will check your ID, usually within a working day."))
                return redirect("accounts:verify_id")
        else:
            status = 400
    latest = verification.id_latest(user)
    context = {
        "form": form,
        "latest": latest,
        "can_submit": user.is_contractor
        and user.id_verified_at is None
        and (latest is None or latest.status != IdentityDocument.Status.PENDING),
        "max_mb": verification.id_document_max_bytes() // (1024 * 1024),
        "retention_days": verification.id_retention_days(),
    }
    return render(request, "accounts/verify/id.html", context, status=status)


@require_GET
def id_file(request: HttpRequest, public_id, which: str) -> FileResponse:
    """An ID document or selfie, for reviewers only (404 for everyone else)."""
    if which not in ("document", "selfie") or not verification.id_reviewer(request.user):
        raise Http404
    doc = get_object_or_404(IdentityDocument, public_id=public_id)
    field = getattr(doc, which)
    if not field:
        raise Http404
    try:
        handle = default_storage.open(field.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type="image/jpeg")
    # Never kept by a shared browser cache or a proxy.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
