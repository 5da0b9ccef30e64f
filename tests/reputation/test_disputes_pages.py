"""Dispute pages, API and the admin mediation screen: the parties use them,
everyone else gets 404 (or 403 in the admin) and nothing changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import Conversation, Message
from reputation import disputes
from reputation.dispute_models import Dispute, DisputeEvidence
from tests.reputation.dispute_support import (
    TEXT,
    fake_image,
    jpeg_upload,
    mediator,
    plain_staff,
    row,
    row_counts,
    submitted_task,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(customer, contractor):
    return submitted_task(customer, contractor)


@pytest.fixture
def dispute(task, customer):
    return disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT, evidence=[jpeg_upload()])


@pytest.fixture
def photo(dispute):
    return DisputeEvidence.objects.get(dispute=dispute)


def as_user(client, user):
    client.force_login(user)
    return client


# --- pages -----------------------------------------------------------------------------


def test_task_page_links_to_open_a_dispute(client, task, customer, outsider):
    page = as_user(client, customer).get(reverse("tasks:detail", args=[task.public_id]))
    assert reverse("disputes:open", args=[task.public_id]) in page.content.decode()


def test_open_dispute_through_the_form(client, task, customer, contractor):
    response = as_user(client, customer).post(
        reverse("disputes:open", args=[task.public_id]),
        {"reason": "poor_quality", "text": TEXT, "photos": [jpeg_upload()]},
    )
    dispute = Dispute.objects.get(task=task)
    assert response.status_code == 302 and response["Location"] == f"/disputes/{dispute.public_id}/"
    assert DisputeEvidence.objects.filter(dispute=dispute).count() == 1
    page = client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 200 and "Waiting for Bob Builder to respond" in body
    # The task page now points at the dispute.
    assert f"/disputes/{dispute.public_id}/" in client.get(reverse("tasks:detail", args=[task.public_id])).content.decode()


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"reason": "poor_quality", "text": ""}, "This field is required"),
        ({"reason": "nonsense", "text": TEXT}, "Select a valid choice"),
        ({"reason": "poor_quality", "text": "short"}, "at least 10 characters"),
    ],
)
def test_open_form_bad_input(client, task, customer, data, field_error):
    before, task_row = row_counts(), row(task)
    response = as_user(client, customer).post(reverse("disputes:open", args=[task.public_id]), data)
    assert response.status_code == 400 and field_error in response.content.decode()
    assert row_counts() == before and row(task) == task_row


def test_open_form_fake_image(client, task, customer):
    before = row_counts()
    response = as_user(client, customer).post(
        reverse("disputes:open", args=[task.public_id]), {"reason": "damage", "text": TEXT, "photos": [fake_image()]}
    )
    assert response.status_code == 400 and "not a valid image" in response.content.decode()
    assert row_counts() == before


def test_respondent_answers_and_customer_accepts_on_the_page(client, dispute, customer, contractor, task):
    response = as_user(client, contractor).post(
        reverse("disputes:respond", args=[dispute.public_id]),
        {"text": "The valve was the problem, not my washer.", "proposal_kind": "partial_refund", "percent": "20"},
    )
    assert response.status_code == 302
    proposal = dispute.proposals.get()
    page = as_user(client, customer).get(reverse("disputes:detail", args=[dispute.public_id])).content.decode()
    assert "Accept and settle" in page and "$96.00 to the contractor, $24.00 back to the customer" in page
    response = client.post(reverse("disputes:accept", args=[dispute.public_id, proposal.public_id]))
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.outcome, dispute.contractor_cents) == ("resolved", "split", 9_600)


def test_bad_percent_on_the_page(client, dispute, contractor):
    before, dispute_row = row_counts(), row(dispute)
    response = as_user(client, contractor).post(
        reverse("disputes:propose", args=[dispute.public_id]), {"kind": "partial_refund", "percent": "100"}
    )
    assert response.status_code == 400 and "from 1 to 99" in response.content.decode()
    assert row_counts() == before and row(dispute) == dispute_row


@pytest.mark.parametrize("who", ["outsider", "plain_staff", "anonymous"])
def test_non_party_gets_404_on_every_page_and_file(client, dispute, photo, task, who, request):
    if who == "plain_staff":
        as_user(client, plain_staff())
    elif who != "anonymous":
        as_user(client, request.getfixturevalue(who))
    proposal = disputes.dispute_propose(dispute, by=dispute.against, kind="release")
    before, dispute_row = row_counts(), row(dispute)
    pid = dispute.public_id
    gets = [
        reverse("disputes:detail", args=[pid]),
        reverse("disputes:evidence-photo", args=[photo.public_id]),
    ]
    posts = [
        (reverse("disputes:respond", args=[pid]), {"text": "I saw the whole thing happen."}),
        (reverse("disputes:propose", args=[pid]), {"kind": "full_refund"}),
        (reverse("disputes:evidence", args=[pid]), {"text": "I saw the whole thing happen."}),
        (reverse("disputes:escalate", args=[pid]), {}),
        (reverse("disputes:accept", args=[pid, proposal.public_id]), {}),
        (reverse("disputes:reject", args=[pid, proposal.public_id]), {}),
    ]
    if who != "anonymous":
        gets.append(reverse("disputes:open", args=[task.public_id]))
    for url in gets:
        response = client.get(url)
        expected = (302,) if who == "anonymous" and "/photo" not in url else (404,)
        assert response.status_code in expected, url
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == (302 if who == "anonymous" else 404), url
        if who == "anonymous":
            assert "/accounts/login/" in response["Location"]
    assert row_counts() == before and row(dispute) == dispute_row


def test_parties_and_mediator_see_the_evidence_photo(client, photo, customer, contractor):
    url = reverse("disputes:evidence-photo", args=[photo.public_id])
    for user in (customer, contractor, mediator()):
        response = as_user(client, user).get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
        assert response["Cache-Control"] == "private, max-age=3600"


# --- API -------------------------------------------------------------------------------


def test_api_open_and_read(api_as, task, customer, contractor):
    response = api_as(customer).post(
        f"/api/v1/tasks/{task.public_id}/disputes", {"reason": "damage", "text": TEXT}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "awaiting_response" and body["against"]["name"] == "Bob Builder"
    assert [e["kind"] for e in body["timeline"]] == ["opened"]
    listed = api_as(contractor).get("/api/v1/disputes").json()
    assert [d["public_id"] for d in listed] == [body["public_id"]]


def test_api_bad_percent_and_fields(api_as, dispute, contractor):
    before = row_counts()
    response = api_as(contractor).post(
        f"/api/v1/disputes/{dispute.public_id}/proposals", {"kind": "partial_refund", "percent": 0}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["percent"] == ["A partial refund is a whole percentage from 1 to 99."]
    assert row_counts() == before


def test_api_accept_settles(api_as, dispute, customer, contractor):
    proposal = api_as(contractor).post(
        f"/api/v1/disputes/{dispute.public_id}/proposals", {"kind": "release"}, format="json"
    ).json()
    response = api_as(customer).post(f"/api/v1/disputes/{dispute.public_id}/proposals/{proposal['public_id']}/accept")
    assert response.status_code == 200 and response.json()["outcome"] == "release"
    again = api_as(customer).post(f"/api/v1/disputes/{dispute.public_id}/proposals/{proposal['public_id']}/accept")
    assert again.status_code == 409


@pytest.mark.parametrize("who", ["outsider", "staff"])
def test_api_non_party_404_everywhere(api_as, dispute, task, who, request):
    client = api_as(request.getfixturevalue(who) if who == "outsider" else plain_staff())
    proposal = disputes.dispute_propose(dispute, by=dispute.against, kind="release")
    before, dispute_row = row_counts(), row(dispute)
    pid = dispute.public_id
    assert client.get(f"/api/v1/disputes/{pid}").status_code == 404
    assert client.get("/api/v1/disputes").json() == []
    for url, data in [
        (f"/api/v1/tasks/{task.public_id}/disputes", {"reason": "damage", "text": TEXT}),
        (f"/api/v1/disputes/{pid}/respond", {"text": "I saw the whole thing happen."}),
        (f"/api/v1/disputes/{pid}/proposals", {"kind": "full_refund"}),
        (f"/api/v1/disputes/{pid}/evidence", {"text": "I saw the whole thing happen."}),
        (f"/api/v1/disputes/{pid}/escalate", {}),
        (f"/api/v1/disputes/{pid}/proposals/{proposal.public_id}/accept", {}),
        (f"/api/v1/disputes/{pid}/proposals/{proposal.public_id}/reject", {}),
    ]:
        response = client.post(url, data, format="json")
        assert response.status_code == 404, (url, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert row_counts() == before and row(dispute) == dispute_row


def test_api_anonymous_401(api_client, dispute):
    assert api_client.get(f"/api/v1/disputes/{dispute.public_id}").status_code == 401


# --- admin -----------------------------------------------------------------------------


def test_mediation_screen_shows_everything_and_decides(client, dispute, customer, contractor, task):
    conversation = Conversation.objects.create(task=task, customer=customer, contractor=contractor)
    Message.objects.create(conversation=conversation, seq=1, sender=contractor, client_id="7d5e1a8e-4f0c-4e9a-9d37-3f5b0f0c0a01", body="I'll replace the washer tomorrow.")
    disputes.dispute_propose(dispute, by=contractor, kind="partial_refund", percent=10)
    disputes.dispute_escalate(dispute, by=customer)
    mia = mediator()
    client.force_login(mia)
    change = reverse("admin:reputation_dispute_change", args=[dispute.pk])
    page = client.get(change)
    body = page.content.decode()
    assert page.status_code == 200
    for expected in (TEXT, "replace the washer tomorrow", "Partial refund", "Sent to mediation", "Decide"):
        assert expected in body, expected
    assert reverse("disputes:evidence-photo", args=[DisputeEvidence.objects.get(dispute=dispute).public_id]) in body
    listing = client.get(reverse("admin:reputation_dispute_changelist")).content.decode()
    assert "Platform dispute rate" in listing

    decide = reverse("admin:reputation_dispute_decide", args=[dispute.pk])
    data = {"outcome": "refund", "reason": "The photos show the tap still drips after the visit."}
    review = client.post(decide, data)
    assert "Refund $120.00 to Dana Lee; the contractor gets nothing." in review.content.decode()
    dispute.refresh_from_db()
    assert dispute.status == "mediation"  # nothing decided before the confirmation
    done = client.post(decide, {**data, "confirm": "yes"})
    assert done.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.outcome, dispute.decided_by) == ("resolved", "refund", mia)


def test_admin_refuses_staff_without_permission(client, dispute, customer):
    disputes.dispute_escalate(dispute, by=customer)
    client.force_login(plain_staff())
    dispute_row = row(dispute)
    assert client.get(reverse("admin:reputation_dispute_change", args=[dispute.pk])).status_code == 404
    response = client.post(
        reverse("admin:reputation_dispute_decide", args=[dispute.pk]),
        {"outcome": "refund", "reason": "The photos show the tap still drips.", "confirm": "yes"},
    )
    assert response.status_code in (403, 404)
    assert row(dispute) == dispute_row


def test_admin_decide_bad_input(client, dispute, customer):
    disputes.dispute_escalate(dispute, by=customer)
    client.force_login(mediator())
    dispute_row = row(dispute)
    response = client.post(
        reverse("admin:reputation_dispute_decide", args=[dispute.pk]),
        {"outcome": "split", "contractor_cents": "0", "reason": "Too short", "confirm": "yes"},
    )
    assert response.status_code == 400
    assert row(dispute) == dispute_row
