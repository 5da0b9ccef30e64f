"""Every write to a task, its photos, offers, check-ins and proof.

Pages, the API, the admin and Celery call these; none of them saves a task
model on its own. Each service:

- runs in one transaction and locks the task row (``select_for_update``)
  before it looks at the status, so two requests never both act on the same
  state (two accepts, an accept and an instant booking, a cancel and a
  check-in). Offers and proofs are locked after their task, always in that
  order, so services never deadlock each other;
- checks who is asking (``PermissionDenied``) and the transition table in
  ``tasks/state.py`` (``IllegalTransition``); a task someone else booked first
  answers ``Conflict(code="already_booked")``;
- validates all input fields together and raises one ``ApplicationError``
  with every field's message in ``fields``; nothing is written when it raises;
- appends a ``TaskEvent`` for the timeline, sends its emails through
  ``tasks.notify`` after commit, and calls the payment hooks
  (``tasks.payment_hooks``) inside the transaction.

Prices on an hourly task (its budget, offers, the agreed price) are hourly
rates; on a fixed task they are the total. All money is integer cents.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ContractorProfile, User
from accounts.services import MAX_GEOLOCATION_DRIFT_KM, user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from core.files import atomic_with_files
from core.geo import GeocodeError, distance_km, geocode

from . import notify, payment_hooks, photos, verification
from .models import (
    MAX_BUDGET_CENTS,
    MAX_HOURS,
    MAX_PHOTOS,
    Category,
    CheckIn,
    Offer,
    PhotoCheck,
    ProofSubmission,
    Task,
    TaskEvent,
    TaskPhoto,
)
from .policies import MAX_REASON_CHARS, MIN_REASON_CHARS, cancellation_rule
from .state import EDITABLE, IllegalTransition, check

logger = logging.getLogger(__name__)

S = Task.Status
E = TaskEvent.Kind

TITLE_MIN, TITLE_MAX = 5, 120
DESCRIPTION_MIN, DESCRIPTION_MAX = 20, 5000
ADDRESS_MAX = 200
MIN_FIXED_BUDGET_CENTS = 500  # $5.00
MIN_HOURLY_RATE_CENTS, MAX_HOURLY_RATE_CENTS = 1_000, 100_000  # $10 .. $1,000 an hour
MAX_WINDOW = dt.timedelta(days=30)
MAX_AHEAD = dt.timedelta(days=365)
NOTE_MAX = 2000
OFFER_MESSAGE_MAX = 2000
AUTO_APPROVE_AFTER = dt.timedelta(hours=72)
REMINDER_1_AFTER = dt.timedelta(hours=24)
REMINDER_2_AFTER = dt.timedelta(hours=48)
MAX_CHANGE_REQUESTS = 1
BOOKED = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.DISPUTED})


# --- helpers ----------------------------------------------------------------


def _lock(task: Task) -> Task:
    """The task's row, locked for the rest of the transaction, as it is now."""
    try:
        return Task.objects.select_for_update(no_key=True).get(pk=task.pk)
    except Task.DoesNotExist as exc:
        raise NotFound(_("This task no longer exists.")) from exc


def _lock_offer(offer: Offer) -> Offer:
    try:
        return Offer.objects.select_for_update(no_key=True).get(pk=offer.pk)
    except Offer.DoesNotExist as exc:
        raise NotFound(_("This offer no longer exists.")) from exc


def _event(task: Task, kind: str, by: User | None, *, from_status: str = "", to_status: str = "", **data: Any):
    return TaskEvent.objects.create(
        task=task, kind=kind, actor=by, from_status=from_status, to_status=to_status, data=data
    )


def _invalid(fields: dict[str, list[str]]) -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, code="invalid", fields=fields)


def _require_customer(task: Task, by: User) -> None:
    if task.customer_id != by.pk:
        raise PermissionDenied(_("Only the customer who posted this task can do that."), code="not_task_customer")


def _require_assigned_contractor(task: Task, by: User) -> None:
    if task.contractor_id is None or task.contractor_id != by.pk:
        raise PermissionDenied(
            _("Only the contractor assigned to this task can do that."), code="not_task_contractor"
        )


def _require_ready_contractor(by: User) -> ContractorProfile:
    """A verified contractor who has finished onboarding (is live)."""
    user_require_verified(by)
    if not by.is_contractor:
        raise PermissionDenied(_("Only contractors can make offers or book tasks."), code="not_contractor")
    profile = ContractorProfile.objects.filter(user=by).first()
    if profile is None or not profile.is_onboarded:
        raise PermissionDenied(
            _("Finish your contractor profile and go live before you take work."), code="not_onboarded"
        )
    return profile


def _require_open(task: Task, action: str) -> None:
    """Booking and offering need an open task; someone else's booking is a
    clear "already booked", anything else an illegal transition."""
    if task.status == S.OPEN:
        return
    if task.status in BOOKED:
        raise Conflict(_("This task has already been booked."), code="already_booked")
    check(task, action)  # raises IllegalTransition with the status in the message


def _require_editable(task: Task) -> None:
    if task.status not in EDITABLE:
        raise IllegalTransition(
            _("This task is %(status)s, so it can't be edited now.")
            % {"status": task.get_status_display().lower()},
            extra={"status": task.status, "action": "edit"},
        )


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _aware(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dt.datetime):
        raise TypeError
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


def _price_error(budget_type: str, cents: int | None, *, what: str) -> str | None:
    """The message for a bad price (budget or offer), or None."""
    if budget_type == Task.BudgetType.HOURLY:
        if cents is None or not MIN_HOURLY_RATE_CENTS <= cents <= MAX_HOURLY_RATE_CENTS:
            return _("Enter an hourly rate between $10.00 and $1,000.00.")
    elif cents is None or not MIN_FIXED_BUDGET_CENTS <= cents <= MAX_BUDGET_CENTS:
        return _("Enter %(what)s between $5.00 and $100,000.00.") % {"what": what}
    return None


# --- posting ------------------------------------------------------------------


@dataclass
class TaskInput:
    title: str
    description: str
    category: Category | None
    postal_code: str
    address: str = ""
    budget_type: str = Task.BudgetType.FIXED
    budget_cents: int = 0
    estimated_hours: int | None = None
    schedule_type: str = Task.ScheduleType.FLEXIBLE
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    deadline: dt.datetime | None = None
    urgency: str = Task.Urgency.FLEXIBLE
    instant_book: bool = False
    latitude: float | None = None  # the browser's position, refining the ZIP centroid
    longitude: float | None = None


@dataclass
class _Clean:
    values: dict[str, Any]
    latitude: float
    longitude: float


def _validate(data: TaskInput, *, now: dt.datetime, photo_count: int, publishing: bool) -> _Clean:
    """Check every field of a task; raise one ApplicationError listing them all."""
    fields: dict[str, list[str]] = {}
    values: dict[str, Any] = {}

    def err(name: str, message: str) -> None:
        fields.setdefault(name, []).append(message)

    title = (data.title or "").strip()
    if not TITLE_MIN <= len(title) <= TITLE_MAX:
        err("title", _("Use 5 to 120 characters for the title."))
    values["title"] = title

    description = (data.description or "").strip()
    if not DESCRIPTION_MIN <= len(description) <= DESCRIPTION_MAX:
        err("description", _("Describe the job in 20 to 5,000 characters."))
    values["description"] = description

    category = data.category
    if not isinstance(category, Category) or not Category.objects.filter(pk=category.pk, is_active=True).exists():
        err("category", _("Choose a trade from the list."))
    values["category"] = category

    address = (data.address or "").strip()
    if len(address) > ADDRESS_MAX:
        err("address", _("Use at most 200 characters for the address."))
    values["address"] = address

    lat = lon = None
    try:
        place = geocode(data.postal_code or "")
    except GeocodeError as exc:
        err("postal_code", str(exc))
    else:
        values.update(postal_code=place.postal_code, city=place.city, state=place.state)
        lat, lon = place.latitude, place.longitude
        if data.latitude is not None or data.longitude is not None:
            try:
                b_lat, b_lon = float(data.latitude), float(data.longitude)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                b_lat = b_lon = math.nan
            if not (-90 <= b_lat <= 90 and -180 <= b_lon <= 180):
                err("location", _("Your browser sent a position that is not valid."))
            elif distance_km(lat, lon, b_lat, b_lon) > MAX_GEOLOCATION_DRIFT_KM:
                err(
                    "location",
                    _("Your browser's position is far from ZIP %(zip)s. Check the ZIP code.")
                    % {"zip": place.postal_code},
                )
            else:
                lat, lon = b_lat, b_lon

    budget_type = data.budget_type
    if budget_type not in Task.BudgetType.values:
        err("budget_type", _("Choose a fixed price or an hourly rate."))
    values["budget_type"] = budget_type
    budget = _as_int(data.budget_cents)
    if budget_type in Task.BudgetType.values:
        message = _price_error(budget_type, budget, what=_("a budget"))
        if message:
            err("budget_cents", message)
    values["budget_cents"] = budget
    if budget_type == Task.BudgetType.HOURLY:
        hours = _as_int(data.estimated_hours)
        if hours is None or not 1 <= hours <= MAX_HOURS:
            err("estimated_hours", _("Estimate between 1 and 200 hours."))
        values["estimated_hours"] = hours
    else:
        values["estimated_hours"] = None

    schedule_type = data.schedule_type
    values.update(schedule_type=schedule_type, window_start=None, window_end=None, deadline=None)
    try:
        window_start, window_end, deadline = _aware(data.window_start), _aware(data.window_end), _aware(data.deadline)
    except TypeError:
        err("schedule_type", _("Enter dates and times in a valid format."))
        window_start = window_end = deadline = None
        schedule_type = None  # already reported
    if schedule_type == Task.ScheduleType.WINDOW:
        if window_start is None:
            err("window_start", _("Choose when the window starts."))
        elif window_start <= now:
            err("window_start", _("The window must start in the future."))
        elif window_start > now + MAX_AHEAD:
            err("window_start", _("The window must start within a year."))
        if window_end is None:
            err("window_end", _("Choose when the window ends."))
        elif window_start is not None and window_end <= window_start:
            err("window_end", _("The window must end after it starts."))
        elif window_start is not None and window_end - window_start > MAX_WINDOW:
            err("window_end", _("A window can be at most 30 days long."))
        values.update(window_start=window_start, window_end=window_end)
    elif schedule_type == Task.ScheduleType.FLEXIBLE:
        if deadline is None:
            err("deadline", _("Choose the date the job must be done by."))
        elif deadline <= now:
            err("deadline", _("The deadline must be in the future."))
        elif deadline > now + MAX_AHEAD:
            err("deadline", _("The deadline must be within a year."))
        values["deadline"] = deadline
    elif schedule_type is not None:
        err("schedule_type", _("Choose a time window or a deadline."))

    if data.urgency not in Task.Urgency.values:
        err("urgency", _("Choose how urgent the job is."))
    values["urgency"] = data.urgency
    values["instant_book"] = bool(data.instant_book)

    if photo_count > MAX_PHOTOS:
        err("photos", _("Add at most 10 photos."))
    elif publishing and photo_count < 1:
        err("photos", _("Add at least one photo of the job."))

    if fields:
        raise _invalid(fields)
    return _Clean(values=values, latitude=lat, longitude=lon)  # type: ignore[arg-type]


def task_create(
    *,
    customer: User,
    data: TaskInput,
    photos: Sequence[UploadedFile] = (),
    publish: bool = True,
) -> Task:
    """Post a task (``publish=True``: open, needs 1-10 photos) or save a draft.

    Who: a verified customer. Emits ``created`` (and ``published``)."""
    user_require_verified(customer)
    if not customer.is_customer:
        raise PermissionDenied(_("Turn on hiring in your account to post tasks."), code="not_customer")
    uploads = list(photos)
    now = timezone.now()
    clean = _validate(data, now=now, photo_count=len(uploads), publishing=publish)
    # Files stored here are removed again if the transaction does not commit.
    with atomic_with_files():
        task = Task(customer=customer, status=S.DRAFT, **clean.values)
        task.set_location(clean.latitude, clean.longitude)
        task.save()
        _add_photos(task, by=customer, uploads=uploads)
        _event(task, E.CREATED, customer, to_status=S.DRAFT, photos=len(uploads))
        if publish:
            task.status = S.OPEN
            task.published_at = now
            task.save(update_fields=["status", "published_at", "updated_at"])
            _event(task, E.PUBLISHED, customer, from_status=S.DRAFT, to_status=S.OPEN)
    return task


def _add_photos(
    task: Task,
    *,
    by: User,
    uploads: Sequence[UploadedFile],
    kind: str = TaskPhoto.Kind.PROBLEM,
    proof: ProofSubmission | None = None,
    start: int = 0,
) -> list[TaskPhoto]:
    """Store each upload; if one is refused, the files already stored for the
    others are removed too (the rows go with the transaction's rollback)."""
    added: list[TaskPhoto] = []
    try:
        for index, upload in enumerate(uploads):
            added.append(
                photos.photo_add(task, by=by, upload=upload, kind=kind, proof=proof, position=start + index)
            )
    except BaseException:
        for photo in added:
            photos.photo_delete_files(photo)
        raise
    return added


def _problem_photo_count(task: Task) -> int:
    return task.photos.filter(kind=TaskPhoto.Kind.PROBLEM).count()


@transaction.atomic
def task_update(task: Task, *, by: User, data: TaskInput) -> Task:
    """Change a draft or open task's details. Who: its customer. Emits ``updated``
    with the names of the fields that changed."""
    user_require_verified(by)
    task = _lock(task)
    _require_customer(task, by)
    _require_editable(task)
    clean = _validate(
        data, now=timezone.now(), photo_count=_problem_photo_count(task), publishing=task.status == S.OPEN
    )
    before = {name: getattr(task, name) for name in [*clean.values, "latitude", "longitude"]}
    for name, value in clean.values.items():
        setattr(task, name, value)
    task.set_location(clean.latitude, clean.longitude)
    changed = sorted(name for name, old in before.items() if getattr(task, name) != old)
    if changed:
        task.save()
        _event(task, E.UPDATED, by, from_status=task.status, to_status=task.status, fields=changed)
    return task


@atomic_with_files()
def task_add_photos(task: Task, *, by: User, files: Sequence[UploadedFile]) -> list[TaskPhoto]:
    """Add photos of the job to a draft or open task (10 at most in all)."""
    user_require_verified(by)
    task = _lock(task)
    _require_customer(task, by)
    _require_editable(task)
    uploads = list(files)
    existing = _problem_photo_count(task)
    if not uploads:
        raise _invalid({"photos": [_("Choose at least one photo.")]})
    if existing + len(uploads) > MAX_PHOTOS:
        raise _invalid(
            {"photos": [_("A task has at most 10 photos; you can add %(left)d more.") % {"left": MAX_PHOTOS - existing}]}
        )
    last = task.photos.filter(kind=TaskPhoto.Kind.PROBLEM).order_by("-position").values_list("position", flat=True)
    start = (last.first() or 0) + 1 if existing else 0
    added = _add_photos(task, by=by, uploads=uploads, start=start)
    _event(task, E.PHOTO_ADDED, by, from_status=task.status, to_status=task.status, count=len(added))
    return added


@transaction.atomic
def task_remove_photo(photo: TaskPhoto, *, by: User) -> None:
    """Remove a photo of the job from a draft or open task; an open task keeps at least one."""
    user_require_verified(by)
    task = _lock(photo.task)
    _require_customer(task, by)
    _require_editable(task)
    try:
        photo = TaskPhoto.objects.select_for_update(no_key=True).get(pk=photo.pk, task=task, kind=TaskPhoto.Kind.PROBLEM)
    except TaskPhoto.DoesNotExist as exc:
        raise NotFound(_("This photo no longer exists.")) from exc
    if task.status == S.OPEN and _problem_photo_count(task) <= 1:
        raise _invalid({"photos": [_("An open task needs at least one photo. Add another before removing this one.")]})
    photo_id = str(photo.public_id)
    photo.delete()
    transaction.on_commit(lambda: photos.photo_delete_files(photo))
    _event(task, E.PHOTO_REMOVED, by, from_status=task.status, to_status=task.status, photo=photo_id)


@transaction.atomic
def task_publish(task: Task, *, by: User) -> Task:
    """Open a draft to offers. Its details are checked again (a draft's
    deadline may have passed) and it needs at least one photo."""
    user_require_verified(by)
    task = _lock(task)
    _require_customer(task, by)
    target = check(task, "publish")
    now = timezone.now()
    _validate(_input_from(task), now=now, photo_count=_problem_photo_count(task), publishing=True)
    task.status = target
    task.published_at = now
    task.save(update_fields=["status", "published_at", "updated_at"])
    _event(task, E.PUBLISHED, by, from_status=S.DRAFT, to_status=target)
    notify.task_published(task)
    return task


def _input_from(task: Task) -> TaskInput:
    return TaskInput(
        title=task.title,
        description=task.description,
        category=task.category,
        postal_code=task.postal_code,
        address=task.address,
        budget_type=task.budget_type,
        budget_cents=task.budget_cents,
        estimated_hours=task.estimated_hours,
        schedule_type=task.schedule_type,
        window_start=task.window_start,
        window_end=task.window_end,
        deadline=task.deadline,
        urgency=task.urgency,
        instant_book=task.instant_book,
        latitude=task.latitude,
        longitude=task.longitude,
    )


def _decline_pending_offers(task: Task, *, by: User | None, reason: str, now: dt.datetime) -> list[Offer]:
    """Decline every pending offer on a (locked) task and tell their makers."""
    pending = list(
        Offer.objects.select_for_update(no_key=True).filter(task=task, status=Offer.Status.PENDING).order_by("pk")
    )
    for offer in pending:
        offer.status = Offer.Status.DECLINED
        offer.decline_reason = reason
        offer.decided_at = now
        offer.save(update_fields=["status", "decline_reason", "decided_at"])
        offer.task = task
        notify.offer_declined(offer, reason=reason)
    return pending


@transaction.atomic
def task_cancel(task: Task, *, by: User, reason: str) -> Task:
    """Cancel a task, as ``tasks.policies.cancellation_rule`` allows: the
    customer, the assigned contractor or staff. Pending offers are declined;
    the other side is emailed; ``payment_hooks.on_cancelled`` gets the rule."""
    user_require_verified(by)
    task = _lock(task)
    is_party = by.pk in (task.customer_id, task.contractor_id) or by.is_staff
    if not is_party:
        raise PermissionDenied(
            _("Only the customer or the assigned contractor can cancel this task."), code="not_task_party"
        )
    target = check(task, "cancel")
    now = timezone.now()
    rule = cancellation_rule(task, by, now=now)
    if not rule.allowed:
        raise PermissionDenied(rule.message, code="cancel_not_allowed")
    reason = (reason or "").strip()
    if rule.reason_required and len(reason) < MIN_REASON_CHARS:
        raise _invalid({"reason": [_("Say why you are cancelling (at least 5 characters).")]})
    if len(reason) > MAX_REASON_CHARS:
        raise _invalid({"reason": [_("Use at most 500 characters.")]})
    previous = task.status
    task.status = target
    task.cancel_reason = reason
    task.cancelled_by = by
    task.cancelled_at = now
    task.auto_approve_at = None
    task.save(
        update_fields=["status", "cancel_reason", "cancelled_by", "cancelled_at", "auto_approve_at", "updated_at"]
    )
    declined = _decline_pending_offers(task, by=by, reason=_("The task was cancelled."), now=now)
    _event(
        task,
        E.CANCELLED,
        by,
        from_status=previous,
        to_status=target,
        reason=reason,
        refund=rule.refund,
        declined_offers=[str(o.public_id) for o in declined],
    )
    payment_hooks.on_cancelled(task, rule)
    recipients = []
    if by.pk != task.customer_id:
        recipients.append(task.customer)
    if task.contractor_id is not None and by.pk != task.contractor_id:
        recipients.append(task.contractor)
    notify.task_cancelled(task, by=by, recipients=recipients, refund=rule.refund)
    return task


# --- offers and booking ----------------------------------------------------------


def _validate_offer_start(proposed_start: Any, now: dt.datetime, fields: dict[str, list[str]]) -> dt.datetime | None:
    try:
        start = _aware(proposed_start)
    except TypeError:
        fields["proposed_start"] = [_("Enter a valid date and time.")]
        return None
    if start is not None:
        if start <= now:
            fields["proposed_start"] = [_("Propose a start time in the future.")]
        elif start > now + MAX_AHEAD:
            fields["proposed_start"] = [_("Propose a start time within a year.")]
    return start


@transaction.atomic
def offer_create(
    task: Task, *, by: User, price_cents: int, message: str = "", proposed_start: dt.datetime | None = None
) -> Offer:
    """A contractor offers to do an open task. Who: a verified, onboarded
    contractor who is not the task's customer, with no other pending offer on
    it. Emits ``offer_made``; emails the customer."""
    _require_ready_contractor(by)
    if task.customer_id == by.pk:
        raise PermissionDenied(_("You can't make an offer on your own task."), code="own_task")
    task = _lock(task)
    _require_open(task, "accept_offer")
    now = timezone.now()
    fields: dict[str, list[str]] = {}
    price = _as_int(price_cents)
    price_error = _price_error(task.budget_type, price, what=_("a price"))
    if price_error:
        fields["price_cents"] = [price_error]
    message = (message or "").strip()
    if len(message) > OFFER_MESSAGE_MAX:
        fields["message"] = [_("Use at most 2,000 characters.")]
    start = _validate_offer_start(proposed_start, now, fields)
    if fields:
        raise _invalid(fields)
    if Offer.objects.filter(task=task, contractor=by, status=Offer.Status.PENDING).exists():
        raise Conflict(
            _("You already have an offer on this task. Withdraw it to make a new one."), code="offer_exists"
        )
    offer = Offer.objects.create(
        task=task,
        contractor=by,
        price_cents=price,
        currency=task.currency,
        message=message,
        proposed_start=start,
    )
    _event(
        task,
        E.OFFER_MADE,
        by,
        from_status=task.status,
        to_status=task.status,
        offer=str(offer.public_id),
        price_cents=price,
    )
    notify.offer_received(offer)
    return offer


@transaction.atomic
def offer_withdraw(offer: Offer, *, by: User) -> Offer:
    """The contractor takes back a pending offer."""
    user_require_verified(by)
    task = _lock(offer.task)
    offer = _lock_offer(offer)
    if offer.contractor_id != by.pk:
        raise PermissionDenied(_("Only the contractor who made this offer can withdraw it."), code="not_offer_owner")
    _require_pending(offer)
    offer.status = Offer.Status.WITHDRAWN
    offer.decided_at = timezone.now()
    offer.save(update_fields=["status", "decided_at"])
    _event(task, E.OFFER_WITHDRAWN, by, from_status=task.status, to_status=task.status, offer=str(offer.public_id))
    offer.task = task
    return offer


def _require_pending(offer: Offer) -> None:
    if offer.status != Offer.Status.PENDING:
        raise Conflict(
            _("This offer is %(status)s, so it can't be changed now.")
            % {"status": offer.get_status_display().lower()},
            code="offer_not_pending",
            extra={"status": offer.status},
        )


@transaction.atomic
def offer_decline(offer: Offer, *, by: User, reason: str = "") -> Offer:
    """The customer turns down a pending offer; its maker is emailed."""
    user_require_verified(by)
    task = _lock(offer.task)
    _require_customer(task, by)
    offer = _lock_offer(offer)
    _require_pending(offer)
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise _invalid({"reason": [_("Use at most 500 characters.")]})
    offer.status = Offer.Status.DECLINED
    offer.decline_reason = reason
    offer.decided_at = timezone.now()
    offer.save(update_fields=["status", "decline_reason", "decided_at"])
    offer.task = task
    _event(
        task,
        E.OFFER_DECLINED,
        by,
        from_status=task.status,
        to_status=task.status,
        offer=str(offer.public_id),
        reason=reason,
    )
    notify.offer_declined(offer, reason=reason)
    return offer


def _assign(task: Task, offer: Offer, *, now: dt.datetime) -> None:
    """Hand a locked open task to the offer's contractor; decline the rest."""
    task.status = S.ASSIGNED
    task.contractor = offer.contractor
    task.agreed_price_cents = offer.price_cents
    task.assigned_at = now
    task.save(update_fields=["status", "contractor", "agreed_price_cents", "assigned_at", "updated_at"])
    _decline_pending_offers(task, by=None, reason=_("The customer chose another offer."), now=now)
    payment_hooks.on_assigned(task, offer)


@transaction.atomic
def offer_accept(offer: Offer, *, by: User) -> Task:
    """The customer accepts a pending offer: the task is assigned to its maker
    at its price, the other pending offers are declined and their makers
    emailed. If the task was booked a moment earlier (another accept, an
    instant booking) this raises ``Conflict(code="already_booked")``."""
    user_require_verified(by)
    task = _lock(offer.task)
    _require_customer(task, by)
    _require_open(task, "accept_offer")
    offer = _lock_offer(offer)
    if offer.task_id != task.pk:
        raise NotFound(_("This offer is not on this task."))
    _require_pending(offer)
    now = timezone.now()
    offer.status = Offer.Status.ACCEPTED
    offer.decided_at = now
    offer.save(update_fields=["status", "decided_at"])
    offer.task = task
    _assign(task, offer, now=now)
    _event(
        task,
        E.OFFER_ACCEPTED,
        by,
        from_status=S.OPEN,
        to_status=task.status,
        offer=str(offer.public_id),
        contractor=offer.contractor_id,
        price_cents=offer.price_cents,
    )
    notify.offer_accepted(offer)
    return task


def instant_book_check(
    task: Task, *, by: User, proposed_start: Any = None, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Everything that would make ``task_instant_book`` refuse ``by`` now,
    checked without writing anything; returns the proposed start, parsed.
    Payments call it on the locked task before the customer's card is charged,
    so a booking that would be refused is refused before any money moves."""
    _require_ready_contractor(by)
    if task.customer_id == by.pk:
        raise PermissionDenied(_("You can't book your own task."), code="own_task")
    _require_open(task, "instant_book")
    if not task.instant_book:
        raise Conflict(
            _("This task can't be booked instantly. Make an offer instead."), code="instant_book_not_allowed"
        )
    fields: dict[str, list[str]] = {}
    start = _validate_offer_start(proposed_start, now or timezone.now(), fields)
    if fields:
        raise _invalid(fields)
    return start


@transaction.atomic
def task_instant_book(task: Task, *, by: User, proposed_start: dt.datetime | None = None) -> Task:
    """A contractor books an instant-book task at its posted price (the rate,
    on an hourly task). Creates an accepted offer (``is_instant``); the
    contractor's own pending offer is withdrawn, the others are declined.
    Same race answer as ``offer_accept``."""
    _require_ready_contractor(by)
    if task.customer_id == by.pk:
        raise PermissionDenied(_("You can't book your own task."), code="own_task")
    task = _lock(task)
    now = timezone.now()
    start = instant_book_check(task, by=by, proposed_start=proposed_start, now=now)
    Offer.objects.filter(task=task, contractor=by, status=Offer.Status.PENDING).update(
        status=Offer.Status.WITHDRAWN, decided_at=now
    )
    offer = Offer.objects.create(
        task=task,
        contractor=by,
        price_cents=task.budget_cents,
        currency=task.currency,
        proposed_start=start,
        status=Offer.Status.ACCEPTED,
        is_instant=True,
        decided_at=now,
    )
    _assign(task, offer, now=now)
    _event(
        task,
        E.INSTANT_BOOKED,
        by,
        from_status=S.OPEN,
        to_status=task.status,
        offer=str(offer.public_id),
        price_cents=offer.price_cents,
    )
    notify.task_booked(task, offer)
    notify.offer_accepted(offer)
    return task


# --- doing the work ---------------------------------------------------------------


@transaction.atomic
def task_check_in(
    task: Task,
    *,
    by: User,
    latitude: float | None = None,
    longitude: float | None = None,
    accuracy_m: float | None = None,
) -> CheckIn:
    """The assigned contractor says they have arrived; with the browser's
    position, its distance from the task is kept. The task is in progress."""
    user_require_verified(by)
    task = _lock(task)
    _require_assigned_contractor(task, by)
    target = check(task, "check_in")
    fields: dict[str, list[str]] = {}
    lat = lon = accuracy = None
    if latitude is not None or longitude is not None:
        try:
            lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lat = lon = math.nan
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            fields["location"] = [_("Your browser sent a position that is not valid.")]
    if accuracy_m is not None:
        try:
            accuracy = float(accuracy_m)
        except (TypeError, ValueError):
            accuracy = math.nan
        if not 0 <= accuracy <= 100_000:
            fields["accuracy_m"] = [_("The position's accuracy is not valid.")]
    if fields:
        raise _invalid(fields)
    distance_m = None
    if lat is not None and lon is not None:
        distance_m = round(distance_km(task.latitude, task.longitude, lat, lon) * 1000, 1)
    else:
        accuracy = None
    now = timezone.now()
    check_in = CheckIn.objects.create(
        task=task, contractor=by, latitude=lat, longitude=lon, accuracy_m=accuracy, distance_m=distance_m
    )
    previous = task.status
    task.status = target
    task.started_at = now
    task.save(update_fields=["status", "started_at", "updated_at"])
    _event(task, E.CHECKED_IN, by, from_status=previous, to_status=target, distance_m=distance_m)
    notify.checked_in(task)
    return check_in


@atomic_with_files()
def task_submit_proof(task: Task, *, by: User, note: str, files: Sequence[UploadedFile]) -> ProofSubmission:
    """The assigned contractor sends 1-10 photos of the finished work and a
    note. The customer has 72 hours to answer before it is approved
    automatically (the beat sweep); reminders at 24 and 48 hours."""
    user_require_verified(by)
    task = _lock(task)
    _require_assigned_contractor(task, by)
    target = check(task, "submit_proof")
    uploads = list(files)
    note = (note or "").strip()
    fields: dict[str, list[str]] = {}
    if len(note) > NOTE_MAX:
        fields["note"] = [_("Use at most 2,000 characters.")]
    if not uploads:
        fields["photos"] = [_("Add at least one photo of the finished work.")]
    elif len(uploads) > MAX_PHOTOS:
        fields["photos"] = [_("Add at most 10 photos.")]
    if fields:
        raise _invalid(fields)
    now = timezone.now()
    proof = ProofSubmission.objects.create(task=task, contractor=by, note=note)
    _add_photos(task, by=by, uploads=uploads, kind=TaskPhoto.Kind.PROOF, proof=proof)
    previous = task.status
    task.status = target
    task.submitted_at = now
    task.auto_approve_at = now + AUTO_APPROVE_AFTER
    task.reminder_24h_sent_at = None
    task.reminder_48h_sent_at = None
    task.save(
        update_fields=[
            "status",
            "submitted_at",
            "auto_approve_at",
            "reminder_24h_sent_at",
            "reminder_48h_sent_at",
            "updated_at",
        ]
    )
    _event(task, E.PROOF_SUBMITTED, by, from_status=previous, to_status=target, proof=proof.pk, photos=len(uploads))
    notify.proof_submitted(task, proof, photo_count=len(uploads))
    verification.queue_photo_check(proof)  # AI/local photo checks, after commit
    return proof


def _pending_proof(task: Task) -> ProofSubmission | None:
    return ProofSubmission.objects.select_for_update(no_key=True).filter(task=task, decision=ProofSubmission.Decision.PENDING).first()


def _complete(task: Task, *, action: str, now: dt.datetime, decision: str) -> ProofSubmission | None:
    target = check(task, action)
    proof = _pending_proof(task)
    if proof is not None:
        proof.decision = decision
        proof.decided_at = now
        proof.save(update_fields=["decision", "decided_at"])
    task.status = target
    task.completed_at = now
    task.auto_approve_at = None
    task.save(update_fields=["status", "completed_at", "auto_approve_at", "updated_at"])
    payment_hooks.on_completed(task)
    return proof


@transaction.atomic
def task_approve(task: Task, *, by: User) -> Task:
    """The customer approves the submitted work: the task is completed and
    ``payment_hooks.on_completed`` releases the money."""
    user_require_verified(by)
    task = _lock(task)
    _require_customer(task, by)
    check(task, "approve")
    proof = _complete(task, action="approve", now=timezone.now(), decision=ProofSubmission.Decision.APPROVED)
    _event(task, E.APPROVED, by, from_status=S.SUBMITTED, to_status=task.status, proof=proof.pk if proof else None)
    notify.task_approved(task)
    return task


@transaction.atomic
def task_request_changes(task: Task, *, by: User, reason: str) -> Task:
    """The customer sends submitted work back once, with a reason: the task
    is in progress again and the auto-approval clock stops until the next
    proof."""
    user_require_verified(by)
    task = _lock(task)
    _require_customer(task, by)
    target = check(task, "request_changes")
    if task.changes_requested_count >= MAX_CHANGE_REQUESTS:
        raise Conflict(
            _("You have already asked for changes once. Approve the work, or contact support."),
            code="changes_already_requested",
        )
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_CHARS:
        raise _invalid({"reason": [_("Say what needs to change (at least 5 characters).")]})
    if len(reason) > MAX_REASON_CHARS:
        raise _invalid({"reason": [_("Use at most 500 characters.")]})
    now = timezone.now()
    proof = _pending_proof(task)
    if proof is not None:
        proof.decision = ProofSubmission.Decision.CHANGES_REQUESTED
        proof.decision_reason = reason
        proof.decided_at = now
        proof.save(update_fields=["decision", "decision_reason", "decided_at"])
    task.status = target
    task.changes_requested_count += 1
    task.auto_approve_at = None
    task.reminder_24h_sent_at = None
    task.reminder_48h_sent_at = None
    task.save(
        update_fields=[
            "status",
            "changes_requested_count",
            "auto_approve_at",
            "reminder_24h_sent_at",
            "reminder_48h_sent_at",
            "updated_at",
        ]
    )
    _event(
        task,
        E.CHANGES_REQUESTED,
        by,
        from_status=S.SUBMITTED,
        to_status=target,
        reason=reason,
        proof=proof.pk if proof else None,
    )
    notify.changes_requested(task, reason=reason)
    return task


# --- deadlines ---------------------------------------------------------------------


def task_sweep_deadlines(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send the 24 h and 48 h approval reminders and approve work nobody
    answered within 72 hours. Run every minute by beat (``tasks.sweep_deadlines``).

    Each task is handled in its own transaction, locked with
    ``skip_locked``: two sweepers running at once split the work instead of
    doing it twice, and a task a customer is approving right now is left for
    the next run. Idempotent: what was sent or approved is recorded on the row.

    Auto-approval waits while the photo check of the pending proof failed or
    needs a person's look (issue 6): money is never released on photos the
    check doubts until staff clear them; the customer can still approve.
    """
    now = now or timezone.now()
    due = (
        Task.objects.filter(status=S.SUBMITTED)
        .annotate(photos_in_question=_photos_in_question())
        .filter(
            Q(auto_approve_at__lte=now, photos_in_question=False)
            | Q(reminder_24h_sent_at__isnull=True, submitted_at__lte=now - REMINDER_1_AFTER)
            | Q(reminder_48h_sent_at__isnull=True, submitted_at__lte=now - REMINDER_2_AFTER)
        )
        .order_by("auto_approve_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"reminded_24h": 0, "reminded_48h": 0, "auto_approved": 0, "errors": 0}
    for pk in list(due):
        try:
            outcome = _sweep_one(pk, now)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            logger.exception("Deadline sweep failed for task %s", pk)
            counts["errors"] += 1
            continue
        if outcome:
            counts[outcome] += 1
    return counts


DOUBTED_CHECKS = (PhotoCheck.Status.FAIL, PhotoCheck.Status.NEEDS_REVIEW)


def _photos_in_question():
    return Exists(
        PhotoCheck.objects.filter(
            proof__task=OuterRef("pk"), proof__decision=ProofSubmission.Decision.PENDING, status__in=DOUBTED_CHECKS
        )
    )


def _photos_doubted(task: Task) -> bool:
    return PhotoCheck.objects.filter(
        proof__task=task, proof__decision=ProofSubmission.Decision.PENDING, status__in=DOUBTED_CHECKS
    ).exists()


@transaction.atomic
def _sweep_one(pk: int, now: dt.datetime) -> str | None:
    task = Task.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=pk, status=S.SUBMITTED).first()
    if task is None:  # another sweeper or a customer holds it, or it moved on
        return None
    if task.auto_approve_at is not None and task.auto_approve_at <= now and not _photos_doubted(task):
        proof = _complete(task, action="auto_approve", now=now, decision=ProofSubmission.Decision.AUTO_APPROVED)
        _event(
            task,
            E.AUTO_APPROVED,
            None,
            from_status=S.SUBMITTED,
            to_status=task.status,
            proof=proof.pk if proof else None,
        )
        notify.task_auto_approved(task)
        return "auto_approved"
    if task.submitted_at is None:
        return None
    if task.reminder_48h_sent_at is None and task.submitted_at + REMINDER_2_AFTER <= now:
        # If the sweep was down for a day, one (the last) reminder is enough.
        task.reminder_48h_sent_at = now
        task.reminder_24h_sent_at = task.reminder_24h_sent_at or now
        task.save(update_fields=["reminder_24h_sent_at", "reminder_48h_sent_at", "updated_at"])
        _event(task, E.REMINDER_SENT, None, from_status=task.status, to_status=task.status, reminder="48h")
        notify.approval_reminder(task, which="48h")
        return "reminded_48h"
    if task.reminder_24h_sent_at is None and task.submitted_at + REMINDER_1_AFTER <= now:
        task.reminder_24h_sent_at = now
        task.save(update_fields=["reminder_24h_sent_at", "updated_at"])
        _event(task, E.REMINDER_SENT, None, from_status=task.status, to_status=task.status, reminder="24h")
        notify.approval_reminder(task, which="24h")
        return "reminded_24h"
    return None


# --- disputes (called by reputation.disputes; issue 7) ------------------------------
# The dispute itself (parties, evidence, money) is reputation's; these two only
# move the task's own status and timeline, inside the caller's transaction.

DISPUTABLE = frozenset({S.SUBMITTED, S.COMPLETED})


def task_open_dispute(task: Task, *, by: User) -> Task:
    """A party disputes the task. Called by ``reputation.disputes.dispute_open``
    inside its transaction; locks the task row.

    Submitted work, or completed work inside the payout hold (the caller
    checks the hold): the task becomes ``disputed`` (``state.check(task,
    "dispute")``), so neither approval nor the auto-approval sweep can
    complete it and everyone sees it is contested. Anything else:
    IllegalTransition.
    """
    task = _lock(task)
    if by.pk not in (task.customer_id, task.contractor_id):
        raise PermissionDenied(
            _("Only the customer or the assigned contractor can dispute this task."), code="not_task_party"
        )
    previous = task.status
    target = check(task, "dispute")
    if previous not in DISPUTABLE:
        raise IllegalTransition(
            _("Only submitted or completed work can be disputed."),
            extra={"status": task.status, "action": "dispute"},
        )
    task.status = target
    task.auto_approve_at = None
    task.save(update_fields=["status", "auto_approve_at", "updated_at"])
    _event(task, E.DISPUTED, by, from_status=previous, to_status=target)
    return task


def task_resolve_dispute(task: Task, *, outcome: str, by: User | None = None) -> Task:
    """The dispute on this task is settled with ``outcome`` ("release",
    "split" or "refund"). Called by ``reputation.disputes`` inside its
    transaction, which moves the money itself: no payment hook runs here.

    A disputed task is completed (release, split) or cancelled (full refund),
    whether it was disputed on submission or after approval. The timeline gets
    the outcome either way.
    """
    if outcome not in ("release", "split", "refund"):
        raise ValueError(f"unknown dispute outcome {outcome!r}")
    task = _lock(task)
    now = timezone.now()
    previous = task.status
    if outcome == "refund":
        target = check(task, "resolve_dispute_cancelled")
        task.status = target
        task.cancelled_at = now
        task.cancelled_by = by
        task.cancel_reason = _("Refunded after a dispute.")
        task.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"])
        _event(task, E.CANCELLED, by, from_status=previous, to_status=target, resolved=outcome)
        return task
    target = check(task, "resolve_dispute_completed")
    task.status = target
    task.completed_at = task.completed_at or now  # approved work keeps its approval time
    task.save(update_fields=["status", "completed_at", "updated_at"])
    pending = _pending_proof(task)
    if pending is not None:
        pending.decision = ProofSubmission.Decision.APPROVED
        pending.decision_reason = _("Settled by a dispute.")
        pending.decided_at = now
        pending.save(update_fields=["decision", "decision_reason", "decided_at"])
    _event(task, E.DISPUTED, by, from_status=previous, to_status=target, resolved=outcome)
    return task
