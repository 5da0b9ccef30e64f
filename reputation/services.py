"""Every write about reviews, trust scores and achievements.

Reviews are double-blind: a review is seen only by its author until it is
published, which happens to both sides of a task at once as soon as both
have reviewed, or to whatever exists when the 14-day window after completion
closes (``reviews_publish_due``, a beat job). Until then the author may edit;
once published a review is frozen.

Concurrency: the task row is the lock for its reviews (``select_for_update``
on the task), so two sides submitting at the same moment publish exactly
once and a beat run racing a submission sees a consistent pair.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.verification import audit_record
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from matching import hooks as matching_hooks
from messaging import notifications
from tasks.models import Task

from . import achievements as ach
from . import scoring
from .models import (
    ALL_SUB_RATINGS,
    CONTRACTOR_SUB_RATINGS,
    CUSTOMER_SUB_RATINGS,
    REPLY_TEXT_MAX,
    REPORT_NOTE_MAX,
    REVIEW_TEXT_MAX,
    REVIEW_WINDOW_DAYS,
    Review,
    ReviewReply,
    ReviewReport,
    TrustScore,
    TrustScoreHistory,
    UserAchievement,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

REVIEW_WINDOW = dt.timedelta(days=REVIEW_WINDOW_DAYS)
MIN_DECISION_REASON = 5
NOTIFY_KIND = notifications.Kind.TASK_UPDATE


# --- helpers ------------------------------------------------------------------------


def _invalid(fields: dict[str, list[str]]) -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, code="invalid", fields=fields)


def _lock_task(task: Task) -> Task:
    try:
        return Task.objects.select_for_update(no_key=True).get(pk=task.pk)
    except Task.DoesNotExist as exc:
        raise NotFound(_("This task no longer exists.")) from exc


def _lock_review(review: Review) -> Review:
    try:
        return Review.objects.select_for_update(no_key=True).select_related("task").get(pk=review.pk)
    except Review.DoesNotExist as exc:
        raise NotFound(_("This review no longer exists.")) from exc


def _is_staff_moderator(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
        and user.has_perm("reputation.change_review")
    )


def review_window_closes(task: Task) -> dt.datetime | None:
    return task.completed_at + REVIEW_WINDOW if task.completed_at else None


def review_role_for(task: Task, user: Any) -> str | None:
    """The role ``user`` reviews in on ``task``, or None if they are no party."""
    pk = getattr(user, "pk", None)
    if pk is None:
        return None
    if pk == task.customer_id:
        return Review.Role.CUSTOMER_TO_CONTRACTOR
    if task.contractor_id is not None and pk == task.contractor_id:
        return Review.Role.CONTRACTOR_TO_CUSTOMER
    return None


def _task_reviewable(task: Task) -> bool:
    return task.completed_at is not None and task.status in (Task.Status.COMPLETED, Task.Status.DISPUTED)


def _as_rating(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    return int(value)


def _clean_review_input(
    role: str, stars: Any, text: Any, sub_ratings: Mapping[str, Any]
) -> tuple[int, str, dict[str, int | None]]:
    errors: dict[str, list[str]] = {}
    allowed = CUSTOMER_SUB_RATINGS if role == Review.Role.CUSTOMER_TO_CONTRACTOR else CONTRACTOR_SUB_RATINGS
    clean_stars = 0
    try:
        parsed = _as_rating(stars)
    except (TypeError, ValueError):
        parsed = -1
    if parsed is None:
        errors["stars"] = [_("Choose from 1 to 5 stars.")]
    elif not 1 <= parsed <= 5:
        errors["stars"] = [_("Stars go from 1 to 5.")]
    else:
        clean_stars = parsed
    clean_subs: dict[str, int | None] = dict.fromkeys(ALL_SUB_RATINGS)
    for name, raw in sub_ratings.items():
        if name not in ALL_SUB_RATINGS:
            errors[name] = [_("Unknown rating.")]
            continue
        try:
            value = _as_rating(raw)
        except (TypeError, ValueError):
            errors[name] = [_("Ratings go from 1 to 5.")]
            continue
        if value is None:
            continue
        if name not in allowed:
            errors[name] = [
                _("Customers don't rate this.")
                if role == Review.Role.CUSTOMER_TO_CONTRACTOR
                else _("Contractors don't rate this.")
            ]
        elif not 1 <= value <= 5:
            errors[name] = [_("Ratings go from 1 to 5.")]
        else:
            clean_subs[name] = value
    clean_text = (text or "").strip() if isinstance(text, str) or text is None else None
    if clean_text is None:
        errors["text"] = [_("Write the review as text.")]
        clean_text = ""
    elif len(clean_text) > REVIEW_TEXT_MAX:
        errors["text"] = [_("Use at most %(n)d characters.") % {"n": REVIEW_TEXT_MAX}]
    if errors:
        raise _invalid(errors)
    return clean_stars, clean_text, clean_subs


def _after_commit_recompute(user_ids: Iterable[int], reason: str) -> None:
    ids = sorted({uid for uid in user_ids if uid})

    def enqueue() -> None:
        from .tasks import recompute_trust

        for uid in ids:
            try:
                recompute_trust.delay(uid, reason)
            except Exception:  # the broker being down must not break the request
                logger.exception("Could not queue a trust recompute for user %s", uid)

    transaction.on_commit(enqueue)


def _task_link(task: Task) -> str:
    return reverse("tasks:detail", kwargs={"public_id": task.public_id})


def _publish(reviews: list[Review], now: dt.datetime) -> None:
    """Publish these (locked) reviews of one task at the same instant."""
    for review in reviews:
        review.published_at = now
        review.save(update_fields=["published_at"])
    for review in reviews:
        matching_hooks.review_published(review)  # 4+ stars from the customer: a "well reviewed" outcome
        notifications.notify(
            review.reviewee,
            kind=NOTIFY_KIND,
            title=_("Your review for “%(task)s” is published") % {"task": review.task.title},
            body=_("%(name)s gave you %(n)d stars.") % {"name": review.reviewer.public_name, "n": review.stars},
            url=_task_link(review.task),
            task=review.task,
            dedupe_key=f"review-published:{review.pk}",
        )
    _after_commit_recompute([r.reviewee_id for r in reviews], "review_published")


# --- reviews ------------------------------------------------------------------------


@transaction.atomic
def review_submit(
    *,
    task: Task,
    by: User,
    stars: Any,
    text: Any = "",
    sub_ratings: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> Review:
    """Write or edit ``by``'s review of the other side of ``task``.

    Only the task's customer or contractor, once the task is completed and
    within 14 days of completion. The review stays hidden (editable) until the
    other side submits; then both are published together and frozen. Locks
    the task row. Notifies the other side (to review too) or both (published).
    """
    now = now or timezone.now()
    role = review_role_for(task, by)
    if role is None:
        raise PermissionDenied(_("Only the customer and the contractor of this task can review it."), code="not_task_party")
    task = _lock_task(task)
    role = review_role_for(task, by)
    if role is None:
        raise PermissionDenied(_("Only the customer and the contractor of this task can review it."), code="not_task_party")
    if not _task_reviewable(task):
        raise Conflict(_("You can review once the task is completed."), code="task_not_completed")
    closes = review_window_closes(task)
    if now > closes:
        raise Conflict(
            _("The %(n)d-day review window for this task has closed.") % {"n": REVIEW_WINDOW_DAYS},
            code="review_window_closed",
        )
    clean_stars, clean_text, clean_subs = _clean_review_input(role, stars, text, sub_ratings or {})

    existing = {r.role: r for r in Review.objects.select_for_update(no_key=True).filter(task=task)}
    mine = existing.get(role)
    other = next((r for r_role, r in existing.items() if r_role != role), None)
    if mine is not None and mine.published_at is not None:
        raise Conflict(_("This review is published and can no longer be changed."), code="review_frozen")

    reviewee_id = task.contractor_id if role == Review.Role.CUSTOMER_TO_CONTRACTOR else task.customer_id
    created = mine is None
    if mine is None:
        mine = Review(
            task=task,
            reviewer=by,
            reviewee_id=reviewee_id,
            role=role,
            submitted_at=now,
            window_closes_at=closes,
        )
    mine.stars = clean_stars
    mine.text = clean_text
    for name, value in clean_subs.items():
        setattr(mine, name, value)
    mine.updated_at = now
    try:
        with transaction.atomic():
            mine.save()
    except IntegrityError as exc:  # the database's checks agree with ours; this is a race
        raise Conflict(_("This review changed meanwhile; reload and try again."), code="review_conflict") from exc

    if other is not None:
        _publish([other, mine] if other.pk < mine.pk else [mine, other], now)
    elif created:
        notifications.notify(
            mine.reviewee,
            kind=NOTIFY_KIND,
            title=_("%(name)s reviewed you for “%(task)s”") % {"name": by.public_name, "task": task.title},
            body=_("Leave your review to see theirs; both appear together."),
            url=_task_link(task),
            task=task,
            dedupe_key=f"review-submitted:{mine.pk}",
        )
    return mine


@transaction.atomic
def reviews_publish_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Publish the hidden reviews whose window has closed, both sides of a
    task together. Safe to run twice or alongside submissions (task locks)."""
    now = now or timezone.now()
    task_ids = list(
        Review.objects.filter(published_at__isnull=True, window_closes_at__lte=now)
        .order_by("task_id")
        .values_list("task_id", flat=True)
        .distinct()[:limit]
    )
    published = 0
    for task in Task.objects.select_for_update(no_key=True).filter(pk__in=task_ids).order_by("pk"):
        due = list(
            Review.objects.select_for_update(no_key=True)
            .select_related("task", "reviewer", "reviewee")
            .filter(task=task, published_at__isnull=True, window_closes_at__lte=now)
            .order_by("pk")
        )
        if due:
            _publish(due, now)
            published += len(due)
    return published


@transaction.atomic
def review_reply(*, review: Review, by: User, text: Any) -> ReviewReply:
    """The reviewed person's one public reply to a published, visible review."""
    review = _lock_review(review)
    if by.pk != review.reviewee_id:
        raise PermissionDenied(_("Only the person reviewed can reply."), code="not_reviewee")
    if review.published_at is None or review.hidden_at is not None:
        raise Conflict(_("You can reply once the review is published."), code="review_not_published")
    body = (text or "").strip() if isinstance(text, str) or text is None else None
    if body is None or not body:
        raise _invalid({"text": [_("Write your reply.")]})
    if len(body) > REPLY_TEXT_MAX:
        raise _invalid({"text": [_("Use at most %(n)d characters.") % {"n": REPLY_TEXT_MAX}]})
    if ReviewReply.objects.filter(review=review).exists():
        raise Conflict(_("You have already replied to this review."), code="already_replied")
    reply = ReviewReply.objects.create(review=review, author=by, text=body)
    notifications.notify(
        review.reviewer,
        kind=NOTIFY_KIND,
        title=_("%(name)s replied to your review") % {"name": by.public_name},
        body=body[:200],
        url=_task_link(review.task),
        task=review.task,
        dedupe_key=f"review-reply:{reply.pk}",
    )
    return reply


@transaction.atomic
def review_report(*, review: Review, by: User, reason: Any, note: Any = "") -> ReviewReport:
    """Anyone signed in who can see a published review (not its author) asks
    staff to look at it. One report per person per review."""
    review = _lock_review(review)
    if review.published_at is None or review.hidden_at is not None:
        raise NotFound(_("This review is not available."))
    if by.pk == review.reviewer_id:
        raise PermissionDenied(_("You can't report your own review."), code="own_review")
    errors: dict[str, list[str]] = {}
    if reason not in ReviewReport.Reason.values:
        errors["reason"] = [_("Choose a reason.")]
    clean_note = (note or "").strip() if isinstance(note, str) or note is None else None
    if clean_note is None:
        errors["note"] = [_("Write the details as text.")]
    elif len(clean_note) > REPORT_NOTE_MAX:
        errors["note"] = [_("Use at most %(n)d characters.") % {"n": REPORT_NOTE_MAX}]
    if errors:
        raise _invalid(errors)
    if ReviewReport.objects.filter(review=review, reporter=by).exists():
        raise Conflict(_("You have already reported this review."), code="already_reported")
    return ReviewReport.objects.create(review=review, reporter=by, reason=reason, note=clean_note)


def _clean_reason(reason: Any) -> str:
    clean = (reason or "").strip() if isinstance(reason, str) or reason is None else ""
    if len(clean) < MIN_DECISION_REASON:
        raise _invalid({"reason": [_("Give a reason (at least %(n)d characters).") % {"n": MIN_DECISION_REASON}]})
    if len(clean) > 500:
        raise _invalid({"reason": [_("Use at most 500 characters.")]})
    return clean


@transaction.atomic
def review_hide(*, review: Review, by: User, reason: Any, now: dt.datetime | None = None) -> Review:
    """Staff hide a review from everyone, with a reason; open reports on it
    are closed as "hidden". Audited in the same transaction."""
    if not _is_staff_moderator(by):
        raise PermissionDenied(_("Only staff can hide reviews."), code="not_staff")
    clean = _clean_reason(reason)
    now = now or timezone.now()
    review = _lock_review(review)
    if review.hidden_at is not None:
        raise Conflict(_("This review is already hidden."), code="already_hidden")
    review.hidden_at = now
    review.hidden_by = by
    review.hidden_reason = clean
    review.save(update_fields=["hidden_at", "hidden_by", "hidden_reason"])
    report_ids = list(
        ReviewReport.objects.select_for_update(no_key=True)
        .filter(review=review, status=ReviewReport.Status.OPEN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ReviewReport.objects.filter(pk__in=report_ids).update(
        status=ReviewReport.Status.HIDDEN, decided_by=by, decided_at=now, decision_reason=clean
    )
    audit_record(
        by,
        "review.hide",
        review,
        clean,
        {"task": str(review.task.public_id), "role": review.role, "reports": report_ids},
    )
    _after_commit_recompute([review.reviewee_id], "review_hidden")
    return review


@transaction.atomic
def review_report_dismiss(*, report: ReviewReport, by: User, reason: Any, now: dt.datetime | None = None) -> ReviewReport:
    """Staff close a report without hiding the review, with a reason. Audited."""
    if not _is_staff_moderator(by):
        raise PermissionDenied(_("Only staff can decide reports."), code="not_staff")
    clean = _clean_reason(reason)
    try:
        report = ReviewReport.objects.select_for_update(no_key=True).get(pk=report.pk)
    except ReviewReport.DoesNotExist as exc:
        raise NotFound(_("This report no longer exists.")) from exc
    if report.status != ReviewReport.Status.OPEN:
        raise Conflict(_("This report has already been decided."), code="already_decided")
    report.status = ReviewReport.Status.DISMISSED
    report.decided_by = by
    report.decided_at = now or timezone.now()
    report.decision_reason = clean
    report.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    audit_record(by, "review.report_dismiss", report, clean, {"review": report.review_id})
    return report


# --- trust score and achievements -------------------------------------------------


@transaction.atomic
def trust_recompute(*, user: User, reason: str = "", now: dt.datetime | None = None) -> TrustScore:
    """Compute the user's scores, store them with a history row, and award
    any achievement newly earned. Locks the user's score row."""
    now = now or timezone.now()
    contractor = scoring.contractor_breakdown(user, now=now)
    customer = scoring.customer_breakdown(user, now=now)
    TrustScore.objects.get_or_create(user=user)
    trust = TrustScore.objects.select_for_update(no_key=True).get(user=user)
    trust.score = contractor.score
    trust.factors = contractor.factors
    trust.customer_score = customer.score
    trust.customer_factors = customer.factors
    trust.computed_at = now
    trust.save()
    TrustScoreHistory.objects.create(
        user=user,
        score=contractor.score,
        factors=contractor.factors,
        customer_score=customer.score,
        customer_factors=customer.factors,
        reason=reason[:64],
        computed_at=now,
    )
    achievements_award(user=user, now=now)
    return trust


def achievements_due(user: User, *, now: dt.datetime | None = None) -> list[str]:
    """The achievement codes whose rule the user meets now (earned or not)."""
    codes: list[str] = []
    if user.is_contractor:
        completed = scoring.completed_jobs(user)
        if completed >= 1:
            codes.append(ach.FIRST_JOB)
        if scoring.five_star_jobs(user) >= ach.FIVE_STAR_JOBS_NEEDED:
            codes.append(ach.FIVE_STAR_10)
        stats = scoring.message_response_stats(user, now=now)
        if (
            stats.conversations >= ach.FAST_RESPONDER_CONVERSATIONS
            and stats.median is not None
            and stats.median.total_seconds() < ach.FAST_RESPONDER_SECONDS
        ):
            codes.append(ach.FAST_RESPONDER)
        if completed >= ach.UNDISPUTED_JOBS_NEEDED and (
            scoring.undisputed_completed_jobs(user, completed) >= ach.UNDISPUTED_JOBS_NEEDED
        ):
            codes.append(ach.NO_DISPUTE_50)
        if user.email_verified_at and user.phone_verified_at and user.id_verified_at:
            codes.append(ach.VERIFIED_PRO)
    return codes


@transaction.atomic
def achievements_award(*, user: User, now: dt.datetime | None = None) -> list[UserAchievement]:
    """Award each achievement the user newly meets, once (the unique
    constraint decides a race), with a notification for each new one."""
    now = now or timezone.now()
    have = set(UserAchievement.objects.filter(user=user).values_list("code", flat=True))
    awarded: list[UserAchievement] = []
    for code in achievements_due(user, now=now):
        if code in have:
            continue
        try:
            with transaction.atomic():
                earned = UserAchievement.objects.create(user=user, code=code, earned_at=now)
        except IntegrityError:
            continue
        awarded.append(earned)
        definition = ach.ACHIEVEMENTS[code]
        notifications.notify(
            user,
            kind=NOTIFY_KIND,
            title=_("Achievement unlocked: %(title)s") % {"title": definition.title},
            body=str(definition.description),
            url=reverse("reputation:mine"),
            dedupe_key=f"achievement:{code}",
        )
    return awarded


def users_with_recent_activity(*, since: dt.datetime) -> set[int]:
    """Users whose trust inputs may have moved since ``since``: both sides of
    tasks with new events (offers, check-ins, completion, cancellation) and of
    conversations with new messages."""
    from messaging.models import Conversation
    from tasks.models import TaskEvent

    ids: set[int] = set()
    for customer_id, contractor_id, actor_id in TaskEvent.objects.filter(created_at__gte=since).values_list(
        "task__customer_id", "task__contractor_id", "actor_id"
    ):
        ids.update(i for i in (customer_id, contractor_id, actor_id) if i)
    for customer_id, contractor_id in Conversation.objects.filter(last_message_at__gte=since).values_list(
        "customer_id", "contractor_id"
    ):
        ids.update((customer_id, contractor_id))
    return ids
