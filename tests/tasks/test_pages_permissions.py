"""Other people's tasks: another customer, another contractor and an
anonymous visitor try every page and every POST on Dana's tasks. Each is
refused (403 for a task they may look at, 404 for one they may not, the login
page for anonymous actions) and nothing changes. Also: who sees the exact
address, the offers and the photos; and list pages make a fixed number of
queries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tasks.models import ProofSubmission, TaskPhoto
from tests.factories import ContractorProfileFactory
from tests.tasks.factories import OfferFactory, TaskFactory, TaskPhotoFactory
from tests.tasks.pages_support import counts, jpeg, state, text
from tests.tasks.test_pages import task_data, url

pytestmark = pytest.mark.django_db

ACTORS = ["other_customer", "other_contractor", "anonymous"]
ADDRESS = "3250 24th St"


@pytest.fixture
def other_contractor(db):
    return ContractorProfileFactory(user__email="olga@example.com", user__full_name="Olga Other", slug="olga-other").user


@pytest.fixture
def as_actor(client, outsider, other_contractor):
    def login(actor: str):
        if actor == "other_customer":
            client.force_login(outsider)
        elif actor == "other_contractor":
            client.force_login(other_contractor)
        return client

    return login


@pytest.fixture
def world(customer, contractor):
    """Dana's tasks in every interesting state; Bob offers on the open one
    and is hired on the others."""
    open_task = TaskFactory(customer=customer, title="Open job")
    offer = OfferFactory(task=open_task, contractor=contractor, price_cents=11100, message="Bob's secret plan")
    assigned = TaskFactory(customer=customer, contractor=contractor, assigned=True, title="Assigned job")
    submitted = TaskFactory(customer=customer, contractor=contractor, submitted=True, title="Submitted job")
    proof = ProofSubmission.objects.create(task=submitted, contractor=contractor, note="All done")
    proof_photo = TaskPhotoFactory(task=submitted, kind=TaskPhoto.Kind.PROOF, proof=proof, uploaded_by=contractor)
    draft = TaskFactory(customer=customer, draft=True, title="Draft job")
    return {
        "open": open_task,
        "offer": offer,
        "assigned": assigned,
        "submitted": submitted,
        "proof_photo": proof_photo,
        "draft": draft,
    }


def assert_refused(response, actor: str, logged_in_status: int | tuple[int, ...]) -> None:
    if actor == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
        return
    allowed = logged_in_status if isinstance(logged_in_status, tuple) else (logged_in_status,)
    assert response.status_code in allowed


def snapshot(world) -> tuple:
    return (counts(), *(state(world[key]) for key in ("open", "assigned", "submitted", "draft")))


# (task key, url name, extra url kwargs, POST data, status for a logged-in stranger)
OPEN_TASK_POSTS = [
    ("open", "edit", None, "task", 403),
    ("open", "cancel", None, {"cancel-reason": "Not mine but let's try"}, 403),
    ("open", "publish", None, {}, 403),
    ("open", "offer_accept", "offer", {}, 403),
    ("open", "offer_decline", "offer", {}, 403),
    ("open", "offer_withdraw", "offer", {}, 403),
]
HIDDEN_TASK_POSTS = [
    ("assigned", "edit", None, "task", 404),
    ("assigned", "cancel", None, {"cancel-reason": "Not mine but let's try"}, 404),
    ("assigned", "check_in", None, {"latitude": "37.76", "longitude": "-122.41"}, 404),
    ("assigned", "offer_create", None, {"price": "50"}, 404),
    ("assigned", "instant_book", None, {"book-confirm": "on"}, 404),
    ("submitted", "submit_proof", None, "proof", 404),
    ("submitted", "approve", None, {}, 404),
    ("submitted", "request_changes", None, {"changes-reason": "Do it again please"}, 404),
    ("draft", "publish", None, {}, 404),
    ("draft", "edit", None, "task", 404),
    ("draft", "cancel", None, {"cancel-reason": "Not mine"}, 404),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("key", "name", "offer", "data", "expected"), OPEN_TASK_POSTS + HIDDEN_TASK_POSTS)
def test_strangers_cannot_act_on_someone_elses_task(as_actor, world, actor, key, name, offer, data, expected):
    client = as_actor(actor)
    task = world[key]
    kwargs = {"offer_id": world["offer"].public_id} if offer else {}
    if data == "task":
        data = task_data(task.category, photos=[jpeg()], action="save", title="Hijacked title here")
    elif data == "proof":
        data = {"note": "I did it", "photos": [jpeg()]}
    before = snapshot(world)
    response = client.post(url(name, task, **kwargs), data)
    assert_refused(response, actor, expected)
    assert snapshot(world) == before


@pytest.mark.parametrize("actor", ACTORS)
def test_strangers_cannot_open_the_edit_page(as_actor, world, actor):
    client = as_actor(actor)
    assert_refused(client.get(url("edit", world["open"])), actor, 403)
    assert_refused(client.get(url("edit", world["draft"])), actor, 404)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("key", ["assigned", "submitted", "draft"])
def test_strangers_cannot_see_tasks_past_open_or_drafts(as_actor, world, actor, key):
    client = as_actor(actor)
    assert client.get(url("detail", world[key])).status_code == 404


@pytest.mark.parametrize("actor", ACTORS)
def test_strangers_see_an_open_task_without_address_or_offers(as_actor, world, actor):
    client = as_actor(actor)
    response = client.get(url("detail", world["open"]))
    assert response.status_code == 200
    page = text(response)
    assert "Near San Francisco, CA 94110 (about 1 km)" in page
    assert ADDRESS not in page
    assert "Bob Builder" not in page and "$111.00" not in page and "Bob's secret plan" not in page
    assert "Accept" not in page and "Edit the task" not in page and "Cancel the task" not in page


@pytest.mark.parametrize("actor", ACTORS)
def test_strangers_cannot_fetch_photos_of_hidden_tasks_or_proof(as_actor, world, actor):
    client = as_actor(actor)
    photos = [world["proof_photo"], world["assigned"].photos.get(), world["draft"].photos.get()]
    for photo in photos:
        for name in ("photo", "photo_thumb"):
            assert client.get(reverse(f"tasks:{name}", kwargs={"public_id": photo.public_id})).status_code == 404


def test_participants_fetch_proof_photos(client, world, customer, contractor, staff):
    photo = world["proof_photo"]
    for user in (customer, contractor, staff):
        client.force_login(user)
        assert client.get(reverse("tasks:photo", kwargs={"public_id": photo.public_id})).status_code == 200


def test_hired_contractor_sees_the_address_and_customer_sees_offers(client, world, customer, contractor):
    client.force_login(contractor)
    assert ADDRESS in text(client.get(url("detail", world["assigned"])))
    # Bob offered on the open task but is not hired there: approximate only.
    page = text(client.get(url("detail", world["open"])))
    assert ADDRESS not in page and "You offered $111.00" in page
    client.force_login(customer)
    page = text(client.get(url("detail", world["open"])))
    assert ADDRESS in page and "Bob Builder" in page and "$111.00" in page


def test_a_contractor_sees_only_their_own_offer(client, world, other_contractor):
    task = world["open"]
    OfferFactory(task=task, contractor=other_contractor, price_cents=9900, message="Olga's plan")
    client.force_login(other_contractor)
    page = text(client.get(url("detail", task)))
    assert "Olga's plan" in page and "$99.00" in page
    assert "Bob's secret plan" not in page and "$111.00" not in page


def test_losing_contractor_follows_the_task_but_cannot_act(client, world, customer, other_contractor):
    task = world["assigned"]
    OfferFactory(task=task, contractor=other_contractor, status="declined")
    client.force_login(other_contractor)
    response = client.get(url("detail", task))
    assert response.status_code == 200
    page = text(response)
    assert ADDRESS not in page and "check in" not in page
    before = state(task)
    assert client.post(url("check_in", task), {}).status_code == 403
    assert client.post(url("cancel", task), {"cancel-reason": "Not my job"}).status_code == 403
    assert state(task) == before


def test_offering_contractor_cannot_accept_their_own_offer_or_approve(client, world, contractor):
    client.force_login(contractor)
    before = snapshot(world)
    response = client.post(url("offer_accept", world["open"], offer_id=world["offer"].public_id))
    assert response.status_code == 403
    assert client.post(url("approve", world["submitted"])).status_code == 403
    assert client.post(url("request_changes", world["submitted"]), {"changes-reason": "Self-review"}).status_code == 403
    assert snapshot(world) == before


def test_customer_cannot_do_the_contractors_part(client, world, customer):
    client.force_login(customer)
    before = snapshot(world)
    assert client.post(url("check_in", world["assigned"]), {}).status_code == 403
    proof = {"note": "I did it myself", "photos": [jpeg()]}
    assert client.post(url("submit_proof", world["assigned"]), proof).status_code == 403
    assert client.post(url("offer_create", world["open"]), {"price": "50"}).status_code == 403
    assert snapshot(world) == before


def test_offer_from_another_task_cannot_be_accepted_through_this_one(client, world, customer):
    elsewhere = OfferFactory(task=TaskFactory(customer=customer))
    client.force_login(customer)
    before = snapshot(world)
    response = client.post(url("offer_accept", world["open"], offer_id=elsewhere.public_id))
    assert response.status_code == 404
    assert snapshot(world) == before


def test_actions_only_accept_post(client, world, customer):
    client.force_login(customer)
    assert client.get(url("approve", world["submitted"])).status_code == 405
    assert client.get(url("cancel", world["open"])).status_code == 405


@pytest.mark.parametrize("path", ["/tasks/new", "/tasks/mine", "/tasks/find", "/tasks/jobs"])
def test_list_and_post_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_my_tasks_and_my_jobs_show_only_my_own(client, world, outsider, other_contractor):
    client.force_login(outsider)
    assert "Open job" not in text(client.get("/tasks/mine"))
    client.force_login(other_contractor)
    for tab in ("active", "offers", "done", "cancelled"):
        page = text(client.get(f"/tasks/jobs?tab={tab}"))
        assert "Assigned job" not in page and "Open job" not in page


def test_csrf_is_required(world, customer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    before = snapshot(world)
    assert client.post(url("cancel", world["open"]), {"cancel-reason": "Changed my mind"}).status_code == 403
    assert snapshot(world) == before


# --- query counts on list pages ----------------------------------------------------------


def _many(customer, contractor, n: int) -> None:
    for _ in range(n):
        task = TaskFactory(customer=customer)
        OfferFactory(task=task, contractor=contractor)
        TaskFactory(customer=customer, contractor=contractor, assigned=True)


@pytest.mark.parametrize("n", [2, 12])
def test_list_pages_make_a_fixed_number_of_queries(client, customer, contractor, django_assert_max_num_queries, n):
    _many(customer, contractor, n)
    # Session, user, count, page, photos (+ profile, offers for contractors),
    # plus the site layout's own (the unread badge): the same whether there
    # are 2 tasks or 12, never one per task.
    client.force_login(customer)
    with django_assert_max_num_queries(8):
        assert client.get("/tasks/mine").status_code == 200
    client.force_login(contractor)
    with django_assert_max_num_queries(10):
        assert client.get("/tasks/jobs").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/tasks/jobs?tab=offers").status_code == 200
    with django_assert_max_num_queries(13):
        response = client.get("/tasks/find?sort=newest")
    assert response.status_code == 200
    assert text(response).count("km away") == n
