"""Find work: open tasks near a point on PostgreSQL (cube/earthdistance with a
partial GiST index), filters, sorts, full-text search (partial GIN index),
bad input, and a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApplicationError
from tasks import selectors
from tasks.models import Task
from tests.factories import CategoryFactory, UserFactory
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db

# Bob the contractor's service-area centre (tests/factories.py).
HERE_LAT, HERE_LON = 37.7509, -122.4153
# earth_distance works on a sphere of radius earth() = 6378.168 km.
KM_PER_DEGREE = 6378.168 * 3.141592653589793 / 180


def north_of_here(km: float) -> float:
    return HERE_LAT + km / KM_PER_DEGREE


def task_at(km: float, **kwargs) -> Task:
    """An open task `km` north of Bob's centre."""
    kwargs.setdefault("photos", 0)
    return TaskFactory(latitude=north_of_here(km), longitude=HERE_LON, **kwargs)


def near(**kwargs):
    args = {"latitude": HERE_LAT, "longitude": HERE_LON, "radius_km": 50}
    args.update(kwargs)
    return selectors.open_tasks_near(**args)


def titles(queryset) -> list[str]:
    return [t.title for t in queryset]


def explain(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


# --- Distance ---------------------------------------------------------------------


@pytest.fixture
def ring(db):
    """Open tasks 1, 5, 30 and 200 km away, created farthest first."""
    return {km: task_at(km, title=f"{km} km away") for km in (200, 30, 5, 1)}


def test_nearest_first_within_the_radius_with_distances(ring):
    found = list(near(radius_km=50))
    assert [t.title for t in found] == ["1 km away", "5 km away", "30 km away"]
    assert [round(t.distance_km, 2) for t in found] == [1.0, 5.0, 30.0]


@pytest.mark.parametrize(
    ("radius_km", "expected"),
    [(0.5, []), (1.01, ["1 km away"]), (10, ["1 km away", "5 km away"]), (250, ["1 km away", "5 km away", "30 km away", "200 km away"])],
)
def test_radius_is_a_circle_not_a_box(ring, radius_km, expected):
    assert titles(near(radius_km=radius_km)) == expected


def test_corner_of_the_box_is_outside_the_circle(db):
    # 20 km north and 20 km east is 28 km away: inside a 25 km box, outside the circle.
    km_per_lon_degree = KM_PER_DEGREE * 0.79  # cos(37.75)
    TaskFactory(latitude=north_of_here(20), longitude=HERE_LON + 20 / km_per_lon_degree, title="Corner", photos=0)
    assert titles(near(radius_km=25)) == []
    assert titles(near(radius_km=30)) == ["Corner"]


def test_only_open_tasks_are_found(customer, contractor):
    task_at(2, title="Open")
    task_at(1, title="Draft", draft=True)
    task_at(1, title="Assigned", contractor=contractor, assigned=True)
    task_at(1, title="In progress", contractor=contractor, in_progress=True)
    task_at(1, title="Cancelled", status=Task.Status.CANCELLED)
    assert titles(near()) == ["Open"]


# --- Filters ---------------------------------------------------------------------


def test_filter_by_categories_by_slug_id_or_object(db):
    plumbing = CategoryFactory(name="Plumbing", slug="plumbing")
    electrical = CategoryFactory(name="Electrical", slug="electrical")
    painting = CategoryFactory(name="Painting", slug="painting")
    task_at(1, title="Tap", category=plumbing)
    task_at(2, title="Socket", category=electrical)
    task_at(3, title="Wall", category=painting)
    assert titles(near(categories=["plumbing"])) == ["Tap"]
    assert titles(near(categories=[electrical])) == ["Socket"]
    assert titles(near(categories=[painting.pk, "plumbing"])) == ["Tap", "Wall"]
    assert titles(near(categories=[])) == ["Tap", "Socket", "Wall"]
    assert titles(near(categories=["no-such-trade"])) == []


def test_filter_by_budget_range_inclusive(db):
    for km, cents in ((1, 5_000), (2, 10_000), (3, 20_000)):
        task_at(km, title=f"${cents // 100}", budget_cents=cents)
    assert titles(near(min_budget_cents=10_000)) == ["$100", "$200"]
    assert titles(near(max_budget_cents=10_000)) == ["$50", "$100"]
    assert titles(near(min_budget_cents=10_000, max_budget_cents=10_000)) == ["$100"]


def test_filter_by_date_window_start_or_deadline(db):
    day = timezone.localdate() + dt.timedelta(days=10)

    def at(days: int, hour: int = 12) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=days), dt.time(hour)))

    task_at(1, title="Window today", schedule_type="window", window_start=at(0, 9), window_end=at(0, 11), deadline=None)
    task_at(2, title="Deadline tomorrow", deadline=at(1, 23))
    task_at(3, title="Deadline next week", deadline=at(7))
    # Window starts later, although its (ignored) deadline field would match.
    task_at(4, title="Window in two days", schedule_type="window", window_start=at(2), window_end=at(2, 14), deadline=at(0))
    assert titles(near(date_from=day, date_to=day)) == ["Window today"]
    assert titles(near(date_from=day, date_to=day + dt.timedelta(days=2))) == [
        "Window today",
        "Deadline tomorrow",
        "Window in two days",
    ]
    assert titles(near(date_from=day + dt.timedelta(days=1))) == ["Deadline tomorrow", "Deadline next week", "Window in two days"]
    assert titles(near(date_to=at(1, 0))) == ["Window today"]


def test_the_contractor_own_tasks_are_left_out(contractor):
    task_at(1, title="Mine", customer=contractor)
    task_at(2, title="Theirs")
    assert titles(near(exclude_customer=contractor)) == ["Theirs"]
    assert titles(near()) == ["Mine", "Theirs"]


# --- Sorts -----------------------------------------------------------------------


def test_sort_newest_and_budget(db):
    now = timezone.now()
    task_at(1, title="Old cheap", published_at=now - dt.timedelta(days=3), budget_cents=5_000)
    task_at(9, title="New dear", published_at=now - dt.timedelta(hours=1), budget_cents=50_000)
    task_at(5, title="Middle", published_at=now - dt.timedelta(days=1), budget_cents=20_000)
    assert titles(near(sort="newest")) == ["New dear", "Middle", "Old cheap"]
    assert titles(near(sort="budget")) == ["New dear", "Middle", "Old cheap"]
    assert titles(near(sort="distance")) == ["Old cheap", "Middle", "New dear"]
    assert titles(near()) == ["Old cheap", "Middle", "New dear"]


def test_equal_budgets_fall_back_to_nearest(db):
    task_at(8, title="Far", budget_cents=10_000)
    task_at(2, title="Near", budget_cents=10_000)
    assert titles(near(sort="budget")) == ["Near", "Far"]


# --- Full-text search ---------------------------------------------------------------


@pytest.fixture
def texts(db):
    task_at(3, title="Leaking tap in the bathroom", description="Drips all night.")
    task_at(1, title="Kitchen cabinet door", description="The hinge is loose and the cabinet is leaking water.")
    task_at(2, title="Paint the fence", description="Two coats, white.")


def test_search_stems_leak_to_leaking(texts):
    found = list(near(q="leak"))
    assert [t.title for t in found] == ["Leaking tap in the bathroom", "Kitchen cabinet door"]
    # A title match ranks above a description match even though it is farther.
    assert found[0].rank > found[1].rank > 0


def test_search_websearch_syntax_and_no_match(texts):
    assert titles(near(q='leak -cabinet')) == ["Leaking tap in the bathroom"]
    assert titles(near(q='"white fence"')) == []
    assert titles(near(q="fences")) == ["Paint the fence"]
    assert titles(near(q="plumber wanted")) == []


def test_search_sorted_by_distance_when_asked(texts):
    assert titles(near(q="leak", sort="distance")) == ["Kitchen cabinet door", "Leaking tap in the bathroom"]
    assert titles(near(q="leak", sort="relevance")) == ["Leaking tap in the bathroom", "Kitchen cabinet door"]


def test_blank_search_is_no_search(texts):
    assert titles(near(q="   ")) == ["Kitchen cabinet door", "Paint the fence", "Leaking tap in the bathroom"]
    assert titles(near(sort="relevance")) == ["Kitchen cabinet door", "Paint the fence", "Leaking tap in the bathroom"]


def test_search_input_is_data_not_sql(texts):
    assert titles(near(q="'); DROP TABLE tasks_task; --")) == []
    assert titles(near(q="leak & | ! :* (")) == ["Leaking tap in the bathroom", "Kitchen cabinet door"]
    assert Task.objects.count() == 3


# --- Bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latitude": 91}, "latitude"),
        ({"latitude": "north"}, "latitude"),
        ({"latitude": float("nan")}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"longitude": None}, "longitude"),
        ({"radius_km": 0}, "radius_km"),
        ({"radius_km": -5}, "radius_km"),
        ({"radius_km": 10_000}, "radius_km"),
        ({"min_budget_cents": -1}, "min_budget_cents"),
        ({"max_budget_cents": 12.5}, "max_budget_cents"),
        ({"min_budget_cents": 20_000, "max_budget_cents": 10_000}, "max_budget_cents"),
        ({"date_from": dt.date(2030, 5, 2), "date_to": dt.date(2030, 5, 1)}, "date_to"),
        ({"sort": "cheapest"}, "sort"),
    ],
)
def test_bad_search_input_is_refused_with_the_field(ring, kwargs, field):
    with pytest.raises(ApplicationError) as caught:
        near(**kwargs)
    assert caught.value.code == "invalid_search"
    assert list(caught.value.fields) == [field]


# --- Queries and indexes -------------------------------------------------------------


def test_nearby_page_is_three_queries_however_many_tasks(db, django_assert_num_queries):
    task_at(1, photos=1)

    def read():
        return [(t.category.name, round(t.distance_km), len(t.problem_photos)) for t in near()[:20]]

    with django_assert_num_queries(3):
        assert len(read()) == 1
    customer = UserFactory()
    for km in range(2, 12):
        task_at(km, photos=2, customer=customer)
    with django_assert_num_queries(3):
        rows = read()
    assert len(rows) == 11
    assert rows[-1] == ("Plumbing", 11, 2)


def test_paginated_queryset_counts_and_slices(ring):
    results = near(radius_km=250)
    assert results.count() == 4
    assert titles(results[1:3]) == ["5 km away", "30 km away"]


@pytest.fixture
def many_open_tasks(db):
    """Enough rows (5,000 across the US, 1 in 5 open) that the planner
    prefers the indexes on its own, after ANALYZE: no enable_seqscan tricks.
    Rows are copies of one factory-made task with their own id, place, title
    and status, so every column stays valid whatever columns the model gains."""
    template = task_at(3000, title="Template", status=Task.Status.CANCELLED)
    changed = {
        "public_id": "gen_random_uuid()",
        "title": "'Task ' || i",
        "description": "'Something to fix, number ' || i",
        "status": "CASE WHEN i %% 5 = 0 THEN 'open' ELSE 'cancelled' END",
        "latitude": "25 + (i * 7919 %% 2400) / 100.0",
        "longitude": "-124 + (i * 104729 %% 5600) / 100.0",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks_task'"
            " AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position"
        )
        columns = [name for (name,) in cursor.fetchall()]  # not the generated search_document
        values = ", ".join(changed.get(c, f"t.{connection.ops.quote_name(c)}") for c in columns)
        # Column names come from the catalogue, expressions from this file: no outside input.
        cursor.execute(
            f"INSERT INTO tasks_task ({', '.join(map(connection.ops.quote_name, columns))})"  # noqa: S608
            f" SELECT {values} FROM tasks_task AS t, generate_series(1, 5000) AS i WHERE t.id = %s",
            [template.pk],
        )
        cursor.execute("ANALYZE tasks_task")
    task_at(1, title="Leaking tap")


def test_nearby_query_walks_the_gist_index_nearest_first(many_open_tasks):
    plan = explain(near(radius_km=25)[:20])
    # Either GiST index can walk the points nearest-first; at 1M tasks the
    # planner takes either for a page (both measured ~1.2 ms downtown New York).
    assert "Index Scan using task_open_near_" in plan, plan
    # KNN: the index hands rows over in distance order, no sort of the box.
    assert "Order By: ((ll_to_earth(latitude, longitude))::cube <->" in plan, plan
    assert "Sort" not in plan, plan
    assert titles(near(radius_km=25)[:20]) == ["Leaking tap"]


def test_the_capped_count_and_the_nearest_candidates_read_the_index_alone(many_open_tasks, contractor):
    # What CappedPaginator counts and what the other sorts order: ids walked
    # nearest-first off the covering index (its INCLUDE columns), no table rows.
    # (The search index is taken away inside this test's transaction: tiny
    # tables give both the same cost.)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX task_open_near_search_gist")
    plan = explain(near(radius_km=25, exclude_customer=contractor).values("pk")[:201])
    assert "Index Only Scan using task_open_near_covering_gist" in plan, plan
    assert "Order By: ((ll_to_earth(latitude, longitude))" in plan, plan


def test_search_near_a_point_checks_the_words_inside_the_gist_index(many_open_tasks):
    # The stored search_document is the index's second column: matches come
    # nearest-first with the text test in the index, not as a filter on every
    # task in the box (what made a common word in a dense area slow).
    plan = explain(near(radius_km=500, q="leak", sort="distance")[:20])
    assert "task_open_near_search_gist" in plan, plan
    assert "Index Cond: (" in plan and "search_document @@" in plan.split("Index Cond:")[1].split("\n")[0], plan
    assert titles(near(radius_km=500, q="leak")[:20]) == ["Leaking tap"]


# --- Other sorts order only the nearest matches --------------------------------------


@pytest.fixture
def sorted_within_two(monkeypatch):
    from core.pagination import CappedPaginator

    monkeypatch.setattr(selectors, "SORTED_WITHIN", 2)
    monkeypatch.setattr(CappedPaginator, "cap", 2)


def test_newest_budget_and_relevance_order_only_the_nearest_matches(db, sorted_within_two):
    now = timezone.now()
    task_at(1, title="Near cheap leak", budget_cents=5_000, published_at=now - dt.timedelta(days=3))
    task_at(5, title="Middle leak", budget_cents=20_000, published_at=now - dt.timedelta(days=1))
    task_at(9, title="Far dear newest leaking leak", budget_cents=90_000, published_at=now)

    for sort in ("newest", "budget"):
        found = near(sort=sort)
        # The farthest is newest and dearest, but only the nearest two are ordered.
        assert titles(found) == ["Middle leak", "Near cheap leak"], sort
        assert (found.known_count, found.sorted_within) == (3, 2)
    found = near(q="leak", sort="relevance")
    assert set(titles(found)) == {"Near cheap leak", "Middle leak"}
    assert found.known_count == 3
    # Nearest first is not bounded: it pages through the matches in order.
    assert titles(near(sort="distance")) == ["Near cheap leak", "Middle leak", "Far dear newest leaking leak"]


def test_bounded_sorts_page_and_count_like_the_capped_count(db, sorted_within_two):
    from core.pagination import CappedPaginator

    for km, budget in ((1, 100), (2, 300), (3, 900)):
        task_at(km, title=f"{km} km", budget_cents=budget)
    paginator = CappedPaginator(near(sort="budget"), 1)
    assert (paginator.count, paginator.is_capped, paginator.sorted_within) == (2, True, 2)
    assert [titles(paginator.page(n).object_list) for n in (1, 2)] == [["2 km"], ["1 km"]]

    few = CappedPaginator(near(sort="budget", radius_km=2.5), 10)
    assert (few.count, few.is_capped) == (2, False)
    distance = CappedPaginator(near(sort="distance"), 10)
    assert (distance.count, distance.is_capped, distance.sorted_within) == (2, True, None)


def test_bounded_sort_makes_two_queries_and_no_more_for_more_rows(db, django_assert_num_queries):
    for km in range(1, 6):
        task_at(km, title=f"{km} km", photos=1)
    with django_assert_num_queries(4):  # nearest ids; then tasks, categories, photos
        assert len(list(near(sort="newest"))) == 5


def explain_walk(queryset) -> str:
    """The plan of the hand-written walk (tasks.nearby_sql) behind a Find work
    page on PostgreSQL: the capped count and the page's ids in one statement."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        queryset.page_source.seen(201)
    (walk,) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + walk["sql"])
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_sql_walk_reads_the_covering_index_alone_nearest_first(many_open_tasks, contractor):
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX task_open_near_search_gist")  # as above: tiny tables tie the two
    plan = explain_walk(near(radius_km=25, exclude_customer=contractor))
    assert "Index Only Scan using task_open_near_covering_gist" in plan, plan
    assert "Order By: ((ll_to_earth(latitude, longitude))" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("sort", ["newest", "budget"])
def test_the_walk_of_a_bounded_sort_reads_the_covering_index_alone(many_open_tasks, contractor, sort):
    # Newest and budget read their sort column in the walk: both are in the
    # covering index's INCLUDE (published_at since migration 0006).
    from django.test.utils import CaptureQueriesContext

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX task_open_near_search_gist")  # as above: tiny tables tie the two
    with CaptureQueriesContext(connection) as captured:
        selectors.open_task_pages_near(
            latitude=HERE_LAT, longitude=HERE_LON, radius_km=25, sort=sort, exclude_customer=contractor
        )
    (walk,) = captured.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + walk["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using task_open_near_covering_gist" in plan, plan
    assert "Order By: ((ll_to_earth(latitude, longitude))" in plan, plan


def test_the_sql_walk_of_a_search_checks_the_words_inside_the_gist_index(many_open_tasks):
    plan = explain_walk(near(radius_km=500, q="leak", sort="distance"))
    assert "task_open_near_search_gist" in plan, plan
    assert "Index Cond: (" in plan and "search_document @@" in plan.split("Index Cond:")[1].split("\n")[0], plan
    assert "Sort" not in plan, plan
