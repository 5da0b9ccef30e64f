"""tasks.policies.cancellation_rule and task_cancel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import ApplicationError, PermissionDenied
from tasks import services
from tasks.models import Task, TaskEvent
from tasks.policies import cancellation_rule
from tasks.state import IllegalTransition
from tests.tasks._services_support import make_contractor, row, row_counts
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture
def hooks(monkeypatch):
    calls = []
    monkeypatch.setattr("tasks.payment_hooks.on_cancelled", lambda task, rule: calls.append((task.pk, rule.refund)))
    return calls


def booked(customer, contractor, status, *, due_in=dt.timedelta(days=3)):
    return TaskFactory(
        customer=customer,
        contractor=contractor,
        status=status,
        agreed_price_cents=12_000,
        deadline=timezone.now() + due_in,
    )


# --- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "due_in", "refund", "reason_required"),
    [
        ("draft", dt.timedelta(days=3), "none", False),
        ("open", dt.timedelta(days=3), "none", True),
        ("assigned", dt.timedelta(days=3), "full", True),
        ("assigned", dt.timedelta(hours=25), "full", True),
        # Issue 4: before check-in the customer always gets everything back.
        ("assigned", dt.timedelta(hours=23), "full", True),
        ("assigned", dt.timedelta(hours=1), "full", True),
        ("in_progress", dt.timedelta(days=3), "partial", True),
    ],
)
def test_customer_rule(customer, contractor, status, due_in, refund, reason_required):
    task = booked(customer, contractor, status, due_in=due_in)
    if status in ("draft", "open"):
        task.contractor = None
    rule = cancellation_rule(task, customer)
    assert rule.allowed is True
    assert (rule.refund, rule.reason_required) == (refund, reason_required)
    assert rule.message


def test_after_check_in_the_customer_pays_the_call_out_fee_and_gets_the_rest(customer, contractor, settings):
    settings.PAYMENTS_CALLOUT_FEE_CENTS = 4_500
    task = booked(customer, contractor, "in_progress")
    rule = cancellation_rule(task, customer)
    assert (rule.refund, rule.contractor_cents) == ("partial", 4_500)
    assert "call-out fee of $45.00" in rule.message
    # Never more than the agreed price.
    task.agreed_price_cents = 3_000
    assert cancellation_rule(task, customer).contractor_cents == 3_000
    # No fee configured: a full refund.
    settings.PAYMENTS_CALLOUT_FEE_CENTS = 0
    assert (cancellation_rule(task, customer).refund, cancellation_rule(task, customer).contractor_cents) == ("full", 0)


def test_before_check_in_the_customer_gets_a_full_refund_even_close_to_the_window(customer, contractor):
    start = timezone.now() + dt.timedelta(hours=2)
    task = TaskFactory(
        customer=customer,
        contractor=contractor,
        assigned=True,
        schedule_type="window",
        window_start=start,
        window_end=start + dt.timedelta(hours=3),
        deadline=timezone.now() + dt.timedelta(days=20),
    )
    rule = cancellation_rule(task, customer)
    assert (rule.refund, rule.contractor_cents) == ("full", 0)


@pytest.mark.parametrize("status", ["assigned", "in_progress"])
def test_assigned_contractor_may_cancel_and_the_customer_gets_everything_back(customer, contractor, status):
    rule = cancellation_rule(booked(customer, contractor, status, due_in=dt.timedelta(hours=1)), contractor)
    assert (rule.allowed, rule.refund, rule.reason_required) == (True, "full", True)


@pytest.mark.parametrize(
    ("status", "refund"), [("draft", "none"), ("open", "none"), ("assigned", "full"), ("in_progress", "full")]
)
def test_staff_may_cancel_anything_cancellable(customer, contractor, staff, status, refund):
    rule = cancellation_rule(booked(customer, contractor, status), staff)
    assert (rule.allowed, rule.refund) == (True, refund)


@pytest.mark.parametrize("status", ["submitted", "completed", "cancelled", "disputed"])
def test_nobody_cancels_past_in_progress(customer, contractor, staff, status):
    task = booked(customer, contractor, status)
    for user in (customer, contractor, staff):
        rule = cancellation_rule(task, user)
        assert rule.allowed is False
        assert "can't be cancelled" in rule.message


def test_strangers_and_rivals_may_not_cancel(customer, contractor, outsider):
    task = booked(customer, contractor, "assigned")
    for user in (outsider, make_contractor("rival@example.com")):
        assert cancellation_rule(task, user).allowed is False


# --- the service ----------------------------------------------------------------------------


def test_customer_cancels_an_open_task_and_pending_offers_are_declined(
    customer, hooks, mailoutbox, django_capture_on_commit_callbacks
):
    task = TaskFactory(customer=customer)
    pending = OfferFactory(task=task, contractor=make_contractor("a@example.com"))
    withdrawn = OfferFactory(task=task, contractor=make_contractor("b@example.com"), status="withdrawn")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.task_cancel(task, by=customer, reason="  Fixed it myself.  ")
    task.refresh_from_db()
    assert result.status == task.status == S.CANCELLED
    assert (task.cancel_reason, task.cancelled_by, task.cancelled_at is not None) == ("Fixed it myself.", customer, True)
    assert (row(pending)["status"], row(pending)["decline_reason"]) == ("declined", "The task was cancelled.")
    assert row(withdrawn)["status"] == "withdrawn"
    event = TaskEvent.objects.get(task=task, kind="cancelled")
    assert (event.actor, event.from_status, event.to_status) == (customer, "open", "cancelled")
    assert event.data == {"reason": "Fixed it myself.", "refund": "none", "declined_offers": [str(pending.public_id)]}
    assert hooks == [(task.pk, "none")]
    assert [m.to for m in mailoutbox] == [["a@example.com"]]
    assert "The task was cancelled." in mailoutbox[0].body


def test_a_draft_is_cancelled_without_a_reason(customer):
    task = TaskFactory(customer=customer, draft=True)
    services.task_cancel(task, by=customer, reason="")
    assert row(task)["status"] == S.CANCELLED


@pytest.mark.parametrize("reason", ["", "   ", "meh", "x" * 501])
def test_a_reason_is_required_once_open(customer, reason, hooks):
    task = TaskFactory(customer=customer)
    OfferFactory(task=task)
    before, task_row = row_counts(), row(task)
    with pytest.raises(ApplicationError) as caught:
        services.task_cancel(task, by=customer, reason=reason)
    assert "reason" in caught.value.fields
    assert (row_counts(), row(task)) == (before, task_row)
    assert hooks == []


def test_customer_cancels_after_check_in_and_the_contractor_is_told(
    customer, contractor, hooks, mailoutbox, django_capture_on_commit_callbacks
):
    task = booked(customer, contractor, "in_progress", due_in=dt.timedelta(hours=5))
    with django_capture_on_commit_callbacks(execute=True):
        services.task_cancel(task, by=customer, reason="Found someone closer.")
    assert hooks == [(task.pk, "partial")]
    [email] = mailoutbox
    assert email.to == [contractor.email]
    assert "Dana Lee cancelled" in email.body
    assert "Reason: Found someone closer." in email.body
    assert "partly refunded" in email.body


def test_contractor_cancels_and_the_customer_is_told(customer, contractor, hooks, mailoutbox, django_capture_on_commit_callbacks):
    task = booked(customer, contractor, "in_progress")
    with django_capture_on_commit_callbacks(execute=True):
        services.task_cancel(task, by=contractor, reason="I broke my wrist.")
    task.refresh_from_db()
    assert (task.status, task.cancelled_by) == (S.CANCELLED, contractor)
    assert hooks == [(task.pk, "full")]
    [email] = mailoutbox
    assert email.to == [customer.email]
    assert "Bob Builder cancelled" in email.body
    assert "refunded in full" in email.body


def test_staff_cancels_and_both_sides_are_told(customer, contractor, staff, hooks, mailoutbox, django_capture_on_commit_callbacks):
    task = booked(customer, contractor, "assigned")
    with django_capture_on_commit_callbacks(execute=True):
        services.task_cancel(task, by=staff, reason="Reported as fraud.")
    assert row(task)["status"] == S.CANCELLED
    assert sorted(m.to[0] for m in mailoutbox) == sorted([customer.email, contractor.email])
    assert all("BittieTasks support cancelled" in m.body for m in mailoutbox)


@pytest.mark.parametrize("who", ["outsider", "rival", "offer_maker"])
def test_others_cannot_cancel(customer, contractor, outsider, who, hooks, mailoutbox):
    task = TaskFactory(customer=customer)
    maker = make_contractor("maker@example.com")
    OfferFactory(task=task, contractor=maker)
    by = {"outsider": outsider, "rival": contractor, "offer_maker": maker}[who]
    before, task_row = row_counts(), row(task)
    with pytest.raises(PermissionDenied):
        services.task_cancel(task, by=by, reason="I want it gone.")
    assert (row_counts(), row(task)) == (before, task_row)
    assert hooks == [] and mailoutbox == []


@pytest.mark.parametrize("status", ["submitted", "completed", "cancelled", "disputed"])
def test_finished_or_submitted_tasks_cannot_be_cancelled(customer, contractor, staff, status, hooks):
    task = booked(customer, contractor, status)
    before = row(task)
    for by in (customer, contractor, staff):
        with pytest.raises(IllegalTransition):
            services.task_cancel(task, by=by, reason="Changed my mind.")
    assert row(task) == before
    assert hooks == []
