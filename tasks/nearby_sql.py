"""Find work's nearest-matches walk as hand-written, parameterised SQL
(PostgreSQL only; ``tasks.selectors.open_tasks_near`` decides when).

Why not the ORM: the SQL of a Find work page is small and fast (the walk
below runs in 1-4 ms at 1,000,000 tasks), but Django compiled it afresh for
every request, twice (the capped count and the page), and that compilation
was about half of a request's CPU (bench/profile_nearby.py: ~12 ms of
SQLCompiler.as_sql per profiled request). Here the statement is a string
built from the search's few conditions, and the page's rows are then read by
primary key (also as SQL: compiling those two simple statements cost more
than running them). A distance page asked for before its count (the API and
the pages do) is one statement: the walk, counted, joined to its page's
tasks, categories and photos (``NearbySearch.walk_page``).

The conditions must stay exactly those of the ORM path in selectors.py (same
expressions, same operators, same parameters), for two reasons: the results
must be the same rows in the same order (tests/tasks/test_nearby_sql.py
compares both ways on PostgreSQL for many filter combinations), and the
planner uses the partial GiST indexes of migrations 0003/0005 only for the
indexed expression ``ll_to_earth(latitude, longitude)`` with ``earth_box``'s
``@>`` and KNN's ``<->`` (tests check the plans with EXPLAIN).

Every value the caller gives travels as a query parameter; the only text put
into the statement is this module's own (column names, operators).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Model

from .models import Category, Task, TaskPhoto

# Where the task is, as the GiST indexes store it. Unqualified: the
# statement reads one table.
_POINT = "ll_to_earth(latitude, longitude)"
_HERE = "ll_to_earth(%s, %s)"
_DISTANCE_KM = f"(earth_distance({_HERE}, {_POINT}) / %s)"
_QUERY = "websearch_to_tsquery(%s::regconfig, %s)"


class Candidate(NamedTuple):
    """One match of the walk: its primary key, its distance from the search's
    point (as the ORM's ``distance_km`` annotation computes it), its text rank
    (searches only) and what a bounded sort orders by."""

    pk: int
    distance_km: float
    rank: float | None
    sort_value: Any


@dataclass(frozen=True)
class NearbySearch:
    """One Find work search, checked and normalised by open_tasks_near."""

    latitude: float
    longitude: float
    radius_km: float
    category_slugs: tuple[str, ...] | None  # None: any trade
    category_pks: tuple[int, ...]
    min_budget_cents: int | None
    max_budget_cents: int | None
    scheduled_from: dt.datetime | None  # inclusive
    scheduled_before: dt.datetime | None  # exclusive
    q: str  # "" for no search; a search uses fts_config
    fts_config: str
    exclude_customer_pk: int | None

    def walk(self, limit: int, *, sort_column: str | None = None) -> list[Candidate]:
        """The ``limit`` nearest matches, nearest first: one statement, off the
        GiST index (index-only when nothing but its INCLUDE columns is read).
        ``sort_column``: also read this column (published_at, budget_cents)."""
        sql, params = self._walk_sql(limit, sort_column)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [Candidate(*row) for row in cursor.fetchall()]

    def walk_page(self, limit: int, bottom: int, top: int) -> tuple[int, list[Task]]:
        """How many of the ``limit`` nearest matches there are, and the tasks
        of that walk's slice ``[bottom, top)`` (as ``_page_rows`` builds them),
        in ONE statement: the walk (the same text as ``walk``'s) is a
        materialized CTE, counted, and only its slice is joined to the tasks,
        their categories and their problem photos. One round trip instead of
        three (walk, rows, photos), and the candidates never travel to Python.
        ``row_number() OVER ()`` has nothing to sort by: it numbers the rows
        in the order the LIMITed walk hands them over, nearest first (as
        ``walk``'s rows come); the page's slice and ORDER BY go by it."""
        walk_sql, walk_params = self._walk_sql(limit, None)
        task_sql, task_names, task_converters = _columns(Task, "t")
        category_sql, category_names, category_converters = _columns(Category, "c")
        photos_sql, photos_params = _photos_column("t")
        sql = (
            "WITH walk AS MATERIALIZED ("  # noqa: S608 (this module's text and the models' column names only)
            f"SELECT row_number() OVER () AS n, w.* FROM ({walk_sql}) AS w(id, distance_km, rank, sort_value))"
            f" SELECT s.seen, w.distance_km, w.rank, {task_sql}, {category_sql}, {photos_sql}"
            " FROM (SELECT count(*) AS seen FROM walk) AS s"
            " LEFT JOIN (walk AS w JOIN tasks_task AS t ON t.id = w.id"
            " JOIN tasks_category AS c ON c.id = t.category_id) ON w.n > %s AND w.n <= %s"
            " ORDER BY w.n"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*walk_params, *photos_params, int(bottom), int(top)])
            rows = cursor.fetchall()
        seen = rows[0][0]
        page = [row for row in rows if row[1] is not None]  # the count's row alone when the slice is empty
        tasks = _build_tasks([row[3:] for row in page], (task_names, task_converters, category_names, category_converters))
        for task, row in zip(tasks, page, strict=True):
            _place(task, row[1], row[2])
        return seen, tasks

    def _walk_sql(self, limit: int, sort_column: str | None) -> tuple[str, list[Any]]:
        lat, lon = self.latitude, self.longitude
        columns = [f"id, {_DISTANCE_KM}"]
        column_params: list[Any] = [lat, lon, 1000.0]
        if self.q:
            columns.append(f"ts_rank(search_document, {_QUERY})")
            column_params += [self.fts_config, self.q]
        else:
            columns.append("NULL")
        if sort_column is not None:
            if sort_column not in ("published_at", "budget_cents"):
                raise ValueError(sort_column)
            columns.append(sort_column)
        else:
            columns.append("NULL")

        # earth_box is a cube around the circle, answerable by the GiST index;
        # earth_distance then trims its corners.
        where = [
            "status = %s",
            f"earth_box({_HERE}, %s) @> {_POINT}",
            f"{_DISTANCE_KM} <= %s",
        ]
        params: list[Any] = [
            Task.Status.OPEN.value,
            lat,
            lon,
            self.radius_km * 1000.0,
            lat,
            lon,
            1000.0,
            self.radius_km,
        ]
        if self.category_slugs is not None:
            # Slugs and ids, as the ORM's Q(category__slug__in) | Q(category_id__in):
            # the slugs become ids once per statement (an InitPlan), no join.
            where.append(
                "category_id = ANY(ARRAY(SELECT c.id FROM tasks_category AS c WHERE c.slug = ANY(%s::text[]))"
                " || %s::bigint[])"
            )
            params += [list(self.category_slugs), list(self.category_pks)]
        if self.min_budget_cents is not None:
            where.append("budget_cents >= %s")
            params.append(self.min_budget_cents)
        if self.max_budget_cents is not None:
            where.append("budget_cents <= %s")
            params.append(self.max_budget_cents)
        scheduled = "CASE WHEN schedule_type = %s THEN window_start ELSE deadline END"
        if self.scheduled_from is not None:
            where.append(f"{scheduled} >= %s")
            params += [Task.ScheduleType.WINDOW.value, self.scheduled_from]
        if self.scheduled_before is not None:
            where.append(f"{scheduled} < %s")
            params += [Task.ScheduleType.WINDOW.value, self.scheduled_before]
        if self.exclude_customer_pk is not None:
            where.append("NOT (customer_id = %s)")
            params.append(self.exclude_customer_pk)
        if self.q:
            where.append(f"search_document @@ {_QUERY}")
            params += [self.fts_config, self.q]

        # Nothing after the distance in ORDER BY (see selectors.open_tasks_near):
        # the index hands rows over nearest-first and stops at the LIMIT.
        sql = (
            f"SELECT {', '.join(columns)} FROM tasks_task"  # noqa: S608 (this module's text only)
            f" WHERE {' AND '.join(where)}"
            f" ORDER BY {_POINT} <-> {_HERE} LIMIT %s"
        )
        return sql, [*column_params, *params, lat, lon, int(limit)]


def order_candidates(candidates: list[Candidate], sort: str) -> list[Candidate]:
    """The candidates in a bounded sort's order, exactly as the ORM orders
    them in SQL: newest (published_at DESC NULLS LAST, id DESC), budget
    (budget DESC, distance, id), relevance (rank DESC, distance, id)."""
    if sort == "newest":
        # Stable sorts, least significant key first; reverse keeps ties' order.
        by_id = sorted(candidates, key=lambda c: c.pk, reverse=True)
        published = sorted((c for c in by_id if c.sort_value is not None), key=lambda c: c.sort_value, reverse=True)
        return published + [c for c in by_id if c.sort_value is None]
    if sort == "budget":
        return sorted(candidates, key=lambda c: (-c.sort_value, c.distance_km, c.pk))
    if sort == "relevance":
        return sorted(candidates, key=lambda c: (-c.rank, c.distance_km, c.pk))
    raise ValueError(sort)


@functools.cache
def _columns(model: type[Model], alias: str) -> tuple[str, list[str], list[tuple[int, list]]]:
    """A model's concrete columns for a SELECT list, their attribute names, and
    the converters any of them need (what the ORM would apply: none today).
    Worked out once per process, like the rest of the statements' text."""
    fields = model._meta.concrete_fields
    sql = ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields)
    converters = [(i, convs) for i, f in enumerate(fields) if (convs := f.get_db_converters(connection))]
    return sql, [f.attname for f in fields], converters


def _from_db(model: type[Model], names: list[str], converters: list[tuple[int, list]], values: tuple) -> Model:
    if converters:
        values = list(values)
        for i, convs in converters:
            for convert in convs:
                values[i] = convert(values[i], None, connection)
    return model.from_db(connection.alias, names, values)


def _photos_column(task_alias: str) -> tuple[str, list[Any]]:
    """A SELECT-list subquery: the task's problem photos (as
    selectors._problem_photos orders them), each as a JSON array of its
    columns, so that they come in the same statement as their task."""
    photo_sql, _names, _converters = _columns(TaskPhoto, "p")
    return (
        f"(SELECT json_agg(json_build_array({photo_sql}) ORDER BY p.position, p.created_at)"  # noqa: S608 (column names from the model)
        f" FROM tasks_taskphoto AS p WHERE p.task_id = {task_alias}.id AND p.kind = %s)",
        [TaskPhoto.Kind.PROBLEM.value],
    )


@functools.cache
def _photo_fields() -> tuple[list[str], list]:
    fields = TaskPhoto._meta.concrete_fields
    return [f.attname for f in fields], list(fields)


def _photo_from_json(values: list) -> TaskPhoto:
    """A photo from its JSON array: each value as its field reads it back
    from JSON's text, numbers and nulls (timestamps, UUIDs), then as the ORM
    builds an instance from a row."""
    names, fields = _photo_fields()
    values = [v if v is None else f.to_python(v) for f, v in zip(fields, values, strict=True)]
    _sql, _names, converters = _columns(TaskPhoto, "p")
    return _from_db(TaskPhoto, names, converters, tuple(values))


def _build_tasks(rows: list[tuple], columns: tuple) -> list[Task]:
    """Tasks from rows of (task columns, category columns, photos JSON)."""
    task_names, task_converters, category_names, category_converters = columns
    width = len(task_names)
    categories: dict[int, Category] = {}
    out = []
    for row in rows:
        task = _from_db(Task, task_names, task_converters, row[:width])
        # One instance per category, as the ORM path's prefetch gives.
        category = categories.get(task.category_id)
        if category is None:
            category = categories[task.category_id] = _from_db(
                Category, category_names, category_converters, row[width:-1]
            )
        Task.category.field.set_cached_value(task, category)
        task.problem_photos = []
        for values in row[-1] or ():
            photo = _photo_from_json(values)
            TaskPhoto.task.field.set_cached_value(photo, task)
            task.problem_photos.append(photo)
        out.append(task)
    return out


def _page_rows(candidates: list[Candidate]) -> list[Task]:
    """The candidates' tasks, in the candidates' order, with their distance
    (and rank), their category and their problem photos (``problem_photos``,
    as selectors._problem_photos orders them): one statement read by primary
    key, so its plan does not depend on the search, and nothing to compile.
    A task taken or cancelled since the walk is left out."""
    if not candidates:
        return []
    task_sql, task_names, task_converters = _columns(Task, "t")
    category_sql, category_names, category_converters = _columns(Category, "c")
    photos_sql, photos_params = _photos_column("t")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {task_sql}, {category_sql}, {photos_sql} FROM tasks_task AS t"  # noqa: S608 (column names from the models)
            " JOIN tasks_category AS c ON c.id = t.category_id WHERE t.id = ANY(%s::bigint[]) AND t.status = %s",
            [*photos_params, [c.pk for c in candidates], Task.Status.OPEN.value],
        )
        rows = cursor.fetchall()
    by_pk = {
        task.pk: task for task in _build_tasks(rows, (task_names, task_converters, category_names, category_converters))
    }
    out = []
    for candidate in candidates:
        task = by_pk.get(candidate.pk)
        if task is None:
            continue
        _place(task, candidate.distance_km, candidate.rank)
        out.append(task)
    return out


def _place(task: Task, distance_km: float, rank: float | None) -> None:
    """What the walk found out about a task: its distance, and its rank when searching."""
    task.distance_km = distance_km
    if rank is not None:
        task.rank = rank


class _Pages:
    """A page source is also a list CappedPaginator can page through by
    itself (selectors.open_task_pages_near returns one, no queryset)."""

    # What Django's Paginator checks before warning of an unordered list:
    # every source hands rows over in its search's order.
    ordered = True

    @property
    def page_source(self):
        return self


class NearestPages(_Pages):
    """What core.pagination.CappedPaginator reads a nearest-first Find work
    list through (its ``page_source``). Told the page first (``expect``, as
    CappedPaginator.page and get_page do), it gets the capped count and that
    page's rows in one statement (NearbySearch.walk_page); otherwise the
    capped count and the page's ids from one walk of the nearest ``cap + 1``
    matches, then the page's rows by primary key."""

    sorted_within = None

    def __init__(self, search: NearbySearch):
        self.search = search
        self._walked: list[Candidate] = []
        self._limit = 0
        self._expected: tuple[int, int] | None = None
        self._page: tuple[int, int, list[Task]] | None = None  # bottom, top, rows of walk_page
        self._seen: int | None = None  # counted by walk_page, up to _seen_limit
        self._seen_limit = 0

    def expect(self, bottom: int, top: int) -> None:
        """The slice ``[bottom, top)`` (or part of it) will be read next."""
        if self._seen is None:
            self._expected = (bottom, top)

    def _walk(self, limit: int) -> list[Candidate]:
        # Walk again only for more than was asked before, and only if there may be more.
        if limit > self._limit and (self._limit == 0 or len(self._walked) == self._limit):
            self._walked = self.search.walk(limit)
            self._limit = limit
        return self._walked

    def seen(self, limit: int) -> int:
        """How many match, counting at most ``limit``."""
        if self._seen is not None and limit <= self._seen_limit:
            return min(self._seen, limit)
        if self._expected is not None and self._limit == 0:
            bottom, top = self._expected
            seen, rows = self.search.walk_page(limit, bottom, min(top, limit))
            self._seen, self._seen_limit, self._page = seen, limit, (bottom, min(top, limit), rows)
            return min(seen, limit)
        return min(len(self._walk(limit)), limit)

    def rows(self, bottom: int, top: int) -> list[Task]:
        if self._page is not None:
            page_bottom, page_top, rows = self._page
            if page_bottom == bottom and top <= page_top:
                return rows[: top - bottom]
        return _page_rows(self._walk(max(top, self._limit))[bottom:top])


class OrderedPages(_Pages):
    """The same for newest, budget and relevance: the nearest matches were
    walked already (``known`` of them, up to SORTED_WITHIN + 1) and ordered
    (the first SORTED_WITHIN); a page is a slice of them, read by primary key."""

    def __init__(self, ordered: list[Candidate], known: int, sorted_within: int):
        self.candidates = ordered
        self.known = known
        self.sorted_within = sorted_within

    def seen(self, limit: int) -> int:
        return self.known

    def rows(self, bottom: int, top: int) -> list[Task]:
        return _page_rows(self.candidates[bottom:top])
