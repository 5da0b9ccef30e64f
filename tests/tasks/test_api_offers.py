"""/api/v1/tasks/<id>/offers, /api/v1/offers/<id>/withdraw|decline|accept and
/instant-book: who sees which offers, bad offers, and the booking race answers
(409 already_booked) with nothing written."""

from __future__ import annotations

import pytest

from payments.models import Escrow
from tasks.models import Offer, Task
from tests.payments.helpers import fund, pay, save_card
from tests.tasks.api_support import error, in_days, make_contractor, row, snapshot
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db


def offers_url(task) -> str:
    return f"/api/v1/tasks/{task.public_id}/offers"


def offer_url(offer, action: str) -> str:
    return f"/api/v1/offers/{offer.public_id}/{action}"


@pytest.fixture
def task(customer):
    return TaskFactory(customer=customer)


@pytest.fixture
def rival(db):
    return make_contractor("rita@example.com")


# --- Making and listing offers ------------------------------------------------


def test_contractor_makes_an_offer(task, contractor, api_as, mailoutbox):
    start = in_days(2)
    response = api_as(contractor).post(
        offers_url(task), {"price_cents": 11_000, "message": "Thursday morning?", "proposed_start": start}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    offer = Offer.objects.get(public_id=body["id"])
    assert offer.contractor == contractor and offer.task == task
    assert body["price_cents"] == 11_000 and body["currency"] == "USD"
    assert body["status"] == "pending" and body["is_instant"] is False
    assert body["message"] == "Thursday morning?"
    assert body["task_id"] == str(task.public_id)
    assert body["contractor"]["name"] == "Bob" and body["contractor"]["profile_slug"] == "bob-builder"
    assert body["contractor_hourly_rate_cents"] == 8500
    assert body["proposed_start"].endswith("Z")


def test_customer_sees_every_offer_side_by_side(task, customer, contractor, rival, api_as):
    OfferFactory(task=task, contractor=contractor, price_cents=11_000)
    OfferFactory(task=task, contractor=rival, price_cents=9_000)
    response = api_as(customer).get(offers_url(task))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(o["contractor"]["name"], o["price_cents"]) for o in body["results"]] == [("Bob", 11_000), ("Rita", 9_000)]


def test_a_contractor_sees_only_their_own_offer(task, contractor, rival, api_as):
    mine = OfferFactory(task=task, contractor=contractor)
    OfferFactory(task=task, contractor=rival)
    body = api_as(contractor).get(offers_url(task)).json()
    assert [o["id"] for o in body["results"]] == [str(mine.public_id)]


def test_another_customer_sees_no_offers(task, outsider, contractor, api_as):
    OfferFactory(task=task, contractor=contractor)
    response = api_as(outsider).get(offers_url(task))
    assert response.status_code == 200
    assert response.json()["count"] == 0 and response.json()["results"] == []


def test_offers_list_uses_fixed_queries(task, customer, api_as, django_assert_max_num_queries):
    for index in range(8):
        OfferFactory(task=task, contractor=make_contractor(f"pro{index}@example.com"))
    # task, visibility, count, offers with contractor and profile
    with django_assert_max_num_queries(4):
        assert api_as(customer).get(offers_url(task)).json()["count"] == 8


BAD_OFFERS = [
    pytest.param({}, "price_cents", id="missing-price"),
    pytest.param({"price_cents": "a lot"}, "price_cents", id="price-not-a-number"),
    pytest.param({"price_cents": -100}, "price_cents", id="negative-price"),
    pytest.param({"price_cents": 0}, "price_cents", id="zero-price"),
    pytest.param({"price_cents": 10**14}, "price_cents", id="absurd-price"),
    pytest.param({"price_cents": 11_000, "proposed_start": in_days(-1)}, "proposed_start", id="start-in-the-past"),
    pytest.param({"price_cents": 11_000, "proposed_start": "soon"}, "proposed_start", id="start-not-a-date"),
    pytest.param({"price_cents": 11_000, "message": "x" * 2_500}, "message", id="message-too-long"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_OFFERS)
def test_bad_offers_are_refused_and_nothing_written(task, contractor, api_as, payload, field):
    before = snapshot()
    response = api_as(contractor).post(offers_url(task), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]
    assert snapshot() == before


def test_a_second_pending_offer_is_a_conflict(task, contractor, api_as):
    OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(offers_url(task), {"price_cents": 9_000}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "offer_exists"
    assert snapshot() == before


def test_a_customer_cannot_make_offers(task, outsider, api_as):
    before = snapshot()
    response = api_as(outsider).post(offers_url(task), {"price_cents": 9_000}, format="json")
    assert response.status_code == 403
    assert error(response)["code"] == "not_contractor"
    assert snapshot() == before


def test_offering_on_a_booked_task_answers_already_booked(customer, contractor, rival, api_as):
    task = TaskFactory(customer=customer, assigned=True, contractor=contractor)
    OfferFactory(task=task, contractor=rival, status="declined")  # so Rita may still see the task
    before = snapshot()
    response = api_as(rival).post(offers_url(task), {"price_cents": 9_000}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "already_booked"
    assert snapshot() == before


# --- Withdraw, decline ----------------------------------------------------------


def test_contractor_withdraws_an_offer(task, contractor, api_as):
    offer = OfferFactory(task=task, contractor=contractor)
    response = api_as(contractor).post(offer_url(offer, "withdraw"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"
    assert row(offer)["status"] == "withdrawn"

    before = snapshot()
    again = api_as(contractor).post(offer_url(offer, "withdraw"))
    assert again.status_code == 409
    assert error(again)["code"] == "offer_not_pending"
    assert snapshot() == before


def test_only_the_maker_withdraws(task, customer, contractor, api_as):
    offer = OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(customer).post(offer_url(offer, "withdraw"))
    assert response.status_code == 403
    assert error(response)["code"] == "not_offer_owner"
    assert snapshot() == before


def test_customer_declines_an_offer_with_a_reason(task, customer, contractor, api_as, mailoutbox):
    offer = OfferFactory(task=task, contractor=contractor)
    response = api_as(customer).post(offer_url(offer, "decline"), {"reason": "Too far out"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "declined" and response.json()["decline_reason"] == "Too far out"
    assert row(offer)["status"] == "declined"


def test_decline_reason_too_long_is_refused(task, customer, contractor, api_as):
    offer = OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(customer).post(offer_url(offer, "decline"), {"reason": "x" * 900}, format="json")
    assert response.status_code == 400
    assert "reason" in error(response)["fields"]
    assert snapshot() == before


def test_contractor_cannot_decline_their_own_offer(task, contractor, api_as):
    offer = OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(offer_url(offer, "decline"))
    assert response.status_code == 403
    assert snapshot() == before


# --- Accept and instant booking ---------------------------------------------------


def test_customer_accepts_an_offer_and_the_others_are_declined(task, customer, contractor, rival, api_as):
    chosen = OfferFactory(task=task, contractor=contractor, price_cents=11_000)
    other = OfferFactory(task=task, contractor=rival, price_cents=9_000)
    response = api_as(customer).post(offer_url(chosen, "accept"))
    # Accepting starts the checkout: nothing is booked until the payment succeeds.
    assert response.status_code == 202, response.content
    body = response.json()
    escrow = Escrow.objects.get(offer=chosen)
    assert body["checkout_url"] == f"http://testserver/payments/checkout/{escrow.public_id}/"
    assert body["escrow"]["id"] == str(escrow.public_id)
    assert (body["escrow"]["status"], body["escrow"]["price_cents"], body["escrow"]["service_fee_cents"]) == (
        "unfunded",
        11_000,
        550,
    )
    assert body["escrow"]["total_cents"] == 11_550
    assert body["client_secret"].startswith(escrow.payment_intent_id + "_secret_")
    assert Task.objects.get(pk=task.pk).status == "open" and row(chosen)["status"] == "pending"
    # Accepting again while that checkout is open returns the same one.
    again = api_as(customer).post(offer_url(chosen, "accept")).json()
    assert again["escrow"]["id"] == str(escrow.public_id)

    pay(escrow)
    body = api_as(customer).get(f"/api/v1/tasks/{task.public_id}").json()
    assert body["status"] == "assigned"
    assert body["agreed_price_cents"] == 11_000
    assert body["contractor"]["name"] == "Bob"
    fresh = Task.objects.get(pk=task.pk)
    assert fresh.contractor == contractor and fresh.status == "assigned"
    assert row(chosen)["status"] == "accepted" and row(other)["status"] == "declined"

    # The contractor now sees the exact address.
    seen = api_as(contractor).get(f"/api/v1/tasks/{task.public_id}").json()
    assert seen["location"]["exact"] is True and seen["location"]["address"] == task.address
    assert "check_in" in seen["actions"]


def test_accepting_after_someone_else_booked_answers_already_booked(task, customer, contractor, rival, api_as):
    first = OfferFactory(task=task, contractor=contractor)
    second = OfferFactory(task=task, contractor=rival)
    fund(first)
    assert Task.objects.get(pk=task.pk).status == "assigned"
    before = snapshot()
    response = api_as(customer).post(offer_url(second, "accept"))
    assert response.status_code == 409
    body = error(response)
    assert body["code"] == "already_booked"
    assert body["message"] == "This task is no longer open for booking."
    assert snapshot() == before


def test_contractor_cannot_accept_their_own_offer(task, contractor, api_as):
    offer = OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(contractor).post(offer_url(offer, "accept"))
    assert response.status_code == 403
    assert error(response)["code"] == "not_task_customer"
    assert snapshot() == before


def test_accepting_on_a_cancelled_task_is_an_illegal_transition(customer, contractor, api_as):
    task = TaskFactory(customer=customer, status="cancelled")
    offer = OfferFactory(task=task, contractor=contractor)
    before = snapshot()
    response = api_as(customer).post(offer_url(offer, "accept"))
    assert response.status_code == 409
    # Refused by the checkout, before any payment starts.
    assert error(response)["code"] == "already_booked"
    assert error(response)["message"] == "This task is no longer open for booking."
    assert snapshot() == before
    assert not Escrow.objects.exists()


def test_unknown_offer_is_404(customer, api_as):
    response = api_as(customer).post("/api/v1/offers/00000000-0000-0000-0000-000000000000/accept")
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_contractor_books_instantly_at_the_posted_price(customer, contractor, api_as):
    task = TaskFactory(customer=customer, instant_book=True, budget_cents=15_000)
    save_card(customer)
    response = api_as(contractor).post(
        f"/api/v1/tasks/{task.public_id}/instant-book", {"proposed_start": in_days(1)}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "assigned" and body["agreed_price_cents"] == 15_000
    offer = Offer.objects.get(task=task, status="accepted")
    assert offer.is_instant and offer.contractor == contractor
    # The customer's saved card paid the price plus the service fee; it is held.
    escrow = Escrow.objects.get(task=task)
    assert (escrow.status, escrow.offer, escrow.total_cents) == ("held", offer, 15_750)


def test_instant_booking_without_a_saved_card_says_make_an_offer(customer, contractor, api_as):
    task = TaskFactory(customer=customer, instant_book=True)
    before = snapshot()
    response = api_as(contractor).post(f"/api/v1/tasks/{task.public_id}/instant-book")
    assert response.status_code == 409
    assert error(response)["code"] == "no_saved_card"
    assert "Make an offer instead" in error(response)["message"]
    assert snapshot() == before
    assert not Escrow.objects.exists()


def test_second_instant_booking_answers_already_booked(customer, contractor, rival, api_as):
    task = TaskFactory(customer=customer, instant_book=True)
    save_card(customer)
    assert api_as(contractor).post(f"/api/v1/tasks/{task.public_id}/instant-book").status_code == 200
    before = snapshot()
    # Rita never offered, so the booked task is now hidden from her: 404, not a leak.
    hidden = api_as(rival).post(f"/api/v1/tasks/{task.public_id}/instant-book")
    assert hidden.status_code == 404
    assert snapshot() == before
    # A contractor who had offered still sees it and is told it is booked.
    OfferFactory(task=task, contractor=rival, status="declined")
    before = snapshot()
    response = api_as(rival).post(f"/api/v1/tasks/{task.public_id}/instant-book")
    assert response.status_code == 409
    assert error(response)["code"] == "already_booked"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"proposed_start": in_days(-1)}, "proposed_start"), ({"proposed_start": "tomorrow"}, "proposed_start")],
)
def test_bad_instant_booking_is_refused(customer, contractor, api_as, payload, field):
    task = TaskFactory(customer=customer, instant_book=True)
    save_card(customer)
    before = snapshot()
    response = api_as(contractor).post(f"/api/v1/tasks/{task.public_id}/instant-book", payload, format="json")
    assert response.status_code == 400
    assert field in error(response)["fields"]
    assert snapshot() == before
    assert not Escrow.objects.exists()  # refused before the card was charged


def test_instant_booking_a_task_that_does_not_allow_it(task, contractor, api_as):
    before = snapshot()
    response = api_as(contractor).post(f"/api/v1/tasks/{task.public_id}/instant-book")
    assert response.status_code == 409
    assert error(response)["code"] == "instant_book_not_allowed"
    assert snapshot() == before
