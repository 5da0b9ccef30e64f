"""Reads for tasks: who may see which task and how much of its location, what a
user may do with it now, the customer's and contractor's lists, and "Find work"
(open tasks near a point).

Pages, the API and (later) consumers all read through these functions, so a
permission rule lives in one place. List selectors use select_related and
prefetches so iterating them costs a fixed number of queries.

Nearby search, on PostgreSQL, uses the cube/earthdistance extensions that ship
with PostgreSQL: a partial GiST expression index on
``ll_to_earth(latitude, longitude) WHERE status = 'open'`` (migration
0003_search_geo_indexes) answers an ``earth_box`` prefilter and nearest-first
ordering (``<->``) under a LIMIT; its INCLUDE columns (migration 0005) make
the capped count and the nearest-200 candidate sets index-only. Full-text
search matches the stored, weighted ``search_document`` tsvector, and a
partial two-column GiST index on (point, search_document) walks matches
nearest-first with the text test inside the index. The SQL below must
generate exactly the indexed expressions or the planner will not use the
indexes (tests/tasks/test_selectors.py checks with EXPLAIN). On SQLite
(``make run``) a bounding box on latitude/longitude and a haversine expression
stand in, and search is a case-insensitive substring match.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    Expression,
    F,
    FloatField,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import ASin, Cos, Least, Power, Radians, Sin, Sqrt
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import any_of
from core.errors import ApplicationError, NotFound
from core.pagination import DEFAULT_CAP

from . import state
from .models import Category, Offer, Task, TaskEvent, TaskPhoto
from .nearby_sql import NearbySearch, NearestPages, OrderedPages, order_candidates
from .policies import cancellation_rule

S = Task.Status

# --- Who is who ---------------------------------------------------------------

# Statuses in which the assigned contractor is (or was) doing the job at the
# address, and so may see it.
CONTRACTOR_SEES_ADDRESS = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.DISPUTED})

CUSTOMER_GROUPS: dict[str, frozenset[str]] = {
    "active": frozenset({S.OPEN, S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.DISPUTED}),
    "drafts": frozenset({S.DRAFT}),
    "done": frozenset({S.COMPLETED}),
    "cancelled": frozenset({S.CANCELLED}),
}
# "offers": open tasks the contractor has a pending offer on; the rest are
# tasks assigned to them.
CONTRACTOR_GROUPS: dict[str, frozenset[str]] = {
    "active": frozenset({S.ASSIGNED, S.IN_PROGRESS, S.SUBMITTED, S.DISPUTED}),
    "offers": frozenset({S.OPEN}),
    "done": frozenset({S.COMPLETED}),
    "cancelled": frozenset({S.CANCELLED}),
}


def _authenticated(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _is_staff(user: Any) -> bool:
    return _authenticated(user) and bool(user.is_staff)


def _is_customer_of(task: Task, user: Any) -> bool:
    return _authenticated(user) and task.customer_id == user.pk


def _is_assigned_contractor(task: Task, user: Any) -> bool:
    return _authenticated(user) and task.contractor_id is not None and task.contractor_id == user.pk


def _contractor_ready(user: Any) -> bool:
    """May make offers and book: a verified contractor who finished onboarding."""
    if not (_authenticated(user) and user.is_contractor and user.is_email_verified):
        return False
    profile = getattr(user, "contractor_profile", None)
    return profile is not None and profile.is_onboarded


def _task_queryset() -> QuerySet[Task]:
    return Task.objects.select_related("customer", "contractor", "category")


def _problem_photos() -> Prefetch:
    return Prefetch(
        "photos",
        queryset=TaskPhoto.objects.filter(kind=TaskPhoto.Kind.PROBLEM).order_by("position", "created_at"),
        to_attr="problem_photos",
    )


# --- One task -----------------------------------------------------------------


def task_can_view(task: Task, user: Any) -> bool:
    """Open tasks: anyone. Drafts: the customer and staff. Everything else: the
    customer, the assigned contractor, staff, and contractors who made an offer
    on it (they may follow what became of it, never see its address)."""
    if task.status == S.OPEN:
        return True
    if not _authenticated(user):
        return False
    if _is_staff(user) or _is_customer_of(task, user):
        return True
    if task.status == S.DRAFT:
        return False
    if _is_assigned_contractor(task, user):
        return True
    return Offer.objects.filter(task=task, contractor=user).exists()


def task_get_for_user(public_id: uuid.UUID | str, user: Any) -> Task:
    """The task with this public id, if ``user`` may see it; NotFound otherwise
    (strangers learn nothing, not even that it exists)."""
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(_("No such task.")) from None
    task = _task_queryset().filter(public_id=key).first()
    if task is None or not task_can_view(task, user):
        raise NotFound(_("No such task."))
    return task


def task_sees_exact_location(task: Task, user: Any) -> bool:
    if _is_staff(user) or _is_customer_of(task, user):
        return True
    return _is_assigned_contractor(task, user) and task.status in CONTRACTOR_SEES_ADDRESS


def task_location_for(task: Task, user: Any) -> dict[str, Any]:
    """Where the task is, as far as ``user`` may know: the exact point and
    street address for the customer, staff and the hired contractor; for
    everyone else the centre of its ~1 km cell, the city and the ZIP."""
    exact = task_sees_exact_location(task, user)
    return {
        "exact": exact,
        "latitude": task.latitude if exact else task.approx_latitude,
        "longitude": task.longitude if exact else task.approx_longitude,
        "address": task.address if exact else "",
        "city": task.city,
        "state": task.state,
        "postal_code": task.postal_code,
    }


def task_actions(task: Task, user: Any) -> set[str]:
    """What ``user`` may do with ``task`` now, by who they are and its status
    (tasks/state.py). Pages show these as buttons; the API lists them. The
    services check everything again under a lock: this is a preview, not the
    guard. Unverified accounts get nothing (the services would refuse)."""
    actions: set[str] = set()
    if not _authenticated(user) or not user.is_email_verified:
        return actions

    # Who may cancel when is written once, in tasks/policies.py (staff too).
    if state.allowed(task, "cancel") and cancellation_rule(task, user).allowed:
        actions.add("cancel")

    if _is_customer_of(task, user):
        if task.status in state.EDITABLE:
            actions.add("edit")
        if state.allowed(task, "publish"):
            actions.add("publish")
        if state.allowed(task, "accept_offer") and task.offers.filter(status=Offer.Status.PENDING).exists():
            actions |= {"accept_offer", "decline_offer"}
        if state.allowed(task, "approve"):
            actions.add("approve")
        if state.allowed(task, "request_changes") and task.changes_requested_count < 1:
            actions.add("request_changes")
        return actions

    if _is_assigned_contractor(task, user):
        if state.allowed(task, "check_in"):
            actions.add("check_in")
        if state.allowed(task, "submit_proof"):
            actions.add("submit_proof")
        return actions

    if task.status == S.OPEN and _contractor_ready(user):
        has_pending = task.offers.filter(contractor=user, status=Offer.Status.PENDING).exists()
        actions.add("withdraw_offer" if has_pending else "offer")
        if task.instant_book and state.allowed(task, "instant_book"):
            actions.add("instant_book")
    return actions


def offers_for(task: Task, user: Any) -> QuerySet[Offer]:
    """The customer and staff see every offer; a contractor only their own;
    anyone else none."""
    offers = Offer.objects.filter(task=task).select_related("contractor", "contractor__contractor_profile")
    if _is_staff(user) or _is_customer_of(task, user):
        return offers
    if _authenticated(user):
        return offers.filter(contractor=user)
    return offers.none()


# Events anyone who may see the task may read; the rest (who offered, who was
# declined, proof, reminders) belong to the parties.
PUBLIC_EVENT_KINDS = frozenset(
    {
        TaskEvent.Kind.PUBLISHED,
        TaskEvent.Kind.UPDATED,
        TaskEvent.Kind.PHOTO_ADDED,
        TaskEvent.Kind.PHOTO_REMOVED,
        TaskEvent.Kind.CANCELLED,
    }
)


def timeline(task: Task, user: Any) -> list[TaskEvent]:
    """The task's history, oldest first. The customer, the assigned contractor
    and staff see all of it; anyone else who may see the task sees the public
    events and their own."""
    events = TaskEvent.objects.filter(task=task).select_related("actor").order_by("created_at", "id")
    if not (_is_staff(user) or _is_customer_of(task, user) or _is_assigned_contractor(task, user)):
        visible = Q(kind__in=PUBLIC_EVENT_KINDS)
        if _authenticated(user):
            visible |= Q(actor=user)
        events = events.filter(visible)
    return list(events)


# --- Lists --------------------------------------------------------------------


def _bad_group(group: str, groups: Iterable[str]) -> ApplicationError:
    return ApplicationError(
        _("Unknown list: %(group)s.") % {"group": group},
        code="invalid_status_group",
        fields={"status_group": [_("Choose one of: %(groups)s.") % {"groups": ", ".join(groups)}]},
    )


def tasks_for_customer(user: Any, status_group: str | None = None) -> QuerySet[Task]:
    """The customer's own tasks, newest first, optionally one group of
    CUSTOMER_GROUPS. Each task carries ``pending_offers`` (a count) and
    ``problem_photos`` (a list): 2 queries for the whole list."""
    if status_group is not None and status_group not in CUSTOMER_GROUPS:
        raise _bad_group(status_group, CUSTOMER_GROUPS)
    if not _authenticated(user):
        return Task.objects.none()
    tasks = (
        _task_queryset()
        .filter(customer=user)
        .annotate(pending_offers=Count("offers", filter=Q(offers__status=Offer.Status.PENDING)))
        .prefetch_related(_problem_photos())
        .order_by("-created_at", "-id")
    )
    if status_group is not None:
        tasks = tasks.filter(status__in=CUSTOMER_GROUPS[status_group])
    return tasks


def jobs_for_contractor(user: Any, status_group: str | None = None) -> QuerySet[Task]:
    """Tasks assigned to the contractor and open tasks they have a pending
    offer on, most recently changed first; optionally one group of
    CONTRACTOR_GROUPS. Each task carries ``my_offers`` (the contractor's
    offers on it, newest first) and ``problem_photos``: 3 queries in all."""
    if status_group is not None and status_group not in CONTRACTOR_GROUPS:
        raise _bad_group(status_group, CONTRACTOR_GROUPS)
    if not _authenticated(user):
        return Task.objects.none()
    pending_offer = Offer.objects.filter(task=OuterRef("pk"), contractor=user, status=Offer.Status.PENDING)
    assigned = Q(contractor=user)
    offered = Q(Exists(pending_offer), status=S.OPEN)
    if status_group == "offers":
        condition = offered
    elif status_group is not None:
        condition = assigned & Q(status__in=CONTRACTOR_GROUPS[status_group])
    else:
        condition = assigned | offered
    return (
        _task_queryset()
        .filter(condition)
        .prefetch_related(
            _problem_photos(),
            Prefetch("offers", queryset=Offer.objects.filter(contractor=user).order_by("-created_at"), to_attr="my_offers"),
        )
        .order_by("-updated_at", "-id")
    )


# --- Find work ----------------------------------------------------------------

MAX_RADIUS_KM = 500
KM_PER_DEGREE_LAT = 111.045
SORTS = ("distance", "newest", "budget", "relevance")
# Sorts other than distance order the nearest this many matches: the rows the
# capped count lets anyone page through (core.pagination).
SORTED_WITHIN = DEFAULT_CAP
# What the migration's GIN index covers; the query must produce this exact
# expression, so the configuration is part of the SQL text, not a parameter.
FTS_CONFIG = "english"
# What the walk reads besides ids for the bounded sorts that order by a column.
BOUNDED_SORT_COLUMNS = {"newest": "published_at", "budget": "budget_cents"}


class _LLToEarth(Func):
    """cube/earthdistance: a point on the earth's surface as a 3-D cube point."""

    function = "ll_to_earth"
    output_field = FloatField()  # never selected alone; any field will do


class _Operator(Func):
    """``(a <op> b)``: the cube operators Django has no expression for."""

    template = "(%(expressions)s)"

    def __init__(self, left, operator: str, right, output_field):
        super().__init__(left, right, output_field=output_field)
        self.arg_joiner = f" {operator} "


class _SearchDocument(Expression):
    """The task's stored, weighted tsvector (title A, description B): the
    generated column ``search_document`` of migration 0005, indexed by
    task_open_search_gin. Not a model field (SQLite has no tsvector), so it is
    named here, on whatever alias the task table has in this query (inside a
    subquery Django renames it)."""

    output_field = SearchVectorField()

    def as_sql(self, compiler, connection):
        alias = compiler.query.get_initial_alias()
        return f"{compiler.quote_name_unless_alias(alias)}.{connection.ops.quote_name('search_document')}", []


def _earth_point(latitude: float, longitude: float) -> _LLToEarth:
    return _LLToEarth(Value(float(latitude)), Value(float(longitude)))


def _task_point() -> _LLToEarth:
    return _LLToEarth(F("latitude"), F("longitude"))


def _haversine_km(latitude: float, longitude: float):
    """Great-circle distance as a SQL expression SQLite can run (Django
    registers the math functions on SQLite connections)."""
    lat1 = Radians(Value(float(latitude)))
    lat2 = Radians(F("latitude"))
    dlat = Radians(F("latitude") - Value(float(latitude)))
    dlon = Radians(F("longitude") - Value(float(longitude)))
    a = Power(Sin(dlat / 2), 2) + Cos(lat1) * Cos(lat2) * Power(Sin(dlon / 2), 2)
    # min(1, a): rounding may push a hair above 1 for antipodes.
    return Value(2 * 6371.0088) * ASin(Sqrt(Least(a, Value(1.0))))


def _as_aware(value: dt.date | dt.datetime, *, end_of_day: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    day = value + dt.timedelta(days=1) if end_of_day else value
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _category_keys(categories: Iterable[Category | str | int]) -> tuple[list[str], list[int]]:
    """(slugs, ids) of categories given as slugs, ids or Category objects."""
    slugs, pks = [], []
    for category in categories:
        if isinstance(category, Category):
            pks.append(category.pk)
        elif isinstance(category, int):
            pks.append(category)
        else:
            slugs.append(str(category))
    return slugs, pks


def _use_raw_sql() -> bool:
    """Find work's walk, capped count and page ids as hand-written SQL
    (tasks.nearby_sql): on PostgreSQL. SQLite (``make run``) keeps the ORM
    path, which is also what tests compare the SQL against."""
    return connection.vendor == "postgresql"


def _check_search_args(
    latitude, longitude, radius_km, min_budget_cents, max_budget_cents, date_from, date_to, sort
) -> None:
    fields: dict[str, list[str]] = {}
    try:
        if not -90 <= float(latitude) <= 90 or not math.isfinite(float(latitude)):
            fields["latitude"] = [_("Latitude must be between -90 and 90.")]
    except (TypeError, ValueError):
        fields["latitude"] = [_("Latitude must be a number.")]
    try:
        if not -180 <= float(longitude) <= 180 or not math.isfinite(float(longitude)):
            fields["longitude"] = [_("Longitude must be between -180 and 180.")]
    except (TypeError, ValueError):
        fields["longitude"] = [_("Longitude must be a number.")]
    try:
        if not 0 < float(radius_km) <= MAX_RADIUS_KM:
            fields["radius_km"] = [_("Distance must be more than 0 and at most %(max)s km.") % {"max": MAX_RADIUS_KM}]
    except (TypeError, ValueError):
        fields["radius_km"] = [_("Distance must be a number.")]
    for name, value in (("min_budget_cents", min_budget_cents), ("max_budget_cents", max_budget_cents)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            fields[name] = [_("Budget must be a whole number of cents, 0 or more.")]
    if (
        "min_budget_cents" not in fields
        and "max_budget_cents" not in fields
        and min_budget_cents is not None
        and max_budget_cents is not None
        and min_budget_cents > max_budget_cents
    ):
        fields["max_budget_cents"] = [_("The highest budget must not be below the lowest.")]
    if date_from is not None and date_to is not None:
        start, end = _as_aware(date_from, end_of_day=False), _as_aware(date_to, end_of_day=True)
        if start >= end:
            fields["date_to"] = [_("The last date must not be before the first.")]
    if sort is not None and sort not in SORTS:
        fields["sort"] = [_("Sort by one of: %(sorts)s.") % {"sorts": ", ".join(SORTS)}]
    if fields:
        raise ApplicationError(_("Check the search filters."), code="invalid_search", fields=fields)


def _checked_search(
    latitude,
    longitude,
    radius_km,
    categories,
    min_budget_cents,
    max_budget_cents,
    date_from,
    date_to,
    q,
    sort,
    exclude_customer,
) -> tuple[NearbySearch, str]:
    """Find work's arguments checked (ApplicationError "invalid_search") and
    normalised, as one NearbySearch (the point and radius as floats, the
    trades as slugs and ids, the dates as aware bounds, the search text
    stripped, the excluded customer's id), and the sort made explicit. Both
    the queryset (open_tasks_near) and the page source (tasks.nearby_sql)
    are built from it."""
    _check_search_args(latitude, longitude, radius_km, min_budget_cents, max_budget_cents, date_from, date_to, sort)
    q = (q or "").strip()
    if sort is None:
        sort = "relevance" if q else "distance"
    if sort == "relevance" and not q:
        sort = "distance"
    category_keys = None
    if categories is not None:
        categories = list(categories)
        if categories:
            category_keys = _category_keys(categories)
    excluded_pk = None
    if exclude_customer is not None and getattr(exclude_customer, "pk", None) is not None:
        excluded_pk = exclude_customer.pk
    search = NearbySearch(
        latitude=float(latitude),
        longitude=float(longitude),
        radius_km=float(radius_km),
        category_slugs=tuple(category_keys[0]) if category_keys else None,
        category_pks=tuple(category_keys[1]) if category_keys else (),
        min_budget_cents=min_budget_cents,
        max_budget_cents=max_budget_cents,
        scheduled_from=_as_aware(date_from, end_of_day=False) if date_from is not None else None,
        scheduled_before=_as_aware(date_to, end_of_day=True) if date_to is not None else None,
        q=q,
        fts_config=FTS_CONFIG,
        exclude_customer_pk=excluded_pk,
    )
    return search, sort


def open_task_pages_near(
    *,
    latitude: float,
    longitude: float,
    radius_km: float,
    categories: Iterable[Category | str | int] | None = None,
    min_budget_cents: int | None = None,
    max_budget_cents: int | None = None,
    date_from: dt.date | dt.datetime | None = None,
    date_to: dt.date | dt.datetime | None = None,
    q: str | None = None,
    sort: str | None = None,
    exclude_customer: Any = None,
) -> QuerySet[Task] | NearestPages | OrderedPages:
    """Find work for callers that only page through it with
    core.pagination.CappedPaginator (the API's distance, newest, budget and
    relevance sorts): the same arguments, checks and pages as open_tasks_near.
    On PostgreSQL it returns only the page source (tasks.nearby_sql), without
    building the ORM queryset that those pages never run (the queryset's
    filters, annotations and clones were ~15% of an API request's CPU,
    bench/profile_nearby.py --profile). Elsewhere (SQLite), or when the raw
    SQL path is off, it is open_tasks_near's queryset, as before."""
    if connection.vendor != "postgresql" or not _use_raw_sql():
        return open_tasks_near(
            latitude=latitude,
            longitude=longitude,
            radius_km=radius_km,
            categories=categories,
            min_budget_cents=min_budget_cents,
            max_budget_cents=max_budget_cents,
            date_from=date_from,
            date_to=date_to,
            q=q,
            sort=sort,
            exclude_customer=exclude_customer,
        )
    search, sort = _checked_search(
        latitude,
        longitude,
        radius_km,
        categories,
        min_budget_cents,
        max_budget_cents,
        date_from,
        date_to,
        q,
        sort,
        exclude_customer,
    )
    if sort == "distance":
        return NearestPages(search)
    # As open_tasks_near: the nearest SORTED_WITHIN + 1 in one walk, the first
    # SORTED_WITHIN of them ordered.
    walked = search.walk(SORTED_WITHIN + 1, sort_column=BOUNDED_SORT_COLUMNS.get(sort))
    return OrderedPages(order_candidates(walked[:SORTED_WITHIN], sort), len(walked), SORTED_WITHIN)


def open_tasks_near(
    *,
    latitude: float,
    longitude: float,
    radius_km: float,
    categories: Iterable[Category | str | int] | None = None,
    min_budget_cents: int | None = None,
    max_budget_cents: int | None = None,
    date_from: dt.date | dt.datetime | None = None,
    date_to: dt.date | dt.datetime | None = None,
    q: str | None = None,
    sort: str | None = None,
    exclude_customer: Any = None,
) -> QuerySet[Task]:
    """Open tasks within ``radius_km`` of the point, each annotated with
    ``distance_km`` (and ``rank`` when ``q`` is given), as a QuerySet so
    callers can paginate and count it. Iterating a page costs 3 queries (the
    tasks, their categories, their problem photos as ``problem_photos``).

    sort: "distance" (nearest first), "newest" (most recently posted),
    "budget" (highest first) or "relevance" (best text match, then nearest).
    With no sort: relevance when searching, else distance. Every sort but
    distance orders only the nearest SORTED_WITHIN (200) matches: one query
    runs now to find them, and the result carries ``known_count`` (matches,
    up to 201) and ``sorted_within`` for core.pagination.CappedPaginator.
    categories: slugs, ids or Category objects. Budget bounds are inclusive
    and apply to ``budget_cents`` (the fixed total or the hourly rate). Dates
    (inclusive; a date means the whole day) apply to when the task is
    scheduled: its window start, or its deadline when flexible.
    ``exclude_customer`` (a user): leave out that user's own tasks.
    On PostgreSQL the result also carries ``page_source`` (tasks.nearby_sql):
    core.pagination.CappedPaginator counts and reads pages through it with
    hand-written SQL of the same conditions, not the queryset's compiled SQL.
    Raises ApplicationError (code "invalid_search", with fields) for bad input.
    """
    search, sort = _checked_search(
        latitude,
        longitude,
        radius_km,
        categories,
        min_budget_cents,
        max_budget_cents,
        date_from,
        date_to,
        q,
        sort,
        exclude_customer,
    )
    latitude, longitude, radius_km, q = search.latitude, search.longitude, search.radius_km, search.q

    # Category by prefetch, not a join: joined, the planner (expecting a
    # handful of rows from the box) hash-joins and then sorts the whole box,
    # losing the index's nearest-first order (65 ms against 1 ms in New York
    # at 100,000 tasks). Three small queries per page instead.
    tasks = Task.objects.filter(status=S.OPEN).prefetch_related("category", _problem_photos())

    on_postgres = connection.vendor == "postgresql"
    if on_postgres:
        radius_m = radius_km * 1000.0
        here = _earth_point(latitude, longitude)
        # earth_box is a cube around the circle, answerable by the GiST index;
        # earth_distance then trims its corners.
        in_box = _Operator(
            Func(here, Value(radius_m), function="earth_box", output_field=FloatField()),
            "@>",
            _task_point(),
            output_field=BooleanField(),
        )
        distance_km = Func(here, _task_point(), function="earth_distance", output_field=FloatField()) / Value(1000.0)
        tasks = tasks.filter(in_box).annotate(distance_km=distance_km).filter(distance_km__lte=radius_km)
        # Chord length through the earth: grows with the great-circle distance,
        # and the GiST index can walk it nearest-first (KNN) under a LIMIT.
        nearest_first = _Operator(_task_point(), "<->", _earth_point(latitude, longitude), output_field=FloatField())
    else:
        distance_km = _haversine_km(latitude, longitude)
        dlat = radius_km / KM_PER_DEGREE_LAT
        dlon = radius_km / (KM_PER_DEGREE_LAT * max(math.cos(math.radians(latitude)), 0.01))
        tasks = (
            tasks.filter(
                latitude__gte=latitude - dlat,
                latitude__lte=latitude + dlat,
                longitude__gte=longitude - dlon,
                longitude__lte=longitude + dlon,
            )
            .annotate(distance_km=distance_km)
            .filter(distance_km__lte=radius_km)
        )
        nearest_first = F("distance_km")

    if search.category_slugs is not None:
        tasks = tasks.filter(Q(category__slug__in=search.category_slugs) | Q(category_id__in=search.category_pks))
    if min_budget_cents is not None:
        tasks = tasks.filter(budget_cents__gte=min_budget_cents)
    if max_budget_cents is not None:
        tasks = tasks.filter(budget_cents__lte=max_budget_cents)
    scheduled_from, scheduled_before = search.scheduled_from, search.scheduled_before
    if scheduled_from is not None or scheduled_before is not None:
        tasks = tasks.annotate(
            scheduled_at=Case(
                When(schedule_type=Task.ScheduleType.WINDOW, then=F("window_start")), default=F("deadline")
            )
        )
        if scheduled_from is not None:
            tasks = tasks.filter(scheduled_at__gte=scheduled_from)
        if scheduled_before is not None:
            tasks = tasks.filter(scheduled_at__lt=scheduled_before)
    if search.exclude_customer_pk is not None:
        tasks = tasks.exclude(customer_id=search.exclude_customer_pk)

    rank = None
    if q:
        if on_postgres:
            query = SearchQuery(q, search_type="websearch", config=FTS_CONFIG)
            tasks = tasks.alias(document=_SearchDocument()).filter(document=query)
            rank = SearchRank(_SearchDocument(), query)
        else:
            tasks = tasks.filter(Q(title__icontains=q) | Q(description__icontains=q))
            rank = Case(When(title__icontains=q, then=Value(1.0)), default=Value(0.5), output_field=FloatField())
        tasks = tasks.annotate(rank=rank)

    if not (on_postgres and _use_raw_sql()):
        search = None  # the queryset alone: SQLite, or the raw SQL path switched off

    if sort == "distance":
        # Nothing after the distance: with a tie-breaker the planner sorts
        # every task in the box (cube's fixed 0.1% estimate makes that look
        # cheap) instead of walking the index nearest-first and stopping at
        # the LIMIT; measured 93 ms against 0.9 ms in New York at 100,000
        # tasks. Exact ties (tasks at one ZIP centroid) come out in index
        # order, which is stable while the index is unchanged.
        tasks = tasks.order_by(nearest_first)
        if search is not None:
            # CappedPaginator reads pages through this (the queryset stays
            # for everything else; a clone drops it, as it drops known_count).
            tasks.page_source = NearestPages(search)
        return tasks

    # Newest, budget and relevance: no index gives "within 25 km" and
    # "highest budget first" at once, and sorting every match in a dense
    # circle reads all of them (28,434 open tasks downtown New York at 1M).
    # So these sorts order the nearest SORTED_WITHIN matches, the same rows
    # the capped count lets anyone page through. One walk of the GiST index,
    # nearest first (index-only without a search), fetches their ids and one
    # more: that also answers the count (``known_count``), and pages say when
    # more matched (``sorted_within``; see core.pagination).
    if search is not None:
        walked = search.walk(SORTED_WITHIN + 1, sort_column=BOUNDED_SORT_COLUMNS.get(sort))
        nearest = [c.pk for c in walked]
    else:
        nearest = list(tasks.order_by(nearest_first).values_list("pk", flat=True)[: SORTED_WITHIN + 1])
    within = (
        Task.objects.filter(any_of("pk", nearest[:SORTED_WITHIN]))
        .prefetch_related("category", _problem_photos())
        .annotate(distance_km=distance_km)
    )
    if rank is not None:
        within = within.annotate(rank=rank)
    if sort == "newest":
        within = within.order_by(F("published_at").desc(nulls_last=True), "-id")
    elif sort == "budget":
        within = within.order_by("-budget_cents", "distance_km", "id")
    else:
        within = within.order_by("-rank", "distance_km", "id")
    within.known_count = len(nearest)
    within.sorted_within = SORTED_WITHIN
    if search is not None:
        ordered = order_candidates(walked[:SORTED_WITHIN], sort)
        within.page_source = OrderedPages(ordered, len(nearest), SORTED_WITHIN)
    return within
