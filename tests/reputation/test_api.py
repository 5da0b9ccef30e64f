"""Reputation API: submit/edit reviews, double-blind reads, reply, report,
my reviews, a contractor's reviews and reputation, my trust breakdown, and
who may call each endpoint."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from reputation import services
from reputation.models import Review, ReviewReply, ReviewReport
from tests.reputation.review_support import completed_task, row_counts

pytestmark = pytest.mark.django_db


def reviews_url(task):
    return f"/api/v1/tasks/{task.public_id}/reviews"


def test_customer_submits_then_edits(api_as, customer, contractor):
    task = completed_task(customer, contractor)
    api = api_as(customer)
    response = api.post(reviews_url(task), {"stars": 4, "quality": 5, "text": "Neat work."}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["stars"], body["quality"], body["clarity"], body["published_at"]) == (4, 5, None, None)
    assert body["role"] == "customer_to_contractor" and body["reviewee"]["name"] == "Bob Builder"
    response = api.post(reviews_url(task), {"stars": 5}, format="json")
    assert response.status_code == 200 and response.json()["stars"] == 5
    assert Review.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"stars": 0}, "stars"),
        ({"stars": 6}, "stars"),
        ({}, "stars"),
        ({"stars": "lots"}, "stars"),
        ({"stars": 5, "text": "x" * 2001}, "text"),
        ({"stars": 5, "clarity": 4}, "clarity"),
        ({"stars": 5, "quality": 9}, "quality"),
    ],
)
def test_bad_input_is_400_with_the_field_and_nothing_written(api_as, customer, contractor, payload, field):
    task = completed_task(customer, contractor)
    before = row_counts()
    response = api_as(customer).post(reviews_url(task), payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert row_counts() == before


def test_double_blind_through_the_api(api_as, customer, contractor, outsider, staff):
    task = completed_task(customer, contractor)
    api_as(customer).post(reviews_url(task), {"stars": 2, "text": "HIDDEN-TEXT"}, format="json")
    assert [r["text"] for r in api_as(customer).get(reviews_url(task)).json()] == ["HIDDEN-TEXT"]
    assert api_as(contractor).get(reviews_url(task)).json() == []
    assert api_as(outsider).get(reviews_url(task)).status_code == 404
    assert [r["text"] for r in api_as(staff).get(reviews_url(task)).json()] == ["HIDDEN-TEXT"]
    mine = api_as(contractor).get("/api/v1/reviews/mine").json()
    assert mine["received"] == [] and mine["waiting_about_me"] == 1
    assert [p["task"] for p in mine["to_write"]] == [str(task.public_id)]

    api_as(contractor).post(reviews_url(task), {"stars": 5, "payment_promptness": 5}, format="json")
    assert sorted(r["stars"] for r in api_as(contractor).get(reviews_url(task)).json()) == [2, 5]
    assert [r["text"] for r in api_as(contractor).get("/api/v1/reviews/mine").json()["received"]] == ["HIDDEN-TEXT"]


def test_anonymous_gets_401_on_private_endpoints(customer, contractor):
    task = completed_task(customer, contractor)
    api = APIClient()
    assert api.get(reviews_url(task)).status_code == 401
    assert api.post(reviews_url(task), {"stars": 5}, format="json").status_code == 401
    assert api.get("/api/v1/reviews/mine").status_code == 401
    assert api.get("/api/v1/me/trust").status_code == 401
    assert api.post(f"{reviews_url(task)}/customer_to_contractor/reply", {"text": "x"}).status_code == 401
    assert api.post(f"{reviews_url(task)}/customer_to_contractor/report", {"reason": "abuse"}).status_code == 401
    assert Review.objects.count() == 0


def test_outsider_cannot_submit(api_as, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    response = api_as(outsider).post(reviews_url(task), {"stars": 5}, format="json")
    assert response.status_code == 404
    assert Review.objects.count() == 0


def test_staff_who_may_see_the_task_still_cannot_review_it(api_as, customer, contractor, staff):
    task = completed_task(customer, contractor)
    response = api_as(staff).post(reviews_url(task), {"stars": 5}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_task_party"
    assert Review.objects.count() == 0


def test_frozen_review_edit_is_409(api_as, customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=3)
    services.review_submit(task=task, by=contractor, stars=3)
    response = api_as(customer).post(reviews_url(task), {"stars": 5}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "review_frozen"
    assert Review.objects.get(reviewer=customer).stars == 3


def _published(customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=4, text="Fine.")
    services.review_submit(task=task, by=contractor, stars=5)
    return task


def test_reply_once_by_the_reviewee_only(api_as, customer, contractor, outsider):
    task = _published(customer, contractor)
    url = f"{reviews_url(task)}/customer_to_contractor/reply"
    assert api_as(outsider).post(url, {"text": "Hi"}, format="json").status_code == 403
    assert api_as(customer).post(url, {"text": "Hi"}, format="json").status_code == 403
    assert api_as(contractor).post(url, {"text": ""}, format="json").status_code == 400
    assert ReviewReply.objects.count() == 0
    response = api_as(contractor).post(url, {"text": "Thank you!"}, format="json")
    assert response.status_code == 201 and response.json()["text"] == "Thank you!"
    assert api_as(contractor).post(url, {"text": "Again"}, format="json").status_code == 409
    assert ReviewReply.objects.count() == 1
    public = APIClient().get("/api/v1/contractors/bob-builder/reviews").json()
    assert public["count"] == 1 and public["results"][0]["reply"]["text"] == "Thank you!"


def test_report_by_a_reader_once_and_not_by_the_author(api_as, customer, contractor, outsider):
    task = _published(customer, contractor)
    url = f"{reviews_url(task)}/customer_to_contractor/report"
    assert api_as(customer).post(url, {"reason": "abuse"}, format="json").status_code == 403
    assert api_as(outsider).post(url, {"reason": "rude"}, format="json").status_code == 400
    assert ReviewReport.objects.count() == 0
    response = api_as(outsider).post(url, {"reason": "abuse", "note": "Slur in line 2"}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "open"
    assert api_as(outsider).post(url, {"reason": "abuse"}, format="json").status_code == 409
    assert ReviewReport.objects.count() == 1


def test_unpublished_review_cannot_be_replied_to_or_reported(api_as, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=1)
    assert api_as(contractor).post(f"{reviews_url(task)}/customer_to_contractor/reply", {"text": "x"}).status_code == 404
    assert api_as(outsider).post(f"{reviews_url(task)}/customer_to_contractor/report", {"reason": "abuse"}).status_code == 404
    assert api_as(outsider).post(f"{reviews_url(task)}/nonsense/report", {"reason": "abuse"}).status_code == 404
    assert (ReviewReply.objects.count(), ReviewReport.objects.count()) == (0, 0)


def test_public_contractor_reviews_and_reputation(customer, contractor):
    _published(customer, contractor)
    hidden = completed_task(customer, contractor)
    services.review_submit(task=hidden, by=customer, stars=1, text="NOT-YET")
    api = APIClient()
    body = api.get("/api/v1/contractors/bob-builder/reviews").json()
    assert [r["text"] for r in body["results"]] == ["Fine."]
    rep = api.get("/api/v1/contractors/bob-builder/reputation").json()
    # Only this review on the platform: m = 4, C = 5, n = 1 -> (5*4 + 4) / 6 = 4.0
    assert rep["rating"] == {"bayesian": 4.0, "raw": 4.0, "count": 1}
    assert rep["jobs_completed"] == 2
    assert 0 <= rep["trust_score"] <= 100
    assert api.get("/api/v1/contractors/nobody-here/reviews").status_code == 404
    assert api.get("/api/v1/contractors/nobody-here/reputation").status_code == 404


def test_my_trust_breakdown(api_as, contractor):
    body = api_as(contractor).get("/api/v1/me/trust").json()
    names = {f["name"] for f in body["factors"]}
    assert names == {
        "verification", "rating", "completion", "on_time", "message_response", "offer_response",
        "disputes", "cancellations", "tenure",
    }
    assert sum(f["weight"] for f in body["factors"]) == 100
    verification = next(f for f in body["factors"] if f["name"] == "verification")
    assert verification["hint"] == "Verify your phone number, your ID."
    assert body["computed_at"] is None  # estimated: nothing stored yet
