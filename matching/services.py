"""Writes for matching's product side: the outcome log, invitations, learned
preferences, smart alerts, time off, calendar feeds and imports.

Every function here is a service: one transaction, locking what it changes
(a user's row serialises their preference updates, alert counting and busy
blocks; a task's row serialises invitations to it). Reads live in
``matching.queries`` (``preferences_for`` and ``busy_intervals`` are
re-exported here for callers that look for them in services).

Hooks from other apps (``matching.hooks``) call the ``record_*`` functions
after their own transactions commit; each is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ContractorProfile, User
from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from messaging import notifications
from tasks.models import Offer, Task

from . import calendar as ics
from .models import (
    AlertLog,
    AlertSettings,
    BusyBlock,
    CalendarFeed,
    Invitation,
    MatchEvent,
    Preference,
    new_feed_secret,
)
from .queries import busy_intervals, preferences_for, time_zone_for, valid_time_zone  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

logger = logging.getLogger(__name__)

Kind = MatchEvent.Kind
S = Task.Status

# Alerts: how many of the best matches hear about a new task.
ALERT_TOP_N = getattr(settings, "MATCHING_ALERT_TOP_N", 5)
MAX_DAILY_CAP = 50
# Smart alerts and invitations use the "task status changes" notification
# kind: messaging has no kind of its own for them yet, and this one is
# in-app and email by default, as the contractor's settings say.
ALERT_NOTIFY_KIND = notifications.Kind.TASK_UPDATE
INVITE_NOTIFY_KIND = notifications.Kind.TASK_UPDATE

# Preference learning: how much one choice moves a weight, and its bounds. In
# one place (matching.features), which rebuilds the same weights "as of" any
# moment from the outcome log for the ranking features.
from .features import (  # noqa: E402
    PREF_BOUND,
    PREF_HIRED,
    PREF_OFFERED_CATEGORY,
    PREF_PASSED_OVER,
    PREF_REHIRED,
    PREF_SKIPPED_CATEGORY,
    PREF_TOOK_CATEGORY,
    PREF_WELL_REVIEWED,
)

# Time off: sane bounds for what a person enters by hand.
TIME_OFF_MAX = dt.timedelta(days=366)
TIME_OFF_HORIZON = dt.timedelta(days=730)
SUMMARY_MAX = 200


def _task_path(task: Task) -> str:
    return reverse("tasks:detail", args=[task.public_id])


def _lock_users(*user_ids: int) -> None:
    """Lock users' rows in a fixed order (the per-user serialisation point)."""
    ids = sorted({uid for uid in user_ids if uid})
    list(User.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


def _invalid(fields: dict[str, list[str]]) -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, "invalid", fields=fields)


# --- the outcome log ----------------------------------------------------------


def log_event(
    task: Task | int, contractor: User | int, kind: str, position: int | None = None, model_version: str = ""
) -> MatchEvent:
    """Append one outcome to the log the ranking model trains on. Runs in the
    caller's transaction (or its own); never updates or deletes."""
    if kind not in Kind.values:
        raise ValueError(f"unknown match event kind {kind!r}")
    if position is not None and not 0 <= position <= 32767:
        raise ValueError("position out of range")
    return MatchEvent.objects.create(
        task_id=task if isinstance(task, int) else task.pk,
        contractor_id=contractor if isinstance(contractor, int) else contractor.pk,
        kind=kind,
        position=position,
        model_version=(model_version or "")[:40],
    )


def log_shown(task_list: list[Task], contractor: User, *, model_version: str = "", offset: int = 0) -> int:
    """A page of tasks shown to a contractor, in order (one insert)."""
    rows = [
        MatchEvent(task_id=t.pk, contractor_id=contractor.pk, kind=Kind.SHOWN, position=offset + i + 1, model_version=model_version[:40])
        for i, t in enumerate(task_list)
    ]
    MatchEvent.objects.bulk_create(rows)
    return len(rows)


# --- preference learning -------------------------------------------------------


def _bump(user_id: int, delta: float, *, contractor_id: int | None = None, category_id: int | None = None) -> None:
    """Move one weight by ``delta`` within ±PREF_BOUND. The caller holds the
    user's row lock, so get-or-create then update cannot race."""
    if contractor_id is not None:
        pref, _created = Preference.objects.get_or_create(
            user_id=user_id, kind=Preference.Kind.CONTRACTOR, contractor_id=contractor_id
        )
    else:
        pref, _created = Preference.objects.get_or_create(
            user_id=user_id, kind=Preference.Kind.CATEGORY, category_id=category_id
        )
    Preference.objects.filter(pk=pref.pk).update(
        weight=Greatest(Least(F("weight") + Value(delta), Value(PREF_BOUND)), Value(-PREF_BOUND)),
        updated_at=timezone.now(),
    )


def _has_event(task_id: int, contractor_id: int, kind: str) -> bool:
    return MatchEvent.objects.filter(task_id=task_id, contractor_id=contractor_id, kind=kind).exists()


@transaction.atomic
def record_offered(*, task: Task, contractor: User) -> MatchEvent:
    """A contractor made an offer: log it, mark their invitation (if any)
    "offer made", and lean them towards the trade (once per task)."""
    _lock_users(contractor.pk)
    first_offer = not _has_event(task.pk, contractor.pk, Kind.OFFERED)
    event = log_event(task, contractor, Kind.OFFERED)
    Invitation.objects.filter(task=task, contractor=contractor).exclude(status=Invitation.Status.OFFERED).update(
        status=Invitation.Status.OFFERED
    )
    if first_offer:
        _bump(contractor.pk, PREF_OFFERED_CATEGORY, category_id=task.category_id)
    return event


@transaction.atomic
def record_accepted(*, task: Task, contractor: User) -> MatchEvent | None:
    """The customer hired ``contractor`` for ``task``: log it and learn from
    the choice. The customer leans towards the hired contractor (more if it
    is a re-hire) and a little away from the others who offered; the
    contractor leans towards the trade. Idempotent per (task, contractor)."""
    _lock_users(task.customer_id, contractor.pk)
    if _has_event(task.pk, contractor.pk, Kind.ACCEPTED):
        return None
    event = log_event(task, contractor, Kind.ACCEPTED)
    customer_id = task.customer_id
    rehire = (
        Task.objects.filter(customer_id=customer_id, contractor_id=contractor.pk)
        .exclude(pk=task.pk)
        .exclude(status=S.CANCELLED)
        .exists()
    )
    _bump(customer_id, PREF_HIRED + (PREF_REHIRED if rehire else 0.0), contractor_id=contractor.pk)
    passed_over = (
        Offer.objects.filter(task=task)
        .exclude(contractor_id=contractor.pk)
        .exclude(status=Offer.Status.WITHDRAWN)
        .values_list("contractor_id", flat=True)
        .distinct()
    )
    for other_id in sorted(set(passed_over)):
        if other_id != customer_id:
            _bump(customer_id, PREF_PASSED_OVER, contractor_id=other_id)
    _bump(contractor.pk, PREF_TOOK_CATEGORY, category_id=task.category_id)
    return event


@transaction.atomic
def record_completed(*, task: Task) -> MatchEvent | None:
    """The job was approved (by the customer or automatically). Idempotent."""
    if task.contractor_id is None:
        return None
    _lock_users(task.contractor_id)
    if _has_event(task.pk, task.contractor_id, Kind.COMPLETED):
        return None
    return log_event(task, task.contractor_id, Kind.COMPLETED)


@transaction.atomic
def record_review(*, task: Task, contractor_id: int, stars: int, reviewer_id: int) -> MatchEvent | None:
    """A published review of the contractor: 4+ stars is a "well reviewed"
    outcome and a lean of the customer towards them. Idempotent."""
    if stars < 4 or reviewer_id != task.customer_id or contractor_id != task.contractor_id:
        return None
    _lock_users(task.customer_id, contractor_id)
    if _has_event(task.pk, contractor_id, Kind.WELL_REVIEWED):
        return None
    event = log_event(task, contractor_id, Kind.WELL_REVIEWED)
    _bump(task.customer_id, PREF_WELL_REVIEWED, contractor_id=contractor_id)
    return event


@transaction.atomic
def task_skip(task: Task, *, by: User) -> MatchEvent | None:
    """A contractor says "Not for me" about an open task: logged as skipped,
    and they lean a little away from its trade. Once per task (a second
    press changes nothing and returns None)."""
    if not by.is_authenticated or not by.is_active or not by.is_contractor:
        raise PermissionDenied(_("Only contractors can skip tasks."), "not_contractor")
    if task.customer_id == by.pk:
        raise PermissionDenied(_("This is your own task."), "own_task")
    if task.status != S.OPEN:
        raise Conflict(_("This task is no longer open."), "task_not_open")
    _lock_users(by.pk)
    if _has_event(task.pk, by.pk, Kind.SKIPPED):
        return None
    event = log_event(task, by, Kind.SKIPPED)
    _bump(by.pk, PREF_SKIPPED_CATEGORY, category_id=task.category_id)
    return event


# --- invitations -----------------------------------------------------------------


def _lock_task(task: Task) -> Task:
    try:
        return Task.objects.select_for_update(no_key=True).get(pk=task.pk)
    except Task.DoesNotExist as exc:
        raise NotFound(_("This task no longer exists.")) from exc


@transaction.atomic
def invite(task: Task, *, by: User, contractor: User) -> Invitation:
    """The task's customer asks ``contractor`` to look at their open task.

    Who: the task's (verified) customer. Whom: an active contractor who has
    gone live with the task's trade, who is not the customer and has not been
    invited to this task or offered on it yet. Locks the task row. Writes the
    invitation and an ``invited`` outcome; notifies the contractor (in-app,
    and email/SMS as their settings say) after commit."""
    user_require_verified(by)
    task = _lock_task(task)
    if task.customer_id != by.pk:
        raise PermissionDenied(_("Only the customer who posted this task can invite pros to it."), "not_task_customer")
    if task.status != S.OPEN:
        raise Conflict(_("You can invite pros while the task is open for offers."), "task_not_open")
    if contractor.pk == by.pk:
        raise ApplicationError(_("You can't invite yourself."), "invite_self")
    profile = ContractorProfile.objects.filter(user_id=contractor.pk).first()
    if (
        not contractor.is_active
        or not contractor.is_contractor
        or profile is None
        or not profile.is_onboarded
        or not profile.trades.filter(pk=task.category_id).exists()
    ):
        raise ApplicationError(
            _("%(name)s doesn't take %(trade)s jobs on BittieTasks.")
            % {"name": contractor.public_name, "trade": task.category.name},
            "not_eligible",
        )
    if Invitation.objects.filter(task=task, contractor=contractor).exists():
        raise Conflict(_("You already invited %(name)s.") % {"name": contractor.public_name}, "already_invited")
    if Offer.objects.filter(task=task, contractor=contractor, status=Offer.Status.PENDING).exists():
        raise Conflict(
            _("%(name)s has already made an offer on this task.") % {"name": contractor.public_name}, "already_offered"
        )
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(task=task, contractor=contractor, invited_by=by)
    except IntegrityError as exc:  # the unique pair: a double click raced us
        raise Conflict(_("You already invited %(name)s.") % {"name": contractor.public_name}, "already_invited") from exc
    log_event(task, contractor, Kind.INVITED)
    notifications.notify(
        contractor,
        kind=INVITE_NOTIFY_KIND,
        title=_("%(name)s invited you to “%(title)s”") % {"name": by.public_name, "title": task.title},
        body=_("Have a look and send an offer if it suits you."),
        url=_task_path(task),
        task=task,
        dedupe_key=f"invitation:{invitation.public_id}",
    )
    return invitation


@transaction.atomic
def invitation_decline(invitation: Invitation, *, by: User) -> Invitation:
    """The invited contractor says no. Only them; only while it is unanswered."""
    locked = Invitation.objects.select_for_update(no_key=True).filter(pk=invitation.pk).first()
    if locked is None or locked.contractor_id != by.pk:
        raise NotFound(_("No such invitation."))
    if locked.status != Invitation.Status.SENT:
        raise Conflict(
            _("This invitation is already answered (%(status)s).") % {"status": locked.get_status_display().lower()},
            "invitation_answered",
        )
    locked.status = Invitation.Status.DECLINED
    locked.save(update_fields=["status"])
    return locked


# --- smart alerts ---------------------------------------------------------------------


@dataclass
class AlertRun:
    """What ``alerts_for_new_task`` did, per contractor id."""

    sent: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def in_quiet_hours(alert_settings: AlertSettings, now: dt.datetime) -> bool:
    start, end = alert_settings.quiet_start, alert_settings.quiet_end
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(_zone(alert_settings.time_zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight, e.g. 22:00-07:00


def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name if valid_time_zone(name) else settings.TIME_ZONE)


def alerts_sent_today(user_id: int, alert_settings: AlertSettings, now: dt.datetime) -> int:
    """Alerts since midnight in the contractor's time zone."""
    tz = _zone(alert_settings.time_zone)
    midnight = dt.datetime.combine(now.astimezone(tz).date(), dt.time(0), tzinfo=tz)
    return AlertLog.objects.filter(contractor_id=user_id, sent_at__gte=midnight).count()


def _channels(user: User) -> list[str]:
    wanted = notifications.preference_for(user, ALERT_NOTIFY_KIND)
    out = []
    if wanted.in_app:
        out.append("in_app")
    if wanted.email and user.email:
        out.append("email")
    if wanted.sms and notifications.sms_allowed(ALERT_NOTIFY_KIND) and user.phone:
        out.append("sms")
    return out


@transaction.atomic
def _alert_one(
    task: Task, contractor: User, *, score: float, rank: int, reasons: list[str], model_version: str, now: dt.datetime
) -> str:
    """One contractor: checks under their row lock (so two new tasks at once
    can't both take the last alert of the day), then log and notify."""
    _lock_users(contractor.pk)
    contractor = User.objects.get(pk=contractor.pk)
    if not contractor.is_active or not contractor.is_contractor or contractor.pk == task.customer_id:
        return "not_eligible"
    if AlertLog.objects.filter(task=task, contractor=contractor).exists():
        return "already_alerted"
    prefs = AlertSettings.objects.filter(user=contractor).first() or AlertSettings(user=contractor, time_zone=settings.TIME_ZONE)
    if not prefs.enabled:
        return "disabled"
    if in_quiet_hours(prefs, now):
        return "quiet_hours"
    if alerts_sent_today(contractor.pk, prefs, now) >= prefs.daily_cap:
        return "daily_cap"
    channels = _channels(contractor)
    if not channels:
        return "no_channel"
    body = " · ".join(reasons[:3]) if reasons else ""
    notification = notifications.notify(
        contractor,
        kind=ALERT_NOTIFY_KIND,
        title=_("New job near you: “%(title)s”") % {"title": task.title},
        body=body,
        url=_task_path(task),
        task=task,
        dedupe_key=f"alert:{task.public_id}",
    )
    if notification is None:
        return "no_channel"
    AlertLog.objects.create(
        task=task, contractor=contractor, channels=channels, score=float(score), rank=rank, model_version=model_version[:40]
    )
    log_event(task, contractor, Kind.ALERTED, position=rank, model_version=model_version)
    return "sent"


def _ranker_name() -> str:
    try:
        from .ranking import get_ranker

        return str(get_ranker().name)
    except Exception:  # noqa: BLE001 - the name is only a label on the log
        logger.warning("Could not read the ranker's name", exc_info=True)
        return ""


def alerts_for_new_task(task: Task | int, *, now: dt.datetime | None = None, top_n: int | None = None) -> AlertRun:
    """Tell the best matches about a newly posted task.

    Takes the top ``top_n`` (ALERT_TOP_N) contractors from
    ``matching.selectors.best_contractors_for``; skips anyone with alerts off,
    in their quiet hours (their time zone), at their daily cap (since their
    local midnight), already alerted about this task, or wanting no channel
    for it. Each alert is its own transaction: an ``AlertLog`` row (one per
    task and contractor), an ``alerted`` outcome at its rank, and a
    notification by their settings. Safe to run twice (a retried job)."""
    now = now or timezone.now()
    task_id = task if isinstance(task, int) else task.pk
    current = Task.objects.select_related("category").filter(pk=task_id).first()
    run = AlertRun()
    if current is None or current.status != S.OPEN:
        return run
    from .selectors import best_contractors_for

    limit = ALERT_TOP_N if top_n is None else top_n
    ranked = best_contractors_for(current, limit=limit)
    model_version = _ranker_name()
    for rank, (contractor, score, reasons) in enumerate(ranked[:limit], start=1):
        outcome = _alert_one(
            current, contractor, score=score, rank=rank, reasons=list(reasons or []), model_version=model_version, now=now
        )
        if outcome == "sent":
            run.sent.append(contractor.pk)
        else:
            run.skipped[contractor.pk] = outcome
    return run


@transaction.atomic
def alert_settings_update(
    *, user: User, enabled: bool, daily_cap: Any, quiet_start: dt.time | None, quiet_end: dt.time | None, time_zone: str
) -> AlertSettings:
    """Save a contractor's alert settings (all or nothing)."""
    if not user.is_contractor:
        raise PermissionDenied(_("Alerts are for contractors."), "not_contractor")
    fields: dict[str, list[str]] = {}
    cap = daily_cap if isinstance(daily_cap, int) and not isinstance(daily_cap, bool) else None
    if cap is None or not 1 <= cap <= MAX_DAILY_CAP:
        fields["daily_cap"] = [_("Choose between 1 and %(n)d alerts a day.") % {"n": MAX_DAILY_CAP}]
    if (quiet_start is None) != (quiet_end is None):
        fields["quiet_end" if quiet_end is None else "quiet_start"] = [
            _("Give both the start and the end of your quiet hours, or neither.")
        ]
    elif quiet_start is not None and quiet_start == quiet_end:
        fields["quiet_end"] = [_("Quiet hours must end at a different time than they start.")]
    if not valid_time_zone(time_zone or ""):
        fields["time_zone"] = [_("Choose a time zone from the list.")]
    if fields:
        raise _invalid(fields)
    _lock_users(user.pk)
    prefs, _created = AlertSettings.objects.update_or_create(
        user=user,
        defaults={
            "enabled": bool(enabled),
            "daily_cap": cap,
            "quiet_start": quiet_start,
            "quiet_end": quiet_end,
            "time_zone": time_zone,
        },
    )
    return prefs


# --- time off -------------------------------------------------------------------------


def _require_contractor(user: User) -> None:
    if not user.is_authenticated or not user.is_active or not user.is_contractor:
        raise PermissionDenied(_("Availability is for contractors."), "not_contractor")


def _clean_time_off(starts_at: Any, ends_at: Any, summary: Any, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, str]:
    fields: dict[str, list[str]] = {}
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not isinstance(value, dt.datetime) or timezone.is_naive(value):
            fields[name] = [_("Enter a date and time.")]
    summary = summary.strip() if isinstance(summary, str) else ""
    if len(summary) > SUMMARY_MAX:
        fields["summary"] = [_("Use at most %(n)d characters.") % {"n": SUMMARY_MAX}]
    if not fields:
        if ends_at <= starts_at:
            fields["ends_at"] = [_("The end must be after the start.")]
        elif ends_at - starts_at > TIME_OFF_MAX:
            fields["ends_at"] = [_("Time off can last at most a year; add another block for more.")]
        elif ends_at <= now:
            fields["ends_at"] = [_("This time is already over.")]
        elif starts_at > now + TIME_OFF_HORIZON:
            fields["starts_at"] = [_("Enter time off within the next two years.")]
    if fields:
        raise _invalid(fields)
    return starts_at, ends_at, summary


@transaction.atomic
def time_off_create(*, user: User, starts_at: Any, ends_at: Any, summary: Any = "", now: dt.datetime | None = None) -> BusyBlock:
    """A contractor blocks time they can't work."""
    _require_contractor(user)
    starts_at, ends_at, summary = _clean_time_off(starts_at, ends_at, summary, now or timezone.now())
    _lock_users(user.pk)
    return BusyBlock.objects.create(
        user=user, source=BusyBlock.Source.TIME_OFF, starts_at=starts_at, ends_at=ends_at, summary=summary
    )


@transaction.atomic
def time_off_update(
    block: BusyBlock, *, by: User, starts_at: Any, ends_at: Any, summary: Any = "", now: dt.datetime | None = None
) -> BusyBlock:
    """Change the contractor's own time off (anyone else's: NotFound)."""
    _require_contractor(by)
    starts_at, ends_at, summary = _clean_time_off(starts_at, ends_at, summary, now or timezone.now())
    _lock_users(by.pk)
    locked = BusyBlock.objects.select_for_update(no_key=True).filter(pk=block.pk, user=by, source=BusyBlock.Source.TIME_OFF).first()
    if locked is None:
        raise NotFound(_("No such time off."))
    locked.starts_at, locked.ends_at, locked.summary = starts_at, ends_at, summary
    locked.save(update_fields=["starts_at", "ends_at", "summary"])
    return locked


@transaction.atomic
def time_off_delete(block: BusyBlock, *, by: User) -> None:
    _require_contractor(by)
    _lock_users(by.pk)
    deleted, _rows = BusyBlock.objects.filter(pk=block.pk, user=by, source=BusyBlock.Source.TIME_OFF).delete()
    if not deleted:
        raise NotFound(_("No such time off."))


# --- calendar feed and import ---------------------------------------------------------


@transaction.atomic
def calendar_feed_get_or_create(*, user: User) -> CalendarFeed:
    """The contractor's feed (its secret address), made on first use."""
    _require_contractor(user)
    _lock_users(user.pk)
    feed, _created = CalendarFeed.objects.get_or_create(user=user)
    return feed


@transaction.atomic
def calendar_feed_reset(*, user: User) -> CalendarFeed:
    """A new secret address; the old one stops working at once."""
    _require_contractor(user)
    _lock_users(user.pk)
    feed, created = CalendarFeed.objects.get_or_create(user=user)
    if not created:
        feed.secret = new_feed_secret()
        feed.save(update_fields=["secret"])
    return feed


def _read_upload(upload: UploadedFile | None) -> bytes:
    if upload is None:
        raise ApplicationError(_("Choose an .ics file to import."), "ics_missing", fields={"file": [_("Choose an .ics file to import.")]})
    if upload.size is not None and upload.size > ics.MAX_UPLOAD_BYTES:
        message = _("The file is larger than 1 MB. Export a shorter range of your calendar.")
        raise ApplicationError(message, "ics_too_large", fields={"file": [message]})
    data = upload.read(ics.MAX_UPLOAD_BYTES + 1)
    return data


@transaction.atomic
def ics_import(*, user: User, upload: UploadedFile | None, now: dt.datetime | None = None) -> list[BusyBlock]:
    """Replace the contractor's imported busy times with those in an .ics
    file. The file is checked completely first (``calendar.parse_busy_times``);
    a bad one is refused with its reason and nothing is written or removed."""
    _require_contractor(user)
    data = _read_upload(upload)
    busy = ics.parse_busy_times(data, tz=time_zone_for(user), now=now or timezone.now())
    _lock_users(user.pk)
    BusyBlock.objects.filter(user=user, source=BusyBlock.Source.IMPORTED).delete()
    return BusyBlock.objects.bulk_create(
        BusyBlock(
            user=user,
            source=BusyBlock.Source.IMPORTED,
            starts_at=b.starts_at,
            ends_at=b.ends_at,
            summary=b.summary,
            import_uid=b.uid,
        )
        for b in busy
    )


@transaction.atomic
def ics_import_clear(*, user: User) -> int:
    """Remove every imported busy time (time off stays)."""
    _require_contractor(user)
    _lock_users(user.pk)
    deleted, _rows = BusyBlock.objects.filter(user=user, source=BusyBlock.Source.IMPORTED).delete()
    return deleted
