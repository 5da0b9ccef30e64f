"""Notifications: the in-app centre, and the email and SMS sends behind it.

``notify()`` is the one door. It reads the user's channel preferences for the
kind of event (a ``NotificationPreference`` row, or the defaults below),
writes a ``Notification`` (deduplicated on ``(user, dedupe_key)``), and after
commit pushes it to the user's socket group and queues the email/SMS sends as
Celery tasks. The push and the queueing are doorbells: Redis being down is
logged and never undoes or breaks the write.

New messages are in-app only here; their email is the per-conversation digest
(``messaging.tasks.send_message_digests``), never one email per message.

Unsubscribe links are signed (``TimestampSigner``, salt
``notifications.unsubscribe``) so they work without logging in, and carry the
user's public id and a kind (or ``all``): a link only ever changes its own
user's email preference.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError, NotFound
from core.realtime import send_to_group

from .models import Notification, NotificationPreference

if TYPE_CHECKING:
    from accounts.models import User
    from tasks.models import Task

logger = logging.getLogger(__name__)

Kind = Notification.Kind
KINDS: tuple[str, ...] = tuple(Kind.values)

# Defaults when the user has no preference row for a kind. In-app is on for
# everything; email for what a person acts on (and the message digest); SMS
# is opt-in, only for the urgent kinds, and only with a phone number.
EMAIL_DEFAULT_KINDS = frozenset(
    {Kind.OFFER_ACCEPTED, Kind.OFFER_DECLINED, Kind.NEW_OFFER, Kind.TASK_UPDATE, Kind.NEW_MESSAGE}
)
SMS_KINDS = frozenset({Kind.JOB_STARTING, Kind.CHECKED_IN})
# Kinds whose email is sent per notification. New messages are emailed by the
# digest job instead, gathered per conversation.
DIGEST_KINDS = frozenset({Kind.NEW_MESSAGE})

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
UNSUBSCRIBE_ALL = "all"
# An unsubscribe link in an old email should still work; a year is generous
# without making leaked links eternal.
UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600


def user_group(user: User) -> str:
    return f"user.{user.public_id}"


# --- Preferences -------------------------------------------------------------


@dataclass(frozen=True)
class Channels:
    in_app: bool
    email: bool
    sms: bool


def default_channels(kind: str) -> Channels:
    return Channels(in_app=True, email=kind in EMAIL_DEFAULT_KINDS, sms=False)


def sms_allowed(kind: str) -> bool:
    return kind in SMS_KINDS


def preferences_get(user: User) -> dict[str, Channels]:
    """Every kind's channels for ``user``: their saved rows over the defaults."""
    prefs = {kind: default_channels(kind) for kind in KINDS}
    for row in NotificationPreference.objects.filter(user=user):
        if row.kind in prefs:
            prefs[row.kind] = Channels(in_app=row.in_app, email=row.email, sms=row.sms and sms_allowed(row.kind))
    return prefs


def preference_for(user: User, kind: str) -> Channels:
    # At most one row (unique per user and kind): no ORDER BY needed.
    row = next(iter(NotificationPreference.objects.filter(user=user, kind=kind).order_by()[:1]), None)
    if row is None:
        return default_channels(kind)
    return Channels(in_app=row.in_app, email=row.email, sms=row.sms and sms_allowed(kind))


def preferences_set(*, user: User, values: dict[str, dict[str, bool]]) -> dict[str, Channels]:
    """Save channels per kind for ``user`` (all or nothing).

    ``values`` maps a kind to ``{"in_app": bool, "email": bool, "sms": bool}``;
    kinds left out keep what they had. SMS is refused for kinds that don't
    allow it and when the user has no phone number. The user row is locked so
    two saves at once apply one after the other.
    """
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Channels] = {}
    for kind, channels in values.items():
        if kind not in KINDS:
            errors.setdefault(kind, []).append(_("Unknown kind of notification."))
            continue
        wants_sms = bool(channels.get("sms", False))
        if wants_sms and not sms_allowed(kind):
            errors.setdefault(kind, []).append(
                _("Text messages are only sent when a job starts within the hour or the contractor checks in.")
            )
        elif wants_sms and not user.phone:
            errors.setdefault(kind, []).append(_("Add a phone number to your profile to get text messages."))
        cleaned[kind] = Channels(
            in_app=bool(channels.get("in_app", False)), email=bool(channels.get("email", False)), sms=wants_sms
        )
    if errors:
        raise ApplicationError(_("Some choices can't be saved; see below."), "invalid_preferences", fields=errors)

    from accounts.models import User as UserModel

    with transaction.atomic():
        UserModel.objects.select_for_update(no_key=True).only("pk").get(pk=user.pk)
        for kind, channels in cleaned.items():
            NotificationPreference.objects.update_or_create(
                user=user, kind=kind, defaults={"in_app": channels.in_app, "email": channels.email, "sms": channels.sms}
            )
    return preferences_get(user)


def _email_off(user: User, kinds: Iterable[str]) -> None:
    from accounts.models import User as UserModel

    with transaction.atomic():
        UserModel.objects.select_for_update(no_key=True).only("pk").get(pk=user.pk)
        current = preferences_get(user)
        for kind in kinds:
            channels = current[kind]
            NotificationPreference.objects.update_or_create(
                user=user, kind=kind, defaults={"in_app": channels.in_app, "email": False, "sms": channels.sms}
            )


# --- Unsubscribe links -------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user: User, kind: str) -> str:
    if kind != UNSUBSCRIBE_ALL and kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return _signer().sign_object({"u": str(user.public_id), "k": kind})


def unsubscribe_url(user: User, kind: str) -> str:
    return settings.SITE_URL + reverse("notifications:unsubscribe", args=[unsubscribe_token(user, kind)])


@dataclass(frozen=True)
class Unsubscribe:
    user: User
    kind: str  # a Notification.Kind value or "all"

    @property
    def label(self) -> str:
        """What the link stops, for sentences like "Stop %(label)s"."""
        if self.kind == UNSUBSCRIBE_ALL:
            return _("all notification emails")
        return _("“%(kind)s” emails") % {"kind": Kind(self.kind).label}


def unsubscribe_read(token: str) -> Unsubscribe:
    """The user and kind a link is for, or NotFound for a bad, tampered or old link."""
    from accounts.models import User as UserModel

    try:
        data = _signer().unsign_object(token, max_age=UNSUBSCRIBE_MAX_AGE)
        public_id, kind = data["u"], data["k"]
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFound(_("This unsubscribe link is not valid. Open the newest email, or sign in to change your settings.")) from exc
    if kind != UNSUBSCRIBE_ALL and kind not in KINDS:
        raise NotFound(_("This unsubscribe link is not valid."))
    user = UserModel.objects.filter(public_id=public_id, is_active=True).first()
    if user is None:
        raise NotFound(_("This unsubscribe link is not valid."))
    return Unsubscribe(user=user, kind=kind)


def unsubscribe_apply(token: str) -> Unsubscribe:
    """Turn email off for the link's kind (or every kind) for the link's user."""
    target = unsubscribe_read(token)
    _email_off(target.user, KINDS if target.kind == UNSUBSCRIBE_ALL else [target.kind])
    return target


# --- Writing and reading notifications --------------------------------------


def kind_label(kind: str) -> str:
    """The kind's label in the active language (the kind itself if unknown).
    Not ``get_kind_display()``: that rebuilds a dict of every choice on each
    call, measurable on the chat socket's send path (bench/bench_chat.py)."""
    try:
        return str(Notification.Kind(kind).label)
    except ValueError:
        return kind


def notification_payload(notification: Notification) -> dict[str, Any]:
    return {
        "id": str(notification.public_id),
        "kind": notification.kind,
        "kind_label": kind_label(notification.kind),
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
    }


def unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def _group_send(group: str, event: dict[str, Any]) -> None:
    """Best effort: a lost push is recovered by the page's next load or the
    socket's next connect (which sends the count); the write already stands.
    From a server's worker thread it is queued on the event loop, not waited
    for (core.realtime)."""
    send_to_group(group, event, what="Could not push %s to %s")


def _queue(task_name: str, notification_id: int) -> None:
    from . import tasks as celery_tasks

    try:
        getattr(celery_tasks, task_name).delay(notification_id)
    except Exception:  # noqa: BLE001 - broker down: the row keeps emailed_at empty
        logger.exception("Could not queue %s for notification %s", task_name, notification_id)


def notify(
    user: User,
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    task: Task | None = None,
    dedupe_key: str = "",
    email: bool = True,
    channels: Channels | None = None,
) -> Notification | None:
    """Record a notification for ``user`` and, after commit, push and send it.

    ``email=False`` is for callers that send their own, richer email for the
    event (tasks/notify.py); they ask ``email_wanted()`` and add
    ``unsubscribe_email_parts()`` themselves, so the user gets one email.
    ``channels`` is the user's ``preference_for(user, kind)`` when the caller
    read it already (message_send reads it before taking its row lock).

    Returns None when the user wants nothing for this kind or when
    ``dedupe_key`` was already used for them (a retried job). With in-app off
    but email or SMS on, the row is still written (it drives the sends and the
    history) but born read, so it neither counts nor pushes. Safe to call
    inside the caller's transaction: the insert runs in a savepoint.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if user is None or not user.is_active:
        return None
    if channels is None:
        channels = preference_for(user, kind)
    wants_email = email and channels.email and kind not in DIGEST_KINDS and bool(user.email)
    wants_sms = channels.sms and sms_allowed(kind) and bool(user.phone)
    if not (channels.in_app or wants_email or wants_sms):
        return None  # also: in-app off and the caller emails by itself
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                user=user,
                kind=kind,
                title=title[:200],
                body=body[:1000],
                url=url[:300],
                task=task,
                dedupe_key=dedupe_key[:120],
                read_at=None if channels.in_app else timezone.now(),
            )
    except IntegrityError:
        if dedupe_key and Notification.objects.filter(user=user, dedupe_key=dedupe_key[:120]).exists():
            return None
        raise

    if channels.in_app:
        group = user_group(user)

        def push() -> None:
            _group_send(
                group,
                {
                    "type": "notification",
                    "notification": notification_payload(notification),
                    "unread": unread_count(user),
                },
            )

        transaction.on_commit(push)
    if wants_email:
        transaction.on_commit(lambda: _queue("send_notification_email", notification.pk))
    if wants_sms:
        transaction.on_commit(lambda: _queue("send_notification_sms", notification.pk))
    return notification


def notification_mark_read(user: User, public_ids: Iterable[str] | str) -> int:
    """Mark some (by public id) or ``"all"`` of the user's notifications read.

    Ids that aren't the user's (or aren't ids at all) are NotFound and nothing
    changes. Returns how many became read; pushes the new unread count.
    """
    now = timezone.now()
    with transaction.atomic():
        mine = Notification.objects.filter(user=user)
        if public_ids == "all":
            changed = mine.filter(read_at__isnull=True).update(read_at=now)
        else:
            wanted = set()
            for raw in public_ids:
                try:
                    wanted.add(str(uuid.UUID(str(raw))))
                except ValueError as exc:
                    raise NotFound(_("Notification not found.")) from exc
            if not wanted:
                return 0
            rows = list(mine.select_for_update(no_key=True).filter(public_id__in=wanted).values_list("public_id", flat=True))
            if len(rows) != len(wanted):
                raise NotFound(_("Notification not found."))
            changed = mine.filter(public_id__in=wanted, read_at__isnull=True).update(read_at=now)
        if changed:
            group = user_group(user)
            transaction.on_commit(lambda: _group_send(group, {"type": "unread", "unread": unread_count(user)}))
    return changed


def notification_get_for_user(user: User, public_id) -> Notification:
    """The user's own notification, or NotFound (also for everyone else's)."""
    notification = Notification.objects.filter(user=user, public_id=public_id).first()
    if notification is None:
        raise NotFound(_("Notification not found."))
    return notification


def notifications_for_user(user: User, *, limit: int = 50) -> list[Notification]:
    return list(Notification.objects.filter(user=user).order_by("-created_at", "-pk")[:limit])


# --- Email and SMS sends (called by the Celery tasks) ------------------------


def unsubscribe_headers(url: str) -> dict[str, str]:
    # RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to the URL.
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def email_wanted(user: User, kind: str) -> bool:
    """Whether ``user`` wants emails of this kind (their preference or the default)."""
    return bool(user.is_active and user.email and preference_for(user, kind).email)


def unsubscribe_email_parts(user: User, kind: str) -> tuple[str, dict[str, str]]:
    """The footer (with the no-login unsubscribe link) and the List-Unsubscribe
    headers that every notification email carries."""
    url = unsubscribe_url(user, kind)
    footer = render_to_string(
        "messaging/email/unsubscribe_footer.txt", {"unsubscribe_url": url, "kind_label": Kind(kind).label}
    )
    return footer, unsubscribe_headers(url)


def _absolute(url: str) -> str:
    if url.startswith("/"):
        return settings.SITE_URL + url
    return url


def notification_send_email(notification_id: int) -> bool:
    """Email one notification once. The row lock and ``emailed_at`` make a
    retried or duplicated task a no-op; a preference turned off since the
    notification was written is honoured. Returns whether an email went out."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(no_key=True).select_related("user").filter(pk=notification_id).first()
        )
        if notification is None or notification.emailed_at is not None:
            return False
        user = notification.user
        if not user.is_active or not user.email or not preference_for(user, notification.kind).email:
            return False
        unsubscribe = unsubscribe_url(user, notification.kind)
        context = {
            "recipient_name": user.get_short_name() if user.full_name else "",
            "notification": notification,
            "link": _absolute(notification.url),
            "unsubscribe_url": unsubscribe,
            "kind_label": notification.get_kind_display(),
            "site_url": settings.SITE_URL,
        }
        message = EmailMessage(
            subject=f"[BittieTasks] {notification.title}",
            body=render_to_string("messaging/email/notification.txt", context),
            to=[user.email],
            headers=unsubscribe_headers(unsubscribe),
        )
        # Sent inside the lock: a failure raises, rolls back and leaves
        # emailed_at empty for the retry.
        message.send()
        notification.emailed_at = timezone.now()
        notification.save(update_fields=["emailed_at"])
    return True


def notification_send_sms(notification_id: int) -> bool:
    """Text one notification once (urgent kinds only, with a phone number)."""
    from .sms import get_sms_gateway

    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(no_key=True).select_related("user").filter(pk=notification_id).first()
        )
        if notification is None or notification.sms_sent_at is not None:
            return False
        user = notification.user
        if (
            not user.is_active
            or not user.phone
            or not sms_allowed(notification.kind)
            or not preference_for(user, notification.kind).sms
        ):
            return False
        text = notification.title
        if notification.url:
            text = f"{text} {_absolute(notification.url)}"
        get_sms_gateway().send(to=user.phone, body=f"BittieTasks: {text}"[:320])
        notification.sms_sent_at = timezone.now()
        notification.save(update_fields=["sms_sent_at"])
    return True
