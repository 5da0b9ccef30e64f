"""/check-in, /proof, /approve, /request-changes and /events: the assigned
contractor does the work, the customer answers; everything out of turn is a
409 illegal_transition and writes nothing."""

from __future__ import annotations

import pytest

from payments.models import Escrow
from tasks.models import CheckIn, Task, TaskPhoto
from tests.payments.helpers import pay
from tests.tasks.api_support import error, in_days, jpeg, make_contractor, not_an_image, snapshot
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db


def url(task, action: str = "") -> str:
    return f"/api/v1/tasks/{task.public_id}" + (f"/{action}" if action else "")


def submit_proof(client, task, photos: int = 2):
    return client.post(
        url(task, "proof"), {"note": "New cartridge fitted.", "photos": [jpeg() for _ in range(photos)]}, format="multipart"
    )


# --- Check-in ---------------------------------------------------------------------


def test_assigned_contractor_checks_in_with_a_position(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    response = api_as(contractor).post(
        url(task, "check-in"), {"latitude": 37.7600, "longitude": -122.4150, "accuracy_m": 12}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "in_progress"
    assert response.json()["started_at"].endswith("Z")
    check_in = CheckIn.objects.get(task=task)
    assert check_in.contractor == contractor and check_in.accuracy_m == 12
    assert 0 < check_in.distance_m < 50


def test_check_in_without_a_position_is_fine(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    response = api_as(contractor).post(url(task, "check-in"))
    assert response.status_code == 200, response.content
    assert CheckIn.objects.get(task=task).latitude is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"latitude": 37.76}, "longitude"),
        ({"longitude": -122.41}, "latitude"),
        ({"latitude": 95, "longitude": -122.41}, "latitude"),
        ({"latitude": 37.76, "longitude": -190}, "longitude"),
        ({"latitude": "here", "longitude": -122.41}, "latitude"),
        ({"latitude": 37.76, "longitude": -122.41, "accuracy_m": -5}, "accuracy_m"),
    ],
)
def test_bad_check_in_positions_are_refused(customer, contractor, api_as, payload, field):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(url(task, "check-in"), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]
    assert snapshot() == before


def test_checking_in_twice_is_an_illegal_transition(customer, contractor, api_as):
    task = TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(url(task, "check-in"))
    assert response.status_code == 409
    body = error(response)
    assert body["code"] == "illegal_transition"
    assert body["message"] == "This task is in progress, so it can't be checked in to now."
    assert snapshot() == before


def test_customer_cannot_check_in(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    before = snapshot()
    response = api_as(customer).post(url(task, "check-in"))
    assert response.status_code == 403
    assert error(response)["code"] == "not_task_contractor"
    assert snapshot() == before


# --- Proof ------------------------------------------------------------------------


def test_contractor_submits_proof_and_both_sides_see_it(customer, contractor, api_as):
    task = TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    response = submit_proof(api_as(contractor), task)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "submitted"
    assert body["auto_approve_at"].endswith("Z")
    [proof] = body["proofs"]
    assert proof["note"] == "New cartridge fitted." and proof["decision"] == "pending"
    assert len(proof["photos"]) == 2 and {p["kind"] for p in proof["photos"]} == {"proof"}
    # Problem photos and proof photos are kept apart.
    assert all(p["kind"] == "problem" for p in body["photos"])
    assert TaskPhoto.objects.filter(task=task, kind="proof").count() == 2

    seen = api_as(customer).get(url(task)).json()
    assert [p["id"] for p in seen["proofs"][0]["photos"]] == [p["id"] for p in proof["photos"]]
    assert {"approve", "request_changes"} <= set(seen["actions"])


@pytest.mark.parametrize(
    ("files", "field"),
    [
        pytest.param(lambda: {"note": "done"}, "photos", id="no-photos"),
        pytest.param(lambda: {"note": "done", "photos": [not_an_image()]}, "photos", id="not-an-image"),
        pytest.param(lambda: {"note": "done", "photos": [jpeg() for _ in range(11)]}, "photos", id="eleven"),
        pytest.param(lambda: {"note": "x" * 3000, "photos": [jpeg()]}, "note", id="note-too-long"),
    ],
)
def test_bad_proof_is_refused_and_nothing_stored(customer, contractor, api_as, files, field):
    task = TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(url(task, "proof"), files(), format="multipart")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]
    assert snapshot() == before


def test_proof_before_check_in_is_an_illegal_transition(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    before = snapshot()
    response = submit_proof(api_as(contractor), task)
    assert response.status_code == 409
    assert error(response)["code"] == "illegal_transition"
    assert snapshot() == before


# --- Approve, request changes -------------------------------------------------------


def test_customer_approves(customer, contractor, api_as):
    task = TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    assert submit_proof(api_as(contractor), task).status_code == 201
    response = api_as(customer).post(url(task, "approve"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed" and body["completed_at"].endswith("Z")
    assert body["proofs"][0]["decision"] == "approved"

    before = snapshot()
    again = api_as(customer).post(url(task, "approve"))
    assert again.status_code == 409
    assert error(again)["code"] == "illegal_transition"
    assert snapshot() == before


def test_contractor_cannot_approve_their_own_work(customer, contractor, api_as):
    task = TaskFactory(customer=customer, submitted=True, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(url(task, "approve"))
    assert response.status_code == 403
    assert snapshot() == before


def test_changes_may_be_requested_once(customer, contractor, api_as):
    task = TaskFactory(customer=customer, in_progress=True, contractor=contractor)
    assert submit_proof(api_as(contractor), task).status_code == 201
    response = api_as(customer).post(url(task, "request-changes"), {"reason": "Still drips a bit"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "in_progress" and body["changes_requested_count"] == 1
    assert body["proofs"][0]["decision"] == "changes_requested"
    assert body["proofs"][0]["decision_reason"] == "Still drips a bit"

    assert submit_proof(api_as(contractor), task).status_code == 201
    before = snapshot()
    again = api_as(customer).post(url(task, "request-changes"), {"reason": "Still drips"}, format="json")
    assert again.status_code == 409
    assert error(again)["code"] == "changes_already_requested"
    assert snapshot() == before


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "bad"}, {"reason": "x" * 700}])
def test_request_changes_needs_a_reason(customer, contractor, api_as, payload):
    task = TaskFactory(customer=customer, submitted=True, contractor=contractor)
    before = snapshot()
    response = api_as(customer).post(url(task, "request-changes"), payload, format="json")
    assert response.status_code == 400, response.content
    assert "reason" in error(response)["fields"]
    assert snapshot() == before


def test_request_changes_on_an_open_task_is_an_illegal_transition(customer, api_as):
    task = TaskFactory(customer=customer)
    before = snapshot()
    response = api_as(customer).post(url(task, "request-changes"), {"reason": "Not done yet"}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "illegal_transition"
    assert snapshot() == before


def test_contractor_cancels_an_assigned_task(customer, contractor, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    response = api_as(contractor).post(url(task, "cancel"), {"reason": "Van broke down"}, format="json")
    assert response.status_code == 200, response.content
    assert Task.objects.get(pk=task.pk).status == "cancelled"


# --- Timeline -----------------------------------------------------------------------


def test_the_whole_loop_leaves_a_timeline(customer, contractor, api_as):
    poster, worker = api_as(customer), api_as(contractor)
    created = poster.post(
        "/api/v1/tasks",
        {
            "title": "Fix the dripping kitchen tap",
            "description": "The kitchen tap drips all night. Probably the washer or the cartridge.",
            "category": "plumbing",
            "postal_code": "94110",
            "address": "3250 24th St",
            "budget_cents": 12_000,
            "deadline": in_days(5),
            "photos": [jpeg()],
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content
    task = Task.objects.get(public_id=created.json()["id"])
    offer = worker.post(url(task, "offers"), {"price_cents": 11_500}, format="json").json()
    assert poster.post(f"/api/v1/offers/{offer['id']}/accept").status_code == 202  # checkout started
    pay(Escrow.objects.get(offer__public_id=offer["id"]))  # the payment books the task
    assert worker.post(url(task, "check-in")).status_code == 200
    assert submit_proof(worker, task, photos=1).status_code == 201
    assert poster.post(url(task, "approve")).status_code == 200

    events = poster.get(url(task, "events"))
    assert events.status_code == 200
    assert [(e["kind"], e["to_status"]) for e in events.json()] == [
        ("created", "draft"),
        ("published", "open"),
        ("offer_made", "open"),
        ("offer_accepted", "assigned"),
        ("checked_in", "in_progress"),
        ("proof_submitted", "submitted"),
        ("approved", "completed"),
    ]
    first = events.json()[0]
    assert first["actor"] == "Dana" and first["kind_label"] == "Created" and first["at"].endswith("Z")
    assert worker.get(url(task, "events")).json() == events.json()


def test_a_bidder_sees_only_public_events_and_their_own(customer, contractor, api_as):
    task = TaskFactory(customer=customer)
    bidder = make_contractor("rita@example.com")
    api_as(bidder).post(url(task, "offers"), {"price_cents": 9_000}, format="json")
    api_as(contractor).post(url(task, "offers"), {"price_cents": 9_500}, format="json")
    kinds = [(e["kind"], e["actor"]) for e in api_as(bidder).get(url(task, "events")).json()]
    assert kinds == [("offer_made", "Rita")]
