"""GET /api/v1/tasks/nearby ("Find work") and GET /api/v1/jobs: what a
contractor finds, filters and sorts, approximate locations only, pagination,
bad parameters, and a fixed number of SQL queries however long the page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.geo import distance_km
from tests.factories import CategoryFactory, ContractorProfileFactory
from tests.tasks.api_support import ADDRESS, error, make_contractor, token_client
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/tasks/nearby"
JOBS = "/api/v1/jobs"
PROFILE_POINT = (37.7509, -122.4153)  # Bob's service area centre (tests/factories.py)
OAKLAND = (37.8044, -122.2712)  # ~14 km away
SAN_JOSE = (37.3382, -121.8863)  # ~65 km away, outside Bob's 25 km


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def queries_for(client, url, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.fixture
def electrical(db):
    return CategoryFactory(name="Electrical", slug="electrical")


# --- What is found ----------------------------------------------------------------


def test_finds_open_tasks_in_the_service_area_nearest_first(customer, contractor, api_as):
    oakland = TaskFactory(customer=customer, latitude=OAKLAND[0], longitude=OAKLAND[1], postal_code="94612", city="Oakland")
    mission = TaskFactory(customer=customer)
    TaskFactory(customer=customer, latitude=SAN_JOSE[0], longitude=SAN_JOSE[1])
    TaskFactory(customer=customer, draft=True)
    TaskFactory(customer=customer, assigned=True, contractor=make_contractor("rita@example.com"))
    TaskFactory(customer=customer, status="cancelled")

    response = api_as(contractor).get(NEARBY)
    assert ids(response) == [str(mission.public_id), str(oakland.public_id)]
    first = response.json()["results"][0]
    assert first["location"] == {
        "latitude": mission.approx_latitude,
        "longitude": mission.approx_longitude,
        "city": "San Francisco",
        "state": "CA",
    }
    assert first["distance_km"] == round(distance_km(*PROFILE_POINT, mission.approx_latitude, mission.approx_longitude), 1)
    assert first["photo_count"] == 1 and first["thumbnail_url"].endswith("/thumb")
    assert first["status"] == "open" and first["budget_cents"] == 12_000 and first["currency"] == "USD"
    assert first["description"].startswith("The kitchen tap drips")
    # Approximate only: no street address, no exact point anywhere in the answer.
    text = response.content.decode()
    assert ADDRESS not in text and str(mission.latitude) not in text


def test_a_contractor_does_not_find_their_own_tasks(customer, contractor, api_as):
    contractor.is_customer = True
    contractor.save(update_fields=["is_customer"])
    TaskFactory(customer=contractor)
    theirs = TaskFactory(customer=customer)
    assert ids(api_as(contractor).get(NEARBY)) == [str(theirs.public_id)]


def test_an_explicit_point_and_radius(customer, contractor, api_as):
    TaskFactory(customer=customer)
    san_jose = TaskFactory(customer=customer, latitude=SAN_JOSE[0], longitude=SAN_JOSE[1], city="San Jose")
    response = api_as(contractor).get(NEARBY, {"lat": 37.34, "lon": -121.89, "radius_km": 10})
    assert ids(response) == [str(san_jose.public_id)]


def test_radius_widens_the_search(customer, contractor, api_as):
    TaskFactory(customer=customer, latitude=SAN_JOSE[0], longitude=SAN_JOSE[1])
    assert ids(api_as(contractor).get(NEARBY)) == []
    assert len(ids(api_as(contractor).get(NEARBY, {"radius_km": 100}))) == 1


def test_filter_by_category(customer, contractor, api_as, electrical):
    tap = TaskFactory(customer=customer)
    wiring = TaskFactory(customer=customer, category=electrical, title="Rewire the garage")
    client = api_as(contractor)
    assert ids(client.get(NEARBY, {"category": "plumbing"})) == [str(tap.public_id)]
    assert ids(client.get(NEARBY, {"category": "electrical"})) == [str(wiring.public_id)]
    assert set(ids(client.get(NEARBY, {"category": ["plumbing", "electrical"]}))) == {
        str(tap.public_id),
        str(wiring.public_id),
    }
    assert set(ids(client.get(NEARBY, {"category": "plumbing,electrical"}))) == {
        str(tap.public_id),
        str(wiring.public_id),
    }
    assert ids(client.get(NEARBY, {"category": "astrology"})) == []


def test_filter_by_budget(customer, contractor, api_as):
    cheap = TaskFactory(customer=customer, budget_cents=5_000)
    mid = TaskFactory(customer=customer, budget_cents=20_000)
    dear = TaskFactory(customer=customer, budget_cents=90_000)
    client = api_as(contractor)
    assert set(ids(client.get(NEARBY, {"min_budget_cents": 10_000}))) == {str(mid.public_id), str(dear.public_id)}
    assert set(ids(client.get(NEARBY, {"max_budget_cents": 20_000}))) == {str(cheap.public_id), str(mid.public_id)}
    assert ids(client.get(NEARBY, {"min_budget_cents": 10_000, "max_budget_cents": 50_000})) == [str(mid.public_id)]


def test_filter_by_date(customer, contractor, api_as):
    today = timezone.localdate()
    soon = TaskFactory(customer=customer, deadline=timezone.now() + dt.timedelta(days=2))
    later = TaskFactory(customer=customer, deadline=timezone.now() + dt.timedelta(days=20))
    client = api_as(contractor)
    assert ids(client.get(NEARBY, {"date_to": (today + dt.timedelta(days=5)).isoformat()})) == [str(soon.public_id)]
    assert ids(client.get(NEARBY, {"date_from": (today + dt.timedelta(days=10)).isoformat()})) == [
        str(later.public_id)
    ]


def test_search_text_with_relevance_first(customer, contractor, api_as, electrical):
    TaskFactory(customer=customer, category=electrical, title="Rewire the garage", description="Old fuse box, new circuits needed.")
    in_title = TaskFactory(customer=customer, title="Leaking tap in the bathroom", description="Drips constantly, please help.")
    in_text = TaskFactory(
        customer=customer, title="Bathroom sink", description="The cold tap leaks under the sink when turned on."
    )
    response = api_as(contractor).get(NEARBY, {"q": "leaking tap"})
    assert ids(response) == [str(in_title.public_id), str(in_text.public_id)]
    # An empty search box is no search: everything nearby, nearest first.
    assert len(ids(api_as(contractor).get(NEARBY, {"q": "  "}))) == 3


def test_sort_by_newest_and_by_budget(customer, contractor, api_as):
    now = timezone.now()
    old = TaskFactory(customer=customer, budget_cents=30_000, published_at=now - dt.timedelta(days=3))
    new = TaskFactory(customer=customer, budget_cents=10_000, published_at=now - dt.timedelta(hours=1))
    mid = TaskFactory(customer=customer, budget_cents=20_000, published_at=now - dt.timedelta(days=1))
    client = api_as(contractor)
    assert ids(client.get(NEARBY, {"sort": "newest"})) == [str(t.public_id) for t in (new, mid, old)]
    assert ids(client.get(NEARBY, {"sort": "budget"})) == [str(t.public_id) for t in (old, mid, new)]


def test_nearby_is_paginated(customer, contractor, api_as):
    for _ in range(5):
        TaskFactory(customer=customer)
    client = api_as(contractor)
    page1 = client.get(NEARBY, {"page_size": 2}).json()
    assert page1["count"] == 5 and len(page1["results"]) == 2 and page1["next"]
    page3 = client.get(NEARBY, {"page_size": 2, "page": 3}).json()
    assert len(page3["results"]) == 1 and page3["next"] is None
    all_ids = [item["id"] for page in (1, 2, 3) for item in client.get(NEARBY, {"page_size": 2, "page": page}).json()["results"]]
    assert len(set(all_ids)) == 5


BAD_PARAMS = [
    pytest.param({"radius_km": 161}, "radius_km", id="radius-too-big"),
    pytest.param({"radius_km": 0}, "radius_km", id="radius-zero"),
    pytest.param({"radius_km": "far"}, "radius_km", id="radius-not-a-number"),
    pytest.param({"lat": 37.7}, "lon", id="lat-without-lon"),
    pytest.param({"lon": -122.4}, "lat", id="lon-without-lat"),
    pytest.param({"lat": 91, "lon": 0}, "lat", id="lat-out-of-range"),
    pytest.param({"lat": "here", "lon": 0}, "lat", id="lat-not-a-number"),
    pytest.param({"min_budget_cents": -1}, "min_budget_cents", id="negative-budget"),
    pytest.param({"min_budget_cents": 50_000, "max_budget_cents": 100}, "max_budget_cents", id="min-above-max"),
    pytest.param({"date_from": "2030-02-01", "date_to": "2030-01-01"}, "date_to", id="dates-backwards"),
    pytest.param({"date_from": "soon"}, "date_from", id="date-not-a-date"),
    pytest.param({"sort": "cheapest"}, "sort", id="unknown-sort"),
    pytest.param({"sort": "relevance"}, "sort", id="relevance-without-search"),
    pytest.param({"q": "x" * 300}, "q", id="search-too-long"),
]


@pytest.mark.parametrize(("params", "field"), BAD_PARAMS)
def test_bad_parameters_are_refused_with_field_errors(contractor, api_as, params, field):
    response = api_as(contractor).get(NEARBY, params)
    assert response.status_code == 400, response.content
    body = error(response)
    assert body["code"] == "validation_error"
    assert field in body["fields"]


def test_customers_are_told_find_work_is_for_contractors(customer, api_as):
    response = api_as(customer).get(NEARBY)
    assert response.status_code == 403
    body = error(response)
    assert body["code"] == "not_contractor"
    assert "Only contractors can look for work" in body["message"]


def test_anonymous_gets_401(api_client):
    response = api_client.get(NEARBY)
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"


def test_a_contractor_with_no_service_area_must_send_a_point(customer, api_as):
    nowhere = ContractorProfileFactory(latitude=None, longitude=None, postal_code="").user
    TaskFactory(customer=customer)
    response = api_as(nowhere).get(NEARBY)
    assert response.status_code == 400
    assert error(response)["code"] == "location_required"
    assert "lat" in error(response)["fields"]
    assert len(ids(api_as(nowhere).get(NEARBY, {"lat": PROFILE_POINT[0], "lon": PROFILE_POINT[1]}))) == 1


def test_nearby_makes_the_same_number_of_queries_for_5_and_25_tasks(
    customer, contractor, electrical, django_assert_max_num_queries
):
    client = token_client(contractor)

    def post(n):
        for index in range(n):
            extra = {"category": electrical} if index % 2 else {}
            TaskFactory(customer=customer, photos=1 + index % 3, **extra)

    post(5)
    params = {"page_size": 50, "q": "tap"}
    nearest = {"page_size": 50, "sort": "distance"}
    few = queries_for(client, NEARBY, nearest)
    few_search = queries_for(client, NEARBY, params)
    # The default, best match (matching.selectors): a fixed number of feature queries per page too.
    few_best = queries_for(client, NEARBY, {"page_size": 50})
    # token, profile, count, page, categories, photos
    assert few <= 6
    post(20)
    with django_assert_max_num_queries(few):
        response = client.get(NEARBY, nearest)
    assert response.json()["count"] == 25 and len(response.json()["results"]) == 25
    with django_assert_max_num_queries(few_search):
        assert client.get(NEARBY, params).status_code == 200
    with django_assert_max_num_queries(few_best):
        response = client.get(NEARBY, {"page_size": 50})
    assert response.json()["count"] == 25 and len(response.json()["results"]) == 25


# --- My jobs ----------------------------------------------------------------------


def test_jobs_lists_assigned_tasks_and_pending_offers(customer, contractor, api_as):
    assigned = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    offered = TaskFactory(customer=customer)
    offer = OfferFactory(task=offered, contractor=contractor, price_cents=9_900)
    TaskFactory(customer=customer)  # no offer: not a job
    withdrawn_on = TaskFactory(customer=customer)
    OfferFactory(task=withdrawn_on, contractor=contractor, status="withdrawn")
    TaskFactory(customer=customer, assigned=True, contractor=make_contractor("rita@example.com"))

    response = api_as(contractor).get(JOBS)
    assert set(ids(response)) == {str(assigned.public_id), str(offered.public_id)}
    by_id = {item["id"]: item for item in response.json()["results"]}
    assert by_id[str(offered.public_id)]["my_offer"]["id"] == str(offer.public_id)
    assert by_id[str(offered.public_id)]["my_offer"]["price_cents"] == 9_900
    assert by_id[str(offered.public_id)]["my_offer"]["status"] == "pending"
    assert by_id[str(assigned.public_id)]["my_offer"] is None


@pytest.mark.parametrize(
    ("group", "expected"),
    [("active", {"assigned", "in_progress"}), ("offers", {"open"}), ("done", {"completed"}), ("cancelled", {"cancelled"})],
)
def test_jobs_by_status_group(customer, contractor, api_as, group, expected):
    TaskFactory(customer=customer, assigned=True, contractor=contractor)
    TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    TaskFactory(customer=customer, status="completed", contractor=contractor, agreed_price_cents=100)
    TaskFactory(customer=customer, status="cancelled", contractor=contractor, agreed_price_cents=100)
    OfferFactory(task=TaskFactory(customer=customer), contractor=contractor)
    response = api_as(contractor).get(JOBS, {"status_group": group})
    assert {item["status"] for item in response.json()["results"]} == expected


def test_jobs_bad_group_and_non_contractors(customer, contractor, api_as, api_client):
    assert "status_group" in error(api_as(contractor).get(JOBS, {"status_group": "drafts"}))["fields"]
    refused = api_as(customer).get(JOBS)
    assert refused.status_code == 403 and error(refused)["code"] == "not_contractor"
    assert api_client.get(JOBS).status_code == 401


def test_jobs_make_the_same_number_of_queries_for_5_and_25(customer, contractor, django_assert_max_num_queries):
    client = token_client(contractor)

    def add(n):
        for index in range(n):
            if index % 2:
                TaskFactory(customer=customer, assigned=True, contractor=contractor)
            else:
                OfferFactory(task=TaskFactory(customer=customer), contractor=contractor)

    add(5)
    few = queries_for(client, JOBS, {"page_size": 50})
    # token, count, page, photos, my offers
    assert few <= 5
    add(20)
    with django_assert_max_num_queries(few):
        response = client.get(JOBS, {"page_size": 50})
    assert response.json()["count"] == 25


def test_a_huge_result_counts_only_up_to_the_cap_and_says_so(customer, contractor, api_as, monkeypatch):
    from core.pagination import CappedPaginator

    for _ in range(4):
        TaskFactory(customer=customer)
    client = api_as(contractor)

    body = client.get(NEARBY).json()
    assert (body["count"], body["count_capped"]) == (4, False)

    monkeypatch.setattr(CappedPaginator, "cap", 3)
    body = client.get(NEARBY, {"page_size": 2}).json()
    assert (body["count"], body["count_capped"]) == (3, True)
    assert len(body["results"]) == 2
    last = client.get(NEARBY, {"page_size": 2, "page": 2}).json()
    assert len(last["results"]) == 1 and last["next"] is None


def test_find_work_page_says_when_it_shows_only_the_first_matches(client, customer, contractor, monkeypatch):
    from core.pagination import CappedPaginator

    for _ in range(4):
        TaskFactory(customer=customer)
    client.force_login(contractor)
    assert "4 open tasks" in client.get("/tasks/find").content.decode()

    monkeypatch.setattr(CappedPaginator, "cap", 3)
    html = client.get("/tasks/find").content.decode()
    assert "More than 3 open tasks: showing the first 3." in html


def test_other_sorts_say_they_cover_only_the_nearest_matches(customer, contractor, api_as, monkeypatch):
    from core.pagination import CappedPaginator
    from tasks import selectors

    monkeypatch.setattr(CappedPaginator, "cap", 2)
    monkeypatch.setattr(selectors, "SORTED_WITHIN", 2)
    near = TaskFactory(customer=customer, budget_cents=5_000)
    oakland = TaskFactory(customer=customer, latitude=OAKLAND[0], longitude=OAKLAND[1], budget_cents=9_000)
    # Farther than both, and the dearest: outside the nearest two.
    TaskFactory(customer=customer, latitude=37.9, longitude=-122.3, budget_cents=90_000)
    client = api_as(contractor)

    body = client.get(NEARBY, {"sort": "budget"}).json()
    assert [r["id"] for r in body["results"]] == [str(oakland.public_id), str(near.public_id)]
    assert (body["count"], body["count_capped"], body["sorted_within_nearest"]) == (2, True, 2)
    body = client.get(NEARBY, {"sort": "distance"}).json()
    assert (body["count"], body["count_capped"], body["sorted_within_nearest"]) == (2, True, None)
    body = client.get(NEARBY, {"sort": "newest", "radius_km": 5}).json()
    assert (body["count"], body["count_capped"], body["sorted_within_nearest"]) == (1, False, None)

    client.force_login(contractor)
    html = client.get("/tasks/find", {"sort": "budget"}).content.decode()
    assert "More than 2 open tasks: these are the 2 nearest, in the order you chose." in html


def test_nearby_rows_are_exactly_what_the_documented_serializer_gives(customer, contractor, api_as, electrical):
    """The view builds rows without DRF's field machinery (tasks.serializers.nearby_task_list);
    they must stay what NearbyTaskSerializer, the OpenAPI schema's source, says."""
    from rest_framework.test import APIRequestFactory

    from tasks import selectors
    from tasks.serializers import NearbyTaskSerializer, nearby_task_list

    TaskFactory(customer=customer, photos=2, description="x" * 400, category=electrical)
    TaskFactory(customer=customer, photos=0, budget_type="hourly", budget_cents=6_000, estimated_hours=3)
    TaskFactory(
        customer=customer,
        schedule_type="window",
        window_start=timezone.now() + dt.timedelta(days=2),
        window_end=timezone.now() + dt.timedelta(days=2, hours=3),
        deadline=None,
        latitude=OAKLAND[0],
        longitude=OAKLAND[1],
    )
    request = APIRequestFactory().get(NEARBY)
    origin = (PROFILE_POINT[0] + 0.01, PROFILE_POINT[1])
    tasks = list(selectors.open_tasks_near(latitude=origin[0], longitude=origin[1], radius_km=30))
    assert len(tasks) == 3

    documented = NearbyTaskSerializer(tasks, many=True, context={"request": request, "origin": origin}).data
    built = nearby_task_list(tasks, request=request, origin=origin)
    assert [list(row.items()) for row in built] == [list(dict(row).items()) for row in documented]
    assert client_rows_match(api_as(contractor), origin, built)
    # Ranked by best match (matching.selectors sets these): the same both ways too.
    tasks[0].match_score, tasks[0].match_reasons = 1.234567, ["3 km away", "did 2 similar jobs"]
    documented = NearbyTaskSerializer(tasks, many=True, context={"request": request, "origin": origin}).data
    built = nearby_task_list(tasks, request=request, origin=origin)
    assert [list(row.items()) for row in built] == [list(dict(row).items()) for row in documented]
    assert built[0]["match_score"] == 1.2346 and built[0]["match_reasons"] == ["3 km away", "did 2 similar jobs"]


def client_rows_match(client, origin, built) -> bool:
    body = client.get(NEARBY, {"lat": origin[0], "lon": origin[1], "radius_km": 30, "sort": "distance"}).json()
    return body["results"] == [{**row, "thumbnail_url": row["thumbnail_url"]} for row in built]
