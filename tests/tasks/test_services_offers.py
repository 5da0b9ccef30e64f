"""offer_create / offer_withdraw / offer_decline / offer_accept / task_instant_book."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import ApplicationError, Conflict, PermissionDenied
from tasks import services
from tasks.models import Offer, Task, TaskEvent
from tasks.state import IllegalTransition
from tests.factories import ContractorProfileFactory, UserFactory
from tests.payments.helpers import fund, instant_book
from tests.tasks._services_support import events, make_contractor, row, row_counts
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture
def task(customer):
    return TaskFactory(customer=customer, title="Fix the leaking kitchen tap", instant_book=True)


@pytest.fixture
def hooks(monkeypatch):
    calls = []
    monkeypatch.setattr("tasks.payment_hooks.on_assigned", lambda task, offer: calls.append(("assigned", task.pk, offer.pk)))
    monkeypatch.setattr("tasks.payment_hooks.on_completed", lambda task: calls.append(("completed", task.pk)))
    monkeypatch.setattr(
        "tasks.payment_hooks.on_cancelled", lambda task, rule: calls.append(("cancelled", task.pk, rule.refund))
    )
    return calls


# --- making offers -----------------------------------------------------------------


def test_contractor_offers_and_the_customer_is_emailed(task, contractor, customer, mailoutbox, django_capture_on_commit_callbacks):
    start = timezone.now() + dt.timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        offer = services.offer_create(
            task, by=contractor, price_cents=11_000, message="  Thursday morning works.  ", proposed_start=start
        )
    offer = Offer.objects.get(pk=offer.pk)
    assert (offer.status, offer.price_cents, offer.message, offer.proposed_start) == (
        "pending",
        11_000,
        "Thursday morning works.",
        start,
    )
    assert offer.contractor == contractor and offer.is_instant is False
    event = TaskEvent.objects.get(task=task, kind="offer_made")
    assert event.actor == contractor
    assert event.data == {"offer": str(offer.public_id), "price_cents": 11_000}
    assert row(task)["status"] == S.OPEN
    [email] = mailoutbox
    assert email.to == [customer.email]
    assert "New offer" in email.subject
    assert "Bob Builder offered to do “Fix the leaking kitchen tap” for $110.00." in email.body
    assert "Thursday morning works." in email.body
    assert f"http://127.0.0.1:8000/tasks/{task.public_id}/" in email.body


def test_offers_on_an_hourly_task_are_hourly_rates(customer, contractor, mailoutbox, django_capture_on_commit_callbacks):
    hourly = TaskFactory(customer=customer, budget_type="hourly", budget_cents=9_000, estimated_hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        services.offer_create(hourly, by=contractor, price_cents=8_000)
    assert "$80.00 an hour" in mailoutbox[0].body
    with pytest.raises(ApplicationError) as caught:
        services.offer_create(hourly, by=make_contractor("cheap@example.com"), price_cents=999)
    assert "hourly rate" in caught.value.fields["price_cents"][0]


BAD_OFFERS = [
    ("price_cents", {"price_cents": 0}),
    ("price_cents", {"price_cents": -500}),
    ("price_cents", {"price_cents": 499}),
    ("price_cents", {"price_cents": 10_000_001}),
    ("price_cents", {"price_cents": "a lot"}),
    ("price_cents", {"price_cents": None}),
    ("message", {"price_cents": 10_000, "message": "x" * 2001}),
    ("proposed_start", {"price_cents": 10_000, "proposed_start": "past"}),
    ("proposed_start", {"price_cents": 10_000, "proposed_start": "far"}),
    ("proposed_start", {"price_cents": 10_000, "proposed_start": "tomorrow at nine"}),
]


@pytest.mark.parametrize(("field", "kwargs"), BAD_OFFERS)
def test_bad_offer_is_refused_and_nothing_written(task, contractor, field, kwargs, mailoutbox):
    kwargs = dict(kwargs)
    if kwargs.get("proposed_start") == "past":
        kwargs["proposed_start"] = timezone.now() - dt.timedelta(hours=1)
    elif kwargs.get("proposed_start") == "far":
        kwargs["proposed_start"] = timezone.now() + dt.timedelta(days=400)
    before = row_counts()
    with pytest.raises(ApplicationError) as caught:
        services.offer_create(task, by=contractor, **kwargs)
    assert caught.value.code == "invalid"
    assert field in caught.value.fields
    assert row_counts() == before
    assert mailoutbox == []


def test_one_pending_offer_per_contractor(task, contractor):
    services.offer_create(task, by=contractor, price_cents=11_000)
    with pytest.raises(Conflict) as caught:
        services.offer_create(task, by=contractor, price_cents=10_000)
    assert caught.value.code == "offer_exists"
    assert Offer.objects.filter(task=task).count() == 1


def test_after_withdrawing_a_contractor_may_offer_again(task, contractor):
    first = services.offer_create(task, by=contractor, price_cents=11_000)
    services.offer_withdraw(first, by=contractor)
    second = services.offer_create(task, by=contractor, price_cents=10_000)
    assert row(second)["status"] == "pending"


def _who(name, customer, outsider):
    if name == "customer_of_task":
        return customer, "not_contractor"
    if name == "plain_customer":
        return outsider, "not_contractor"
    if name == "unverified":
        return ContractorProfileFactory(user__email="unv@example.com", user__email_verified_at=None).user, "email_not_verified"
    if name == "not_onboarded":
        return ContractorProfileFactory(user__email="half@example.com", onboarded_at=None).user, "not_onboarded"
    if name == "no_profile":
        return UserFactory(email="np@example.com", is_contractor=True), "not_onboarded"
    raise AssertionError(name)


@pytest.mark.parametrize("who", ["customer_of_task", "plain_customer", "unverified", "not_onboarded", "no_profile"])
def test_only_verified_onboarded_contractors_offer_or_book(task, customer, outsider, who, mailoutbox):
    by, code = _who(who, customer, outsider)
    before, task_row = row_counts(), row(task)
    with pytest.raises(PermissionDenied) as caught:
        services.offer_create(task, by=by, price_cents=11_000)
    assert caught.value.code == code
    with pytest.raises(PermissionDenied) as caught:
        services.task_instant_book(task, by=by)
    assert caught.value.code == code
    assert row_counts() == before
    assert row(task) == task_row
    assert mailoutbox == []


def test_a_contractor_cannot_offer_on_or_book_their_own_task(db):
    both = ContractorProfileFactory(user__email="both@example.com", user__is_customer=True).user
    own = TaskFactory(customer=both, instant_book=True)
    before = row_counts()
    for call in (
        lambda: services.offer_create(own, by=both, price_cents=11_000),
        lambda: services.task_instant_book(own, by=both),
    ):
        with pytest.raises(PermissionDenied) as caught:
            call()
        assert caught.value.code == "own_task"
    assert row_counts() == before


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        ("draft", IllegalTransition, "illegal_transition"),
        ("cancelled", IllegalTransition, "illegal_transition"),
        ("assigned", Conflict, "already_booked"),
        ("in_progress", Conflict, "already_booked"),
        ("submitted", Conflict, "already_booked"),
        ("completed", Conflict, "already_booked"),
        ("disputed", Conflict, "already_booked"),
    ],
)
def test_offers_and_bookings_only_on_open_tasks(customer, contractor, status, error, code):
    other = make_contractor("other@example.com")
    task = TaskFactory(customer=customer, status=status, contractor=other, agreed_price_cents=12_000, instant_book=True)
    if status in ("draft", "cancelled"):
        Task.objects.filter(pk=task.pk).update(contractor=None, agreed_price_cents=None)
    before = row_counts()
    with pytest.raises(error) as caught:
        services.offer_create(task, by=contractor, price_cents=11_000)
    assert caught.value.code == code
    with pytest.raises(error) as caught:
        services.task_instant_book(task, by=contractor)
    assert caught.value.code == code
    assert row_counts() == before


# --- withdraw and decline -------------------------------------------------------------------


def test_contractor_withdraws_their_offer(task, contractor):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    services.offer_withdraw(offer, by=contractor)
    assert row(offer)["status"] == "withdrawn"
    assert row(offer)["decided_at"] is not None
    assert TaskEvent.objects.get(task=task, kind="offer_withdrawn").data == {"offer": str(offer.public_id)}


def test_nobody_else_withdraws_an_offer(task, contractor, customer, outsider):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    before = row(offer)
    for by in (customer, outsider, make_contractor("rival@example.com")):
        with pytest.raises(PermissionDenied):
            services.offer_withdraw(offer, by=by)
    assert row(offer) == before


def test_a_withdrawn_offer_cannot_be_withdrawn_declined_or_accepted(task, contractor, customer):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    services.offer_withdraw(offer, by=contractor)
    before, task_row = row(offer), row(task)
    for call in (
        lambda: services.offer_withdraw(offer, by=contractor),
        lambda: services.offer_decline(offer, by=customer),
        lambda: services.offer_accept(offer, by=customer),
    ):
        with pytest.raises(Conflict) as caught:
            call()
        assert caught.value.code == "offer_not_pending"
    assert row(offer) == before
    assert row(task) == task_row


def test_customer_declines_an_offer_and_its_maker_hears_why(task, contractor, customer, mailoutbox, django_capture_on_commit_callbacks):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.offer_decline(offer, by=customer, reason="Too late in the week for me.")
    assert (row(offer)["status"], row(offer)["decline_reason"]) == ("declined", "Too late in the week for me.")
    event = TaskEvent.objects.get(task=task, kind="offer_declined")
    assert event.actor == customer
    assert event.data == {"offer": str(offer.public_id), "reason": "Too late in the week for me."}
    [email] = mailoutbox
    assert email.to == [contractor.email]
    assert "Reason: Too late in the week for me." in email.body


def test_decline_reason_is_capped(task, contractor, customer):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    with pytest.raises(ApplicationError) as caught:
        services.offer_decline(offer, by=customer, reason="x" * 501)
    assert "reason" in caught.value.fields
    assert row(offer)["status"] == "pending"


def test_only_the_customer_declines(task, contractor, outsider, staff):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    for by in (outsider, contractor, staff):
        with pytest.raises(PermissionDenied):
            services.offer_decline(offer, by=by)
    assert row(offer)["status"] == "pending"


# --- accept ----------------------------------------------------------------------------------


def test_customer_accepts_an_offer_the_rest_are_declined_and_told(
    task, contractor, customer, hooks, mailoutbox, django_capture_on_commit_callbacks
):
    rival = make_contractor("rival@example.com")
    gone = make_contractor("gone@example.com")
    winner = services.offer_create(task, by=contractor, price_cents=11_000)
    loser = services.offer_create(task, by=rival, price_cents=9_000)
    withdrawn = services.offer_create(task, by=gone, price_cents=9_500)
    services.offer_withdraw(withdrawn, by=gone)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        result = services.offer_accept(winner, by=customer)

    task.refresh_from_db()
    assert result.pk == task.pk and result.status == S.ASSIGNED
    assert (task.status, task.contractor, task.agreed_price_cents) == (S.ASSIGNED, contractor, 11_000)
    assert task.assigned_at is not None
    assert row(winner)["status"] == "accepted"
    assert row(loser)["status"] == "declined"
    assert row(loser)["decline_reason"] == "The customer chose another offer."
    assert row(withdrawn)["status"] == "withdrawn"
    assert Offer.objects.filter(task=task, status="accepted").count() == 1
    event = TaskEvent.objects.get(task=task, kind="offer_accepted")
    assert (event.actor, event.from_status, event.to_status) == (customer, "open", "assigned")
    assert event.data == {"offer": str(winner.public_id), "contractor": contractor.pk, "price_cents": 11_000}
    assert hooks == [("assigned", task.pk, winner.pk)]
    by_recipient = {m.to[0]: m for m in mailoutbox}
    assert set(by_recipient) == {contractor.email, rival.email}
    assert "accepted your offer of $110.00" in by_recipient[contractor.email].body
    assert "was not accepted" in by_recipient[rival.email].subject


@pytest.mark.parametrize("who", ["outsider", "maker", "rival", "staff"])
def test_only_the_customer_accepts(task, contractor, outsider, staff, who, hooks, mailoutbox):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    by = {"outsider": outsider, "maker": contractor, "rival": make_contractor("r@example.com"), "staff": staff}[who]
    before, task_row, offer_row = row_counts(), row(task), row(offer)
    mailoutbox.clear()
    with pytest.raises(PermissionDenied):
        services.offer_accept(offer, by=by)
    assert (row_counts(), row(task), row(offer)) == (before, task_row, offer_row)
    assert hooks == [] and mailoutbox == []


def test_unverified_customer_cannot_accept(customer, contractor):
    task = TaskFactory(customer=customer)
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    customer.email_verified_at = None
    customer.save()
    with pytest.raises(PermissionDenied) as caught:
        services.offer_accept(offer, by=customer)
    assert caught.value.code == "email_not_verified"
    assert row(task)["status"] == S.OPEN


def test_accepting_on_a_booked_task_says_already_booked(task, contractor, customer):
    first = services.offer_create(task, by=contractor, price_cents=11_000)
    second = services.offer_create(task, by=make_contractor("late@example.com"), price_cents=10_000)
    fund(first)  # the customer accepts and pays: the payment's webhook books the task
    assert row(task)["status"] == S.ASSIGNED
    with pytest.raises(Conflict) as caught:
        services.offer_accept(second, by=customer)
    assert caught.value.code == "already_booked"
    assert caught.value.message == "This task has already been booked."
    assert row(task)["contractor_id"] == contractor.pk


def test_accepting_without_a_held_payment_is_refused_and_changes_nothing(task, contractor, customer, mailoutbox):
    offer = services.offer_create(task, by=contractor, price_cents=11_000)
    mailoutbox.clear()
    before, task_row, offer_row = row_counts(), row(task), row(offer)
    with pytest.raises(Conflict) as caught:
        services.offer_accept(offer, by=customer)
    assert caught.value.code == "payment_required"
    assert (row_counts(), row(task), row(offer)) == (before, task_row, offer_row)
    assert mailoutbox == []


def test_accepting_on_a_cancelled_task_is_an_illegal_transition(customer):
    task = TaskFactory(customer=customer, status=S.CANCELLED)
    offer = OfferFactory(task=task)
    with pytest.raises(IllegalTransition):
        services.offer_accept(offer, by=customer)
    assert row(offer)["status"] == "pending"


# --- instant booking ----------------------------------------------------------------------


def test_contractor_books_instantly_at_the_posted_price(
    task, contractor, customer, hooks, mailoutbox, django_capture_on_commit_callbacks
):
    rival = make_contractor("rival@example.com")
    own = services.offer_create(task, by=contractor, price_cents=15_000)
    other = services.offer_create(task, by=rival, price_cents=9_000)
    mailoutbox.clear()
    start = timezone.now() + dt.timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.task_instant_book(task, by=contractor, proposed_start=start)

    task.refresh_from_db()
    assert result.status == S.ASSIGNED
    assert (task.status, task.contractor, task.agreed_price_cents) == (S.ASSIGNED, contractor, 12_000)
    booking = Offer.objects.get(task=task, status="accepted")
    assert (booking.contractor, booking.price_cents, booking.is_instant, booking.proposed_start) == (
        contractor,
        12_000,
        True,
        start,
    )
    assert row(own)["status"] == "withdrawn"
    assert row(other)["status"] == "declined"
    assert events(task)[-1] == ("instant_booked", "open", "assigned")
    assert TaskEvent.objects.get(task=task, kind="instant_booked").data == {
        "offer": str(booking.public_id),
        "price_cents": 12_000,
    }
    assert hooks == [("assigned", task.pk, booking.pk)]
    subjects = {(m.to[0], m.subject) for m in mailoutbox}
    assert (customer.email, "[BittieTasks] “Fix the leaking kitchen tap” was booked") in subjects
    assert (contractor.email, "[BittieTasks] You got the job: “Fix the leaking kitchen tap”") in subjects
    assert any(to == rival.email and "not accepted" in s for to, s in subjects)


def test_instant_booking_an_hourly_task_agrees_the_rate(customer, contractor):
    hourly = TaskFactory(customer=customer, budget_type="hourly", budget_cents=9_000, estimated_hours=4, instant_book=True)
    escrow = instant_book(hourly, contractor)  # the customer's saved card pays the estimate
    assert row(hourly)["agreed_price_cents"] == 9_000
    assert (escrow.status, escrow.price_cents) == ("held", 36_000)


def test_instant_booking_needs_the_customer_to_allow_it(customer, contractor):
    task = TaskFactory(customer=customer, instant_book=False)
    before, task_row = row_counts(), row(task)
    with pytest.raises(Conflict) as caught:
        services.task_instant_book(task, by=contractor)
    assert caught.value.code == "instant_book_not_allowed"
    assert (row_counts(), row(task)) == (before, task_row)


def test_instant_booking_a_booked_task_says_already_booked(task, contractor):
    instant_book(task, contractor)
    with pytest.raises(Conflict) as caught:
        services.task_instant_book(task, by=make_contractor("second@example.com"))
    assert caught.value.code == "already_booked"
    assert Offer.objects.filter(task=task, status="accepted").count() == 1


def test_instant_booking_with_a_start_in_the_past_is_refused(task, contractor):
    before = row_counts()
    with pytest.raises(ApplicationError) as caught:
        services.task_instant_book(task, by=contractor, proposed_start=timezone.now() - dt.timedelta(days=1))
    assert "proposed_start" in caught.value.fields
    assert row_counts() == before
