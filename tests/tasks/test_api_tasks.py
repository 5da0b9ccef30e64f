"""/api/v1/tasks: post (multipart with photos, JSON drafts), my tasks, one
task, edit, publish, cancel, add and remove photos. Every refused request
answers in the API's error shape and writes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tasks.models import Task, TaskEvent, TaskPhoto
from tests.factories import CategoryFactory
from tests.tasks.api_support import (
    ADDRESS,
    error,
    in_days,
    jpeg,
    not_an_image,
    plumbing,
    row,
    snapshot,
    task_payload,
    token_client,
)
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks"


def detail(task) -> str:
    return f"/api/v1/tasks/{task.public_id}"


@pytest.fixture(autouse=True)
def _plumbing(db):
    return plumbing()


# --- Posting ------------------------------------------------------------------


def test_customer_posts_a_task_with_photos_and_it_is_open(customer):
    client = token_client(customer)
    response = client.post(TASKS, task_payload(photos=[jpeg(), jpeg(colour=(0, 90, 200))]), format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    task = Task.objects.get(public_id=body["id"])
    assert task.customer == customer
    assert body["status"] == "open" == task.status
    assert body["title"] == "Fix the dripping kitchen tap"
    assert body["category"] == {"name": "Plumbing", "slug": "plumbing", "description": ""}
    assert body["budget_cents"] == 12_000 and body["currency"] == "USD" and body["budget_type"] == "fixed"
    assert body["budget_total_cents"] == 12_000
    assert body["location"]["exact"] is True
    assert body["location"]["address"] == ADDRESS
    assert body["location"]["city"] == "San Francisco" and body["location"]["postal_code"] == "94110"
    assert body["is_mine"] is True
    assert {"edit", "cancel"} <= set(body["actions"])
    assert body["deadline"].endswith("Z") and body["published_at"].endswith("Z")
    photos = list(task.photos.order_by("position"))
    assert len(photos) == 2
    assert [p["id"] for p in body["photos"]] == [str(p.public_id) for p in photos]
    assert body["photos"][0]["url"] == f"http://testserver/tasks/photos/{photos[0].public_id}/"
    assert body["photos"][0]["thumbnail_url"] == f"http://testserver/tasks/photos/{photos[0].public_id}/thumb"
    assert body["proofs"] == []


def test_photos_may_be_sent_as_photos_brackets(customer, api_as):
    payload = task_payload()
    payload["photos[]"] = [jpeg(), jpeg()]
    response = api_as(customer).post(TASKS, payload, format="multipart")
    assert response.status_code == 201, response.content
    assert TaskPhoto.objects.filter(task__public_id=response.json()["id"]).count() == 2


def test_json_draft_then_photo_then_publish(customer, api_as):
    client = api_as(customer)
    response = client.post(TASKS, task_payload(publish=False), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["published_at"] is None
    assert "publish" in body["actions"]
    url = f"{TASKS}/{body['id']}"

    refused = client.post(f"{url}/publish")
    assert refused.status_code == 400
    assert "photos" in error(refused)["fields"]
    assert Task.objects.get(public_id=body["id"]).status == "draft"

    added = client.post(f"{url}/photos", {"photos": [jpeg()]}, format="multipart")
    assert added.status_code == 201, added.content
    assert len(added.json()["photos"]) == 1

    published = client.post(f"{url}/publish")
    assert published.status_code == 200, published.content
    assert published.json()["status"] == "open"
    assert Task.objects.get(public_id=body["id"]).status == "open"


def test_publish_query_parameter_saves_a_draft(customer, api_as):
    response = api_as(customer).post(f"{TASKS}?publish=false", task_payload(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"


def test_json_post_without_photos_defaults_to_publish_and_is_refused(customer, api_as):
    before = snapshot()
    response = api_as(customer).post(TASKS, task_payload(), format="json")
    assert response.status_code == 400
    assert error(response)["fields"]["photos"] == ["Add at least one photo of the job."]
    assert snapshot() == before


def test_hourly_window_task_round_trips(customer, api_as):
    start = timezone.now() + dt.timedelta(days=2)
    payload = task_payload(
        budget_type="hourly",
        budget_cents=6_500,
        estimated_hours=3,
        schedule_type="window",
        window_start=start.isoformat(),
        window_end=(start + dt.timedelta(hours=4)).isoformat(),
        deadline=None,
        urgency="soon",
        instant_book=True,
        publish=False,
    )
    response = api_as(customer).post(TASKS, payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["budget_total_cents"] == 19_500
    assert body["estimated_hours"] == 3 and body["urgency"] == "soon" and body["instant_book"] is True
    task = Task.objects.get(public_id=body["id"])
    assert task.window_start == start.replace(microsecond=task.window_start.microsecond)
    assert body["window_start"].endswith("Z")


BAD_POSTS = [
    pytest.param({"title": None}, "title", id="missing-title"),
    pytest.param({"description": None}, "description", id="missing-description"),
    pytest.param({"category": None}, "category", id="missing-category"),
    pytest.param({"category": "astrology"}, "category", id="unknown-category"),
    pytest.param({"postal_code": None}, "postal_code", id="missing-zip"),
    pytest.param({"postal_code": "00000"}, "postal_code", id="unknown-zip"),
    pytest.param({"budget_cents": None}, "budget_cents", id="missing-budget"),
    pytest.param({"budget_cents": "lots"}, "budget_cents", id="budget-not-a-number"),
    pytest.param({"budget_cents": -500}, "budget_cents", id="negative-budget"),
    pytest.param({"budget_cents": 0}, "budget_cents", id="zero-budget"),
    pytest.param({"budget_cents": 10**15}, "budget_cents", id="absurd-budget"),
    pytest.param({"budget_type": "barter"}, "budget_type", id="unknown-budget-type"),
    pytest.param({"budget_type": "hourly", "budget_cents": 5_000}, "estimated_hours", id="hourly-without-hours"),
    pytest.param({"deadline": None}, "deadline", id="flexible-without-deadline"),
    pytest.param({"deadline": "next tuesday"}, "deadline", id="deadline-not-a-date"),
    pytest.param({"deadline": in_days(-1)}, "deadline", id="deadline-in-the-past"),
    pytest.param({"deadline": in_days(800)}, "deadline", id="deadline-years-away"),
    pytest.param(
        {"schedule_type": "window", "window_start": in_days(-2), "window_end": in_days(-1)},
        "window_start",
        id="window-in-the-past",
    ),
    pytest.param(
        {"schedule_type": "window", "window_start": in_days(3), "window_end": in_days(2)},
        "window_end",
        id="window-ends-before-it-starts",
    ),
    pytest.param({"urgency": "yesterday"}, "urgency", id="unknown-urgency"),
    pytest.param({"instant_book": "perhaps"}, "instant_book", id="instant-book-not-a-bool"),
    pytest.param({"publish": "perhaps"}, "publish", id="publish-not-a-bool"),
    pytest.param({"title": "x" * 20_000}, "title", id="huge-title"),
    pytest.param({"latitude": 37.76, "longitude": 500}, "location", id="browser-position-invalid"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_POSTS)
def test_bad_task_input_is_refused_with_field_errors_and_nothing_written(customer, api_as, changes, field):
    payload = {k: v for k, v in task_payload(**{"publish": False, **changes}).items() if v is not None}
    before = snapshot()
    response = api_as(customer).post(TASKS, payload, format="json")
    assert response.status_code == 400, response.content
    body = error(response)
    assert field in body["fields"], body
    assert body["code"] in {"validation_error", "invalid"}
    assert snapshot() == before


def test_every_bad_field_is_reported_at_once(customer, api_as):
    payload = task_payload(title="Hi", budget_cents=-1, deadline=in_days(-1), publish=False)
    response = api_as(customer).post(TASKS, payload, format="json")
    assert response.status_code == 400
    assert {"title", "budget_cents", "deadline"} <= set(error(response)["fields"])


@pytest.mark.parametrize(
    ("photos", "message_part"),
    [
        pytest.param(lambda: [not_an_image()], "", id="not-an-image"),
        pytest.param(lambda: [jpeg() for _ in range(11)], "10", id="eleven-photos"),
    ],
)
def test_bad_photos_are_refused_and_nothing_is_stored(customer, api_as, photos, message_part):
    before = snapshot()
    response = api_as(customer).post(TASKS, task_payload(photos=photos()), format="multipart")
    assert response.status_code == 400, response.content
    body = error(response)
    assert "photos" in body["fields"]
    assert message_part in " ".join(body["fields"]["photos"])
    assert snapshot() == before


def test_a_post_refused_after_its_photos_were_stored_leaves_no_file_in_media_root(customer, api_as, monkeypatch):
    """The photos are written before the task is published; when a later step
    of the same transaction refuses, the rows roll back and the files go too."""
    from core.errors import ApplicationError
    from tasks import services

    real_event = services._event

    def refuse_publishing(task, kind, *args, **kwargs):
        if kind == TaskEvent.Kind.PUBLISHED:
            assert task.photos.count() == 2  # the photos are stored by now
            raise ApplicationError("Posting is paused.", code="posting_paused")
        return real_event(task, kind, *args, **kwargs)

    monkeypatch.setattr(services, "_event", refuse_publishing)
    before = snapshot()
    response = api_as(customer).post(TASKS, task_payload(photos=[jpeg(), jpeg(colour=(0, 90, 200))]), format="multipart")

    assert response.status_code == 400, response.content
    assert error(response)["code"] == "posting_paused"
    assert snapshot() == before  # no task, no photo rows, no files


def test_photos_in_a_json_body_are_refused(customer, api_as):
    before = snapshot()
    response = api_as(customer).post(TASKS, task_payload(photos=["aGVsbG8="]), format="json")
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "photos.0": ["The submitted data was not a file. Check the encoding type on the form."]
    }
    assert snapshot() == before


def test_unverified_customer_cannot_post(api_as):
    from tests.factories import UserFactory

    unverified = UserFactory(unverified=True)
    before = snapshot()
    response = api_as(unverified).post(TASKS, task_payload(photos=[jpeg()]), format="multipart")
    assert response.status_code == 403
    assert error(response)["code"] == "email_not_verified"
    assert snapshot() == before


def test_anonymous_cannot_post(api_client):
    before = snapshot()
    response = api_client.post(TASKS, task_payload(photos=[jpeg()]), format="multipart")
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"
    assert snapshot() == before


def test_session_login_works_too(customer, client):
    client.force_login(customer)
    TaskFactory(customer=customer)
    response = client.get(TASKS)
    assert response.status_code == 200
    assert response.json()["count"] == 1


# --- My tasks -----------------------------------------------------------------


def test_my_tasks_lists_only_mine_newest_first(customer, outsider, api_as):
    older = TaskFactory(customer=customer, title="Older task")
    newer = TaskFactory(customer=customer, title="Newer task", photos=3)
    TaskFactory(customer=outsider, title="Someone else's task")

    response = api_as(customer).get(TASKS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [str(newer.public_id), str(older.public_id)]
    first = body["results"][0]
    assert first["photo_count"] == 3
    assert first["thumbnail_url"].endswith(f"/tasks/photos/{newer.photos.order_by('position')[0].public_id}/thumb")
    assert first["pending_offers"] == 0
    # Lists show the approximate point, never the street address.
    assert "address" not in first["location"] and ADDRESS not in response.content.decode()
    assert first["location"]["latitude"] == newer.approx_latitude


@pytest.mark.parametrize(
    ("group", "expected"),
    [("active", {"open", "assigned"}), ("drafts", {"draft"}), ("done", {"completed"}), ("cancelled", {"cancelled"})],
)
def test_my_tasks_by_status_group(customer, contractor, api_as, group, expected):
    TaskFactory(customer=customer)
    TaskFactory(customer=customer, draft=True)
    TaskFactory(customer=customer, assigned=True, contractor=contractor)
    TaskFactory(customer=customer, status="completed", contractor=contractor, agreed_price_cents=100)
    TaskFactory(customer=customer, status="cancelled")
    response = api_as(customer).get(TASKS, {"status_group": group})
    assert response.status_code == 200
    assert {item["status"] for item in response.json()["results"]} == expected


def test_unknown_status_group_is_refused(customer, api_as):
    response = api_as(customer).get(TASKS, {"status_group": "everything"})
    assert response.status_code == 400
    assert "status_group" in error(response)["fields"]


def test_my_tasks_are_paginated(customer, api_as):
    for _ in range(5):
        TaskFactory(customer=customer, photos=0)
    client = api_as(customer)
    page1 = client.get(TASKS, {"page_size": 2}).json()
    assert page1["count"] == 5 and len(page1["results"]) == 2 and page1["previous"] is None
    page3 = client.get(TASKS, {"page_size": 2, "page": 3}).json()
    assert len(page3["results"]) == 1 and page3["next"] is None
    seen = {item["id"] for page in (1, 2, 3) for item in client.get(TASKS, {"page_size": 2, "page": page}).json()["results"]}
    assert len(seen) == 5
    beyond = client.get(TASKS, {"page_size": 2, "page": 9})
    assert beyond.status_code == 404
    assert error(beyond)["code"] == "not_found"


def queries_for(client, url, params=None) -> int:
    """How many SQL queries one GET makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return len(captured)


def test_my_tasks_makes_the_same_number_of_queries_for_5_and_25_tasks(customer, django_assert_max_num_queries):
    client = token_client(customer)
    for index in range(5):
        TaskFactory(customer=customer, photos=1 + index % 2)
    # token, count, page, photos (pending offers are a join on the page query)
    with django_assert_max_num_queries(4):
        few = queries_for(client, TASKS, {"page_size": 50})
    for index in range(20):
        TaskFactory(customer=customer, photos=1 + index % 2)
    with django_assert_max_num_queries(few):
        response = client.get(TASKS, {"page_size": 50})
    assert response.json()["count"] == 25 and len(response.json()["results"]) == 25


# --- One task -----------------------------------------------------------------


def test_customer_reads_own_draft_with_exact_address(customer, api_as):
    task = TaskFactory(customer=customer, draft=True)
    response = api_as(customer).get(detail(task))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "draft"
    assert body["location"] == {
        "exact": True,
        "latitude": task.latitude,
        "longitude": task.longitude,
        "address": ADDRESS,
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94110",
    }
    assert set(body["actions"]) == {"edit", "publish", "cancel"}
    assert body["customer"]["name"] == "Dana"
    assert "email" not in body["customer"]


def test_unknown_task_is_404(customer, api_as):
    response = api_as(customer).get("/api/v1/tasks/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_not_a_uuid_is_404(customer, api_as):
    assert api_as(customer).get("/api/v1/tasks/12").status_code == 404


# --- Editing ------------------------------------------------------------------


def test_customer_edits_some_fields_and_keeps_the_rest(customer, api_as):
    task = TaskFactory(customer=customer, latitude=37.7601, longitude=-122.4150)
    response = api_as(customer).patch(detail(task), {"budget_cents": 15_000, "urgency": "urgent"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["budget_cents"] == 15_000 and body["urgency"] == "urgent"
    fresh = row(task)
    assert fresh["budget_cents"] == 15_000
    assert fresh["title"] == task.title and fresh["description"] == task.description
    # Not re-geocoded to the ZIP's centre: the point stays where it was.
    assert (fresh["latitude"], fresh["longitude"]) == (37.7601, -122.4150)
    assert TaskEvent.objects.filter(task=task, kind="updated").count() == 1


def test_changing_the_zip_moves_the_task(customer, api_as):
    task = TaskFactory(customer=customer)
    response = api_as(customer).patch(detail(task), {"postal_code": "94103"}, format="json")
    assert response.status_code == 200, response.content
    fresh = Task.objects.get(pk=task.pk)
    assert fresh.postal_code == "94103"
    assert (fresh.latitude, fresh.longitude) != (task.latitude, task.longitude)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"budget_cents": -1}, "budget_cents"),
        ({"budget_cents": "twelve"}, "budget_cents"),
        ({"title": ""}, "title"),
        ({"deadline": in_days(-3)}, "deadline"),
        ({"category": "astrology"}, "category"),
        ({"schedule_type": "window", "window_start": in_days(-1), "window_end": in_days(1)}, "window_start"),
    ],
)
def test_bad_edit_is_refused_and_changes_nothing(customer, api_as, changes, field):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).patch(detail(task), changes, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]
    assert snapshot() == before


def test_editing_a_booked_task_is_an_illegal_transition(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    before = snapshot()
    response = api_as(customer).patch(detail(task), {"budget_cents": 20_000}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "illegal_transition"
    assert snapshot() == before


# --- Publish and cancel ---------------------------------------------------------


def test_publishing_an_open_task_again_is_an_illegal_transition(customer, api_as):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).post(f"{detail(task)}/publish")
    assert response.status_code == 409
    body = error(response)
    assert body["code"] == "illegal_transition"
    assert body["extra"] == {"status": "open", "action": "publish"}
    assert snapshot() == before


def test_customer_cancels_an_open_task_with_a_reason(customer, api_as):
    task = TaskFactory(customer=customer)
    response = api_as(customer).post(f"{detail(task)}/cancel", {"reason": "Fixed it myself"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled" and body["cancel_reason"] == "Fixed it myself"
    assert body["actions"] == []
    assert row(task)["cancel_reason"] == "Fixed it myself"


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "no"}, {"reason": "x" * 600}, {"reason": 5}])
def test_cancel_needs_a_sensible_reason(customer, api_as, payload):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).post(f"{detail(task)}/cancel", payload, format="json")
    assert response.status_code == 400, response.content
    assert "reason" in error(response)["fields"]
    assert snapshot() == before


def test_cancelling_a_completed_task_is_an_illegal_transition(customer, contractor, api_as):
    task = TaskFactory(customer=customer, status="completed", contractor=contractor, agreed_price_cents=100)
    before = snapshot()
    response = api_as(customer).post(f"{detail(task)}/cancel", {"reason": "Changed my mind"}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "illegal_transition"
    assert snapshot() == before


# --- Photos -------------------------------------------------------------------


def test_add_and_remove_photos(customer, api_as):
    task = TaskFactory(customer=customer)
    client = api_as(customer)
    added = client.post(f"{detail(task)}/photos", {"photos": [jpeg(), jpeg()]}, format="multipart")
    assert added.status_code == 201, added.content
    assert len(added.json()["photos"]) == 3
    victim = task.photos.order_by("position").first()
    removed = client.delete(f"{detail(task)}/photos/{victim.public_id}")
    assert removed.status_code == 204
    assert not TaskPhoto.objects.filter(pk=victim.pk).exists()
    assert task.photos.count() == 2


def test_adding_past_ten_photos_is_refused(customer, api_as):
    task = TaskFactory(customer=customer, photos=8)
    before = snapshot()
    response = api_as(customer).post(f"{detail(task)}/photos", {"photos": [jpeg(), jpeg(), jpeg()]}, format="multipart")
    assert response.status_code == 400
    assert error(response)["fields"]["photos"] == ["A task has at most 10 photos; you can add 2 more."]
    assert snapshot() == before


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(lambda: {"photos": [not_an_image()]}, id="not-an-image"),
        pytest.param(lambda: {}, id="no-photos"),
        pytest.param(lambda: {"photos": [jpeg() for _ in range(11)]}, id="eleven"),
    ],
)
def test_bad_photo_uploads_are_refused(customer, api_as, files):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).post(f"{detail(task)}/photos", files(), format="multipart")
    assert response.status_code == 400, response.content
    assert "photos" in error(response)["fields"]
    assert snapshot() == before


def test_photo_upload_as_json_is_unsupported(customer, api_as):
    task = TaskFactory(customer=customer)
    response = api_as(customer).post(f"{detail(task)}/photos", {"photos": []}, format="json")
    assert response.status_code == 415
    assert error(response)["code"] == "unsupported_media_type"


def test_the_last_photo_of_an_open_task_stays(customer, api_as):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).delete(f"{detail(task)}/photos/{task.photos.get().public_id}")
    assert response.status_code == 400
    assert "photos" in error(response)["fields"]
    assert snapshot() == before


def test_removing_a_photo_of_another_task_is_404(customer, api_as):
    task = TaskFactory(customer=customer, photos=2)
    other = TaskFactory(customer=customer, photos=2)
    before = snapshot()
    response = api_as(customer).delete(f"{detail(task)}/photos/{other.photos.first().public_id}")
    assert response.status_code == 404
    assert snapshot() == before


def test_another_category_works(customer, api_as):
    CategoryFactory(name="Electrical", slug="electrical")
    response = api_as(customer).post(TASKS, task_payload(category="electrical", photos=[jpeg()]), format="multipart")
    assert response.status_code == 201
    assert response.json()["category"]["slug"] == "electrical"
