"""Ratings and the trust score: plain arithmetic over a user's history.

Rating: a Bayesian average ``(C*m + sum) / (C + n)`` where ``m`` is the
platform mean of the same kind of review and ``C`` (``REPUTATION_PRIOR_WEIGHT``)
is how many "average" reviews a newcomer is assumed to have. With few reviews
the rating sits near the platform mean; with many it approaches the raw mean.

Trust score (0-100): each factor has a value in [0, 1]; its contribution is
``value * weight``; the score is the sum of contributions rounded half up.
The weights are the dicts below and nowhere else. A factor without enough
history counts as ``NEUTRAL`` (half), so a newcomer is neither punished nor
rewarded for what hasn't happened yet.

Everything here only reads; ``reputation.services.trust_recompute`` stores
the result.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.models import Message
from tasks.models import CheckIn, Offer, Task

from .models import Review

# --- the weights: one place ---------------------------------------------------------
CONTRACTOR_WEIGHTS: dict[str, int] = {
    "verification": 15,
    "rating": 25,
    "completion": 15,
    "on_time": 10,
    "message_response": 5,
    "offer_response": 5,
    "disputes": 10,
    "cancellations": 5,
    "tenure": 10,
}
CUSTOMER_WEIGHTS: dict[str, int] = {
    "verification": 30,
    "rating": 30,
    "cancellations": 20,
    "tenure": 20,
}
assert sum(CONTRACTOR_WEIGHTS.values()) == 100
assert sum(CUSTOMER_WEIGHTS.values()) == 100

NEUTRAL = 0.5
ON_TIME_GRACE = dt.timedelta(minutes=15)
LATE_CANCEL_WINDOW = dt.timedelta(hours=24)
FAST = dt.timedelta(hours=1)  # a reply or offer this fast counts fully
SLOW = dt.timedelta(hours=24)  # this slow (or never, after this long) counts nothing
TENURE_FULL_DAYS = 365
RESPONSE_LOOKBACK = dt.timedelta(days=365)


def prior_weight() -> float:
    return float(getattr(settings, "REPUTATION_PRIOR_WEIGHT", 5))


def fallback_mean() -> float:
    """The platform mean before the platform has any reviews."""
    return float(getattr(settings, "REPUTATION_FALLBACK_MEAN", 4.0))


def visible_reviews():
    """Reviews that count: published and not hidden by staff."""
    return Review.objects.filter(published_at__isnull=False, hidden_at__isnull=True)


def platform_mean(role: str = Review.Role.CUSTOMER_TO_CONTRACTOR) -> float:
    mean = visible_reviews().filter(role=role).aggregate(m=Avg("stars"))["m"]
    return float(mean) if mean is not None else fallback_mean()


def bayesian_average(total: float, count: int, *, mean: float, weight: float) -> float:
    return (weight * mean + total) / (weight + count)


@dataclass(frozen=True)
class Rating:
    bayesian: float
    raw: float | None
    count: int


def rating_for(user, role: str = Review.Role.CUSTOMER_TO_CONTRACTOR, *, mean: float | None = None) -> Rating:
    """The user's rating from published, visible reviews they received in ``role``."""
    exact = exact_rating(user, role, mean=mean)
    return Rating(bayesian=round(exact.bayesian, 2), raw=round(exact.raw, 2) if exact.raw is not None else None, count=exact.count)


def exact_rating(user, role: str = Review.Role.CUSTOMER_TO_CONTRACTOR, *, mean: float | None = None) -> Rating:
    """As ``rating_for``, unrounded (the trust score uses this)."""
    agg = visible_reviews().filter(reviewee=user, role=role).aggregate(n=Count("pk"), s=Sum("stars"))
    count, total = agg["n"] or 0, agg["s"] or 0
    m = platform_mean(role) if mean is None else mean
    return Rating(
        bayesian=bayesian_average(total, count, mean=m, weight=prior_weight()),
        raw=total / count if count else None,
        count=count,
    )


# --- factor helpers -------------------------------------------------------------------


@dataclass
class Factor:
    name: str
    label: str
    value: float
    detail: str
    hint: str = ""


@dataclass
class Breakdown:
    score: int
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def speed_value(delay: dt.timedelta) -> float:
    """1 at or under an hour, 0 at or over 24 hours, linear between."""
    return _clamp(1 - (delay - FAST) / (SLOW - FAST))


def _assemble(factors: list[Factor], weights: dict[str, int]) -> Breakdown:
    out: dict[str, dict[str, Any]] = {}
    total = 0.0
    for f in factors:
        weight = weights[f.name]
        contribution = f.value * weight
        total += contribution
        out[f.name] = {
            "label": f.label,
            "value": round(f.value, 4),
            "weight": weight,
            "contribution": round(contribution, 2),
            "detail": f.detail,
            "hint": f.hint if f.value < 1 else "",
        }
    return Breakdown(score=max(0, min(100, round_half_up(total))), factors=out)


def _fmt_delay(delay: dt.timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    if minutes < 60:
        return _("%(n)d min") % {"n": minutes}
    return _("%(h).1f h") % {"h": minutes / 60}


# --- contractor factors -------------------------------------------------------------


def verification_factor(user) -> Factor:
    badges = [user.email_verified_at, user.phone_verified_at, user.id_verified_at]
    have = sum(1 for b in badges if b is not None)
    missing = []
    if user.email_verified_at is None:
        missing.append(_("your email"))
    if user.phone_verified_at is None:
        missing.append(_("your phone number"))
    if user.id_verified_at is None:
        missing.append(_("your ID"))
    return Factor(
        "verification",
        _("Verification badges"),
        have / 3,
        _("%(n)d of 3 verified") % {"n": have},
        _("Verify %(what)s.") % {"what": ", ".join(missing)} if missing else "",
    )


def rating_factor(user, role: str) -> Factor:
    rating = exact_rating(user, role)
    if role == Review.Role.CUSTOMER_TO_CONTRACTOR:
        hint = _("Ask customers to review you after each job; good reviews lift this fastest.")
    else:
        hint = _("Describe jobs clearly and pay promptly; contractors' reviews lift this.")
    return Factor(
        "rating",
        _("Rating"),
        _clamp((rating.bayesian - 1) / 4),
        _("%(b).2f from %(n)d reviews") % {"b": rating.bayesian, "n": rating.count},
        hint,
    )


def _contractor_tasks(user):
    return Task.objects.filter(contractor=user)


def completion_factor(user) -> Factor:
    tasks = _contractor_tasks(user)
    completed = tasks.filter(completed_at__isnull=False).count()
    cancelled = tasks.filter(status=Task.Status.CANCELLED, cancelled_by=user).count()
    if completed + cancelled == 0:
        return Factor("completion", _("Completion rate"), NEUTRAL, _("No jobs yet"), _("Complete your first job."))
    return Factor(
        "completion",
        _("Completion rate"),
        completed / (completed + cancelled),
        _("%(c)d of %(t)d jobs completed") % {"c": completed, "t": completed + cancelled},
        _("Finish the jobs you accept instead of cancelling them."),
    )


def _reference_start(task: Task) -> dt.datetime | None:
    if task.schedule_type == Task.ScheduleType.WINDOW:
        return task.window_start
    return task.deadline


def on_time_factor(user) -> Factor:
    first_check_ins: dict[int, dt.datetime] = {}
    for task_id, at in CheckIn.objects.filter(contractor=user).order_by("at").values_list("task_id", "at"):
        first_check_ins.setdefault(task_id, at)
    tasks = Task.objects.filter(pk__in=first_check_ins).only("pk", "schedule_type", "window_start", "deadline")
    checked = on_time = 0
    for task in tasks:
        reference = _reference_start(task)
        if reference is None:
            continue
        checked += 1
        if first_check_ins[task.pk] <= reference + ON_TIME_GRACE:
            on_time += 1
    if checked == 0:
        return Factor("on_time", _("On-time arrival"), NEUTRAL, _("No check-ins yet"), _("Check in when you arrive."))
    return Factor(
        "on_time",
        _("On-time arrival"),
        on_time / checked,
        _("%(o)d of %(n)d check-ins on time") % {"o": on_time, "n": checked},
        _("Check in at the start of the window (15 minutes' grace)."),
    )


@dataclass(frozen=True)
class ResponseStats:
    delays: list[dt.timedelta]
    conversations: int  # conversations with at least one measured reply

    @property
    def median(self) -> dt.timedelta | None:
        return statistics.median(self.delays) if self.delays else None


def message_response_stats(user, *, now: dt.datetime | None = None) -> ResponseStats:
    """Time from a customer's message (the first since the contractor last
    spoke) to the contractor's next message, over the contractor's
    conversations. A customer message still unanswered after 24 hours counts
    as 24 hours; one younger than that isn't measured yet."""
    now = now or timezone.now()
    rows = (
        Message.objects.filter(conversation__contractor=user, conversation__created_at__gte=now - RESPONSE_LOOKBACK)
        .order_by("conversation_id", "seq")
        .values_list("conversation_id", "sender_id", "created_at")
    )
    delays: list[dt.timedelta] = []
    measured: set[int] = set()
    waiting: dict[int, dt.datetime] = {}
    for conversation_id, sender_id, created_at in rows:
        if sender_id == user.pk:
            since = waiting.pop(conversation_id, None)
            if since is not None:
                delays.append(created_at - since)
                measured.add(conversation_id)
        else:
            waiting.setdefault(conversation_id, created_at)
    for conversation_id, since in waiting.items():
        if now - since >= SLOW:
            delays.append(SLOW)
            measured.add(conversation_id)
    return ResponseStats(delays=delays, conversations=len(measured))


def message_response_factor(user, stats: ResponseStats | None = None) -> Factor:
    stats = stats or message_response_stats(user)
    median = stats.median
    if median is None:
        return Factor(
            "message_response", _("Reply time to messages"), NEUTRAL, _("No conversations yet"),
            _("Reply to customers' messages within an hour."),
        )
    return Factor(
        "message_response",
        _("Reply time to messages"),
        speed_value(median),
        _("Median reply %(t)s") % {"t": _fmt_delay(median)},
        _("Reply to customers' messages within an hour."),
    )


def offer_response_factor(user) -> Factor:
    delays = [
        created - published
        for created, published in Offer.objects.filter(contractor=user, task__published_at__isnull=False)
        .values_list("created_at", "task__published_at")
        .order_by("created_at")
    ]
    if not delays:
        return Factor(
            "offer_response", _("Speed of offers"), NEUTRAL, _("No offers yet"),
            _("Make offers soon after a task is posted."),
        )
    median = statistics.median(delays)
    return Factor(
        "offer_response",
        _("Speed of offers"),
        speed_value(median),
        _("Median %(t)s after posting") % {"t": _fmt_delay(median)},
        _("Make offers soon after a task is posted."),
    )


def dispute_stats(user) -> dict[str, Any]:
    """Dispute figures from the disputes part of this app
    (``reputation.disputes_selectors.dispute_stats``): ``disputed`` (the user's
    tasks, either side, that had a dispute), ``lost`` (resolved fully against
    them), ``rate`` (disputed over completed-or-disputed tasks)."""
    try:
        from .disputes_selectors import dispute_stats as real
    except ImportError:  # disputes not installed: no disputes
        return {"disputed": 0, "lost": 0, "rate": 0.0, "completed": 0, "opened_against": 0}
    return dict(real(user))


def disputes_factor(user, completed: int, stats: dict[str, Any] | None = None) -> Factor:
    """Every disputed task costs half a job, one lost a whole job:
    ``value = 1 - rate * (disputed + lost) / (2 * disputed)``."""
    stats = dispute_stats(user) if stats is None else stats
    disputed = int(stats.get("disputed") or 0)
    lost = int(stats.get("lost") or 0)
    rate = float(stats.get("rate") or 0.0)
    if completed == 0 and disputed == 0:
        return Factor("disputes", _("Disputes"), NEUTRAL, _("No jobs yet"), _("Complete jobs without disputes."))
    value = 1.0 if disputed == 0 else _clamp(1 - rate * (disputed + lost) / (2 * disputed))
    return Factor(
        "disputes",
        _("Disputes"),
        value,
        _("%(d)d disputed (%(l)d lost), %(r).0f%% of jobs") % {"d": disputed, "l": lost, "r": rate * 100},
        _("Agree the scope in the chat before starting and send clear proof photos."),
    )


def _late_cancel(task: Task) -> bool:
    reference = _reference_start(task)
    return reference is None or task.cancelled_at is None or reference - task.cancelled_at < LATE_CANCEL_WINDOW


def cancellations_factor(user, *, as_customer: bool = False) -> Factor:
    """Share of the user's booked tasks they cancelled late (within 24 hours of
    the start, or after it): the cancellations that leave the other side stuck."""
    booked = Task.objects.filter(customer=user, contractor__isnull=False) if as_customer else _contractor_tasks(user)
    total = booked.count()
    if total == 0:
        return Factor(
            "cancellations", _("Late cancellations"), NEUTRAL, _("No bookings yet"),
            _("Keep the bookings you make."),
        )
    cancelled = booked.filter(status=Task.Status.CANCELLED, cancelled_by=user).only(
        "schedule_type", "window_start", "deadline", "cancelled_at"
    )
    late = sum(1 for t in cancelled if _late_cancel(t))
    return Factor(
        "cancellations",
        _("Late cancellations"),
        1 - late / total,
        _("%(l)d late of %(t)d bookings") % {"l": late, "t": total},
        _("Cancel at least a day ahead if you must cancel at all."),
    )


def tenure_factor(user, *, now: dt.datetime | None = None) -> Factor:
    now = now or timezone.now()
    days = max(0, (now - user.date_joined).days)
    return Factor(
        "tenure",
        _("Time on BittieTasks"),
        min(1.0, days / TENURE_FULL_DAYS),
        _("%(d)d days") % {"d": days},
        _("This grows by itself over your first year."),
    )


def completed_jobs(user) -> int:
    return _contractor_tasks(user).filter(completed_at__isnull=False).count()


def contractor_breakdown(user, *, now: dt.datetime | None = None) -> Breakdown:
    completed = completed_jobs(user)
    factors = [
        verification_factor(user),
        rating_factor(user, Review.Role.CUSTOMER_TO_CONTRACTOR),
        completion_factor(user),
        on_time_factor(user),
        message_response_factor(user, message_response_stats(user, now=now)),
        offer_response_factor(user),
        disputes_factor(user, completed),
        cancellations_factor(user),
        tenure_factor(user, now=now),
    ]
    return _assemble(factors, CONTRACTOR_WEIGHTS)


def customer_breakdown(user, *, now: dt.datetime | None = None) -> Breakdown:
    factors = [
        verification_factor(user),
        rating_factor(user, Review.Role.CONTRACTOR_TO_CUSTOMER),
        cancellations_factor(user, as_customer=True),
        tenure_factor(user, now=now),
    ]
    return _assemble(factors, CUSTOMER_WEIGHTS)


def five_star_jobs(user) -> int:
    return (
        visible_reviews()
        .filter(reviewee=user, role=Review.Role.CUSTOMER_TO_CONTRACTOR, stars=5)
        .values("task_id")
        .distinct()
        .count()
    )


def undisputed_completed_jobs(user, completed: int | None = None) -> int:
    completed = completed_jobs(user) if completed is None else completed
    return max(0, completed - int(dispute_stats(user).get("disputed") or 0))

