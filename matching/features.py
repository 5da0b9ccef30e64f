"""Features of a (task, contractor) pair, computed in batches.

``pair_matrix(tasks, contractors)`` scores the cross product; ``pairs_matrix``
takes explicit pairs (training, evaluation). Both cost a fixed number of
statements per call (16-17, whatever the number of pairs): every
per-contractor or per-(contractor, category) figure is one grouped statement,
then numpy arrays are gathered per pair. On PostgreSQL the statements are plain
SQL sent in one round trip (``_fetch_sql``); elsewhere they are ORM queries
(``_fetch_orm``, also the reference the SQL is tested against). Nothing here
writes.

History features (ratings, jobs done, prices, offers, skips) only count what
happened before ``now`` and never the pair's own task, so a model trained on
``pairs_matrix(..., now=<when the task was posted>)`` never sees the outcome it
is asked to predict.

Missing history is neutral, not bad: no reviews -> the platform mean (the
Bayesian prior of ``reputation.scoring``), no trust score -> 0.5, no jobs ->
completion and response 0.5, no rate -> price ratio 1. The raw counts are
features too, so a model can tell "no history" from "average history".

Weekly availability (``AvailabilitySlot``) is in the contractor's local time;
profiles carry no time zone, so the market's ``settings.TIME_ZONE`` is used.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from accounts.models import AvailabilitySlot, ContractorProfile
from core.db import any_of
from tasks.models import Offer, Task

from .models import BusyBlock, Invitation, MatchEvent

FEATURE_NAMES: list[str] = [
    "distance_km",  # great-circle distance from the contractor's base
    "distance_ratio",  # distance / service radius
    "inside_radius",  # 1 if distance <= radius
    "category_match",  # 1 if the task's trade is one of the contractor's
    "text_similarity",  # TF-IDF cosine: task title+description vs bio + past job titles
    "schedule_fit",  # free hours in the task's window / hours needed, capped at 1
    "first_free_weekday",  # 0=Monday..6=Sunday of the first free slot in the window; -1 none (explanations only)
    "price_rate_ratio",  # budget per hour / contractor's hourly rate (1 = neutral)
    "price_past_ratio",  # budget / median price of their past jobs in this trade (1 = neutral)
    "budget_dollars",  # the task's total budget
    "rating",  # Bayesian average from customers (platform mean with no reviews)
    "rating_count",
    "trust",  # trust score in [0, 1]; 0.5 before the first computation
    "completion_rate",  # completed / (completed + cancelled by them); 0.5 with none
    "response_speed",  # offer speed in [0, 1] (median delay after posting); 0.5 with none
    "cancel_rate",  # cancelled by them / booked; 0 with none
    "jobs_done",  # completed jobs
    "customer_jobs",  # completed jobs for this task's customer
    "similar_jobs",  # completed jobs in this task's trade
    "category_offers",  # offers on tasks of this trade (MatchEvent "offered")
    "category_skips",  # skips of tasks of this trade (MatchEvent "skipped")
    "category_offer_rate",  # (offers + 1) / (offers + skips + 2)
    "customer_preference",  # the customer's learned lean towards this contractor, as of now (from MatchEvents)
    "category_preference",  # the contractor's learned lean towards this trade, as of now (from MatchEvents)
    "invited",  # 1 if the customer invited this contractor to the task
    "category_shown",  # tasks of this trade shown to them (MatchEvent "shown")
    "category_hires",  # hired for tasks of this trade (MatchEvent "accepted")
    "shown_offer_rate",  # (offers + 1) / (shown + 2) in this trade: how often they answer what they see
    "customer_good_reviews",  # this customer's 4-5 star reviews of them
    "customer_bad_reviews",  # this customer's 1-2 star reviews of them
    "customer_passed_over",  # this customer's tasks where they offered and someone else was hired
    "week_load",  # their booked jobs within 3.5 days either side of the task's time
]
INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
# Features that only exist to explain (a weekday number is not an ordinal signal).
EXPLAIN_ONLY = frozenset({"first_free_weekday"})
MODEL_FEATURES: list[str] = [name for name in FEATURE_NAMES if name not in EXPLAIN_ONLY]

TYPICAL_HOURS = 3  # a fixed-price job with no estimate is taken as this many hours of work
DEFAULT_NEEDED_HOURS = 2  # hours a job needs when it gives no estimate
FLEXIBLE_LOOKAHEAD = dt.timedelta(days=7)  # a flexible task can be done in the week before its deadline
SLOT = dt.timedelta(minutes=30)  # resolution of the availability timeline
MAX_TIMELINE_DAYS = 120  # availability further out than this counts as unknown (neutral)
NEUTRAL = 0.5
EARTH_RADIUS_KM = 6371.0088
BUSY_STATUSES = (Task.Status.ASSIGNED, Task.Status.IN_PROGRESS, Task.Status.SUBMITTED, Task.Status.COMPLETED)
TEXT_CHARS = 1000  # of a description; the start says what the job is
WEEK_LOAD_SPAN = dt.timedelta(days=3.5)  # booked jobs this close to the task's time count towards its week

# Learned preferences, rebuilt "as of" a moment from the outcome log with the
# same steps ``matching.services`` uses to keep ``Preference`` up to date (the
# table holds only today's weight, which already contains the answer for any
# past task; features read the log instead, so training and serving agree).
PREF_HIRED = 1.0  # the customer hired this contractor
PREF_REHIRED = 0.5  # ...each time after the first
PREF_PASSED_OVER = -0.2  # they offered and the customer hired someone else
PREF_WELL_REVIEWED = 0.3  # the customer gave them 4+ stars
PREF_OFFERED_CATEGORY = 0.2  # the contractor offered on a task of this trade
PREF_TOOK_CATEGORY = 0.3  # ...and was hired for it
PREF_SKIPPED_CATEGORY = -0.3  # "Not for me"
PREF_BOUND = 5.0


@dataclass
class _Contractor:
    user_id: int
    profile_id: int
    latitude: float | None
    longitude: float | None
    radius_km: float
    rate_cents: int | None
    bio: str


def _user_id(contractor: Any) -> int:
    if isinstance(contractor, ContractorProfile):
        return contractor.user_id
    if isinstance(contractor, int):
        return contractor
    return contractor.pk


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance (numpy-broadcast), as ``core.geo.distance_km``."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def task_text(task: Task) -> str:
    return f"{task.title} {(task.description or '')[:TEXT_CHARS]}"


def task_needed_hours(task: Task) -> float:
    return float(task.estimated_hours or DEFAULT_NEEDED_HOURS)


def task_window(task: Task, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When the work can happen: the window, or the week before the deadline (from now at the earliest)."""
    if task.schedule_type == Task.ScheduleType.WINDOW and task.window_start and task.window_end:
        return task.window_start, task.window_end
    deadline = task.deadline or (now + FLEXIBLE_LOOKAHEAD)
    start = max(deadline - FLEXIBLE_LOOKAHEAD, min(now, deadline - dt.timedelta(hours=1)))
    return start, deadline


def task_budget_per_hour(task: Task) -> float:
    if task.budget_type == Task.BudgetType.HOURLY:
        return float(task.budget_cents)
    return float(task.budget_cents) / float(task.estimated_hours or TYPICAL_HOURS)


# --- the public API -----------------------------------------------------------------


def pair_matrix(tasks: Iterable[Task], contractors: Any, *, now: dt.datetime | None = None):
    """Features of every (task, contractor) in the cross product.

    ``contractors``: one user (or ContractorProfile, or user id) or a list.
    Returns ``(X, pairs)``: X is float64 ``[len(pairs), len(FEATURE_NAMES)]``,
    pairs the ``(task_id, contractor_user_id)`` of each row, tasks outermost.
    """
    tasks = list(tasks)
    if isinstance(contractors, (list, tuple, set)) or hasattr(contractors, "model"):
        contractors = list(contractors)
    else:
        contractors = [contractors]
    pairs = [(task, contractor) for task in tasks for contractor in contractors]
    return pairs_matrix(pairs, now=now)


def pairs_matrix(pairs: Sequence[tuple[Task, Any]], *, now: dt.datetime | None = None):
    """Features of explicit ``(task, contractor)`` pairs; as ``pair_matrix``."""
    now = now or timezone.now()
    if not pairs:
        return np.zeros((0, len(FEATURE_NAMES))), []
    tasks_by_id: dict[int, Task] = {}
    for task, _c in pairs:
        tasks_by_id.setdefault(task.pk, task)
    task_ids = list(tasks_by_id)
    user_ids = list(dict.fromkeys(_user_id(c) for _t, c in pairs))
    t_index = {tid: i for i, tid in enumerate(task_ids)}
    c_index = {uid: i for i, uid in enumerate(user_ids)}
    ti = np.fromiter((t_index[t.pk] for t, _c in pairs), dtype=np.int64, count=len(pairs))
    ci = np.fromiter((c_index[_user_id(c)] for _t, c in pairs), dtype=np.int64, count=len(pairs))
    task_list = [tasks_by_id[tid] for tid in task_ids]

    windows, origin, last = _timeline_range(task_list, now)
    rows = _fetch(user_ids, task_list, now, origin, last)
    profiles = _load_contractors(user_ids, rows.profiles)
    X = np.zeros((len(pairs), len(FEATURE_NAMES)), dtype=float)
    col = INDEX

    # Where
    c_lat = np.array([p.latitude if p and p.latitude is not None else np.nan for p in profiles])
    c_lon = np.array([p.longitude if p and p.longitude is not None else np.nan for p in profiles])
    c_radius = np.array([p.radius_km if p else 1.0 for p in profiles])
    t_lat = np.array([t.latitude for t in task_list], dtype=float)
    t_lon = np.array([t.longitude for t in task_list], dtype=float)
    distance = haversine_km(c_lat[ci], c_lon[ci], t_lat[ti], t_lon[ti])
    distance = np.where(np.isnan(distance), 1e4, distance)  # no base: as far as can be
    X[:, col["distance_km"]] = distance
    X[:, col["distance_ratio"]] = distance / c_radius[ci]
    X[:, col["inside_radius"]] = (distance <= c_radius[ci]).astype(float)

    # What
    trades = _trades(profiles, rows.trades)
    t_cat = np.array([t.category_id for t in task_list])
    X[:, col["category_match"]] = np.fromiter(
        (t_cat[a] in trades[b] for a, b in zip(ti, ci, strict=True)), dtype=float, count=len(pairs)
    )

    history = _History(user_ids, now, rows)
    X[:, col["text_similarity"]] = _text_similarity(task_list, profiles, history.titles, ti, ci)

    # When
    fit, weekday, week_load = _schedule(task_list, user_ids, profiles, ti, ci, windows, origin, last, rows)
    X[:, col["schedule_fit"]] = fit
    X[:, col["first_free_weekday"]] = weekday

    # How much
    rates = np.array([float(p.rate_cents) if p and p.rate_cents else np.nan for p in profiles])
    per_hour = np.array([task_budget_per_hour(t) for t in task_list])
    total = np.array([float(t.budget_total_cents) for t in task_list])
    ratio = per_hour[ti] / rates[ci]
    X[:, col["price_rate_ratio"]] = np.where(np.isnan(ratio), 1.0, np.minimum(ratio, 10.0))
    X[:, col["budget_dollars"]] = total[ti] / 100.0
    past = np.fromiter(
        (history.median_price.get((user_ids[b], int(t_cat[a])), np.nan) for a, b in zip(ti, ci, strict=True)),
        dtype=float,
        count=len(pairs),
    )
    past_ratio = total[ti] / past
    X[:, col["price_past_ratio"]] = np.where(np.isnan(past_ratio), 1.0, np.minimum(past_ratio, 10.0))

    # Who
    X[:, col["rating"]] = history.rating[ci]
    X[:, col["rating_count"]] = history.rating_count[ci]
    X[:, col["trust"]] = history.trust[ci]
    X[:, col["completion_rate"]] = history.completion_rate[ci]
    X[:, col["response_speed"]] = history.response_speed[ci]
    X[:, col["cancel_rate"]] = history.cancel_rate[ci]
    X[:, col["jobs_done"]] = history.jobs_done[ci]

    t_customer = [t.customer_id for t in task_list]
    uids = [user_ids[b] for b in ci]
    pair_tasks = [task_list[a] for a in ti]
    X[:, col["customer_jobs"]] = [
        history.customer_jobs.get((u, t_customer[a]), 0) for u, a in zip(uids, ti, strict=True)
    ]
    X[:, col["similar_jobs"]] = [
        history.category_jobs.get((u, int(t_cat[a])), 0) for u, a in zip(uids, ti, strict=True)
    ]
    # The pair's own task never counts towards its history (it may be done by now).
    for row, (task, u) in enumerate(zip(pair_tasks, uids, strict=True)):
        if task.pk in history.own_done and history.own_done[task.pk] == u:
            X[row, col["jobs_done"]] -= 1
            X[row, col["similar_jobs"]] -= 1
            X[row, col["customer_jobs"]] -= 1
    pair_cat = t_cat[ti].astype(np.int64)
    pair_customer = np.array(t_customer, dtype=np.int64)[ti]

    def per_pair(table: dict, keys) -> np.ndarray:
        if not table:
            return np.zeros(len(uids))
        return np.fromiter((table.get(k, 0) for k in keys), dtype=float, count=len(uids))

    cat_keys = list(zip(uids, pair_cat.tolist(), strict=True))
    cust_keys = list(zip(pair_customer.tolist(), uids, strict=True))
    offers = per_pair(history.category_offers, cat_keys)
    skips = per_pair(history.category_skips, cat_keys)
    shown = per_pair(history.category_shown, cat_keys)
    hires = per_pair(history.category_hires, cat_keys)
    X[:, col["category_offers"]] = offers
    X[:, col["category_skips"]] = skips
    X[:, col["category_offer_rate"]] = (offers + 1.0) / (offers + skips + 2.0)
    X[:, col["category_shown"]] = shown
    X[:, col["category_hires"]] = hires
    X[:, col["shown_offer_rate"]] = (offers + 1.0) / (np.maximum(shown, offers) + 2.0)
    X[:, col["category_preference"]] = np.clip(
        PREF_OFFERED_CATEGORY * offers + PREF_TOOK_CATEGORY * hires + PREF_SKIPPED_CATEGORY * skips, -PREF_BOUND, PREF_BOUND
    )
    hired = per_pair(history.customer_hired, cust_keys)
    well = per_pair(history.customer_well_reviewed, cust_keys)
    passed = per_pair(history.customer_passed_over, cust_keys)
    X[:, col["customer_preference"]] = np.clip(
        PREF_HIRED * hired + PREF_REHIRED * np.maximum(hired - 1, 0) + PREF_WELL_REVIEWED * well + PREF_PASSED_OVER * passed,
        -PREF_BOUND,
        PREF_BOUND,
    )
    X[:, col["customer_passed_over"]] = passed
    X[:, col["customer_good_reviews"]] = per_pair(history.customer_good, cust_keys)
    X[:, col["customer_bad_reviews"]] = per_pair(history.customer_bad, cust_keys)
    X[:, col["week_load"]] = week_load
    X[:, col["invited"]] = [float((task.pk, u) in history.invited) for task, u in zip(pair_tasks, uids, strict=True)]
    out_pairs = [(task.pk, u) for task, u in zip(pair_tasks, uids, strict=True)]
    return X, out_pairs


# --- contractors ---------------------------------------------------------------------


def _load_contractors(user_ids: list[int], rows) -> list[_Contractor | None]:
    by_user = {
        uid: _Contractor(uid, pk, lat, lon, float(radius or 1), rate, bio or "")
        for uid, pk, lat, lon, radius, rate, bio in rows
    }
    return [by_user.get(uid) for uid in user_ids]


def _trades(profiles: list[_Contractor | None], rows) -> list[frozenset[int]]:
    by_profile: dict[int, set[int]] = defaultdict(set)
    for profile_id, category_id in rows:
        by_profile[profile_id].add(category_id)
    return [frozenset(by_profile.get(p.profile_id, ())) if p else frozenset() for p in profiles]


# --- reading: every row the features need, in one go ----------------------------------------

# On PostgreSQL the reads go to the server as one multi-statement round trip of
# plain SQL (``_fetch_sql``): built through the ORM they cost ~1.5 ms of query
# compilation each plus a round trip, ~20 of them per request, more than the
# server spent answering them (bench/bench_matching.py, docs/PERFORMANCE.md).
# ``_fetch_orm`` is the same reads through the ORM: SQLite, and the reference
# the SQL is tested against (tests/matching/test_features_sql.py).
BATCH_SQL = True


@dataclass
class _Rows:
    """Raw rows of every read, as tuples in the column order noted."""

    is_current: bool
    profiles: list  # (user, profile, latitude, longitude, radius, rate, bio)
    trades: list  # (profile, category)
    weekly: list  # (profile, weekday, start minute, end minute)
    jobs: list  # (contractor, category, booked, done, cancelled by them)
    customer_jobs: list  # (contractor, customer, done)
    own_done: list  # (task, contractor): the batch's own tasks done before now
    prices: list  # (contractor, category, agreed price)
    titles: list  # (contractor, recent titles joined)
    reviews: list  # (contractor, visible reviews, sum of stars)
    trust: list  # (contractor, score 0-100)
    offer_medians: list  # (contractor, median seconds from posting to their offer)
    category_events: list  # (contractor, category, kind, distinct tasks)
    customer_events: list  # (customer, contractor, hired, well reviewed, passed over)
    customer_reviews: list  # (customer, contractor, 4-5 stars, 1-2 stars)
    invited: list  # (task, contractor)
    busy: list  # (contractor, starts, ends)
    booked: list  # (contractor, schedule type, window start, window end, deadline, hours)


def _fetch(user_ids: list[int], tasks: list, now: dt.datetime, origin: dt.datetime, last: dt.datetime) -> _Rows:
    is_current = now >= timezone.now() - dt.timedelta(minutes=5)
    # The batch's own tasks that are done (training on past tasks) are
    # subtracted per pair. Serving ranks open tasks: none of them is done.
    need_own = not (is_current and all(getattr(t, "status", None) == Task.Status.OPEN for t in tasks))
    fetch = _fetch_sql if BATCH_SQL and connection.vendor == "postgresql" else _fetch_orm
    return fetch(user_ids, tasks, now, origin, last, is_current, need_own)


def _booked_window(origin: dt.datetime, last: dt.datetime) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """(window_end after, window_start before, deadline after, deadline before) of booked jobs that matter."""
    return (
        origin - WEEK_LOAD_SPAN,
        last + WEEK_LOAD_SPAN,
        origin - WEEK_LOAD_SPAN,
        last + max(WEEK_LOAD_SPAN, dt.timedelta(days=2)),
    )


def _fetch_orm(user_ids, tasks, now, origin, last, is_current, need_own) -> _Rows:
    from reputation.models import Review, TrustScore, TrustScoreHistory

    categories = {t.category_id for t in tasks}
    customers = {t.customer_id for t in tasks}
    task_ids = [t.pk for t in tasks]

    profiles = list(
        ContractorProfile.objects.filter(any_of("user_id", user_ids)).values_list(
            "user_id", "pk", "latitude", "longitude", "service_radius_km", "hourly_rate_cents", "bio"
        )
    )
    profile_ids = [row[1] for row in profiles]
    through = ContractorProfile.trades.through
    trades = list(
        through.objects.filter(any_of("contractorprofile_id", profile_ids)).values_list("contractorprofile_id", "category_id")
    )

    jobs = Task.objects.filter(any_of("contractor_id", user_ids), assigned_at__lt=now)
    done = Q(completed_at__isnull=False, completed_at__lt=now)
    cancelled = Q(status=Task.Status.CANCELLED, cancelled_by_id=F("contractor_id"), cancelled_at__lt=now)
    job_rows = list(
        jobs.values_list("contractor_id", "category_id")
        .annotate(b=Count("pk"), d=Count("pk", filter=done), c=Count("pk", filter=cancelled))
        .order_by()
    )
    customer_jobs = list(
        jobs.filter(done, any_of("customer_id", customers)).values_list("contractor_id", "customer_id").annotate(n=Count("pk")).order_by()
    )
    own_done = list(jobs.filter(done, any_of("id", task_ids)).values_list("pk", "contractor_id")) if need_own else []
    prices = list(
        jobs.filter(done, category_id__in=categories, agreed_price_cents__isnull=False)
        .exclude(any_of("id", task_ids))
        .values_list("contractor_id", "category_id", "agreed_price_cents")
    )
    titles = list(_recent_titles(user_ids, now, exclude=task_ids).items())

    visible = Review.objects.filter(published_at__isnull=False, hidden_at__isnull=True, role=Review.Role.CUSTOMER_TO_CONTRACTOR)
    if not is_current:
        visible = visible.filter(published_at__lt=now)
    reviews = list(
        visible.filter(any_of("reviewee_id", user_ids)).values_list("reviewee_id").annotate(c=Count("pk"), s=Sum("stars")).order_by()
    )
    if is_current:
        trust = list(TrustScore.objects.filter(any_of("user_id", user_ids)).values_list("user_id", "score"))
    else:
        trust = list(
            TrustScoreHistory.objects.filter(any_of("user_id", user_ids), computed_at__lt=now)
            .order_by("user_id", "-computed_at", "-pk")
            .distinct("user_id")
            .values_list("user_id", "score")
            if connection.vendor == "postgresql"
            else _latest_history_sqlite(TrustScoreHistory, user_ids, now)
        )
    offer_medians = _offer_medians(user_ids, now)
    K = MatchEvent.Kind
    category_events = _category_events(user_ids, categories, [K.OFFERED, K.SKIPPED, K.SHOWN, K.ACCEPTED], now, task_ids)

    pair_events = MatchEvent.objects.filter(
        any_of("contractor_id", user_ids), task__customer_id__in=customers, created_at__lt=now
    ).exclude(any_of("task_id", task_ids))
    someone_else_hired = MatchEvent.objects.filter(
        task_id=OuterRef("task_id"), kind=K.ACCEPTED, created_at__lt=now
    ).exclude(contractor_id=OuterRef("contractor_id"))
    customer_events = list(
        pair_events.filter(kind__in=[K.ACCEPTED, K.WELL_REVIEWED, K.OFFERED])
        .values_list("task__customer_id", "contractor_id")
        .annotate(
            h=Count("task_id", filter=Q(kind=K.ACCEPTED), distinct=True),
            w=Count("task_id", filter=Q(kind=K.WELL_REVIEWED), distinct=True),
            p=Count("task_id", filter=Q(kind=K.OFFERED) & Q(Exists(someone_else_hired)), distinct=True),
        )
        .order_by()
    )
    customer_reviews = list(
        Review.objects.filter(role=Review.Role.CUSTOMER_TO_CONTRACTOR, reviewer_id__in=customers, submitted_at__lt=now)
        .filter(any_of("reviewee_id", user_ids))
        .exclude(any_of("task_id", task_ids))
        .values_list("reviewer_id", "reviewee_id")
        .annotate(g=Count("pk", filter=Q(stars__gte=4)), b=Count("pk", filter=Q(stars__lte=2)))
        .order_by()
    )
    invited = list(
        Invitation.objects.filter(any_of("task_id", task_ids), any_of("contractor_id", user_ids), created_at__lt=now).values_list(
            "task_id", "contractor_id"
        )
    )

    weekly = _weekly_hours(user_ids)
    busy = list(
        BusyBlock.objects.filter(any_of("user_id", user_ids), ends_at__gt=origin, starts_at__lt=last).values_list(
            "user_id", "starts_at", "ends_at"
        )
    )
    end_after, start_before, deadline_after, deadline_before = _booked_window(origin, last)
    booked = list(
        Task.objects.filter(any_of("contractor_id", user_ids), status__in=BUSY_STATUSES, assigned_at__lt=now)
        .exclude(any_of("id", task_ids))
        .filter(
            Q(schedule_type=Task.ScheduleType.WINDOW, window_end__gt=end_after, window_start__lt=start_before)
            | Q(schedule_type=Task.ScheduleType.FLEXIBLE, deadline__gt=deadline_after, deadline__lt=deadline_before)
        )
        .values_list("contractor_id", "schedule_type", "window_start", "window_end", "deadline", "estimated_hours")
    )
    return _Rows(
        is_current=is_current, profiles=profiles, trades=trades, weekly=weekly, jobs=job_rows, customer_jobs=customer_jobs,
        own_done=own_done, prices=prices, titles=titles, reviews=reviews, trust=trust, offer_medians=offer_medians,
        category_events=category_events, customer_events=customer_events, customer_reviews=customer_reviews,
        invited=invited, busy=busy, booked=booked,
    )


def _ids(values) -> str:
    """A bigint[] literal of ``values``, bound as one parameter (as ``core.db.any_of``)."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def _fetch_sql(user_ids, tasks, now, origin, last, is_current, need_own) -> _Rows:
    """``_fetch_orm``'s reads as plain SQL, sent in one round trip.

    Each statement reads what the ORM query of the same name reads, with the
    same conditions (tests/matching/test_features_sql.py compares the two on
    a simulated market). Where a statement needs a task's column for an event
    or an offer it reads it by a primary-key subquery, not a join: the join
    made the planner hash-join a sequential scan of every task (see
    ``_category_events``)."""
    from reputation.models import Review

    users = _ids(user_ids)
    task_ids = _ids(t.pk for t in tasks)
    categories = _ids({t.category_id for t in tasks})
    customer_ids = {t.customer_id for t in tasks}
    customers = _ids(customer_ids)
    K = MatchEvent.Kind
    S = Task.Status
    to_contractor = str(Review.Role.CUSTOMER_TO_CONTRACTOR)
    end_after, start_before, deadline_after, deadline_before = _booked_window(origin, last)
    statements: list[tuple[str, str, list]] = [
        (
            "profiles",
            "SELECT user_id, id, latitude, longitude, service_radius_km, hourly_rate_cents, bio"
            " FROM accounts_contractorprofile WHERE user_id = ANY(%s::bigint[])",
            [users],
        ),
        (
            "trades",
            "SELECT t.contractorprofile_id, t.category_id FROM accounts_contractorprofile_trades t"
            " WHERE t.contractorprofile_id IN (SELECT p.id FROM accounts_contractorprofile p WHERE p.user_id = ANY(%s::bigint[]))",
            [users],
        ),
        (
            "weekly",
            _WEEKLY_SQL,
            [users],
        ),
        (
            "jobs",
            "SELECT contractor_id, category_id, COUNT(id),"
            " COUNT(id) FILTER (WHERE completed_at IS NOT NULL AND completed_at < %s),"
            " COUNT(id) FILTER (WHERE cancelled_at < %s AND cancelled_by_id = contractor_id AND status = %s)"
            " FROM tasks_task WHERE contractor_id = ANY(%s::bigint[]) AND assigned_at < %s GROUP BY 1, 2",
            [now, now, str(S.CANCELLED), users, now],
        ),
        (
            "customer_jobs",
            "SELECT contractor_id, customer_id, COUNT(id) FROM tasks_task"
            " WHERE contractor_id = ANY(%s::bigint[]) AND assigned_at < %s AND completed_at IS NOT NULL"
            " AND completed_at < %s AND customer_id = ANY(%s::bigint[]) GROUP BY 1, 2",
            [users, now, now, customers],
        ),
        (
            "prices",
            "SELECT contractor_id, category_id, agreed_price_cents FROM tasks_task"
            " WHERE contractor_id = ANY(%s::bigint[]) AND assigned_at < %s AND completed_at IS NOT NULL"
            " AND completed_at < %s AND agreed_price_cents IS NOT NULL AND category_id = ANY(%s::bigint[])"
            " AND NOT (id = ANY(%s::bigint[]))",
            [users, now, now, categories, task_ids],
        ),
        ("titles", _RECENT_TITLES_SQL, [users, now, task_ids, RECENT_TITLES]),
        (
            "reviews",
            "SELECT reviewee_id, COUNT(id), SUM(stars) FROM reputation_review"
            " WHERE hidden_at IS NULL AND published_at IS NOT NULL AND role = %s AND reviewee_id = ANY(%s::bigint[])"
            " AND (%s OR published_at < %s) GROUP BY 1",
            [to_contractor, users, is_current, now],
        ),
        (
            "trust",
            "SELECT user_id, score FROM reputation_trustscore WHERE user_id = ANY(%s::bigint[])"
            if is_current
            else "SELECT DISTINCT ON (user_id) user_id, score FROM reputation_trustscorehistory"
            " WHERE user_id = ANY(%s::bigint[]) AND computed_at < %s ORDER BY user_id, computed_at DESC, id DESC",
            [users] if is_current else [users, now],
        ),
        ("offer_medians", _OFFER_MEDIANS_SQL, [users, now]),
        (
            "category_events",
            _CATEGORY_EVENTS_SQL,
            [users, _text_array([K.OFFERED, K.SKIPPED, K.SHOWN, K.ACCEPTED]), now, task_ids, categories],
        ),
        (
            "customer_events",
            # (customer, contractor): their hires, 4+ star outcomes, and offers on
            # which someone else was hired, distinct tasks, before now.
            _CUSTOMER_EVENTS_BY_CUSTOMER if len(customer_ids) < len(user_ids) else _CUSTOMER_EVENTS_BY_CONTRACTOR,
            [
                str(K.ACCEPTED), str(K.WELL_REVIEWED), str(K.OFFERED), now, str(K.ACCEPTED), users, now, task_ids,
                _text_array([K.ACCEPTED, K.WELL_REVIEWED, K.OFFERED]), customers,
            ],
        ),
        (
            "customer_reviews",
            "SELECT reviewer_id, reviewee_id, COUNT(id) FILTER (WHERE stars >= 4), COUNT(id) FILTER (WHERE stars <= 2)"
            " FROM reputation_review WHERE reviewer_id = ANY(%s::bigint[]) AND role = %s AND submitted_at < %s"
            " AND reviewee_id = ANY(%s::bigint[]) AND NOT (task_id = ANY(%s::bigint[])) GROUP BY 1, 2",
            [customers, to_contractor, now, users, task_ids],
        ),
        (
            "invited",
            "SELECT task_id, contractor_id FROM matching_invitation"
            " WHERE task_id = ANY(%s::bigint[]) AND contractor_id = ANY(%s::bigint[]) AND created_at < %s",
            [task_ids, users, now],
        ),
        (
            "busy",
            "SELECT user_id, starts_at, ends_at FROM matching_busyblock"
            " WHERE user_id = ANY(%s::bigint[]) AND ends_at > %s AND starts_at < %s",
            [users, origin, last],
        ),
        (
            "booked",
            "SELECT contractor_id, schedule_type, window_start, window_end, deadline, estimated_hours FROM tasks_task"
            " WHERE contractor_id = ANY(%s::bigint[]) AND assigned_at < %s AND status = ANY(%s::text[])"
            " AND NOT (id = ANY(%s::bigint[]))"
            " AND ((schedule_type = %s AND window_end > %s AND window_start < %s)"
            " OR (schedule_type = %s AND deadline > %s AND deadline < %s))",
            [
                users, now, _text_array(BUSY_STATUSES), task_ids, str(Task.ScheduleType.WINDOW), end_after, start_before,
                str(Task.ScheduleType.FLEXIBLE), deadline_after, deadline_before,
            ],
        ),
    ]
    if need_own:
        statements.append(
            (
                "own_done",
                "SELECT id, contractor_id FROM tasks_task WHERE contractor_id = ANY(%s::bigint[]) AND assigned_at < %s"
                " AND completed_at IS NOT NULL AND completed_at < %s AND id = ANY(%s::bigint[])",
                [users, now, now, task_ids],
            )
        )
    results = _run_batch(statements)
    results.setdefault("own_done", [])
    return _Rows(is_current=is_current, **results)


# The events of ``customer_events``: the contractors' events on the customers'
# tasks. With fewer customers than contractors (one task against 400 pros) a
# join, which the planner drives from the customers' tasks (3.0 -> 0.9 ms);
# with more (400 tasks of ~300 customers against one contractor) each event's
# customer by a primary-key lookup, which joined scanned the tasks (0.9 -> 2 ms).
_CUSTOMER_EVENTS_BY_CUSTOMER = """
    SELECT customer_id, contractor_id,
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s),
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s),
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s AND EXISTS (
               SELECT 1 FROM matching_matchevent u
               WHERE u.created_at < %s AND u.kind = %s AND u.task_id = events.task_id
                 AND NOT (u.contractor_id = events.contractor_id)))
    FROM (
        SELECT e.contractor_id, e.kind, e.task_id, t.customer_id
        FROM matching_matchevent e JOIN tasks_task t ON t.id = e.task_id
        WHERE e.contractor_id = ANY(%s::bigint[]) AND e.created_at < %s
          AND NOT (e.task_id = ANY(%s::bigint[])) AND e.kind = ANY(%s::text[])
          AND t.customer_id = ANY(%s::bigint[])
    ) events
    GROUP BY 1, 2
"""
_CUSTOMER_EVENTS_BY_CONTRACTOR = """
    SELECT customer_id, contractor_id,
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s),
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s),
           COUNT(DISTINCT task_id) FILTER (WHERE kind = %s AND EXISTS (
               SELECT 1 FROM matching_matchevent u
               WHERE u.created_at < %s AND u.kind = %s AND u.task_id = events.task_id
                 AND NOT (u.contractor_id = events.contractor_id)))
    FROM (
        SELECT e.contractor_id, e.kind, e.task_id,
               (SELECT t.customer_id FROM tasks_task t WHERE t.id = e.task_id) AS customer_id
        FROM matching_matchevent e
        WHERE e.contractor_id = ANY(%s::bigint[]) AND e.created_at < %s
          AND NOT (e.task_id = ANY(%s::bigint[])) AND e.kind = ANY(%s::text[])
        OFFSET 0
    ) events
    WHERE customer_id = ANY(%s::bigint[])
    GROUP BY 1, 2
"""


def _text_array(values) -> str:
    """A text[] literal of plain identifiers (choice values: no quotes or commas to escape)."""
    values = [str(v) for v in values]
    if not all(v.isidentifier() for v in values):
        raise ValueError(f"not plain identifiers, cannot be a text[] literal: {values!r}")
    return "{" + ",".join(values) + "}"


def _run_batch(statements: list[tuple[str, str, list]]) -> dict[str, list]:
    """Every statement's rows, by name: one ``execute`` of all of them (Django's
    psycopg cursor binds parameters on the client, so a multi-statement string
    goes as one simple query: one round trip), then one result set each."""
    sql = ";\n".join(statement for _name, statement, _params in statements)
    params = [value for _name, _statement, values in statements for value in values]
    out: dict[str, list] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for n, (name, _statement, _params) in enumerate(statements):
            # Real checks, not asserts (gone under python -O): a missing result
            # set would otherwise shift every later statement's rows by one.
            if n and not cursor.nextset():
                raise RuntimeError(f"feature batch: no result set for {name!r} ({n + 1} of {len(statements)})")
            if cursor.description is None:
                raise RuntimeError(f"feature batch: {name!r} returned no rows to fetch")
            out[name] = cursor.fetchall()
    return out


# --- history --------------------------------------------------------------------------


class _History:
    """Everything about the contractors' past before ``now``, from ``_fetch``'s rows."""

    def __init__(self, user_ids: list[int], now: dt.datetime, rows: _Rows):
        from reputation import scoring
        from reputation.models import Review

        n = len(user_ids)
        index = {uid: i for i, uid in enumerate(user_ids)}
        is_current = rows.is_current

        # Jobs: per (contractor, trade), booked before now.
        self.category_jobs: dict[tuple[int, int], int] = {}
        booked = np.zeros(n)
        completed = np.zeros(n)
        cancels = np.zeros(n)
        for uid, category_id, n_booked, n_done, n_cancelled in rows.jobs:
            i = index[uid]
            booked[i] += n_booked
            completed[i] += n_done
            cancels[i] += n_cancelled
            self.category_jobs[(uid, category_id)] = n_done
        self.jobs_done = completed
        finished = completed + cancels
        self.completion_rate = np.where(finished > 0, completed / np.maximum(finished, 1), NEUTRAL)
        self.cancel_rate = np.where(booked > 0, cancels / np.maximum(booked, 1), 0.0)

        self.customer_jobs: dict[tuple[int, int], int] = {(uid, customer_id): count for uid, customer_id, count in rows.customer_jobs}
        self.own_done: dict[int, int] = dict(rows.own_done)

        # Prices of their past jobs per trade (the batch's trades only).
        prices: dict[tuple[int, int], list[int]] = defaultdict(list)
        for uid, category_id, price in rows.prices:
            prices[(uid, category_id)].append(price)
        self.median_price = {key: float(statistics.median(values)) for key, values in prices.items()}

        # Titles of their latest completed jobs, for text similarity.
        self.titles = dict(rows.titles)

        # Rating: the Bayesian average of reputation.scoring, batched.
        if is_current:
            mean = _current_platform_mean(scoring)
        else:
            visible = Review.objects.filter(
                published_at__isnull=False, hidden_at__isnull=True, role=Review.Role.CUSTOMER_TO_CONTRACTOR, published_at__lt=now
            )
            mean = _mean_or_fallback(visible, scoring)
        weight = scoring.prior_weight()
        totals = np.zeros(n)
        counts = np.zeros(n)
        for uid, count, total in rows.reviews:
            counts[index[uid]] = count
            totals[index[uid]] = total or 0
        self.rating = (weight * mean + totals) / (weight + counts)
        self.rating_count = counts

        # Trust: the stored score now, or the last one computed before ``now``.
        self.trust = np.full(n, scoring.NEUTRAL)
        for uid, score in rows.trust:
            self.trust[index[uid]] = score / 100.0

        fast, slow = scoring.FAST.total_seconds(), scoring.SLOW.total_seconds()
        self.response_speed = np.full(n, scoring.NEUTRAL)
        for uid, median in rows.offer_medians:
            self.response_speed[index[uid]] = min(1.0, max(0.0, 1 - (float(median) - fast) / (slow - fast)))

        # How they answered tasks of these trades (MatchEvent), before now,
        # never counting the batch's own tasks.
        K = MatchEvent.Kind
        tables = {K.OFFERED: {}, K.SKIPPED: {}, K.SHOWN: {}, K.ACCEPTED: {}}
        for uid, category_id, kind, count in rows.category_events:
            tables[kind][(uid, category_id)] = count
        self.category_offers = tables[K.OFFERED]
        self.category_skips = tables[K.SKIPPED]
        self.category_shown = tables[K.SHOWN]
        self.category_hires = tables[K.ACCEPTED]

        # The customer's history with them, before now (learned preferences
        # are rebuilt from it; see PREF_*): hires, 4+ star outcomes, offers
        # passed over for someone else, and their own reviews of them.
        self.customer_hired: dict[tuple[int, int], int] = {}
        self.customer_well_reviewed: dict[tuple[int, int], int] = {}
        self.customer_passed_over: dict[tuple[int, int], int] = {}
        for customer_id, uid, hired, well, passed in rows.customer_events:
            for table, count in ((self.customer_hired, hired), (self.customer_well_reviewed, well), (self.customer_passed_over, passed)):
                if count:
                    table[(customer_id, uid)] = count
        self.customer_good: dict[tuple[int, int], int] = {}
        self.customer_bad: dict[tuple[int, int], int] = {}
        for customer_id, uid, good, bad in rows.customer_reviews:
            if good:
                self.customer_good[(customer_id, uid)] = good
            if bad:
                self.customer_bad[(customer_id, uid)] = bad
        self.invited = set(rows.invited)


PLATFORM_MEAN_SECONDS = 300.0  # the average of every review on the platform moves slowly: computed at most this often
_platform_mean: dict[str, float | None] = {"value": None, "at": None}


def reset_caches() -> None:
    """Forget the per-process platform mean and text vectors (tests; ``ranking.reset_cache``)."""
    _platform_mean.update(value=None, at=None)
    _TEXT_CACHE.clear()


def _current_platform_mean(scoring) -> float:
    import time

    now = time.monotonic()
    at = _platform_mean["at"]
    if at is None or now - at > PLATFORM_MEAN_SECONDS or _platform_mean["value"] is None:
        _platform_mean.update(value=scoring.platform_mean(), at=now)
    return float(_platform_mean["value"])


def _mean_or_fallback(visible, scoring) -> float:
    from django.db.models import Avg

    mean = visible.aggregate(m=Avg("stars"))["m"]
    return float(mean) if mean is not None else scoring.fallback_mean()


def _latest_history_sqlite(model, user_ids, now):
    latest: dict[int, int] = {}
    for uid, score in model.objects.filter(any_of("user_id", user_ids), computed_at__lt=now).order_by(
        "computed_at", "pk"
    ).values_list("user_id", "score"):
        latest[uid] = score
    return list(latest.items())


RECENT_TITLES = 20


# Statements that both reads send on PostgreSQL: ``_fetch_sql`` in its batch,
# ``_fetch_orm`` through the helpers below (plain SQL there too, for the plans
# noted on each). One text each, so the two paths cannot drift apart; which
# also means the SQL-vs-ORM test compares these reads with themselves on
# PostgreSQL: their ORM versions run on SQLite only. Arrays are bound as
# literals (``_ids``, ``_text_array``).
_RECENT_TITLES_SQL = """
    SELECT contractor_id, string_agg(title, ' ')
    FROM (
        SELECT contractor_id, title,
               row_number() OVER (PARTITION BY contractor_id ORDER BY completed_at DESC) AS n
        FROM tasks_task
        WHERE contractor_id = ANY(%s::bigint[]) AND completed_at IS NOT NULL AND completed_at < %s
          AND NOT (id = ANY(%s::bigint[]))
    ) recent
    WHERE n <= %s
    GROUP BY contractor_id
"""
_OFFER_MEDIANS_SQL = """
    -- The posting time by a primary-key lookup per offer: a join made the
    -- planner scan every task (see _category_events).
    SELECT contractor_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM created_at - published_at))
    FROM (
        SELECT o.contractor_id, o.created_at,
               (SELECT t.published_at FROM tasks_task t WHERE t.id = o.task_id) AS published_at
        FROM tasks_offer o
        WHERE o.contractor_id = ANY(%s::bigint[]) AND o.created_at < %s
        OFFSET 0
    ) offers
    WHERE published_at IS NOT NULL
    GROUP BY contractor_id
"""
_CATEGORY_EVENTS_SQL = """
    SELECT contractor_id, category_id, kind, COUNT(DISTINCT task_id)
    FROM (
        SELECT e.contractor_id, e.kind, e.task_id,
               (SELECT t.category_id FROM tasks_task t WHERE t.id = e.task_id) AS category_id
        FROM matching_matchevent e
        WHERE e.contractor_id = ANY(%s::bigint[]) AND e.kind = ANY(%s::text[]) AND e.created_at < %s
          AND NOT (e.task_id = ANY(%s::bigint[]))
        OFFSET 0
    ) events
    WHERE category_id = ANY(%s::bigint[])
    GROUP BY contractor_id, category_id, kind
"""


# (profile, weekday, start minute, end minute) of the contractors' weekly
# slots. The profile ids as an array (an InitPlan), so the slots are read by
# their profile index; as IN (subquery) the planner hash-joined a sequential
# scan of every slot (7.6 -> 4.2 ms for 400 contractors).
_WEEKLY_SQL = (
    "SELECT profile_id, weekday,"
    " (EXTRACT(HOUR FROM start_time) * 60 + EXTRACT(MINUTE FROM start_time))::int,"
    " (EXTRACT(HOUR FROM end_time) * 60 + EXTRACT(MINUTE FROM end_time))::int"
    " FROM accounts_availabilityslot"
    " WHERE profile_id = ANY(ARRAY(SELECT p.id FROM accounts_contractorprofile p WHERE p.user_id = ANY(%s::bigint[])))"
)


def _recent_titles(user_ids: list[int], now: dt.datetime, *, exclude: list[int]) -> dict[int, str]:
    """Up to RECENT_TITLES titles of each contractor's latest completed jobs, joined."""
    if not user_ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_RECENT_TITLES_SQL, [_ids(user_ids), now, _ids(exclude), RECENT_TITLES])
            return dict(cursor.fetchall())
    titles: dict[int, list[str]] = defaultdict(list)
    for uid, title in (
        Task.objects.filter(any_of("contractor_id", user_ids), completed_at__isnull=False, completed_at__lt=now)
        .exclude(any_of("id", exclude))
        .order_by("-completed_at")
        .values_list("contractor_id", "title")
    ):
        if len(titles[uid]) < RECENT_TITLES:
            titles[uid].append(title)
    return {uid: " ".join(values) for uid, values in titles.items()}


def _category_events(user_ids, categories, kinds, now, exclude_task_ids) -> list[tuple[int, int, str, int]]:
    """(contractor, trade, kind, distinct tasks) of their MatchEvents on tasks
    of ``categories`` before ``now``, not counting ``exclude_task_ids``.

    On PostgreSQL the task's trade is read by a scalar subquery per event (a
    primary-key lookup): the join the ORM writes made the planner hash-join
    a sequential scan of every task (14 ms of 15 for 400 contractors with
    20,000 tasks, bench/bench_matching.py), growing with the task table
    rather than with the events asked for."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _CATEGORY_EVENTS_SQL, [_ids(user_ids), _text_array(kinds), now, _ids(exclude_task_ids), _ids(categories)]
            )
            return cursor.fetchall()
    return list(
        MatchEvent.objects.filter(
            any_of("contractor_id", user_ids),
            task__category_id__in=categories,
            kind__in=kinds,
            created_at__lt=now,
        )
        .exclude(any_of("task_id", exclude_task_ids))
        .values_list("contractor_id", "task__category_id", "kind")
        .annotate(n=Count("task_id", distinct=True))
        .order_by()
    )


def _offer_medians(user_ids: list[int], now: dt.datetime) -> list[tuple[int, float]]:
    """(contractor, median seconds between a task's posting and their offer on it), before ``now``."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_OFFER_MEDIANS_SQL, [_ids(user_ids), now])
            return cursor.fetchall()
    delays: dict[int, list[float]] = defaultdict(list)
    for uid, created, published in Offer.objects.filter(
        any_of("contractor_id", user_ids), task__published_at__isnull=False, created_at__lt=now
    ).values_list("contractor_id", "created_at", "task__published_at"):
        delays[uid].append((created - published).total_seconds())
    return [(uid, statistics.median(values)) for uid, values in delays.items()]


# --- text ---------------------------------------------------------------------------------


_VECTORIZER = None
_TEXT_CACHE: OrderedDict[str, Any] = OrderedDict()
TEXT_CACHE_SIZE = 50_000  # documents' vectors kept per process (tasks' texts repeat from call to call)


def _vectorizer():
    """Stateless hashed bag of words (no vocabulary to fit per batch): English
    stop words out, each word counted once, rows L2-normalised."""
    global _VECTORIZER
    if _VECTORIZER is None:
        from sklearn.feature_extraction.text import HashingVectorizer

        _VECTORIZER = HashingVectorizer(
            n_features=2**18, stop_words="english", alternate_sign=False, binary=True, norm="l2", dtype=np.float32
        )
    return _VECTORIZER


def text_vectors(docs: list[str]):
    """Sparse rows of ``docs``, from a per-process cache (a task's text is the
    same on every Find work call; only new texts are tokenised)."""
    import scipy.sparse as sp

    missing = [doc for doc in dict.fromkeys(docs) if doc not in _TEXT_CACHE]
    if missing:
        matrix = _vectorizer().transform(missing).tocsr()
        for n, doc in enumerate(missing):
            start, end = matrix.indptr[n], matrix.indptr[n + 1]
            _TEXT_CACHE[doc] = (matrix.indices[start:end].copy(), matrix.data[start:end].copy())
        while len(_TEXT_CACHE) > TEXT_CACHE_SIZE:
            _TEXT_CACHE.popitem(last=False)
    if not docs:
        return sp.csr_matrix((0, 2**18), dtype=np.float32)
    # The cached rows' columns and values laid end to end: the CSR matrix
    # sp.vstack of one-row matrices built, without building 400 of them first.
    rows = []
    for doc in docs:
        rows.append(_TEXT_CACHE[doc])
        _TEXT_CACHE.move_to_end(doc)
    indptr = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(indices) for indices, _data in rows], out=indptr[1:])
    indices = np.concatenate([indices for indices, _data in rows])
    data = np.concatenate([data for _indices, data in rows])
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), 2**18))


def _text_similarity(tasks, profiles, titles, ti, ci) -> np.ndarray:
    """Cosine similarity of hashed bag-of-words vectors: the task's title and
    description against the contractor's bio and recent job titles."""
    task_docs = [task_text(t) for t in tasks]
    contractor_docs = [f"{p.bio} {titles.get(p.user_id, '')}" if p else "" for p in profiles]
    if not any(doc.strip() for doc in contractor_docs):
        return np.zeros(len(ti))
    T = text_vectors(task_docs)
    C = text_vectors(contractor_docs)
    if C.shape[0] == 1:
        return np.asarray((T @ C.T).toarray()).ravel()[ti].astype(float)
    if T.shape[0] == 1:
        return np.asarray((C @ T.T).toarray()).ravel()[ci].astype(float)
    return np.asarray(T[ti].multiply(C[ci]).sum(axis=1)).ravel().astype(float)


# --- schedule -----------------------------------------------------------------------------


def _timeline_range(tasks, now) -> tuple[list[tuple[dt.datetime, dt.datetime]], dt.datetime, dt.datetime]:
    """Each task's window, and the span of the availability timeline that covers them."""
    windows = [task_window(t, now) for t in tasks]
    origin = _floor_slot(min(w[0] for w in windows))
    last = min(max(w[1] for w in windows), origin + dt.timedelta(days=MAX_TIMELINE_DAYS))
    return windows, origin, last


def _schedule(tasks, user_ids, profiles, ti, ci, windows, origin, last, rows: _Rows):
    """Free hours in each pair's task window over the hours it needs, capped at
    1, and the weekday of the first free slot; on a timeline of SLOT-sized
    cells per contractor: weekly hours, minus busy blocks and other booked jobs."""
    n_pairs = len(ti)
    fit = np.full(n_pairs, NEUTRAL)
    weekday = np.full(n_pairs, -1.0)
    starts = [w[0] for w in windows]
    ends = [w[1] for w in windows]
    n_slots = int(math.ceil((last - origin) / SLOT)) + 1
    slot_seconds = SLOT.total_seconds()

    # Local weekday and slot-of-day of each cell.
    slots_per_day = int(dt.timedelta(days=1) / SLOT)
    local_seconds = origin.timestamp() + np.arange(n_slots) * slot_seconds + _utc_offsets(origin, n_slots)
    local_days = np.floor_divide(local_seconds, 86400).astype(np.int64)
    local_weekday = (local_days + 3) % 7  # 1970-01-01 was a Thursday
    slot_of_day = (np.mod(local_seconds, 86400) // slot_seconds).astype(np.int64)
    week_index = local_weekday * slots_per_day + slot_of_day

    # Weekly template per contractor: [n_contractors, 7 * slots_per_day].
    n_c = len(user_ids)
    c_index = {uid: i for i, uid in enumerate(user_ids)}
    profile_to_c = {p.profile_id: c_index[p.user_id] for p in profiles if p}
    # Each weekly slot covers cells [a, b) of its weekday: +1 at a, -1 at b,
    # and a cell is free where the running sum is positive (the same cells as
    # setting each slot's range, without a Python step per slot: 2,000 slots
    # for 400 contractors).
    minutes = int(SLOT.total_seconds() // 60)
    weekly = np.array(rows.weekly, dtype=np.int64).reshape(-1, 4)
    c_rows = np.array([profile_to_c[profile_id] for profile_id in weekly[:, 0].tolist()], dtype=np.int64)
    a = weekly[:, 1] * slots_per_day + weekly[:, 2] // minutes
    b = weekly[:, 1] * slots_per_day + -(-weekly[:, 3] // minutes)
    keep = b > a
    coverage = np.zeros((n_c, 7 * slots_per_day + 1), dtype=np.int32)
    np.add.at(coverage, (c_rows[keep], a[keep]), 1)
    np.add.at(coverage, (c_rows[keep], b[keep]), -1)
    template = np.cumsum(coverage, axis=1)[:, : 7 * slots_per_day] > 0
    free = template[:, week_index]

    def block(c: int, start: dt.datetime, end: dt.datetime) -> None:
        a = max(0, int((start - origin).total_seconds() // slot_seconds))
        b = min(n_slots, int(math.ceil((end - origin).total_seconds() / slot_seconds)))
        if a < b:
            free[c, a:b] = False

    for uid, start, end in rows.busy:
        block(c_index[uid], start, end)

    job_c: list[int] = []
    job_t: list[float] = []
    for uid, schedule_type, window_start, window_end, deadline, hours in rows.booked:
        if schedule_type == Task.ScheduleType.WINDOW:
            block(c_index[uid], window_start, window_end)
            when = window_start
        else:
            block(c_index[uid], deadline - dt.timedelta(hours=hours or DEFAULT_NEEDED_HOURS), deadline)
            when = deadline
        job_c.append(c_index[uid])
        job_t.append(when.timestamp())
    week_load = _week_load(job_c, job_t, [s.timestamp() for s in starts], ti, ci)

    cumulative = np.zeros((n_c, n_slots + 1), dtype=np.int32)
    np.cumsum(free, axis=1, out=cumulative[:, 1:])
    t_start = np.array([int((s - origin).total_seconds() // slot_seconds) for s in starts])
    t_end = np.array([int(math.ceil((e - origin).total_seconds() / slot_seconds)) for e in ends])
    known = t_end <= n_slots  # windows beyond the timeline stay neutral
    t_end = np.minimum(t_end, n_slots)
    needed_hours = np.array([task_needed_hours(t) for t in tasks])
    window_hours = (t_end - t_start) * slot_seconds / 3600.0
    need = np.maximum(np.minimum(needed_hours, window_hours), slot_seconds / 3600.0)

    free_hours = (cumulative[ci, t_end[ti]] - cumulative[ci, t_start[ti]]) * slot_seconds / 3600.0
    pair_known = known[ti]
    fit[pair_known] = np.minimum(1.0, free_hours[pair_known] / need[ti][pair_known])

    # First free cell at or after each window's start: the index of the next
    # free cell from every cell (a reversed running minimum), read per pair.
    cells = np.where(free, np.arange(n_slots), n_slots)
    next_free = np.minimum.accumulate(cells[:, ::-1], axis=1)[:, ::-1]
    has_free = pair_known & (free_hours > 0)
    rows = np.nonzero(has_free)[0]
    if len(rows):
        first = next_free[ci[rows], np.minimum(t_start[ti[rows]], n_slots - 1)]
        weekday[rows] = local_weekday[first]
    return fit, weekday, week_load


def _week_load(job_c: list[int], job_t: list[float], task_start: list[float], ti, ci) -> np.ndarray:
    """Per pair: the contractor's booked jobs within WEEK_LOAD_SPAN of the
    task's start, by binary search on (contractor, time) keys."""
    if not job_c:
        return np.zeros(len(ti))
    span = WEEK_LOAD_SPAN.total_seconds()
    stride = 1e11  # more seconds than any timestamp: keys of one contractor stay together
    keys = np.sort(np.asarray(job_c, dtype=float) * stride + np.asarray(job_t, dtype=float))
    centre = ci.astype(float) * stride + np.asarray(task_start, dtype=float)[ti]
    return (np.searchsorted(keys, centre + span, side="right") - np.searchsorted(keys, centre - span, side="left")).astype(float)


def _weekly_hours(user_ids: list[int]) -> list[tuple[int, int, int, int]]:
    """(profile id, weekday, start minute, end minute) of each weekly slot of
    the contractors ``user_ids``. On PostgreSQL through a plain cursor (the
    statement ``_fetch_sql`` sends): five slots for each of 2,000 contractors
    are 10,000 rows, and Django's per-row conversion cost more than the query."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_WEEKLY_SQL, [_ids(user_ids)])
            return cursor.fetchall()
    return [
        (profile_id, wd, start.hour * 60 + start.minute, end.hour * 60 + end.minute)
        for profile_id, wd, start, end in AvailabilitySlot.objects.filter(
            any_of("profile__user_id", user_ids)
        ).values_list("profile_id", "weekday", "start_time", "end_time")
    ]


def _utc_offsets(origin: dt.datetime, n_slots: int) -> np.ndarray:
    """The market zone's UTC offset (seconds) at each cell: computed per day,
    and per cell only on days when it changes (daylight saving)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    per_day = int(dt.timedelta(days=1) / SLOT)
    out = np.empty(n_slots)

    def offset(k: int) -> float:
        moment = origin + SLOT * k
        return (moment.astimezone(zone).utcoffset() or dt.timedelta(0)).total_seconds()

    for day_start in range(0, n_slots, per_day):
        day_end = min(n_slots, day_start + per_day)
        first, last = offset(day_start), offset(day_end - 1)
        if first == last:
            out[day_start:day_end] = first
        else:
            out[day_start:day_end] = [offset(k) for k in range(day_start, day_end)]
    return out


def _floor_slot(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    minutes = int(SLOT.total_seconds() // 60)
    return moment.replace(minute=(moment.minute // minutes) * minutes, second=0, microsecond=0)
