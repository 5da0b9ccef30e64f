"""task_create / task_update / task_publish / task_add_photos / task_remove_photo."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from core.errors import ApplicationError, PermissionDenied
from core.geo import geocode
from tasks import services
from tasks.models import Task, TaskEvent, TaskPhoto, approximate
from tasks.state import IllegalTransition
from tests.factories import CategoryFactory, UserFactory
from tests.tasks._services_support import (
    events,
    jpeg_upload,
    row,
    row_counts,
    stored_files,
    task_input,
    text_upload,
)
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db
S = Task.Status


def test_customer_posts_an_open_task_geocoded_from_the_zip_with_photos(customer):
    data = task_input()
    task = services.task_create(customer=customer, data=data, photos=[jpeg_upload(), jpeg_upload("b.jpg")])

    task = Task.objects.get(pk=task.pk)
    place = geocode("94110")
    assert task.status == S.OPEN
    assert task.customer == customer
    assert task.title == "Fix the dripping kitchen tap"
    assert (task.postal_code, task.city, task.state) == ("94110", "San Francisco", "CA")
    assert (task.latitude, task.longitude) == (place.latitude, place.longitude)
    assert (task.approx_latitude, task.approx_longitude) == approximate(place.latitude, place.longitude)
    assert task.address == "3250 24th St, San Francisco, CA 94110"
    assert task.budget_cents == 12_000 and task.estimated_hours is None
    assert task.published_at is not None
    photos = list(task.photos.order_by("position"))
    assert [(p.kind, p.position, p.uploaded_by_id) for p in photos] == [
        (TaskPhoto.Kind.PROBLEM, 0, customer.pk),
        (TaskPhoto.Kind.PROBLEM, 1, customer.pk),
    ]
    assert events(task) == [("created", "", "draft"), ("published", "draft", "open")]
    assert TaskEvent.objects.filter(task=task).first().actor == customer


def test_a_draft_may_have_no_photos(customer):
    task = services.task_create(customer=customer, data=task_input(), publish=False)
    assert row(task)["status"] == S.DRAFT
    assert row(task)["published_at"] is None
    assert events(task) == [("created", "", "draft")]


def test_browser_position_near_the_zip_refines_the_location(customer):
    task = services.task_create(
        customer=customer, data=task_input(latitude=37.7612, longitude=-122.4201), photos=[jpeg_upload()]
    )
    assert (row(task)["latitude"], row(task)["longitude"]) == (37.7612, -122.4201)
    assert row(task)["approx_latitude"] == approximate(37.7612, -122.4201)[0]


def test_hourly_task_in_a_time_window(customer):
    start = timezone.now() + dt.timedelta(days=2)
    task = services.task_create(
        customer=customer,
        data=task_input(
            budget_type="hourly",
            budget_cents=8_500,
            estimated_hours=3,
            schedule_type="window",
            window_start=start,
            window_end=start + dt.timedelta(hours=4),
            deadline=None,
            urgency="soon",
            instant_book=True,
        ),
        photos=[jpeg_upload()],
    )
    task.refresh_from_db()
    assert (task.budget_type, task.budget_cents, task.estimated_hours) == ("hourly", 8_500, 3)
    assert task.budget_total_cents == 25_500
    assert (task.window_start, task.window_end, task.deadline) == (start, start + dt.timedelta(hours=4), None)
    assert task.urgency == "soon" and task.instant_book is True


def _inactive():
    return CategoryFactory(name="Chimney sweeping", slug="chimney", is_active=False)


NOW = timezone.now


BAD_INPUTS = [
    ("title", {"title": "Tap"}),
    ("title", {"title": "x" * 121}),
    ("title", {"title": "     "}),
    ("description", {"description": "Too short."}),
    ("description", {"description": "x" * 5001}),
    ("category", {"category": None}),
    ("category", "inactive"),
    ("address", {"address": "x" * 201}),
    ("postal_code", {"postal_code": ""}),
    ("postal_code", {"postal_code": "00000"}),
    ("postal_code", {"postal_code": "somewhere nice"}),
    ("location", {"latitude": 40.7128, "longitude": -74.0060}),  # New York, ZIP is San Francisco
    ("location", {"latitude": 200.0, "longitude": -122.4}),
    ("budget_cents", {"budget_cents": 0}),
    ("budget_cents", {"budget_cents": -12_000}),
    ("budget_cents", {"budget_cents": 499}),
    ("budget_cents", {"budget_cents": 10_000_001}),
    ("budget_cents", {"budget_cents": "lots"}),
    ("budget_cents", {"budget_type": "hourly", "budget_cents": 999, "estimated_hours": 2}),
    ("budget_cents", {"budget_type": "hourly", "budget_cents": 100_001, "estimated_hours": 2}),
    ("estimated_hours", {"budget_type": "hourly", "budget_cents": 5_000, "estimated_hours": None}),
    ("estimated_hours", {"budget_type": "hourly", "budget_cents": 5_000, "estimated_hours": 0}),
    ("estimated_hours", {"budget_type": "hourly", "budget_cents": 5_000, "estimated_hours": 201}),
    ("budget_type", {"budget_type": "barter"}),
    ("deadline", {"deadline": None}),
    ("deadline", "deadline_past"),
    ("deadline", "deadline_far"),
    ("window_start", "window_past"),
    ("window_start", "window_no_start"),
    ("window_end", "window_no_end"),
    ("window_end", "window_backwards"),
    ("window_end", "window_too_long"),
    ("schedule_type", {"schedule_type": "whenever"}),
    ("urgency", {"urgency": "asap"}),
]


def _overrides(spec):
    now = timezone.now()
    window = {"schedule_type": "window", "deadline": None}
    named = {
        "inactive": {"category": _inactive()},
        "deadline_past": {"deadline": now - dt.timedelta(hours=1)},
        "deadline_far": {"deadline": now + dt.timedelta(days=400)},
        "window_past": {**window, "window_start": now - dt.timedelta(days=1), "window_end": now + dt.timedelta(days=1)},
        "window_no_start": {**window, "window_start": None, "window_end": now + dt.timedelta(days=1)},
        "window_no_end": {**window, "window_start": now + dt.timedelta(days=1), "window_end": None},
        "window_backwards": {
            **window,
            "window_start": now + dt.timedelta(days=2),
            "window_end": now + dt.timedelta(days=1),
        },
        "window_too_long": {
            **window,
            "window_start": now + dt.timedelta(days=1),
            "window_end": now + dt.timedelta(days=32),
        },
    }
    return named[spec] if isinstance(spec, str) else spec


@pytest.mark.parametrize(("field", "spec"), BAD_INPUTS, ids=[f"{f}-{i}" for i, (f, _s) in enumerate(BAD_INPUTS)])
def test_bad_input_is_refused_with_the_field_and_nothing_is_written(customer, field, spec, mailoutbox):
    data = task_input(**_overrides(spec))
    before, files = row_counts(), stored_files()
    with pytest.raises(ApplicationError) as caught:
        services.task_create(customer=customer, data=data, photos=[jpeg_upload()])
    assert caught.value.code == "invalid"
    assert field in caught.value.fields
    assert caught.value.fields[field][0]
    assert row_counts() == before
    assert stored_files() == files
    assert mailoutbox == []


def test_every_bad_field_is_reported_at_once(customer):
    data = task_input(
        title="Tap", description="short", postal_code="00000", budget_cents=1, deadline=None, urgency="now"
    )
    with pytest.raises(ApplicationError) as caught:
        services.task_create(customer=customer, data=data, photos=[])
    assert set(caught.value.fields) == {"title", "description", "postal_code", "budget_cents", "deadline", "urgency", "photos"}
    assert Task.objects.count() == 0


@pytest.mark.parametrize(("count", "message"), [(0, "at least one photo"), (11, "at most 10 photos")])
def test_publishing_needs_one_to_ten_photos(customer, count, message):
    before = row_counts()
    with pytest.raises(ApplicationError) as caught:
        services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload() for _ in range(count)])
    assert message in caught.value.fields["photos"][0]
    assert row_counts() == before


def test_ten_photos_is_fine(customer):
    task = services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload() for _ in range(10)])
    assert task.photos.count() == 10


def test_a_file_that_is_not_an_image_writes_nothing_not_even_the_good_photos_files(customer):
    before, files = row_counts(), stored_files()
    with pytest.raises(ApplicationError) as caught:
        services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload(), text_upload()])
    assert "photos" in caught.value.fields
    assert row_counts() == before
    assert stored_files() == files


def test_unverified_customer_cannot_post(db):
    unverified = UserFactory(email="new@example.com", unverified=True)
    with pytest.raises(PermissionDenied) as caught:
        services.task_create(customer=unverified, data=task_input(), photos=[jpeg_upload()])
    assert caught.value.code == "email_not_verified"
    assert Task.objects.count() == 0


def test_a_contractor_only_account_cannot_post(contractor):
    with pytest.raises(PermissionDenied) as caught:
        services.task_create(customer=contractor, data=task_input(), photos=[jpeg_upload()])
    assert caught.value.code == "not_customer"
    assert Task.objects.count() == 0


# --- update ------------------------------------------------------------------------


def test_customer_edits_an_open_task_and_the_event_lists_what_changed(customer):
    task = TaskFactory(customer=customer)
    updated = services.task_update(task, by=customer, data=task_input(title="Replace the kitchen tap", budget_cents=15_000))
    task.refresh_from_db()
    assert task.title == "Replace the kitchen tap"
    assert task.budget_cents == 15_000
    assert task.status == S.OPEN
    assert updated.pk == task.pk
    event = TaskEvent.objects.get(task=task, kind="updated")
    assert event.actor == customer
    assert {"title", "budget_cents", "description"} <= set(event.data["fields"])


def test_update_with_nothing_changed_writes_no_event(customer):
    task = services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload()])
    data = task_input(deadline=task.deadline)
    services.task_update(task, by=customer, data=data)
    assert not TaskEvent.objects.filter(task=task, kind="updated").exists()


@pytest.mark.parametrize("who", ["outsider", "contractor", "staff"])
def test_only_the_customer_edits(customer, contractor, outsider, staff, who):
    task = TaskFactory(customer=customer)
    by = {"outsider": outsider, "contractor": contractor, "staff": staff}[who]
    before, counts = row(task), row_counts()
    with pytest.raises(PermissionDenied):
        services.task_update(task, by=by, data=task_input(title="Something else entirely"))
    assert row(task) == before
    assert row_counts() == counts


@pytest.mark.parametrize("status", ["assigned", "in_progress", "submitted", "completed", "cancelled"])
def test_a_task_past_open_cannot_be_edited(customer, contractor, status):
    task = TaskFactory(customer=customer, contractor=contractor, status=status, agreed_price_cents=12_000)
    before = row(task)
    with pytest.raises(IllegalTransition):
        services.task_update(task, by=customer, data=task_input(title="Something else entirely"))
    assert row(task) == before


def test_bad_update_changes_nothing(customer):
    task = TaskFactory(customer=customer)
    before, counts = row(task), row_counts()
    with pytest.raises(ApplicationError) as caught:
        services.task_update(task, by=customer, data=task_input(title="ab", budget_cents=-5))
    assert set(caught.value.fields) == {"title", "budget_cents"}
    assert row(task) == before
    assert row_counts() == counts


# --- publish -----------------------------------------------------------------------


def test_customer_publishes_a_draft(customer):
    task = services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload()], publish=False)
    services.task_publish(task, by=customer)
    assert row(task)["status"] == S.OPEN
    assert row(task)["published_at"] is not None
    assert events(task)[-1] == ("published", "draft", "open")


def test_a_draft_without_photos_cannot_be_published(customer):
    task = TaskFactory(customer=customer, draft=True, photos=0)
    before = row(task)
    with pytest.raises(ApplicationError) as caught:
        services.task_publish(task, by=customer)
    assert "photos" in caught.value.fields
    assert row(task) == before


def test_a_draft_whose_deadline_passed_cannot_be_published(customer):
    task = TaskFactory(customer=customer, draft=True, deadline=timezone.now() - dt.timedelta(days=1))
    with pytest.raises(ApplicationError) as caught:
        services.task_publish(task, by=customer)
    assert "deadline" in caught.value.fields
    assert row(task)["status"] == S.DRAFT


def test_others_cannot_publish_a_draft(customer, outsider, contractor):
    task = TaskFactory(customer=customer, draft=True)
    for by in (outsider, contractor):
        with pytest.raises(PermissionDenied):
            services.task_publish(task, by=by)
    assert row(task)["status"] == S.DRAFT
    assert not TaskEvent.objects.filter(task=task).exists()


def test_an_open_task_cannot_be_published_again(customer):
    task = TaskFactory(customer=customer)
    with pytest.raises(IllegalTransition):
        services.task_publish(task, by=customer)


# --- photos ------------------------------------------------------------------------


def test_customer_adds_photos_after_the_existing_ones(customer):
    task = TaskFactory(customer=customer, photos=2)
    added = services.task_add_photos(task, by=customer, files=[jpeg_upload(), jpeg_upload()])
    assert [p.position for p in added] == [2, 3]
    assert task.photos.count() == 4
    assert TaskEvent.objects.get(task=task, kind="photo_added").data == {"count": 2}


def test_more_than_ten_photos_in_all_is_refused(customer):
    task = TaskFactory(customer=customer, photos=9)
    with pytest.raises(ApplicationError) as caught:
        services.task_add_photos(task, by=customer, files=[jpeg_upload(), jpeg_upload()])
    assert "1 more" in caught.value.fields["photos"][0]
    assert task.photos.count() == 9


def test_adding_a_non_image_writes_nothing(customer):
    task = TaskFactory(customer=customer)
    before, files = row_counts(), stored_files()
    with pytest.raises(ApplicationError):
        services.task_add_photos(task, by=customer, files=[jpeg_upload(), text_upload()])
    assert row_counts() == before
    assert stored_files() == files


def test_others_cannot_add_or_remove_photos(customer, outsider, contractor):
    task = TaskFactory(customer=customer, photos=2)
    photo = task.photos.first()
    counts = row_counts()
    for by in (outsider, contractor):
        with pytest.raises(PermissionDenied):
            services.task_add_photos(task, by=by, files=[jpeg_upload()])
        with pytest.raises(PermissionDenied):
            services.task_remove_photo(photo, by=by)
    assert row_counts() == counts


def test_photos_of_an_assigned_task_are_frozen(customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True, photos=2)
    with pytest.raises(IllegalTransition):
        services.task_add_photos(task, by=customer, files=[jpeg_upload()])
    with pytest.raises(IllegalTransition):
        services.task_remove_photo(task.photos.first(), by=customer)
    assert task.photos.count() == 2


def test_removing_a_photo_deletes_its_files_after_commit(customer, django_capture_on_commit_callbacks):
    task = services.task_create(customer=customer, data=task_input(), photos=[jpeg_upload(), jpeg_upload()])
    photo = task.photos.first()
    paths = [photo.image.path, photo.thumbnail.path]
    with django_capture_on_commit_callbacks(execute=True):
        services.task_remove_photo(photo, by=customer)
    assert task.photos.count() == 1
    assert not any(os.path.exists(p) for p in paths)
    assert TaskEvent.objects.get(task=task, kind="photo_removed").data == {"photo": str(photo.public_id)}


def test_an_open_task_keeps_its_last_photo(customer):
    task = TaskFactory(customer=customer, photos=1)
    with pytest.raises(ApplicationError) as caught:
        services.task_remove_photo(task.photos.get(), by=customer)
    assert "at least one photo" in caught.value.fields["photos"][0]
    assert task.photos.count() == 1


def test_a_draft_may_lose_its_last_photo(customer):
    task = TaskFactory(customer=customer, draft=True, photos=1)
    services.task_remove_photo(task.photos.get(), by=customer)
    assert task.photos.count() == 0
