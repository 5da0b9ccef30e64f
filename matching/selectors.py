"""Recommendations both ways, ranked by ``ranking.get_ranker()``.

- ``best_tasks_for(contractor)``: open tasks within the contractor's radius
  (``tasks.selectors.open_tasks_near``); the CANDIDATE_CAP nearest in their
  trades (then the nearest others, if fewer) are scored; Find work's default
  "Best match" order.
- ``best_contractors_for(task)``: onboarded, active contractors with the
  task's trade whose own radius reaches it (a latitude/longitude box on
  indexed columns first), the CANDIDATE_CAP nearest scored; the customer's
  "Pros to invite" and the smart alerts.

Each returns ``[(object, score, reasons)]``, best first. Features are
computed for all candidates in one batch (a fixed number of queries), and only
the returned objects are loaded whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import ContractorProfile, User
from core.errors import NotFound
from tasks import selectors as task_selectors
from tasks.models import Task

from . import features, ranking

CANDIDATE_CAP = 400  # scored per request, after a cheap pre-rank (trade, then distance)
KM_PER_DEGREE_LAT = 111.045
# Fields the features read; the rest of a task is loaded only for the results.
TASK_FIELDS = (
    "id", "customer_id", "category_id", "title", "description", "latitude", "longitude", "budget_type",
    "budget_cents", "estimated_hours", "schedule_type", "window_start", "window_end", "deadline", "published_at",
    "created_at", "status", "contractor_id",
)


class TaskRow:
    """The fields of a task the features read, without building 2,000 model
    instances (which cost more than the query)."""

    __slots__ = TASK_FIELDS

    def __init__(self, *values):
        for name, value in zip(TASK_FIELDS, values, strict=True):
            setattr(self, name, value)

    @property
    def pk(self) -> int:
        return self.id

    @property
    def budget_total_cents(self) -> int:
        if self.budget_type == Task.BudgetType.HOURLY:
            return self.budget_cents * (self.estimated_hours or 1)
        return self.budget_cents


def _profile(user: Any) -> ContractorProfile | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return ContractorProfile.objects.filter(user=user).first()


class RankedTasks:
    """Scored candidates in best-match order, loading whole tasks only for the
    slice that is read: a Django Paginator (or DRF's) pages through it like a
    queryset. Each task read carries ``match_score`` and ``match_reasons``."""

    def __init__(self, entries: list[tuple[int, float, np.ndarray]], queryset: QuerySet[Task], ranker: ranking.Ranker):
        self.entries = entries
        self.queryset = queryset
        self.ranker = ranker

    def count(self) -> int:
        return len(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return RankedTasks(self.entries[key], self.queryset, self.ranker)
        return list(RankedTasks([self.entries[key]], self.queryset, self.ranker))[0]

    def __iter__(self):
        if not self.entries:
            return iter(())
        full = {task.pk: task for task in _reload(self.queryset, [pk for pk, _s, _x in self.entries])}
        out = []
        for pk, score, row in self.entries:
            task = full.get(pk)
            if task is None:  # taken or cancelled since it was scored
                continue
            task.match_score = score
            task.match_reasons = self.ranker.explain(row, audience="contractor")
            out.append(task)
        return iter(out)


def _reload(queryset: QuerySet[Task], pks: list[int]) -> QuerySet[Task]:
    """The rows ``pks`` of ``queryset`` (its annotations, such as
    ``distance_km``, and its prefetches), if still open, by primary key.

    Its own conditions are dropped: every one of these rows met them when it
    was scored moments ago, and what can change since is that the task was
    taken, cancelled or deleted. Kept, they made PostgreSQL find the rows by
    walking the GiST box (which it expects to hold a few rows) through every
    task in range: 10-22 ms for 10,000 in range in bench/bench_matching.py,
    against ~1 ms by primary key."""
    from django.db.models.sql.where import WhereNode

    reload = queryset.all()
    reload.query.where = WhereNode()
    reload.query.clear_ordering(force=True)
    return reload.filter(pk__in=pks, status=Task.Status.OPEN)


def ranked_tasks_for(contractor: Any, queryset: QuerySet[Task] | None = None) -> RankedTasks:
    """All scored candidates for ``contractor`` (at most CANDIDATE_CAP), best first.

    ``queryset``: the candidates (e.g. Find work's filtered search, nearest
    first); default: open tasks within their service radius, not their own.
    Only its first CANDIDATE_CAP rows (the nearest, when ordered by distance)
    are scored. A contractor with no base (the API's explicit point) is still
    ranked, their distance features as far as can be. Tasks read from the result are rows of ``queryset`` (with its
    annotations, such as ``distance_km``)."""
    ranker = ranking.get_ranker()
    profile = _profile(contractor)
    if queryset is None:
        if profile is None or profile.latitude is None or profile.longitude is None:
            return RankedTasks([], Task.objects.none(), ranker)
        queryset = task_selectors.open_tasks_near(
            latitude=profile.latitude,
            longitude=profile.longitude,
            radius_km=profile.service_radius_km,
            sort="distance",
            exclude_customer=contractor,
        )
    candidates = _pre_ranked(queryset, profile)
    if not candidates:
        return RankedTasks([], queryset, ranker)
    X, _pairs = features.pair_matrix(candidates, contractor)
    scores = ranker.score(X)
    order = _top(scores, len(candidates))
    return RankedTasks([(candidates[i].pk, float(scores[i]), X[i]) for i in order], queryset, ranker)


def _pre_ranked(queryset: QuerySet[Task], profile: ContractorProfile | None) -> list[TaskRow]:
    """The CANDIDATE_CAP tasks worth scoring, cheaply: those in the
    contractor's trades first (in the queryset's order, nearest first for
    Find work), then the others. Scoring is the expensive part; a task of
    another trade 0.3 km away rarely beats one of theirs 3 km away."""
    rows = queryset.prefetch_related(None).values_list(*TASK_FIELDS)
    trades = list(profile.trades.values_list("pk", flat=True)) if profile is not None else []
    if not trades:
        return [TaskRow(*values) for values in rows[:CANDIDATE_CAP]]
    first = [TaskRow(*values) for values in rows.filter(category_id__in=trades)[:CANDIDATE_CAP]]
    if len(first) < CANDIDATE_CAP:
        first += [TaskRow(*values) for values in rows.exclude(category_id__in=trades)[: CANDIDATE_CAP - len(first)]]
    return first


def best_tasks_for(
    contractor: Any, queryset: QuerySet[Task] | None = None, *, limit: int = 50
) -> list[tuple[Task, float, list[str]]]:
    """The ``limit`` open tasks that suit ``contractor`` best, best first, as
    ``(task, score, reasons)``; see ``ranked_tasks_for`` for the candidates."""
    return [(task, task.match_score, task.match_reasons) for task in ranked_tasks_for(contractor, queryset)[:limit]]


def _top(scores: np.ndarray, limit: int) -> list[int]:
    """Indexes of the ``limit`` best scores, best first (ties: earlier candidate, i.e. nearer, first)."""
    if limit <= 0 or len(scores) == 0:
        return []
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order[:limit]]


def contractor_candidates(task: Task) -> list[int]:
    """User ids of onboarded, active contractors with the task's trade whose
    service radius reaches the task, nearest first, at most CANDIDATE_CAP."""
    lat, lon = float(task.latitude), float(task.longitude)
    reach = ContractorProfile.MAX_RADIUS_KM
    dlat = reach / KM_PER_DEGREE_LAT
    dlon = reach / (KM_PER_DEGREE_LAT * max(math.cos(math.radians(lat)), 0.01))
    rows = _candidate_rows(task, lat - dlat, lat + dlat, lon - dlon, lon + dlon)
    if not rows:
        return []
    user_ids = np.array([r[0] for r in rows])
    distance = features.haversine_km(lat, lon, [r[1] for r in rows], [r[2] for r in rows])
    radius = np.array([r[3] for r in rows], dtype=float)
    inside = distance <= radius
    user_ids, distance = user_ids[inside], distance[inside]
    order = np.lexsort((user_ids, distance))[:CANDIDATE_CAP]
    return [int(u) for u in user_ids[order]]


def _candidate_rows(task: Task, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> list[tuple]:
    """(user id, latitude, longitude, radius) of the onboarded, active
    contractors of the task's trade based in the box, not its customer. On
    PostgreSQL as plain SQL: thousands of rows (5,000 in bench/bench_matching.py),
    which Django's per-row handling and query compilation made dearer than
    the server's answer. The ORM query is the same read for SQLite, and the
    reference the SQL is tested against."""
    if connection.vendor == "postgresql":
        return _candidate_rows_sql(task, lat_min, lat_max, lon_min, lon_max)
    return _candidate_rows_orm(task, lat_min, lat_max, lon_min, lon_max)


def _candidate_rows_sql(task: Task, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.user_id, p.latitude, p.longitude, p.service_radius_km
            FROM accounts_contractorprofile p
            JOIN accounts_contractorprofile_trades t ON t.contractorprofile_id = p.id
            JOIN accounts_user u ON u.id = p.user_id
            WHERE p.latitude >= %s AND p.latitude <= %s AND p.longitude >= %s AND p.longitude <= %s
              AND p.onboarded_at IS NOT NULL AND t.category_id = %s AND u.is_active AND u.is_contractor
              AND NOT (p.user_id = %s)
            """,
            [lat_min, lat_max, lon_min, lon_max, task.category_id, task.customer_id],
        )
        return cursor.fetchall()


def _candidate_rows_orm(task: Task, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> list[tuple]:
    return list(
        ContractorProfile.objects.filter(
            onboarded_at__isnull=False,
            user__is_active=True,
            user__is_contractor=True,
            trades=task.category_id,
            latitude__gte=lat_min,
            latitude__lte=lat_max,
            longitude__gte=lon_min,
            longitude__lte=lon_max,
        )
        .exclude(user_id=task.customer_id)
        .values_list("user_id", "latitude", "longitude", "service_radius_km")
    )


def best_contractors_for(task: Task, *, limit: int = 20) -> list[tuple[User, float, list[str]]]:
    """The contractors who suit ``task`` best, best first, with reasons worded
    for the customer. No access check: callers showing this to someone must
    be the task's customer (``pros_to_invite``) or the system (alerts)."""
    user_ids = contractor_candidates(task)
    if not user_ids:
        return []
    ranker = ranking.get_ranker()
    X, pairs = features.pair_matrix([task], user_ids)
    scores = ranker.score(X)
    top = _top(scores, limit)
    users = User.objects.in_bulk([pairs[i][1] for i in top])
    return [
        (users[pairs[i][1]], float(scores[i]), ranker.explain(X[i], audience="customer"))
        for i in top
        if pairs[i][1] in users
    ]


def pros_to_invite(task: Task, user: Any, *, limit: int = 20) -> list[tuple[User, float, list[str]]]:
    """``best_contractors_for`` for the task's customer while it is open; NotFound for anyone else
    (who the platform would recommend is the customer's business)."""
    if (
        user is None
        or not getattr(user, "is_authenticated", False)
        or not user.is_active
        or user.pk != task.customer_id
    ):
        raise NotFound(_("No such task."))
    if task.status != Task.Status.OPEN:
        return []
    return best_contractors_for(task, limit=limit)


def ranker_label() -> tuple[bool, str]:
    """(is_model, version or "") of what ranks right now, for pages to say which is in use."""
    ranker = ranking.get_ranker()
    return ranker.is_model, ranker.version
