"""Reviews: who may write, the 14-day window, editing until the other side
submits, publication of both at once, and bad input changing nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import ApplicationError, Conflict, PermissionDenied
from messaging.models import Notification
from reputation import services
from reputation.models import Review
from tasks.models import Task
from tests.reputation.review_support import completed_task, fresh, row_counts
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db

GOOD = {"quality": 5, "punctuality": 4, "communication": 5, "value": 4}


def test_customer_review_is_hidden_until_the_contractor_reviews(customer, contractor):
    task = completed_task(customer, contractor)
    review = services.review_submit(task=task, by=customer, stars=5, text="Fixed in 20 minutes.", sub_ratings=GOOD)

    review = fresh(review)
    assert review.role == Review.Role.CUSTOMER_TO_CONTRACTOR
    assert review.reviewee_id == contractor.pk
    assert (review.stars, review.quality, review.punctuality, review.communication, review.value) == (5, 5, 4, 5, 4)
    assert review.clarity is None and review.payment_promptness is None
    assert review.published_at is None
    assert review.window_closes_at == task.completed_at + dt.timedelta(days=14)
    # The contractor is told a review waits for them, not what it says.
    note = Notification.objects.get(user=contractor)
    assert "Leave your review to see theirs" in note.body
    assert "20 minutes" not in note.title + note.body


def test_second_review_publishes_both_at_the_same_instant(customer, contractor):
    task = completed_task(customer, contractor)
    first = services.review_submit(task=task, by=customer, stars=4, sub_ratings=GOOD)
    second = services.review_submit(
        task=task, by=contractor, stars=5, text="Clear brief.", sub_ratings={"clarity": 5, "payment_promptness": 5}
    )

    first, second = fresh(first), fresh(second)
    assert first.published_at is not None
    assert first.published_at == second.published_at
    assert second.role == Review.Role.CONTRACTOR_TO_CUSTOMER and second.reviewee_id == customer.pk
    titles = sorted(Notification.objects.filter(title__contains="is published").values_list("user__email", flat=True))
    assert titles == ["bob@example.com", "dana@example.com"]


def test_author_edits_until_the_other_side_submits_then_it_is_frozen(customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=2, text="Late.", sub_ratings=GOOD)
    edited = services.review_submit(task=task, by=customer, stars=4, text="Late, but great work.", sub_ratings={})
    assert Review.objects.count() == 1
    edited = fresh(edited)
    assert (edited.stars, edited.text, edited.quality) == (4, "Late, but great work.", None)

    services.review_submit(task=task, by=contractor, stars=5)
    before = Review.objects.filter(pk=edited.pk).values().get()
    with pytest.raises(Conflict) as exc:
        services.review_submit(task=task, by=customer, stars=1, text="Changed my mind")
    assert exc.value.code == "review_frozen"
    assert Review.objects.filter(pk=edited.pk).values().get() == before


def test_one_review_per_side_per_task(customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=5)
    services.review_submit(task=task, by=customer, stars=3)
    assert Review.objects.filter(task=task, reviewer=customer).count() == 1


@pytest.mark.parametrize("status", ["open", "assigned", "in_progress", "submitted", "cancelled"])
def test_task_not_completed_is_refused_and_nothing_is_written(customer, contractor, status):
    extra = {} if status == "open" else {"contractor": contractor, "agreed_price_cents": 12_000}
    task = TaskFactory(customer=customer, status=status, photos=0, **extra)
    before = row_counts()
    with pytest.raises((Conflict, PermissionDenied)):
        services.review_submit(task=task, by=customer, stars=5)
    assert row_counts() == before


def test_someone_not_on_the_task_is_refused_and_nothing_is_written(customer, contractor, outsider, staff):
    task = completed_task(customer, contractor)
    before = row_counts()
    for user in (outsider, staff):
        with pytest.raises(PermissionDenied) as exc:
            services.review_submit(task=task, by=user, stars=5)
        assert exc.value.code == "not_task_party"
    assert row_counts() == before


def test_after_fourteen_days_is_refused_and_nothing_is_written(customer, contractor):
    task = completed_task(customer, contractor, completed_at=timezone.now() - dt.timedelta(days=14, minutes=1))
    before = row_counts()
    with pytest.raises(Conflict) as exc:
        services.review_submit(task=task, by=customer, stars=5)
    assert exc.value.code == "review_window_closed"
    assert row_counts() == before


def test_just_inside_the_window_is_accepted(customer, contractor):
    task = completed_task(customer, contractor, completed_at=timezone.now() - dt.timedelta(days=13, hours=23))
    assert services.review_submit(task=task, by=customer, stars=5).pk is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stars": 0}, "stars"),
        ({"stars": 6}, "stars"),
        ({"stars": None}, "stars"),
        ({"stars": "five"}, "stars"),
        ({"stars": 4.5}, "stars"),
        ({"stars": 5, "text": "x" * 2001}, "text"),
        ({"stars": 5, "sub_ratings": {"quality": 0}}, "quality"),
        ({"stars": 5, "sub_ratings": {"value": 6}}, "value"),
        # Customers rate quality/punctuality/communication/value, never the contractor's side's questions.
        ({"stars": 5, "sub_ratings": {"clarity": 5}}, "clarity"),
        ({"stars": 5, "sub_ratings": {"payment_promptness": 4}}, "payment_promptness"),
        ({"stars": 5, "sub_ratings": {"friendliness": 4}}, "friendliness"),
    ],
)
def test_bad_customer_input_is_refused_with_the_field_and_nothing_written(customer, contractor, kwargs, field):
    task = completed_task(customer, contractor)
    before = row_counts()
    with pytest.raises(ApplicationError) as exc:
        services.review_submit(task=task, by=customer, **kwargs)
    assert exc.value.code == "invalid"
    assert field in exc.value.fields
    assert row_counts() == before


@pytest.mark.parametrize("field", ["quality", "punctuality", "value"])
def test_contractor_cannot_give_the_customers_sub_ratings(customer, contractor, field):
    task = completed_task(customer, contractor)
    before = row_counts()
    with pytest.raises(ApplicationError) as exc:
        services.review_submit(task=task, by=contractor, stars=5, sub_ratings={field: 5})
    assert list(exc.value.fields) == [field]
    assert row_counts() == before


def test_text_of_exactly_2000_characters_is_accepted(customer, contractor):
    task = completed_task(customer, contractor)
    review = services.review_submit(task=task, by=customer, stars=5, text="y" * 2000)
    assert len(fresh(review).text) == 2000


def test_a_bad_edit_leaves_the_draft_as_it_was(customer, contractor):
    task = completed_task(customer, contractor)
    review = services.review_submit(task=task, by=customer, stars=3, text="ok")
    before = Review.objects.filter(pk=review.pk).values().get()
    with pytest.raises(ApplicationError):
        services.review_submit(task=task, by=customer, stars=9, text="new")
    assert Review.objects.filter(pk=review.pk).values().get() == before


def test_window_closing_publishes_one_side_alone(customer, contractor, outsider):
    task = completed_task(customer, contractor, completed_at=timezone.now() - dt.timedelta(days=10))
    review = services.review_submit(task=task, by=customer, stars=4)
    assert services.reviews_publish_due(now=timezone.now()) == 0
    assert fresh(review).published_at is None

    later = task.completed_at + dt.timedelta(days=14, seconds=1)
    assert services.reviews_publish_due(now=later) == 1
    assert fresh(review).published_at == later
    assert Review.objects.filter(task=task).count() == 1
    # The contractor can no longer add theirs.
    with pytest.raises(Conflict):
        services.review_submit(task=task, by=contractor, stars=5, now=later)
    # A second run publishes nothing again.
    assert services.reviews_publish_due(now=later + dt.timedelta(hours=1)) == 0


def test_window_closing_publishes_nothing_before_it_closes_and_leaves_other_tasks(customer, contractor):
    old = completed_task(customer, contractor, completed_at=timezone.now() - dt.timedelta(days=15))
    Review.objects.create(
        task=old, reviewer=customer, reviewee=contractor, role=Review.Role.CUSTOMER_TO_CONTRACTOR, stars=5,
        window_closes_at=old.completed_at + dt.timedelta(days=14),
    )
    recent = completed_task(customer, contractor)
    pending = services.review_submit(task=recent, by=customer, stars=3)
    assert services.reviews_publish_due() == 1
    assert Review.objects.get(task=old).published_at is not None
    assert fresh(pending).published_at is None


def test_completed_then_disputed_task_can_still_be_reviewed(customer, contractor):
    task = completed_task(customer, contractor)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.DISPUTED)
    assert services.review_submit(task=fresh(task), by=customer, stars=2).pk
