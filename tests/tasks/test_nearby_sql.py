"""Find work's hand-written SQL (tasks.nearby_sql) against the ORM path it
stands in for on PostgreSQL: for many filter combinations and every sort, the
same count, the same "more than N" flags and the same rows, in the same order,
with the same distances and ranks, on every page; the same API answers; a
fixed number of queries; and the GiST index walked nearest-first."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.errors import ApplicationError
from core.pagination import CappedPaginator
from tasks import selectors
from tasks.models import Task
from tests.factories import CategoryFactory, UserFactory
from tests.tasks.api_support import token_client
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db

HERE_LAT, HERE_LON = 37.7509, -122.4153
KM_PER_DEGREE = 6378.168 * 3.141592653589793 / 180
DAY = timezone.localdate() + dt.timedelta(days=10)


def at(days: int, hour: int = 12) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(DAY + dt.timedelta(days=days), dt.time(hour)))


@pytest.fixture
def mixed(db):
    """32 open tasks at distinct distances (0.4 to 28.3 km, some east, some
    north), across three trades, with repeated budgets and publication times
    (ties for the sorts to break), window and deadline schedules, "leak" in
    some titles and descriptions, two customers, 0-2 photos; plus tasks the
    search must never return (not open, too far)."""
    trades = [
        CategoryFactory(name="Plumbing", slug="plumbing"),
        CategoryFactory(name="Electrical", slug="electrical"),
        CategoryFactory(name="Painting", slug="painting"),
    ]
    alice, carol = UserFactory(), UserFactory()
    now = timezone.now()
    budgets = [5_000, 10_000, 10_000, 20_000, 50_000, 12_000, 10_000]
    for i in range(32):
        km = 0.4 + i * 0.9
        east = i % 3 == 1
        kwargs = {
            "title": f"{'Leaking tap' if i % 4 == 0 else 'Paint a wall'} {i}",
            "description": "Water leaks under the sink." if i % 5 == 0 else "Two coats, white.",
            "category": trades[i % 3],
            "customer": carol if i % 6 == 0 else alice,
            "budget_cents": budgets[i % len(budgets)],
            "published_at": now - dt.timedelta(hours=i % 5),
            "latitude": HERE_LAT + (0 if east else km / KM_PER_DEGREE),
            "longitude": HERE_LON + (km / (KM_PER_DEGREE * 0.7907) if east else 0),
            "photos": i % 3 if i < 9 else 0,
        }
        if i % 2:
            kwargs.update(schedule_type="window", window_start=at(i % 7, 9), window_end=at(i % 7, 11), deadline=None)
        else:
            kwargs.update(deadline=at(i % 9, 18))
        TaskFactory(**kwargs)
    TaskFactory(title="Leaking draft", draft=True, photos=0)
    TaskFactory(title="Leaking cancelled", status=Task.Status.CANCELLED, photos=0)
    TaskFactory(title="Leaking far away", latitude=HERE_LAT + 80 / KM_PER_DEGREE, longitude=HERE_LON, photos=0)
    return {"trades": trades, "carol": carol}


def columns(row) -> tuple:
    """Every stored value of a model instance (instances compare by pk alone)."""
    return tuple(getattr(row, field.attname) for field in row._meta.concrete_fields)


def listing(raw: bool, monkeypatch, *, per_page: int, pages_only: bool = False, **kwargs) -> dict:
    """Everything a reader of Find work's pages sees, through CappedPaginator,
    with the hand-written SQL on (raw) or off (the ORM path). ``pages_only``:
    through open_task_pages_near (no queryset at all when raw), as the API."""
    monkeypatch.setattr(selectors, "_use_raw_sql", lambda: raw)
    find = selectors.open_task_pages_near if pages_only else selectors.open_tasks_near
    radius_km = kwargs.pop("radius_km", 30)
    queryset = find(latitude=HERE_LAT, longitude=HERE_LON, radius_km=radius_km, **kwargs)
    assert hasattr(queryset, "page_source") is raw
    assert isinstance(queryset, QuerySet) is not (raw and pages_only)
    paginator = CappedPaginator(queryset, per_page)

    def seen(page) -> list[tuple]:
        return [
            (
                t.title,
                t.distance_km,
                getattr(t, "rank", None),
                columns(t),
                columns(t.category),
                [columns(p) for p in t.problem_photos],
            )
            for t in page
        ]

    pages = [seen(paginator.page(number)) for number in paginator.page_range]
    # As the API and the pages read them: a fresh list per request, its page
    # asked for before its count (the raw distance list then reads both at once).
    fresh = []
    for number in paginator.page_range:
        fresh_paginator = CappedPaginator(
            find(latitude=HERE_LAT, longitude=HERE_LON, radius_km=radius_km, **kwargs), per_page
        )
        fresh.append((seen(fresh_paginator.page(number)), fresh_paginator.count, fresh_paginator.is_capped))
    assert fresh == [(page, paginator.count, paginator.is_capped) for page in pages]
    return {
        "count": paginator.count,
        "capped": paginator.is_capped,
        "sorted_within": paginator.sorted_within,
        "pages": pages,
    }


COMBINATIONS: list[tuple[str, Callable[[dict], dict]]] = [
    ("everything", lambda m: {}),
    ("smaller radius", lambda m: {"radius_km": 9}),
    ("one trade by slug", lambda m: {"categories": ["plumbing"]}),
    ("trades by id, object and slug", lambda m: {"categories": [m["trades"][1].pk, m["trades"][2]]}),
    ("slug and id", lambda m: {"categories": ["painting", m["trades"][0].pk]}),
    ("min budget", lambda m: {"min_budget_cents": 10_000}),
    ("max budget", lambda m: {"max_budget_cents": 10_000}),
    ("budget range", lambda m: {"min_budget_cents": 10_000, "max_budget_cents": 20_000}),
    ("from a day", lambda m: {"date_from": DAY + dt.timedelta(days=3)}),
    ("up to a day", lambda m: {"date_to": DAY + dt.timedelta(days=2)}),
    ("between days", lambda m: {"date_from": DAY + dt.timedelta(days=1), "date_to": DAY + dt.timedelta(days=5)}),
    ("up to an instant", lambda m: {"date_to": at(4, 10)}),
    ("not mine", lambda m: {"exclude_customer": m["carol"]}),
    ("search", lambda m: {"q": "leak"}),
    ("search with a minus", lambda m: {"q": "leak -tap"}),
    (
        "all at once",
        lambda m: {
            "categories": ["plumbing", m["trades"][1].pk],
            "min_budget_cents": 5_000,
            "max_budget_cents": 20_000,
            "date_from": DAY,
            "exclude_customer": m["carol"],
            "radius_km": 25,
        },
    ),
]


@pytest.mark.parametrize("cap", [8, 200], ids=["capped", "uncapped"])
@pytest.mark.parametrize(("name", "make"), COMBINATIONS, ids=[name for name, _ in COMBINATIONS])
def test_the_sql_path_gives_what_the_orm_path_gives(mixed, monkeypatch, name, make, cap):
    monkeypatch.setattr(CappedPaginator, "cap", cap)
    monkeypatch.setattr(selectors, "SORTED_WITHIN", cap)
    everything = listing(False, monkeypatch, per_page=5)
    sorts = ["distance", "newest", "budget"] + (["relevance"] if "q" in make(mixed) else [])
    for sort in sorts:
        orm = listing(False, monkeypatch, per_page=5, sort=sort, **make(mixed))
        sql = listing(True, monkeypatch, per_page=5, sort=sort, **make(mixed))
        assert sql == orm, (name, sort)
        pages_only = listing(True, monkeypatch, per_page=5, pages_only=True, sort=sort, **make(mixed))
        assert pages_only == orm, (name, sort)
        # Not an empty comparison, and each filter really leaves something out.
        assert orm["count"] > 0 and orm["pages"][0], (name, sort)
        if name != "everything":
            found = {row[0] for page in orm["pages"] for row in page}
            assert cap < 200 or found < {row[0] for page in everything["pages"] for row in page}, (name, sort)
    if name == "everything":
        assert everything["capped"] is (cap == 8)


def test_the_comparison_sees_a_difference_when_there_is_one(mixed, monkeypatch):
    # The harness itself: a budget floor the SQL path does not apply shows up.
    orm = listing(False, monkeypatch, per_page=5, sort="budget", min_budget_cents=20_000)
    sql = listing(True, monkeypatch, per_page=5, sort="budget")
    assert sql != orm


@pytest.mark.parametrize("sort", ["distance", "newest"])
def test_no_trade_matches_both_ways(mixed, monkeypatch, sort):
    for raw, pages_only in ((False, False), (True, False), (False, True), (True, True)):
        with warnings.catch_warnings():
            # Paginator warns of an unordered list when a source looks unordered.
            warnings.simplefilter("error")
            result = listing(
                raw, monkeypatch, per_page=5, pages_only=pages_only, sort=sort, categories=["no-such-trade"]
            )
        assert (result["count"], result["pages"]) == (0, [[]])


@pytest.mark.parametrize("raw", [False, True])
def test_pages_only_checks_the_search_as_the_queryset_does(db, monkeypatch, raw):
    monkeypatch.setattr(selectors, "_use_raw_sql", lambda: raw)
    with pytest.raises(ApplicationError) as caught:
        selectors.open_task_pages_near(
            latitude=91, longitude=HERE_LON, radius_km=30, min_budget_cents=5, max_budget_cents=4, sort="cheapest"
        )
    assert caught.value.code == "invalid_search"
    assert set(caught.value.fields) == {"latitude", "max_budget_cents", "sort"}


def test_a_task_taken_after_the_walk_is_not_shown(mixed, monkeypatch):
    monkeypatch.setattr(selectors, "_use_raw_sql", lambda: True)
    paginator = CappedPaginator(selectors.open_tasks_near(latitude=HERE_LAT, longitude=HERE_LON, radius_km=30), 5)
    assert paginator.count == 32
    Task.objects.filter(title="Leaking tap 0").update(status=Task.Status.CANCELLED)
    assert [t.title for t in paginator.page(1)] == [
        "Paint a wall 1",
        "Paint a wall 2",
        "Paint a wall 3",
        "Leaking tap 4",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "distance", "page_size": 7},
        {"sort": "distance", "page_size": 7, "page": 3, "category": "plumbing,painting"},
        {"sort": "budget", "page_size": 4, "page": 2, "min_budget_cents": 10_000},
        {"sort": "newest", "page_size": 10, "date_from": (DAY + dt.timedelta(days=2)).isoformat()},
        {"q": "leak", "page_size": 3},
        {"q": "leak", "sort": "distance", "radius_km": 12},
    ],
)
def test_the_api_answers_the_same_both_ways(mixed, monkeypatch, contractor, params):
    client = token_client(contractor)
    query = {"lat": HERE_LAT, "lon": HERE_LON, "radius_km": 30, **params}
    bodies = []
    for raw in (False, True):
        monkeypatch.setattr(selectors, "_use_raw_sql", lambda raw=raw: raw)
        response = client.get("/api/v1/tasks/nearby", query)
        assert response.status_code == 200, response.content
        bodies.append(response.json())
    assert bodies[0]["results"], params
    assert bodies[1] == bodies[0]


def test_a_page_is_one_statement_however_many_rows(mixed, monkeypatch):
    monkeypatch.setattr(selectors, "_use_raw_sql", lambda: True)
    for sort, per_page in (("distance", 3), ("distance", 20), ("budget", 20)):
        paginator = CappedPaginator(
            selectors.open_tasks_near(latitude=HERE_LAT, longitude=HERE_LON, radius_km=30, sort=sort), per_page
        )
        with CaptureQueriesContext(connection) as captured:
            rows = [(t.category.name, len(t.problem_photos)) for t in paginator.page(1)]
        assert len(rows) == per_page
        # distance: the walk, counted, with the page's rows, categories and photos;
        # budget: walked already in the selector, the rows with their categories and photos.
        assert len(captured) == 1, [q["sql"][:80] for q in captured]
