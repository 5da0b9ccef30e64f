"""Identity verification (phone codes, ID documents) and the audit log.

Every staff decision about a person or their work goes through a service
here or in ``tasks.verification`` and is written with ``audit_record`` in
the same transaction: if the decision rolls back, so does its entry.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import IO, Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.errors import ApplicationError, Conflict, PermissionDenied
from core.images import ImageRejected, clean_image
from messaging.sms import SMSRejected, SMSUnavailable, get_sms_gateway

from .models import AuditEntry, IdentityDocument, PhoneVerification, User
from .services import user_mark_id_verified

REVIEW_PERMISSION = "accounts.review_verifications"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@transaction.atomic
def audit_record(
    actor: User | None,
    action: str,
    subject: models.Model | None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log: ``actor`` (None for the system)
    did ``action`` (a short dotted name, e.g. ``"id.approve"``) to
    ``subject`` (any saved model instance, or None) because ``reason``.

    Call it inside the transaction of the decision it records. ``data`` must
    be JSON-serialisable (ids as strings). Entries are never changed or
    deleted afterwards.
    """
    if not action or len(action) > 64:
        raise ValueError("An audit action is a short name of at most 64 characters.")
    subject_type = None
    subject_id = ""
    subject_repr = ""
    if subject is not None:
        if subject.pk is None:
            raise ValueError("Audit a saved object: it has no primary key yet.")
        subject_type = ContentType.objects.get_for_model(subject, for_concrete_model=True)
        subject_id = str(subject.pk)
        subject_repr = str(subject)[:200]
    actor_repr = ""
    if actor is not None and actor.is_authenticated:
        actor_repr = actor.email[:254]
    else:
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_repr=actor_repr,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_repr=subject_repr,
        reason=reason or "",
        data=data or {},
    )


# --- Phone: a one-time code by SMS ------------------------------------------


class TooSoon(ApplicationError):
    status_code = 429
    default_code = "resend_too_soon"


def phone_normalize(raw: str) -> str:
    """A typed number as E.164 ("+14155550100"). Ten digits, or eleven
    starting with 1, are taken as US/Canada; anything else needs its "+"
    and country code. Raises ApplicationError on the ``phone`` field."""
    text = (raw or "").strip()
    if not text:
        raise ApplicationError(_("Enter your mobile number."), "invalid_phone", fields={"phone": [_("Enter your mobile number.")]})
    if any(ch not in "0123456789+-(). " for ch in text) or "+" in text[1:]:
        message = _("Use digits only, like +1 415 555 0100.")
        raise ApplicationError(message, "invalid_phone", fields={"phone": [message]})
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("+"):
        e164 = "+" + digits
    elif len(digits) == 10:
        e164 = "+1" + digits
    elif len(digits) == 11 and digits.startswith("1"):
        e164 = "+" + digits
    else:
        e164 = ""
    if not E164.match(e164) or (e164.startswith("+1") and len(e164) != 12):
        message = _("Enter a mobile number with its area code, like (415) 555-0100, or +44 7700 900123 outside the US.")
        raise ApplicationError(message, "invalid_phone", fields={"phone": [message]})
    return e164


def _code_hash(user_id: int, phone: str, code: str) -> str:
    # Keyed with SECRET_KEY and bound to the user and number: a dumped row
    # can't be reversed (10^6 codes, but the key is needed to try them) or
    # replayed for another account.
    return salted_hmac("accounts.phone_code", f"{user_id}:{phone}:{code}", algorithm="sha256").hexdigest()


def _seconds(delta: dt.timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


def phone_send_code(user: User, phone: str, *, now: dt.datetime | None = None) -> PhoneVerification:
    """Text a fresh 6-digit code to ``phone`` for ``user`` to confirm.

    Replaces any earlier code (and its attempt count). Refused with
    ``resend_too_soon`` (429, ``extra["retry_after"]`` seconds) within 60 s
    of the last send, and with ``too_many_sends`` after 5 sends in a UTC day.
    The user's row is locked for the send, so two clicks send one code; if
    the gateway refuses or is down nothing is recorded (no cooldown spent).
    """
    if not user.is_authenticated or not user.is_active:
        raise PermissionDenied(_("Log in to verify a phone number."), "not_authenticated")
    e164 = phone_normalize(phone)
    now = now or timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        if locked.phone_verified_at is not None and locked.phone == e164:
            raise Conflict(_("This number is already verified."), "already_verified")
        challenge = PhoneVerification.objects.select_for_update(no_key=True).filter(user=locked).first()
        if challenge is not None:
            wait = challenge.last_sent_at + dt.timedelta(seconds=PhoneVerification.RESEND_COOLDOWN_SECONDS) - now
            if wait > dt.timedelta(0):
                seconds = _seconds(wait)
                raise TooSoon(
                    _("We just sent a code. You can ask for another in %(seconds)d seconds.") % {"seconds": seconds},
                    extra={"retry_after": seconds},
                )
            if challenge.sends_day == now.date() and challenge.sends_today >= PhoneVerification.MAX_SENDS_PER_DAY:
                raise TooSoon(
                    _("You have asked for %(count)d codes today. Try again tomorrow.")
                    % {"count": PhoneVerification.MAX_SENDS_PER_DAY},
                    "too_many_sends",
                )
        else:
            challenge = PhoneVerification(user=locked, sends_day=now.date(), sends_today=0)
        sends_today = challenge.sends_today + 1 if challenge.sends_day == now.date() else 1
        challenge.phone = e164
        challenge.code_hash = _code_hash(locked.pk, e164, code)
        challenge.expires_at = now + dt.timedelta(seconds=PhoneVerification.CODE_TTL_SECONDS)
        challenge.attempts = 0
        challenge.last_sent_at = now
        challenge.sends_day = now.date()
        challenge.sends_today = sends_today
        challenge.verified_at = None
        challenge.save()
        # Sent under the lock and before commit: a failed send rolls the new
        # code back, and a second click waits here and then sees the cooldown.
        body = _("Your BittieTasks code is %(code)s. It expires in 10 minutes. Don't share it.") % {"code": code}
        try:
            get_sms_gateway().send(to=e164, body=body)
        except SMSRejected as exc:
            message = _("We can't send texts to this number. Check it, or use a mobile number.")
            raise ApplicationError(message, "sms_rejected", fields={"phone": [message]}) from exc
        except SMSUnavailable as exc:
            raise ApplicationError(
                _("We couldn't send the text just now. Try again in a minute."), "sms_unavailable"
            ) from exc
    return challenge


def phone_confirm(user: User, code: str, *, now: dt.datetime | None = None) -> User:
    """Check the code the user typed. On success the number becomes the
    account's phone with a "Phone verified" badge dated now (audited).

    Refusals: ``no_code`` (ask for one first), ``code_expired`` (after 10
    minutes), ``too_many_attempts`` (5 wrong codes: ask for a new one),
    ``wrong_code`` (counted, with the tries left). A wrong try is committed
    even though the call raises, so the limit holds across requests.
    """
    if not user.is_authenticated or not user.is_active:
        raise PermissionDenied(_("Log in to verify a phone number."), "not_authenticated")
    now = now or timezone.now()
    typed = "".join(ch for ch in (code or "") if not ch.isspace())
    if not typed.isdigit() or len(typed) != 6:
        message = _("Enter the 6-digit code from the text message.")
        raise ApplicationError(message, "invalid_code", fields={"code": [message]})
    with transaction.atomic():
        locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        challenge = PhoneVerification.objects.select_for_update(no_key=True).filter(user=locked).first()
        if challenge is None or challenge.verified_at is not None:
            raise ApplicationError(_("Ask for a code first."), "no_code")
        if challenge.attempts >= PhoneVerification.MAX_ATTEMPTS:
            message = _("Too many wrong codes. Ask for a new code.")
            raise ApplicationError(message, "too_many_attempts", fields={"code": [message]})
        if now >= challenge.expires_at:
            message = _("This code has expired. Ask for a new code.")
            raise ApplicationError(message, "code_expired", fields={"code": [message]})
        if constant_time_compare(_code_hash(locked.pk, challenge.phone, typed), challenge.code_hash):
            right = True
            challenge.verified_at = now
            challenge.save(update_fields=["verified_at"])
            locked.phone = challenge.phone
            locked.phone_verified_at = now
            locked.save(update_fields=["phone", "phone_verified_at"])
            audit_record(locked, "phone.verified", locked, data={"phone": challenge.phone})
        else:
            right = False
            challenge.attempts += 1
            challenge.save(update_fields=["attempts"])
            left = PhoneVerification.MAX_ATTEMPTS - challenge.attempts
    if not right:
        if left <= 0:
            message = _("That code is not right, and that was the last try. Ask for a new code.")
            raise ApplicationError(message, "too_many_attempts", fields={"code": [message]})
        message = ngettext(
            "That code is not right. %(left)d try left.", "That code is not right. %(left)d tries left.", left
        ) % {"left": left}
        raise ApplicationError(message, "wrong_code", fields={"code": [message]}, extra={"tries_left": left})
    user.phone, user.phone_verified_at = locked.phone, locked.phone_verified_at
    return locked


def phone_challenge(user: User) -> PhoneVerification | None:
    """The user's open (unconfirmed) code, if any."""
    if not user.is_authenticated:
        return None
    return PhoneVerification.objects.filter(user=user, verified_at__isnull=True).first()


# --- ID: a document and a selfie for staff to check -------------------------


def id_document_max_bytes() -> int:
    return int(getattr(settings, "ID_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024))


def id_retention_days() -> int:
    return int(getattr(settings, "ID_DOCUMENT_RETENTION_DAYS", 30))


def id_submit(user: User, document: IO[bytes], selfie: IO[bytes]) -> IdentityDocument:
    """A contractor sends an ID document and a selfie for review.

    Both files are checked by content and re-encoded (EXIF dropped) before
    anything is written; either being refused writes nothing. Refused for
    non-contractors, for an account already ID-verified, and while an earlier
    submission waits for review (the user row is locked; a partial unique
    index backs it).
    """
    if not user.is_authenticated or not user.is_active:
        raise PermissionDenied(_("Log in to verify your ID."), "not_authenticated")
    if not user.is_contractor:
        raise PermissionDenied(_("ID verification is for contractors."), "not_contractor")
    fields: dict[str, list[str]] = {}
    cleaned = {}
    for name, upload in (("document", document), ("selfie", selfie)):
        if upload is None:
            fields[name] = [_("Choose a photo.")]
            continue
        try:
            cleaned[name] = clean_image(upload, max_bytes=id_document_max_bytes(), max_side=2000, quality=90)
        except ImageRejected as exc:
            fields[name] = [str(exc)]
    if fields:
        raise ApplicationError(next(iter(fields.values()))[0], "invalid_image", fields=fields)

    stored: list[str] = []
    try:
        with transaction.atomic():
            locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
            if locked.id_verified_at is not None:
                raise Conflict(_("Your ID is already verified."), "already_verified")
            if IdentityDocument.objects.filter(user=locked, status=IdentityDocument.Status.PENDING).exists():
                raise Conflict(_("Your ID is already waiting for review. We'll tell you when it's checked."), "already_pending")
            doc = IdentityDocument(user=locked)
            doc.document.save("document.jpg", cleaned["document"].content, save=False)
            stored.append(doc.document.name)
            doc.selfie.save("selfie.jpg", cleaned["selfie"].content, save=False)
            stored.append(doc.selfie.name)
            doc.save()
            audit_record(locked, "id.submitted", doc)
    except Exception:
        # Files reach storage before the row commits; a refusal or a crash
        # leaves no orphan ID image behind.
        for name in stored:
            default_storage.delete(name)
        raise
    return doc


def _require_reviewer(by: User) -> None:
    if not (by.is_authenticated and by.is_active and by.is_staff and by.has_perm(REVIEW_PERMISSION)):
        raise PermissionDenied(_("You don't have permission to review verifications."), "not_reviewer")


def id_review(
    doc: IdentityDocument, *, by: User, decision: str, reason: str, now: dt.datetime | None = None
) -> IdentityDocument:
    """Staff approve or reject a pending ID submission, with a reason.

    Needs staff with ``accounts.review_verifications``. Locks the document;
    a second decision is a Conflict. Approval gives the user the dated "ID
    verified" badge (``user_mark_id_verified``). Either way the files are
    due for deletion after ``ID_DOCUMENT_RETENTION_DAYS``, the decision is
    audited in the same transaction, and the user is notified after commit.
    """
    _require_reviewer(by)
    if decision not in ("approve", "reject"):
        raise ApplicationError(_("Choose approve or reject."), "invalid_decision", fields={"decision": [_("Choose approve or reject.")]})
    reason = (reason or "").strip()
    if not reason:
        message = _("Give a reason: the person is told it, and it goes into the audit log.")
        raise ApplicationError(message, "reason_required", fields={"reason": [message]})
    if len(reason) > 1000:
        message = _("Use at most 1,000 characters.")
        raise ApplicationError(message, "reason_too_long", fields={"reason": [message]})
    now = now or timezone.now()
    with transaction.atomic():
        locked = IdentityDocument.objects.select_for_update(no_key=True).select_related("user").get(pk=doc.pk)
        if locked.status != IdentityDocument.Status.PENDING:
            raise Conflict(
                _("This ID was already %(status)s.") % {"status": locked.get_status_display().lower()}, "already_decided"
            )
        locked.status = IdentityDocument.Status.APPROVED if decision == "approve" else IdentityDocument.Status.REJECTED
        locked.reviewed_by = by
        locked.reviewed_at = now
        locked.reason = reason
        locked.delete_after = now + dt.timedelta(days=id_retention_days())
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "reason", "delete_after"])
        if decision == "approve":
            user_mark_id_verified(user=locked.user, at=now)
        audit_record(
            by,
            f"id.{decision}",
            locked,
            reason,
            data={"user": str(locked.user.public_id), "delete_after": locked.delete_after.isoformat()},
        )
        _notify_id_decision(locked)
    doc.status, doc.reviewed_by, doc.reviewed_at = locked.status, locked.reviewed_by, locked.reviewed_at
    doc.reason, doc.delete_after = locked.reason, locked.delete_after
    return locked


def _notify_id_decision(doc: IdentityDocument) -> None:
    from messaging.models import Notification
    from messaging.notifications import notify

    if doc.status == IdentityDocument.Status.APPROVED:
        title = _("Your ID is verified")
        body = _("Customers now see the “ID verified” badge on your profile and offers.")
    else:
        title = _("We couldn't verify your ID")
        body = _("Reason: %(reason)s You can send new photos.") % {"reason": doc.reason.rstrip(".") + "."}
    notify(
        doc.user,
        # No identity kind exists yet; task updates are the closest the
        # preferences offer (in-app and email by default).
        kind=Notification.Kind.TASK_UPDATE,
        title=str(title),
        body=str(body),
        url=reverse("accounts:verify_id"),
        dedupe_key=f"id-review:{doc.public_id}",
    )


def id_documents_purge(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Delete the files of decided ID submissions whose retention has passed.

    The beat job calls this. Rows locked by another run are skipped. Files
    are deleted before the row is marked (deleting a missing file is fine),
    so a crash in between is retried, never leaves a file behind. The row
    stays as the record of the decision. Returns how many were purged.
    """
    now = now or timezone.now()
    purged = 0
    with transaction.atomic():
        due = list(
            IdentityDocument.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(delete_after__lte=now, files_deleted_at__isnull=True)
            .exclude(status=IdentityDocument.Status.PENDING)
            .order_by("delete_after")[:limit]
        )
        for doc in due:
            for name in (doc.document.name, doc.selfie.name):
                if name:
                    default_storage.delete(name)
            doc.document = ""
            doc.selfie = ""
            doc.files_deleted_at = now
            doc.save(update_fields=["document", "selfie", "files_deleted_at"])
            audit_record(None, "id.files_deleted", doc, _("Retention period ended."))
            purged += 1
    return purged


def id_latest(user: User) -> IdentityDocument | None:
    if not user.is_authenticated:
        return None
    return IdentityDocument.objects.filter(user=user).order_by("-submitted_at", "-pk").first()


def id_reviewer(user: User) -> bool:
    """Whether ``user`` may see ID files and photo verdicts and decide them."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(REVIEW_PERMISSION))
