"""Payment pages through the simulated gateway: checkout (success, declined,
insufficient funds, expired), who may open what, bad input on every form,
history and receipts, saved card, earnings and payout set-up."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from payments.models import ConnectedAccount, Escrow, LedgerTransaction, Refund, SavedPaymentMethod
from tasks.models import Offer, Task
from tests.payments.helpers import DECLINED, INSUFFICIENT, SUCCESS, fund, start_checkout
from tests.tasks._services_support import make_contractor
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhooks_at_once(monkeypatch):
    """The webhook is handled when its storing transaction commits; a test
    runs inside one transaction, so handle it at once, as production's
    autocommit request does."""
    from payments.tasks_webhooks import process_webhook_event

    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: process_webhook_event.delay(pk))


@pytest.fixture
def task(customer):
    return TaskFactory(customer=customer, title="Fix the dripping kitchen tap")


@pytest.fixture
def offer(task, contractor):
    return OfferFactory(task=task, contractor=contractor, price_cents=11_000)


@pytest.fixture
def escrow(offer):
    return start_checkout(offer)


def checkout_url(escrow) -> str:
    return f"/payments/checkout/{escrow.public_id}/"


def card(number: str = SUCCESS, expiry: str = "12/34", cvc: str = "123") -> dict:
    return {"card_number": number, "expiry": expiry, "cvc": cvc}


def money_state(task) -> tuple:
    """Everything a payment can change, to compare before and after a refusal."""
    task = Task.objects.get(pk=task.pk)
    return (
        task.status,
        task.contractor_id,
        sorted(Offer.objects.filter(task=task).values_list("pk", "status")),
        sorted(Escrow.objects.filter(task=task).values_list("pk", "status", "captured_cents", "refunded_cents")),
        LedgerTransaction.objects.count(),
        Refund.objects.count(),
    )


# --- accepting leads to the checkout -------------------------------------------------------


def test_accept_on_the_task_page_opens_the_checkout_with_the_breakdown(client, customer, task, offer):
    client.force_login(customer)
    response = client.post(f"/tasks/{task.public_id}/offers/{offer.public_id}/accept")
    escrow = Escrow.objects.get(offer=offer)
    assert response.status_code == 302 and response["Location"] == checkout_url(escrow)
    assert (Task.objects.get(pk=task.pk).status, Offer.objects.get(pk=offer.pk).status) == ("open", "pending")

    response = client.get(checkout_url(escrow))
    assert response.status_code == 200
    page = text(response)
    assert "Pay and book Bob" in page
    assert "Price agreed with Bob Builder $110.00" in page
    assert "Service fee 5% of the price, at least $1.99 $5.50" in page
    assert "Total charged now $115.50" in page
    assert "Payment held until you approve" in page or "payment held until you approve" in page
    assert "Demo: no real card is charged." in page
    for number in ("4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 9995"):
        assert number in page
    assert "js.stripe.com" not in response.content.decode()
    assert "escrow" not in page.lower()


def test_success_card_books_the_task_and_the_page_says_payment_held(client, customer, contractor, task, escrow):
    client.force_login(customer)
    response = client.post(checkout_url(escrow), card("4242 4242 4242 4242"))
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.public_id}"
    escrow.refresh_from_db()
    task.refresh_from_db()
    assert (escrow.status, escrow.captured_cents) == ("held", 11_550)
    assert (task.status, task.contractor, task.agreed_price_cents) == ("assigned", contractor, 11_000)
    assert list(escrow.transactions.values_list("kind", flat=True)) == ["fund"]

    page = text(client.get(f"/tasks/{task.public_id}"))
    assert "You booked Bob Builder. You paid $115.50: payment held until you approve the work." in page
    assert "$115.50 paid. Payment held until you approve." in page
    assert "Service fee $5.50" in page and "Total paid $115.50" in page
    assert "Paid, held until approval" in page  # the money timeline

    # The contractor sees their share, not the customer's fee.
    client.force_login(contractor)
    page = text(client.get(f"/tasks/{task.public_id}"))
    assert "$99.00 to you (after $11.00 fee): payment held until the customer approves." in page
    # Going back to the paid checkout just shows the task.
    client.force_login(customer)
    assert client.get(checkout_url(escrow))["Location"] == f"/tasks/{task.public_id}"


@pytest.mark.parametrize(
    ("number", "message"),
    [(DECLINED, "Your card was declined."), (INSUFFICIENT, "Your card has insufficient funds.")],
)
def test_declined_card_shows_the_error_and_the_offer_stays_acceptable(client, customer, task, offer, escrow, number, message):
    client.force_login(customer)
    response = client.post(checkout_url(escrow), card(number))
    assert response.status_code == 402
    assert message in text(response)
    assert 'id="checkout-error"' in response.content.decode()
    escrow.refresh_from_db()
    assert (escrow.status, escrow.captured_cents) == ("failed", 0)
    assert (Task.objects.get(pk=task.pk).status, Offer.objects.get(pk=offer.pk).status) == ("open", "pending")
    assert not LedgerTransaction.objects.exists()

    # The page still offers the card form; a good card then books (a new checkout for the same offer).
    page = text(client.get(checkout_url(escrow)))
    assert "The last card was declined and nothing was charged. Try another card." in page
    response = client.post(checkout_url(escrow), card(SUCCESS))
    assert response.status_code == 302
    assert Task.objects.get(pk=task.pk).status == "assigned"
    assert Escrow.objects.get(task=task, status="held").offer == offer


def test_expired_checkout_says_so_charges_nothing_and_restarts(client, customer, task, offer, escrow):
    Escrow.objects.filter(pk=escrow.pk).update(checkout_expires_at=timezone.now() - dt.timedelta(minutes=1))
    client.force_login(customer)
    page = text(client.get(checkout_url(escrow)))
    assert "This checkout expired" in page and "Nothing was charged" in page
    before = money_state(task)
    response = client.post(checkout_url(escrow), card(SUCCESS))
    assert response.status_code == 409
    assert money_state(task) == before

    response = client.post(f"/payments/checkout/{escrow.public_id}/restart")
    fresh = Escrow.objects.exclude(pk=escrow.pk).get(offer=offer)
    assert response.status_code == 302 and response["Location"] == checkout_url(fresh)
    assert client.post(checkout_url(fresh), card(SUCCESS)).status_code == 302
    assert Task.objects.get(pk=task.pk).status == "assigned"


def test_checkout_for_an_offer_someone_else_booked_cannot_be_paid(client, customer, task, escrow):
    rival_offer = OfferFactory(task=task, contractor=make_contractor("rita@example.com"), price_cents=9_000)
    fund(rival_offer)
    client.force_login(customer)
    page = text(client.get(checkout_url(escrow)))
    assert "This offer can no longer be paid" in page
    before = money_state(task)
    assert client.post(checkout_url(escrow), card(SUCCESS)).status_code == 409
    assert money_state(task) == before


# --- who may open the checkout -------------------------------------------------------------


@pytest.mark.parametrize("who", ["contractor", "outsider", "staff"])
def test_only_the_paying_customer_sees_the_checkout(client, request, task, escrow, who):
    client.force_login(request.getfixturevalue(who))
    before = money_state(task)
    assert client.get(checkout_url(escrow)).status_code == 404
    assert client.post(checkout_url(escrow), card(SUCCESS)).status_code == 404
    assert client.post(f"/payments/checkout/{escrow.public_id}/restart").status_code == 404
    assert client.get(f"/payments/receipts/{escrow.public_id}/").status_code == 404
    assert money_state(task) == before


def test_anonymous_is_sent_to_log_in_and_nothing_is_paid(client, task, escrow):
    before = money_state(task)
    for response in (client.get(checkout_url(escrow)), client.post(checkout_url(escrow), card(SUCCESS))):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert money_state(task) == before


def test_unknown_checkout_is_404(client, customer):
    client.force_login(customer)
    assert client.get("/payments/checkout/00000000-0000-0000-0000-000000000000/").status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (card("1234"), "card_number", "Enter the card number: 12 to 19 digits."),
        (card("4242 4242 4242 abcd"), "card_number", "Enter the card number: 12 to 19 digits."),
        (card(expiry="13/30"), "expiry", "Enter the expiry as MM/YY, like 12/34."),
        (card(cvc="12"), "cvc", "Enter the 3 or 4 digits on the back of the card."),
        ({}, "card_number", "This field is required."),
    ],
)
def test_bad_card_input_is_refused_next_to_the_field_and_nothing_is_charged(client, customer, task, escrow, data, field, message):
    client.force_login(customer)
    before = money_state(task)
    response = client.post(checkout_url(escrow), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert money_state(task) == before


def test_a_card_that_is_not_a_test_card_is_refused(client, customer, task, escrow):
    client.force_login(customer)
    response = client.post(checkout_url(escrow), card("5105 1051 0510 5100"))
    assert response.status_code == 402
    assert "This demo takes test cards only" in text(response)
    assert Task.objects.get(pk=task.pk).status == "open"


# --- history and receipts --------------------------------------------------------------------


def test_history_lists_my_payments_and_receipt_to_the_cent(client, customer, outsider, task, offer):
    escrow = fund(offer)
    client.force_login(customer)
    page = text(client.get("/payments/history"))
    assert "Fix the dripping kitchen tap" in page and "$115.50" in page and "Held until you approve" in page
    receipt = text(client.get(f"/payments/receipts/{escrow.public_id}/"))
    assert "Total charged now $115.50" in receipt and "Amounts in USD" in receipt

    client.force_login(outsider)
    page = text(client.get("/payments/history"))
    assert "Fix the dripping kitchen tap" not in page
    assert "No payments yet." in page


def test_history_shows_a_refund(client, customer, staff, task, offer):
    from payments import services

    escrow = fund(offer)
    services.escrow_refund(escrow, reason="Customer changed plans", by=staff)
    client.force_login(customer)
    page = text(client.get("/payments/history"))
    assert "Refunded" in page and "Customer changed plans" in page
    receipt = text(client.get(f"/payments/receipts/{escrow.public_id}/"))
    assert "You paid in the end: $0.00" in receipt


def test_receipt_of_an_unpaid_checkout_is_404(client, customer, escrow):
    client.force_login(customer)
    assert client.get(f"/payments/receipts/{escrow.public_id}/").status_code == 404


# --- saved card --------------------------------------------------------------------------------


def test_customer_saves_a_card_for_instant_booking(client, customer):
    client.force_login(customer)
    page = text(client.get("/payments/card"))
    assert "Demo: no real card is charged." in page
    response = client.post("/payments/card", card(SUCCESS))
    assert response.status_code == 302
    saved = SavedPaymentMethod.objects.get(user=customer)
    assert (saved.brand, saved.last4) == ("visa", "4242")
    assert "Visa ending in 4242 is saved." in text(client.get("/payments/history"))


@pytest.mark.parametrize(("data", "status"), [(card(DECLINED), 402), (card("12"), 400), (card(cvc="x"), 400)])
def test_bad_or_declined_card_is_not_saved(client, customer, data, status):
    client.force_login(customer)
    response = client.post("/payments/card", data)
    assert response.status_code == status
    assert not SavedPaymentMethod.objects.exists()


def test_card_page_ignores_a_foreign_next_url(client, customer):
    client.force_login(customer)
    response = client.post("/payments/card", {**card(SUCCESS), "next": "https://evil.example.com/"})
    assert response["Location"] == "/payments/card"


def test_posting_an_instant_book_task_asks_for_a_card(client, customer):
    from tests.factories import CategoryFactory
    from tests.tasks.test_pages import task_data

    client.force_login(customer)
    response = client.post("/tasks/new", task_data(CategoryFactory(name="Plumbing", slug="plumbing"), instant_book="on"))
    task = Task.objects.get()
    assert task.instant_book and task.status == "open"
    assert response.status_code == 302 and response["Location"] == f"/payments/card?next=/tasks/{task.public_id}"
    # With the card saved, the customer is sent back to the task.
    response = client.post("/payments/card", {**card(SUCCESS), "next": f"/tasks/{task.public_id}"})
    assert response["Location"] == f"/tasks/{task.public_id}"


# --- earnings and payouts ----------------------------------------------------------------------


def test_contractor_earnings_show_held_then_pending_by_task(client, customer, contractor, task, offer):
    from payments import services

    escrow = fund(offer)
    client.force_login(contractor)
    page = text(client.get("/payments/earnings"))
    assert "Held until the customer approves" in page and "$99.00" in page
    assert "your earnings wait until payouts are set up" in page
    services.escrow_release(escrow)
    page = text(client.get("/payments/earnings"))
    assert "Pending until" in page
    assert "Pending (3-day hold) $99.00" in page


def test_earnings_are_only_my_own(client, contractor, offer):
    fund(offer)
    client.force_login(make_contractor("rita@example.com"))
    page = text(client.get("/payments/earnings"))
    assert "Fix the dripping kitchen tap" not in page
    assert "No earnings yet." in page


def test_a_customer_has_no_earnings_page_or_payout_set_up(client, customer):
    client.force_login(customer)
    assert client.get("/payments/earnings").status_code == 403
    assert client.post("/payments/payouts/setup").status_code == 404
    assert client.post("/payments/payouts/demo-onboarding").status_code == 404
    assert not ConnectedAccount.objects.exists()


def test_contractor_sets_up_payouts_on_the_demo_page(client, contractor):
    client.force_login(contractor)
    response = client.post("/payments/payouts/setup")
    assert response.status_code == 302 and response["Location"] == "/payments/payouts/demo-onboarding"
    assert "Demo: no real bank account is connected." in text(client.get("/payments/payouts/demo-onboarding"))
    response = client.post("/payments/payouts/demo-onboarding")
    assert response.status_code == 302
    account = ConnectedAccount.objects.get(user=contractor)
    assert (account.details_submitted, account.payouts_enabled) == (True, True)
    page = text(client.get("/payments/earnings"))
    assert "Available earnings are sent to your bank automatically." in page


def test_payout_set_up_needs_post(client, contractor):
    client.force_login(contractor)
    assert client.get("/payments/payouts/setup").status_code == 405
    assert not ConnectedAccount.objects.exists()


# --- permission matrix ------------------------------------------------------------------------

PAGES = ["/payments/history", "/payments/card", "/payments/earnings", "/payments/payouts/demo-onboarding"]


@pytest.mark.parametrize("path", PAGES)
def test_every_payment_page_needs_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("customer", "/payments/history", 200),
        ("customer", "/payments/card", 200),
        ("customer", "/payments/earnings", 403),
        ("customer", "/payments/payouts/demo-onboarding", 404),
        ("contractor", "/payments/history", 200),
        ("contractor", "/payments/earnings", 200),
        ("contractor", "/payments/payouts/demo-onboarding", 200),
        ("outsider", "/payments/earnings", 403),
        ("staff", "/payments/earnings", 403),
    ],
)
def test_permission_matrix(client, request, who, path, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(path).status_code == status



# --- receipts by email ------------------------------------------------------------------------


def test_paying_emails_a_receipt_to_the_cent_with_currency(customer, offer, mailoutbox):
    escrow = fund(offer)
    [receipt] = [m for m in mailoutbox if m.to == [customer.email]]
    assert receipt.subject == "[BittieTasks] Receipt: $115.50 USD paid for “Fix the dripping kitchen tap”"
    for line in ("Price:        $110.00 USD", "Service fee:  $5.50 USD", "Total paid:   $115.50 USD", str(escrow.public_id)):
        assert line in receipt.body
    assert "Payment held until you approve" in receipt.body
    assert f"/payments/receipts/{escrow.public_id}/" in receipt.body


def test_a_refund_emails_a_refund_receipt(customer, staff, offer, mailoutbox, django_capture_on_commit_callbacks):
    from payments import services

    escrow = fund(offer)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.escrow_refund(escrow, reason="Customer changed plans", by=staff)
    [receipt] = mailoutbox
    assert receipt.to == [customer.email]
    assert receipt.subject == "[BittieTasks] Refund: $115.50 USD for “Fix the dripping kitchen tap”"
    assert "Refunded:     $115.50 USD" in receipt.body and "Reason:       Customer changed plans" in receipt.body


def test_a_split_receipt_says_what_went_to_the_pro(customer, staff, offer, mailoutbox, django_capture_on_commit_callbacks):
    from payments import services

    escrow = fund(offer)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.escrow_split(escrow, contractor_cents=4_500, reason="Call-out fee after check-in", by=staff)
    [receipt] = mailoutbox
    assert "Refunded:     $70.50 USD" in receipt.body and "To the pro:   $45.00 USD" in receipt.body


def test_a_declined_card_sends_no_receipt(client, customer, escrow, mailoutbox):
    client.force_login(customer)
    client.post(checkout_url(escrow), card(DECLINED))
    assert mailoutbox == []
