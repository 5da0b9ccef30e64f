"""The permissions matrix: another customer, another contractor, a contractor
whose offer was turned down and an anonymous caller try every read and every
action on someone else's task, open and booked. Reads show them no exact
address, no other offers and no proof photos; every action is refused (401,
403, 404 or 409) and changes nothing."""

from __future__ import annotations

import pytest

from tasks.models import ProofSubmission, TaskPhoto
from tests.tasks.api_support import ADDRESS, error, jpeg, make_contractor, snapshot
from tests.tasks.factories import OfferFactory, TaskFactory, TaskPhotoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rival(db):
    """A live contractor with nothing to do with the task."""
    return make_contractor("rita@example.com")


@pytest.fixture
def bidder(db):
    """A contractor whose offer on the task was declined."""
    return make_contractor("bert@example.com")


@pytest.fixture
def open_task(customer, contractor, bidder):
    task = TaskFactory(customer=customer, photos=2)
    pending = OfferFactory(task=task, contractor=contractor, price_cents=11_000, message="Mine, private")
    OfferFactory(task=task, contractor=bidder, status="declined")
    task.pending_offer = pending
    return task


@pytest.fixture
def booked_task(customer, contractor, bidder):
    """Submitted: assigned to Bob, with proof photos waiting for approval."""
    task = TaskFactory(customer=customer, submitted=True, contractor=contractor)
    accepted = OfferFactory(task=task, contractor=contractor, status="accepted")
    OfferFactory(task=task, contractor=bidder, status="declined", message="Bert's secret")
    proof = ProofSubmission.objects.create(task=task, contractor=contractor, note="All fixed")
    for _ in range(2):
        TaskPhotoFactory(task=task, kind=TaskPhoto.Kind.PROOF, proof=proof, uploaded_by=contractor)
    task.pending_offer = accepted
    return task


def writes(task) -> list[tuple[str, str, dict | None, str]]:
    """Every action on the task and its offers, each with a well-formed body,
    so a refusal is about who asks, never about the input."""
    base = f"/api/v1/tasks/{task.public_id}"
    photo = task.photos.filter(kind="problem").first()
    offer = task.pending_offer
    return [
        ("patch", base, {"budget_cents": 15_000}, "json"),
        ("post", f"{base}/publish", None, "json"),
        ("post", f"{base}/cancel", {"reason": "Not needed any more"}, "json"),
        ("post", f"{base}/photos", {"photos": [jpeg()]}, "multipart"),
        ("delete", f"{base}/photos/{photo.public_id}", None, "json"),
        ("post", f"{base}/instant-book", {}, "json"),
        ("post", f"{base}/check-in", {"latitude": 37.76, "longitude": -122.41}, "json"),
        ("post", f"{base}/proof", {"note": "done", "photos": [jpeg()]}, "multipart"),
        ("post", f"{base}/approve", None, "json"),
        ("post", f"{base}/request-changes", {"reason": "Please redo it"}, "json"),
        ("post", f"/api/v1/offers/{offer.public_id}/accept", None, "json"),
        ("post", f"/api/v1/offers/{offer.public_id}/decline", {"reason": "No"}, "json"),
        ("post", f"/api/v1/offers/{offer.public_id}/withdraw", None, "json"),
    ]


def reads(task) -> list[str]:
    base = f"/api/v1/tasks/{task.public_id}"
    return [base, f"{base}/offers", f"{base}/events"]


def try_every_write(client, task, allowed: set[int]) -> None:
    before = snapshot()
    for method, url, body, fmt in writes(task):
        response = getattr(client, method)(url, body, format=fmt)
        assert response.status_code in allowed, (method, url, response.status_code, response.content)
        error(response)
        assert snapshot() == before, (method, url)


def private_bits(task) -> list[str]:
    """What a stranger must never read: the street address, the exact point,
    proof photos and notes, other contractors' offers."""
    bits = [ADDRESS, str(task.latitude), str(task.longitude)]
    bits += [str(p.public_id) for p in task.photos.filter(kind="proof")]
    bits += [str(o.public_id) for o in task.offers.all()]
    bits += ["All fixed", "Mine, private", "Bert's secret"]
    return bits


# --- Anonymous --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["open_task", "booked_task"])
def test_anonymous_reads_and_writes_nothing(api_client, request, which):
    task = request.getfixturevalue(which)
    for url in reads(task):
        response = api_client.get(url)
        assert response.status_code == 401, url
        assert error(response)["code"] == "not_authenticated"
        assert ADDRESS not in response.content.decode()
    try_every_write(api_client, task, {401})
    for url in ("/api/v1/tasks", "/api/v1/tasks/nearby", "/api/v1/jobs"):
        assert api_client.get(url).status_code == 401


# --- An open task -------------------------------------------------------------------


@pytest.mark.parametrize("who", ["outsider", "rival"])
def test_strangers_see_an_open_task_only_approximately(api_as, open_task, request, who):
    user = request.getfixturevalue(who)
    client = api_as(user)
    response = client.get(reads(open_task)[0])
    assert response.status_code == 200
    body = response.json()
    assert body["location"] == {
        "exact": False,
        "latitude": open_task.approx_latitude,
        "longitude": open_task.approx_longitude,
        "address": "",
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94110",
    }
    assert body["proofs"] == [] and body["is_mine"] is False
    assert len(body["photos"]) == 2  # the job's photos are public while it is open
    assert not {"edit", "cancel", "accept_offer", "approve"} & set(body["actions"])
    assert body["actions"] == (["offer"] if who == "rival" else [])

    offers = client.get(reads(open_task)[1])
    assert offers.status_code == 200 and offers.json()["results"] == []
    events = client.get(reads(open_task)[2])
    assert events.status_code == 200
    assert {e["kind"] for e in events.json()} <= {"published", "updated", "photo_added", "photo_removed", "cancelled"}
    for answer in (response, offers, events):
        text = answer.content.decode()
        for bit in private_bits(open_task):
            assert bit not in text, (bit, answer.request["PATH_INFO"])


@pytest.mark.parametrize("who", ["outsider", "rival"])
def test_strangers_cannot_act_on_an_open_task(api_as, open_task, request, who):
    try_every_write(api_as(request.getfixturevalue(who)), open_task, {403, 404, 409})


def test_a_declined_bidder_sees_only_their_own_offer(api_as, open_task, bidder):
    offers = api_as(bidder).get(reads(open_task)[1]).json()["results"]
    assert [o["contractor"]["name"] for o in offers] == ["Bert"]
    assert "Mine, private" not in str(offers)


# --- A booked task, with proof ------------------------------------------------------


@pytest.mark.parametrize("who", ["outsider", "rival"])
def test_strangers_cannot_even_find_a_booked_task(api_as, booked_task, request, who):
    client = api_as(request.getfixturevalue(who))
    for url in reads(booked_task):
        response = client.get(url)
        assert response.status_code == 404, url
        assert error(response)["code"] == "not_found"
    try_every_write(client, booked_task, {404})


def test_a_declined_bidder_follows_the_status_but_sees_nothing_private(api_as, booked_task, bidder):
    client = api_as(bidder)
    response = client.get(reads(booked_task)[0])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "submitted"
    assert body["location"]["exact"] is False and body["location"]["address"] == ""
    assert body["proofs"] == [] and body["actions"] == []
    offers = client.get(reads(booked_task)[1]).json()["results"]
    assert [o["contractor"]["name"] for o in offers] == ["Bert"]
    events = client.get(reads(booked_task)[2]).json()
    text = " ".join(r.content.decode() for r in (response,)) + str(events)
    for bit in [ADDRESS, str(booked_task.latitude), "All fixed", "Mine, private"]:
        assert bit not in text
    for photo in booked_task.photos.filter(kind="proof"):
        assert str(photo.public_id) not in text
    try_every_write(client, booked_task, {403, 404, 409})


def test_the_parties_and_staff_see_everything(api_as, booked_task, customer, contractor, staff):
    proof_ids = {str(p.public_id) for p in booked_task.photos.filter(kind="proof")}
    for user in (customer, contractor, staff):
        body = api_as(user).get(reads(booked_task)[0]).json()
        assert body["location"]["exact"] is True and body["location"]["address"] == ADDRESS, user
        assert {p["id"] for p in body["proofs"][0]["photos"]} == proof_ids, user
        assert body["proofs"][0]["note"] == "All fixed"
    assert api_as(customer).get(reads(booked_task)[1]).json()["count"] == 2
    # The hired contractor sees only their own offer, like any contractor.
    assert [o["contractor"]["name"] for o in api_as(contractor).get(reads(booked_task)[1]).json()["results"]] == ["Bob"]


def test_the_hired_contractor_cannot_do_the_customers_part(api_as, booked_task, contractor):
    before = snapshot()
    for action, body in (("approve", None), ("request-changes", {"reason": "Redo it please"})):
        response = api_as(contractor).post(f"/api/v1/tasks/{booked_task.public_id}/{action}", body, format="json")
        assert response.status_code == 403
        assert error(response)["code"] == "not_task_customer"
    assert api_as(contractor).patch(
        f"/api/v1/tasks/{booked_task.public_id}", {"title": "Mine now"}, format="json"
    ).status_code in {403, 409}
    assert snapshot() == before
