"""The Django admin screens for tasks, offers and task events: read-only, fast
on long lists, and state changes only through service-backed actions."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from tasks.models import Offer, Task, TaskEvent, TaskPhoto
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tasks_task_changelist"


@pytest.fixture
def many_tasks(customer, contractor):
    """Tasks in several states, with offers, photos and events: the N+1 bait."""
    electrical = CategoryFactory(name="Electrical", slug="electrical")
    tasks = []
    for n in range(6):
        tasks.append(TaskFactory(customer=UserFactory(), title=f"Open job {n}", postal_code=f"9411{n}"))
    for n in range(4):
        tasks.append(TaskFactory(customer=customer, contractor=contractor, assigned=True, category=electrical, title=f"Booked job {n}"))
    for task in tasks:
        OfferFactory(task=task, contractor=ContractorProfileFactory().user)
        TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.CREATED, actor=task.customer, to_status=task.status)
    return tasks


def titles(response) -> list[str]:
    return sorted(task.title for task in response.context["cl"].result_list)


@pytest.mark.parametrize("name", [CHANGELIST, "admin:tasks_offer_changelist", "admin:tasks_taskevent_changelist"])
def test_non_staff_cannot_open_task_admin(client, customer, contractor, name):
    client.force_login(contractor)
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_is_sent_to_login(client, many_tasks):
    response = client.get(reverse("admin:tasks_task_change", args=[many_tasks[0].pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_task_changelist_queries_do_not_grow_with_rows(client, staff, many_tasks, django_assert_max_num_queries):
    client.force_login(staff)
    with django_assert_max_num_queries(12):
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 10
    html = response.content.decode()
    assert "Booked job 0" in html
    assert "$120.00" in html
    assert "Bob Builder" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Booked job 2", ["Booked job 2"]),
        ("dana@example.com", [f"Booked job {n}" for n in range(4)]),
        ("bob@example", [f"Booked job {n}" for n in range(4)]),
        ("94113", ["Open job 3"]),
        ("Thursday morning", []),  # offers' messages are not searched, only the task
        ("drips all night", [f"Booked job {n}" for n in range(4)] + [f"Open job {n}" for n in range(6)]),
    ],
)
def test_task_search(client, staff, many_tasks, query, expected, django_assert_max_num_queries):
    client.force_login(staff)
    with django_assert_max_num_queries(12):
        response = client.get(reverse(CHANGELIST), {"q": query})
    assert response.status_code == 200
    assert titles(response) == sorted(expected)


@pytest.mark.parametrize(
    ("params", "expected_count"),
    [
        ({"status__exact": "assigned"}, 4),
        ({"status__exact": "open"}, 6),
        ({"category__id__exact": "ELECTRICAL"}, 4),
        ({"instant_book__exact": "1"}, 0),
        ({"urgency__exact": "flexible", "budget_type__exact": "fixed"}, 10),
    ],
)
def test_task_filters(client, staff, many_tasks, params, expected_count, django_assert_max_num_queries):
    if params.get("category__id__exact") == "ELECTRICAL":
        params = {"category__id__exact": str(many_tasks[-1].category_id)}
    client.force_login(staff)
    with django_assert_max_num_queries(12):
        response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == expected_count


def test_task_change_page_shows_everything_read_only(client, staff, customer, contractor, django_assert_max_num_queries):
    task = TaskFactory(customer=customer, contractor=contractor, in_progress=True, photos=3)
    OfferFactory(task=task, contractor=contractor, status=Offer.Status.ACCEPTED)
    OfferFactory(task=task, status=Offer.Status.DECLINED)
    for kind in (TaskEvent.Kind.CREATED, TaskEvent.Kind.PUBLISHED, TaskEvent.Kind.OFFER_ACCEPTED):
        TaskEvent.objects.create(task=task, kind=kind, actor=customer)
    photo = task.photos.first()
    client.force_login(staff)

    with django_assert_max_num_queries(25):
        response = client.get(reverse("admin:tasks_task_change", args=[task.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert f'src="/tasks/photos/{photo.public_id}/thumb"' in html
    assert "Offer accepted" in html
    assert "$120.00" in html
    assert 'name="title"' not in html  # no editable inputs
    assert 'name="_save"' not in html


def test_task_change_page_query_count_does_not_grow_with_inline_rows(client, staff, customer, contractor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count_queries(task) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("admin:tasks_task_change", args=[task.pk])).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(staff)
    small = TaskFactory(customer=customer, photos=1)
    OfferFactory(task=small)
    TaskEvent.objects.create(task=small, kind=TaskEvent.Kind.CREATED, actor=customer)
    big = TaskFactory(customer=customer, photos=6)
    for _ in range(5):
        OfferFactory(task=big)
        TaskEvent.objects.create(task=big, kind=TaskEvent.Kind.OFFER_MADE, actor=UserFactory())

    assert count_queries(big) == count_queries(small)


def test_staff_cannot_edit_add_or_delete_tasks(client, staff, customer):
    task = TaskFactory(customer=customer, title="Original title")
    client.force_login(staff)

    edit = client.post(reverse("admin:tasks_task_change", args=[task.pk]), {"title": "Hacked", "status": "completed"})
    add = client.get(reverse("admin:tasks_task_add"))
    delete = client.post(reverse("admin:tasks_task_delete", args=[task.pk]), {"post": "yes"})

    assert (edit.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    task.refresh_from_db()
    assert (task.title, task.status) == ("Original title", Task.Status.OPEN)
    assert Task.objects.filter(pk=task.pk).exists()
    assert TaskPhoto.objects.filter(task=task).count() == 1


def test_task_events_cannot_be_added_edited_or_deleted(client, staff, customer):
    task = TaskFactory(customer=customer)
    event = TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.CREATED, actor=customer, to_status="open")
    client.force_login(staff)

    page = client.get(reverse("admin:tasks_taskevent_change", args=[event.pk]))
    edit = client.post(reverse("admin:tasks_taskevent_change", args=[event.pk]), {"kind": "approved"})
    delete = client.post(reverse("admin:tasks_taskevent_delete", args=[event.pk]), {"post": "yes"})
    bulk = client.post(
        reverse("admin:tasks_taskevent_changelist"), {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    add = client.get(reverse("admin:tasks_taskevent_add"))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (edit.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert "delete_selected" not in client.get(reverse("admin:tasks_taskevent_changelist")).content.decode()
    assert bulk.status_code in (200, 302)
    event.refresh_from_db()
    assert (event.kind, TaskEvent.objects.count()) == (TaskEvent.Kind.CREATED, 1)


def test_offer_and_event_changelists_are_bounded(client, staff, many_tasks, django_assert_max_num_queries):
    client.force_login(staff)
    with django_assert_max_num_queries(10):
        offers = client.get(reverse("admin:tasks_offer_changelist"))
    with django_assert_max_num_queries(10):
        events = client.get(reverse("admin:tasks_taskevent_changelist"))
    assert (offers.status_code, events.status_code) == (200, 200)
    assert len(offers.context["cl"].result_list) == 10
    assert len(events.context["cl"].result_list) == 10
    assert "$110.00" in offers.content.decode()


def test_offers_cannot_be_changed_from_the_admin(client, staff):
    offer = OfferFactory()
    client.force_login(staff)

    response = client.post(reverse("admin:tasks_offer_change", args=[offer.pk]), {"status": "accepted", "price_cents": 1})

    assert response.status_code == 403
    offer.refresh_from_db()
    assert (offer.status, offer.price_cents) == (Offer.Status.PENDING, 11_000)


# --- cancelling through the service ------------------------------------------


def test_cancel_action_asks_for_a_reason_first_and_changes_nothing(client, staff, customer):
    task = TaskFactory(customer=customer)
    client.force_login(staff)

    response = client.post(reverse(CHANGELIST), {"action": "cancel_tasks", "_selected_action": [task.pk]})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="reason"' in html
    assert task.title in html
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_cancel_action_with_too_short_reason_changes_nothing(client, staff, customer):
    task = TaskFactory(customer=customer)
    client.force_login(staff)

    response = client.post(
        reverse(CHANGELIST), {"action": "cancel_tasks", "_selected_action": [task.pk], "apply": "1", "reason": "no"}
    )

    assert response.status_code == 200
    assert "Ensure this value has at least 5 characters" in response.content.decode()
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN
    assert not TaskEvent.objects.filter(task=task).exists()


def test_cancel_action_cancels_through_the_service_and_logs_it(client, staff, customer, contractor):
    open_task = TaskFactory(customer=customer)
    booked = TaskFactory(customer=customer, contractor=contractor, assigned=True)
    client.force_login(staff)

    response = client.post(
        reverse(CHANGELIST),
        {
            "action": "cancel_tasks",
            "_selected_action": [open_task.pk, booked.pk],
            "apply": "1",
            "reason": "Reported as spam by two contractors",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "Cancelled 2 task(s)." in response.content.decode()
    for task in (open_task, booked):
        task.refresh_from_db()
        assert task.status == Task.Status.CANCELLED
        assert task.cancel_reason == "Reported as spam by two contractors"
        assert task.cancelled_by == staff
        event = TaskEvent.objects.get(task=task, kind=TaskEvent.Kind.CANCELLED)
        assert (event.actor, event.to_status) == (staff, Task.Status.CANCELLED)
        assert LogEntry.objects.filter(object_id=str(task.pk), user=staff).exists()


def test_cancel_action_reports_tasks_that_cannot_be_cancelled(client, staff, customer, contractor):
    done = TaskFactory(
        customer=customer, contractor=contractor, status=Task.Status.COMPLETED, agreed_price_cents=12_000
    )
    open_task = TaskFactory(customer=customer)
    client.force_login(staff)

    response = client.post(
        reverse(CHANGELIST),
        {"action": "cancel_tasks", "_selected_action": [done.pk, open_task.pk], "apply": "1", "reason": "Duplicate post"},
        follow=True,
    )

    html = response.content.decode()
    assert "completed" in html and done.title in html
    assert "Cancelled 1 task(s)." in html
    done.refresh_from_db()
    open_task.refresh_from_db()
    assert (done.status, open_task.status) == (Task.Status.COMPLETED, Task.Status.CANCELLED)
    assert not TaskEvent.objects.filter(task=done).exists()


def test_view_only_staff_get_no_cancel_action(client, customer):
    viewer = UserFactory(is_staff=True, is_customer=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_task"))
    task = TaskFactory(customer=customer)
    client.force_login(viewer)

    page = client.get(reverse(CHANGELIST))
    attempt = client.post(
        reverse(CHANGELIST), {"action": "cancel_tasks", "_selected_action": [task.pk], "apply": "1", "reason": "Because I can"}
    )

    assert page.status_code == 200
    assert "cancel_tasks" not in page.content.decode()
    assert attempt.status_code in (200, 302)
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN
