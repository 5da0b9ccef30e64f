"""Bad input on every task form: the error shows next to its field, the
status says so, and nothing is written (row counts and the task unchanged).
Illegal transitions posted by hand get a clear message and change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from tasks.models import ProofSubmission
from tests.factories import CategoryFactory, ContractorProfileFactory
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import counts, field_errors, jpeg, state, text
from tests.tasks.test_pages import local, task_data, url

pytestmark = pytest.mark.django_db

NOT_AN_IMAGE = SimpleUploadedFile("leak.jpg", b"%PDF-1.4 this is not a picture", content_type="image/jpeg")


@pytest.fixture
def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def past(hours: int = 2) -> str:
    return local(timezone.now() - dt.timedelta(hours=hours))


def future(days: int = 2, hours: int = 0) -> str:
    return local(timezone.now() + dt.timedelta(days=days, hours=hours))


# --- posting ---------------------------------------------------------------------


def test_missing_fields_are_named_one_by_one(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    data = task_data(plumbing, title="", description="", category="", postal_code="", budget="", deadline="", photos=[])
    response = client.post("/tasks/new", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert field_errors(html, "title") == ["This field is required."]
    assert field_errors(html, "description") == ["This field is required."]
    assert field_errors(html, "category") == ["Choose the trade this job needs."]
    assert field_errors(html, "postal_code") == ["This field is required."]
    assert field_errors(html, "budget") == ["This field is required."]
    assert field_errors(html, "deadline") == ["Enter the date it must be done by."]
    assert field_errors(html, "photos") == ["Add at least 1 photo."]
    assert "Some answers need another look" in text(response)
    assert counts() == before


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("-5", "The budget cannot be negative."),
        ("0", "The budget must be more than $0."),
        ("12.345", "Use at most two decimal places (cents)."),
        ("1000000", "The budget can be at most $100,000."),
        ("99999999999999", "Enter an amount in dollars, like 180 or 180.50."),
        ("lots", "Enter an amount in dollars, like 180 or 180.50."),
        ("2", "Enter a budget between $5.00 and $100,000.00."),  # the service's floor
    ],
)
def test_bad_budgets_are_refused(client, customer, plumbing, budget, message):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, budget=budget))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "budget") == [message]
    assert counts() == before


def test_hourly_budget_needs_hours_within_limits(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    html = client.post("/tasks/new", task_data(plumbing, budget_type="hourly", budget="45")).content.decode()
    assert field_errors(html, "estimated_hours") == ["Say about how many hours the job takes."]
    html = client.post(
        "/tasks/new", task_data(plumbing, budget_type="hourly", budget="45", estimated_hours="500")
    ).content.decode()
    assert field_errors(html, "estimated_hours") == ["Ensure this value is less than or equal to 200."]
    assert counts() == before


@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        (past(), future(), "window_start", "The window must start in the future."),
        (future(2, 4), future(2), "window_end", "The window must end after it starts."),
        (future(2), "", "window_end", "Enter when the window ends."),
        ("", future(2), "window_start", "Enter when the window starts."),
        ("tomorrow-ish", future(2), "window_start", "Enter a valid date/time."),
    ],
)
def test_bad_windows_are_refused(client, customer, plumbing, start, end, field, message):
    client.force_login(customer)
    before = counts()
    data = task_data(plumbing, schedule_type="window", window_start=start, window_end=end, deadline="")
    response = client.post("/tasks/new", data)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert counts() == before


def test_deadline_in_the_past_is_refused(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, deadline=past()))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "deadline") == ["The deadline must be in the future."]
    assert counts() == before


def test_service_rules_show_next_to_their_fields(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, title="Tap", description="Drips.", postal_code="00000"))
    assert response.status_code == 400
    html = response.content.decode()
    assert field_errors(html, "title") == ["Use 5 to 120 characters for the title."]
    assert field_errors(html, "description") == ["Describe the job in 20 to 5,000 characters."]
    assert field_errors(html, "postal_code") == ["We don't know the ZIP code 00000. Check it and try again."]
    assert counts() == before


def test_browser_position_far_from_the_zip_is_refused(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, latitude="40.7128", longitude="-74.0060"))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "postal_code") == [
        "Your browser's position is far from ZIP 94110. Check the ZIP code."
    ]
    assert counts() == before


def test_a_file_that_is_not_an_image_is_refused(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, photos=[jpeg(), NOT_AN_IMAGE]))
    assert response.status_code == 400
    errors = field_errors(response.content.decode(), "photos")
    assert len(errors) == 1 and "image" in errors[0].lower()
    assert counts() == before


def test_eleven_photos_are_refused(client, customer, plumbing):
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, photos=[jpeg(f"{n}.jpg") for n in range(11)]))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "photos") == ["You chose 11 photos; the limit is 10."]
    assert counts() == before


def test_category_that_is_retired_is_refused(client, customer, plumbing):
    retired = CategoryFactory(name="Retired", slug="retired", is_active=False)
    client.force_login(customer)
    before = counts()
    response = client.post("/tasks/new", task_data(plumbing, category=retired.pk))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "category") == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert counts() == before


# --- editing ---------------------------------------------------------------------


def test_bad_edit_changes_nothing(client, customer, plumbing):
    task = TaskFactory(customer=customer, category=plumbing)
    client.force_login(customer)
    before = state(task)
    response = client.post(url("edit", task), task_data(plumbing, budget="-1", photos=[], action="save"))
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "budget") == ["The budget cannot be negative."]
    assert state(task) == before


def test_edit_with_a_bad_photo_keeps_the_details_too(client, customer, plumbing):
    task = TaskFactory(customer=customer, category=plumbing)
    client.force_login(customer)
    before = state(task)
    data = task_data(plumbing, title="A brand new title here", photos=[NOT_AN_IMAGE], action="save")
    response = client.post(url("edit", task), data)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "photos")
    assert state(task) == before


def test_removing_the_last_photo_of_an_open_task_is_refused(client, customer, plumbing):
    task = TaskFactory(customer=customer, category=plumbing)
    client.force_login(customer)
    before = state(task)
    data = task_data(plumbing, photos=[], action="save", remove_photos=[str(task.photos.get().public_id)])
    response = client.post(url("edit", task), data)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "photos") == [
        "An open task needs at least one photo. Add another before removing this one."
    ]
    assert state(task) == before


def test_edit_after_booking_is_refused(client, customer, contractor, plumbing):
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True, category=plumbing)
    client.force_login(customer)
    response = client.get(url("edit", task))
    assert response.status_code == 302
    assert "can no longer be edited" in text(client.get(response["Location"]))
    before = state(task)
    response = client.post(url("edit", task), task_data(plumbing, photos=[], action="save"))
    assert response.status_code == 409
    assert "This task is assigned" in text(response)
    assert state(task) == before


# --- offers and booking ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"price": ""}, "price", "This field is required."),
        ({"price": "-20"}, "price", "The price cannot be negative."),
        ({"price": "250000"}, "price", "The price can be at most $100,000."),
        ({"price": "110", "proposed_start": "past"}, "proposed_start", "Choose a time in the future."),
        ({"price": "110", "message": "x" * 2001}, "message", "Ensure this value has at most 2000 characters (it has 2001)."),
        ({"price": "1"}, "price", "Enter a price between $5.00 and $100,000.00."),
    ],
)
def test_bad_offers_are_refused(client, contractor, data, field, message):
    task = TaskFactory()
    if data.get("proposed_start") == "past":
        data = {**data, "proposed_start": past()}
    client.force_login(contractor)
    before = state(task)
    response = client.post(url("offer_create", task), data)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert state(task) == before


def test_second_offer_from_the_same_contractor_is_refused(client, contractor):
    task = TaskFactory()
    OfferFactory(task=task, contractor=contractor)
    client.force_login(contractor)
    before = state(task)
    response = client.post(url("offer_create", task), {"price": "100"})
    assert response.status_code == 409
    assert state(task) == before


def test_instant_book_needs_the_confirmation_box(client, contractor):
    task = TaskFactory(instant_book=True)
    client.force_login(contractor)
    before = state(task)
    response = client.post(url("instant_book", task), {})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "book-confirm") == [
        "Tick the box to confirm you take the job at this price."
    ]
    assert state(task) == before


def test_instant_book_is_refused_when_the_customer_did_not_allow_it(client, contractor):
    task = TaskFactory(instant_book=False)
    client.force_login(contractor)
    before = state(task)
    response = client.post(url("instant_book", task), {"book-confirm": "on"})
    assert response.status_code in (403, 409)
    assert state(task) == before


def test_accepting_when_someone_else_already_got_the_job(client, customer, contractor):
    task = TaskFactory(customer=customer)
    late = OfferFactory(task=task)
    OfferFactory(task=task, contractor=contractor, status="accepted")
    Task = type(task)
    Task.objects.filter(pk=task.pk).update(status="assigned", contractor=contractor, agreed_price_cents=11000)
    client.force_login(customer)
    before = state(task)
    response = client.post(url("offer_accept", task, offer_id=late.public_id))
    assert response.status_code == 409
    assert 'role="alert"' in response.content.decode()
    assert state(task) == before


# --- cancel, check-in, proof, review -------------------------------------------------


def test_cancel_an_open_task_needs_a_reason(client, customer):
    task = TaskFactory(customer=customer)
    client.force_login(customer)
    before = state(task)
    response = client.post(url("cancel", task), {"cancel-reason": ""})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "cancel-reason") == [
        "Say why you are cancelling (at least 5 characters)."
    ]
    assert state(task) == before


def test_check_in_with_an_impossible_position_is_refused(client, contractor):
    task = TaskFactory(assigned=True, contractor=contractor)
    client.force_login(contractor)
    before = state(task)
    response = client.post(url("check_in", task), {"latitude": "200", "longitude": "-122.41", "accuracy_m": "5"})
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 90." in text(response)
    assert state(task) == before


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"note": "", "photos": "one"}, "note", "Describe the work you did."),
        ({"note": "Done.", "photos": []}, "photos", "Add at least 1 photo."),
        ({"note": "Done.", "photos": "eleven"}, "photos", "You chose 11 photos; the limit is 10."),
    ],
)
def test_bad_proof_is_refused(client, contractor, data, field, message):
    task = TaskFactory(in_progress=True, contractor=contractor)
    photos = {"one": [jpeg()], "eleven": [jpeg(f"{n}.jpg") for n in range(11)]}
    data = {**data, "photos": photos.get(data["photos"], data["photos"]) if isinstance(data["photos"], str) else []}
    client.force_login(contractor)
    before = (state(task), counts())
    response = client.post(url("submit_proof", task), data)
    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert (state(task), counts()) == before


def test_proof_that_is_not_an_image_is_refused(client, contractor):
    task = TaskFactory(in_progress=True, contractor=contractor)
    client.force_login(contractor)
    before = (state(task), counts())
    response = client.post(url("submit_proof", task), {"note": "Done.", "photos": [jpeg(), NOT_AN_IMAGE]})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "photos")
    assert (state(task), counts()) == before


def test_request_changes_needs_a_reason_and_only_once(client, customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, submitted=True)
    ProofSubmission.objects.create(task=task, contractor=contractor, note="Done.")
    client.force_login(customer)
    before = state(task)
    response = client.post(url("request_changes", task), {"changes-reason": ""})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "changes-reason") == ["Say why, so the other side knows."]
    assert state(task) == before

    type(task).objects.filter(pk=task.pk).update(changes_requested_count=1)
    before = state(task)
    response = client.post(url("request_changes", task), {"changes-reason": "Still drips"})
    assert response.status_code == 409
    assert state(task) == before


# --- illegal transitions posted by hand ------------------------------------------------


@pytest.mark.parametrize(
    ("factory_kwargs", "action", "who"),
    [
        ({}, "approve", "customer"),  # open: nothing to approve
        ({}, "publish", "customer"),  # already open
        ({"in_progress": True}, "check_in", "contractor"),  # already checked in
        ({"assigned": True}, "submit_proof", "contractor"),  # not checked in yet
        ({"status": "completed", "agreed_price_cents": 12000}, "cancel", "customer"),
        ({"status": "cancelled"}, "publish", "customer"),
        ({"submitted": True}, "check_in", "contractor"),
    ],
)
def test_illegal_transitions_get_a_message_and_change_nothing(client, customer, contractor, factory_kwargs, action, who):
    kwargs = dict(factory_kwargs)
    if kwargs.get("status") == "completed" or any(k in kwargs for k in ("assigned", "in_progress", "submitted")):
        kwargs["contractor"] = contractor
    task = TaskFactory(customer=customer, **kwargs)
    client.force_login(customer if who == "customer" else contractor)
    data = {
        "cancel": {"cancel-reason": "Changed my mind"},
        "submit_proof": {"note": "Done.", "photos": [jpeg()]},
    }.get(action, {})
    before = (state(task), counts())
    response = client.post(url(action, task), data)
    assert response.status_code in (403, 409)
    assert 'id="action-error"' in response.content.decode()
    assert (state(task), counts()) == before


# --- Find work filters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("min_budget=-5", "min_budget", "The budget cannot be negative."),
        ("max_budget=abc", "max_budget", "Enter an amount in dollars, like 180 or 180.50."),
        ("min_budget=200&max_budget=100", "max_budget", "The upper budget must be at least the lower one."),
        ("distance=500", "distance", "Your service radius is 25 km; widen it in your work profile to look further."),
        ("distance=0", "distance", "Ensure this value is greater than or equal to 1."),
        ("date_from=2030-01-10&date_to=2030-01-01", "date_to", "The end date must be on or after the start date."),
        ("date_from=soon", "date_from", "Enter a valid date."),
        ("sort=cheapest", "sort", "Select a valid choice. cheapest is not one of the available choices."),
        ("category=astrology", "category", "Select a valid choice. That choice is not one of the available choices."),
    ],
)
def test_bad_find_work_filters_say_what_is_wrong(client, contractor, query, field, message):
    TaskFactory()
    client.force_login(contractor)
    response = client.get(f"/tasks/find?{query}")
    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [message]
    assert "Some filters need another look" in text(response)


def test_find_work_for_a_contractor_who_has_not_finished_onboarding(client):
    profile = ContractorProfileFactory(onboarded_at=None)
    client.force_login(profile.user)
    response = client.get("/tasks/find")
    assert "Finish your work profile first" in text(response)
    assert reverse("accounts:onboarding") in response.content.decode()
