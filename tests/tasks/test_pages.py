"""Task pages: each renders for the right user, and each action works through
its form and redirects back to the task page with a message."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import CheckIn, Offer, ProofSubmission, Task, TaskEvent
from tests.factories import CategoryFactory
from tests.payments.helpers import SUCCESS, save_card
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import jpeg, text

pytestmark = pytest.mark.django_db


def local(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


def task_data(trade, **overrides) -> dict:
    data = {
        "title": "Fix the dripping bathroom tap",
        "description": "The bathroom tap drips all night; probably a worn washer.",
        "category": trade.pk,
        "address": "3250 24th St",
        "postal_code": "94110",
        "latitude": "",
        "longitude": "",
        "budget_type": "fixed",
        "budget": "120.50",
        "estimated_hours": "",
        "schedule_type": "flexible",
        "window_start": "",
        "window_end": "",
        "deadline": local(timezone.now() + dt.timedelta(days=5)),
        "urgency": "soon",
        "action": "publish",
        "photos": [jpeg()],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def detail(task: Task) -> str:
    return reverse("tasks:detail", kwargs={"public_id": task.public_id})


def url(name: str, task: Task, **kwargs) -> str:
    return reverse(f"tasks:{name}", kwargs={"public_id": task.public_id, **kwargs})


# --- posting ---------------------------------------------------------------------


def test_post_page_has_phone_friendly_inputs(client, customer, plumbing):
    client.force_login(customer)
    response = client.get("/tasks/new")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file" name="photos"' in html and "multiple" in html and 'accept="image/*"' in html
    assert 'name="budget" inputmode="decimal"' in html.replace('type="text" ', "")
    assert html.count('type="datetime-local"') == 3
    assert 'value="draft"' in html and "Save draft" in html
    assert 'value="publish"' in html and "Post task" in html
    assert f'<option value="{plumbing.pk}">Plumbing</option>' in html


def test_customer_posts_a_task_with_a_photo(client, customer, plumbing):
    client.force_login(customer)
    response = client.post("/tasks/new", task_data(plumbing))
    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail(task)
    assert (task.status, task.customer, task.budget_cents, task.budget_type) == ("open", customer, 12050, "fixed")
    assert (task.postal_code, task.city, task.address, task.urgency) == ("94110", "San Francisco", "3250 24th St", "soon")
    assert task.photos.count() == 1

    page = text(client.get(response["Location"]))
    assert "Your task is posted." in page
    assert "$120.50 fixed price" in page
    assert "3250 24th St, San Francisco, CA 94110" in page
    assert "Open" in page and "Waiting for offers" in page
    assert "Posted · Dana Lee" in page


def test_save_draft_needs_no_photo_and_only_the_customer_sees_it(client, customer, plumbing):
    client.force_login(customer)
    response = client.post("/tasks/new", task_data(plumbing, action="draft", photos=[]))
    task = Task.objects.get()
    assert response.status_code == 302
    assert task.status == "draft"
    page = text(client.get(detail(task)))
    assert "Draft saved" in page and "Post this task" in page


def test_hourly_task_with_a_window(client, customer, plumbing):
    client.force_login(customer)
    start = timezone.now() + dt.timedelta(days=2)
    data = task_data(
        plumbing,
        budget_type="hourly",
        budget="45",
        estimated_hours="3",
        schedule_type="window",
        window_start=local(start),
        window_end=local(start + dt.timedelta(hours=4)),
        deadline="",
        instant_book="on",
    )
    assert client.post("/tasks/new", data).status_code == 302
    task = Task.objects.get()
    assert (task.budget_type, task.budget_cents, task.estimated_hours, task.instant_book) == ("hourly", 4500, 3, True)
    assert task.schedule_type == "window" and task.deadline is None
    assert "$45.00/hour × about 3 h (about $135.00)" in text(client.get(detail(task)))


def test_unverified_customer_sees_why_and_is_refused(client, plumbing):
    from tests.factories import UserFactory

    user = UserFactory(unverified=True)
    client.force_login(user)
    page = text(client.get("/tasks/new"))
    assert "Verify your email" in page
    assert "Posting needs a verified email" in page
    response = client.post("/tasks/new", task_data(plumbing))
    assert response.status_code == 403
    assert Task.objects.count() == 0


# --- the task page -----------------------------------------------------------------


def test_stranger_sees_open_task_with_approximate_location_only(client, outsider):
    task = TaskFactory()
    client.force_login(outsider)
    response = client.get(detail(task))
    assert response.status_code == 200
    page = text(response)
    assert "Near San Francisco, CA 94110 (about 1 km)" in page
    assert "3250 24th St" not in page
    assert task.title in page


def test_anonymous_visitor_sees_open_task_and_a_login_link(client):
    task = TaskFactory()
    page = text(client.get(detail(task)))
    assert "Log in to make an offer" in page
    assert "3250 24th St" not in page


def test_customer_edits_an_open_task(client, customer, plumbing):
    task = TaskFactory(customer=customer, category=plumbing)
    client.force_login(customer)
    form = client.get(url("edit", task))
    assert form.status_code == 200
    assert 'value="120.00"' in form.content.decode()
    data = task_data(plumbing, title="Fix the leaking kitchen tap today", budget="150", photos=[], action="save")
    response = client.post(url("edit", task), data)
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.title, task.budget_cents) == ("Fix the leaking kitchen tap today", 15000)
    assert task.photos.count() == 1
    assert "Your changes are saved." in text(client.get(detail(task)))


def test_customer_replaces_the_only_photo_of_an_open_task(client, customer, plumbing):
    task = TaskFactory(customer=customer, category=plumbing)
    old = task.photos.get()
    client.force_login(customer)
    data = task_data(plumbing, photos=[jpeg("new.jpg")], action="save", remove_photos=[str(old.public_id)])
    assert client.post(url("edit", task), data).status_code == 302
    assert list(task.photos.values_list("pk", flat=True)) != [old.pk]
    assert task.photos.count() == 1


def test_customer_publishes_a_draft(client, customer):
    task = TaskFactory(customer=customer, draft=True)
    client.force_login(customer)
    response = client.post(url("publish", task))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == "open"


def test_customer_cancels_with_a_reason(client, customer):
    task = TaskFactory(customer=customer)
    client.force_login(customer)
    response = client.post(url("cancel", task), {"cancel-reason": "Fixed it myself"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.cancel_reason) == ("cancelled", "Fixed it myself")
    page = text(client.get(detail(task)))
    assert "The task is cancelled." in page and "Fixed it myself" in page


def test_contractor_makes_an_offer_and_withdraws_it(client, contractor):
    task = TaskFactory()
    client.force_login(contractor)
    page = text(client.get(detail(task)))
    assert "Make an offer" in page
    start = timezone.now() + dt.timedelta(days=1)
    response = client.post(
        url("offer_create", task), {"price": "110", "message": "Thursday works.", "proposed_start": local(start)}
    )
    assert response.status_code == 302
    offer = Offer.objects.get()
    assert (offer.contractor, offer.price_cents, offer.message, offer.status) == (contractor, 11000, "Thursday works.", "pending")
    page = text(client.get(detail(task)))
    assert "Your offer is sent." in page and "You offered $110.00" in page
    response = client.post(url("offer_withdraw", task, offer_id=offer.public_id))
    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.status == "withdrawn"


def test_customer_compares_offers_side_by_side_and_accepts_one(
    client, customer, contractor, django_capture_on_commit_callbacks
):
    task = TaskFactory(customer=customer)
    bob = OfferFactory(task=task, contractor=contractor, price_cents=11000)
    other = OfferFactory(task=task, price_cents=9500)
    client.force_login(customer)
    page = text(client.get(detail(task)))
    assert "2 offers" in page
    assert "$110.00 total for the job" in page and "$95.00 total for the job" in page
    assert "Bob Builder" in page and "$85.00/hour" in page and "No reviews yet" in page
    assert 'href="/pros/bob-builder/"' in client.get(detail(task)).content.decode()

    # Accept -> the checkout page; paying there books Bob (the payment's webhook).
    response = client.post(url("offer_accept", task, offer_id=bob.public_id))
    assert response.status_code == 302
    checkout = response["Location"]
    assert checkout.startswith("/payments/checkout/")
    assert Task.objects.get(pk=task.pk).status == "open"
    with django_capture_on_commit_callbacks(execute=True):  # the webhook is handled after the commit
        response = client.post(checkout, {"card_number": SUCCESS, "expiry": "12/34", "cvc": "123"})
    assert response.status_code == 302
    # Back on the checkout page the payment is done: on to the booked task.
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"] == detail(task)
    task.refresh_from_db()
    bob.refresh_from_db()
    other.refresh_from_db()
    assert (task.status, task.contractor, task.agreed_price_cents) == ("assigned", contractor, 11000)
    assert (bob.status, other.status) == ("accepted", "declined")
    assert "You booked Bob Builder." in text(client.get(detail(task)))


def test_customer_declines_an_offer(client, customer):
    task = TaskFactory(customer=customer)
    offer = OfferFactory(task=task)
    client.force_login(customer)
    response = client.post(url("offer_decline", task, offer_id=offer.public_id), {f"decline-{offer.public_id}-reason": "Too late"})
    assert response.status_code == 302
    offer.refresh_from_db()
    assert (offer.status, offer.decline_reason) == ("declined", "Too late")


def test_contractor_books_instantly(client, contractor):
    task = TaskFactory(instant_book=True)
    save_card(task.customer)  # instant booking charges the customer's saved card
    client.force_login(contractor)
    assert "Book now at $120.00" in text(client.get(detail(task)))
    response = client.post(url("instant_book", task), {"book-confirm": "on"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.contractor, task.agreed_price_cents) == ("assigned", contractor, 12000)
    page = text(client.get(detail(task)))
    assert "3250 24th St, San Francisco, CA 94110" in page


def test_assigned_contractor_checks_in_with_position_then_submits_proof(client, contractor):
    task = TaskFactory(assigned=True, contractor=contractor)
    client.force_login(contractor)
    page = text(client.get(detail(task)))
    assert "I'm here: check in" in page
    assert "3250 24th St" in page
    response = client.post(url("check_in", task), {"latitude": "37.7600", "longitude": "-122.4150", "accuracy_m": "12"})
    assert response.status_code == 302
    check_in = CheckIn.objects.get()
    assert (check_in.latitude, check_in.longitude, check_in.accuracy_m) == (37.76, -122.415, 12.0)
    task.refresh_from_db()
    assert task.status == "in_progress"

    response = client.post(url("submit_proof", task), {"note": "New washer fitted.", "photos": [jpeg("a.jpg"), jpeg("b.jpg")]})
    assert response.status_code == 302
    task.refresh_from_db()
    proof = ProofSubmission.objects.get()
    assert task.status == "submitted"
    assert proof.note == "New washer fitted."
    assert proof.photos.count() == 2
    page = text(client.get(detail(task)))
    assert "Proof of work sent." in page and "Approves automatically in" in page


def test_check_in_without_a_position(client, contractor):
    task = TaskFactory(assigned=True, contractor=contractor)
    client.force_login(contractor)
    assert client.post(url("check_in", task), {"latitude": "", "longitude": "", "accuracy_m": ""}).status_code == 302
    assert CheckIn.objects.get().latitude is None




def test_customer_approves(client, customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, submitted=True)
    ProofSubmission.objects.create(task=task, contractor=contractor, note="Done, see photos.")
    client.force_login(customer)
    page = text(client.get(detail(task)))
    assert "Approve the work" in page and "Done, see photos." in page
    response = client.post(url("approve", task))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == "completed"
    assert "Approved. Thank you!" in text(client.get(detail(task)))


def test_customer_requests_changes_once(client, customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, submitted=True)
    ProofSubmission.objects.create(task=task, contractor=contractor, note="Done.")
    client.force_login(customer)
    response = client.post(url("request_changes", task), {"changes-reason": "Still drips a little"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.changes_requested_count) == ("in_progress", 1)
    page = text(client.get(detail(task)))
    assert "Still drips a little" in page


def test_timeline_lists_events(client, customer):
    task = TaskFactory(customer=customer)
    TaskEvent.objects.create(task=task, kind="published", actor=customer, to_status="open")
    client.force_login(customer)
    assert "Posted · Dana Lee" in text(client.get(detail(task)))


# --- lists -------------------------------------------------------------------------


def test_my_tasks_groups_by_state(client, customer, contractor):
    open_task = TaskFactory(customer=customer, title="Open one")
    OfferFactory(task=open_task)
    TaskFactory(customer=customer, draft=True, title="Draft one")
    TaskFactory(customer=customer, status="cancelled", title="Cancelled one")
    TaskFactory(title="Someone else's")
    client.force_login(customer)
    active = text(client.get("/tasks/mine"))
    assert "Open one" in active and "1 offer to compare" in active
    assert "Draft one" not in active and "Someone else's" not in active
    assert "Draft one" in text(client.get("/tasks/mine?tab=drafts"))
    assert "Cancelled one" in text(client.get("/tasks/mine?tab=cancelled"))
    assert "Nothing finished yet" in text(client.get("/tasks/mine?tab=done"))


def test_find_work_lists_nearby_open_tasks_with_distance(client, contractor, customer):
    TaskFactory(customer=customer, title="Near leak", instant_book=True)
    TaskFactory(customer=customer, title="Far leak", latitude=34.05, longitude=-118.24, postal_code="90012", city="Los Angeles")
    TaskFactory(customer=customer, title="Draft leak", draft=True)
    client.force_login(contractor)
    response = client.get("/tasks/find")
    assert response.status_code == 200
    page = text(response)
    assert "Near leak" in page and "Far leak" not in page and "Draft leak" not in page
    # 1.0 km to the address; 0.46 km to its ~1 km cell's centre, which is what is shown.
    assert "under 1 km away" in page
    assert "Instant booking" in page
    assert "1 open task" in page


def test_find_work_shows_the_distance_to_the_approximate_point_only(client, contractor, customer):
    # Bob works from 37.7509, -122.4153. The task's address is 3.1 km away; its
    # ~1 km cell's centre, all a stranger may learn, is 2.7 km away.
    TaskFactory(customer=customer, title="Leaky tap", latitude=37.7790, longitude=-122.4153)
    client.force_login(contractor)
    page = text(client.get("/tasks/find?sort=distance"))
    assert "Leaky tap" in page
    assert "2.7 km away" in page
    assert "3.1 km" not in page


def test_find_work_filters_and_search(client, contractor, customer):
    electrical = CategoryFactory(name="Electrical", slug="electrical")
    TaskFactory(customer=customer, title="Replace a light switch", category=electrical, budget_cents=8000)
    TaskFactory(customer=customer, title="Unblock the sink", budget_cents=30000)
    client.force_login(contractor)
    assert "Unblock the sink" not in text(client.get("/tasks/find?category=electrical"))
    page = text(client.get("/tasks/find?min_budget=100"))
    assert "Unblock the sink" in page and "Replace a light switch" not in page
    page = text(client.get("/tasks/find?q=sink"))
    assert "Unblock the sink" in page and "Replace a light switch" not in page
    page = text(client.get("/tasks/find?sort=budget"))
    assert page.index("Unblock the sink") < page.index("Replace a light switch")


def test_find_work_for_a_customer_points_to_onboarding(client, customer):
    client.force_login(customer)
    response = client.get("/tasks/find")
    assert response.status_code == 200
    assert "Find work is for contractors" in text(response)
    assert reverse("accounts:onboarding") in response.content.decode()


def test_my_jobs_lists_assigned_jobs_and_pending_offers(client, contractor):
    TaskFactory(assigned=True, contractor=contractor, title="Booked job")
    offered = TaskFactory(title="Offered job")
    OfferFactory(task=offered, contractor=contractor, price_cents=9900)
    client.force_login(contractor)
    assert "Booked job" in text(client.get("/tasks/jobs"))
    page = text(client.get("/tasks/jobs?tab=offers"))
    assert "Offered job" in page and "Your offer: $99.00 (Pending)" in page


def test_nav_links_by_role(client, customer, contractor):
    client.force_login(customer)
    html = client.get("/tasks/mine").content.decode()
    assert 'href="/tasks/new"' in html and 'href="/tasks/mine"' in html and 'href="/tasks/find"' not in html
    client.force_login(contractor)
    html = client.get("/tasks/jobs").content.decode()
    assert 'href="/tasks/find"' in html and 'href="/tasks/jobs"' in html and 'href="/tasks/new"' not in html


def test_dashboard_links_post_a_task(client, customer):
    client.force_login(customer)
    assert 'href="/tasks/new"' in client.get(reverse("accounts:dashboard")).content.decode()


# --- photos ------------------------------------------------------------------------


def test_photo_and_thumbnail_are_served_privately(client):
    task = TaskFactory()
    photo = task.photos.get()
    for name in ("photo", "photo_thumb"):
        response = client.get(reverse(f"tasks:{name}", kwargs={"public_id": photo.public_id}))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"] == "private, max-age=3600"
        assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"


def test_customer_saves_and_posts_a_draft_from_the_edit_page(client, customer, plumbing):
    task = TaskFactory(customer=customer, draft=True, photos=0, category=plumbing)
    client.force_login(customer)
    assert "Save and post" in text(client.get(url("edit", task)))
    response = client.post(url("edit", task), task_data(plumbing, photos=[jpeg()], action="publish"))
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.title, task.photos.count()) == ("open", "Fix the dripping bathroom tap", 1)
    assert "Your task is posted." in text(client.get(detail(task)))
