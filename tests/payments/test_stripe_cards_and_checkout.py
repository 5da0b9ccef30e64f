"""With real Stripe keys: saving a card for instant booking (a SetupIntent
with usage=off_session confirmed by the Payment Element; the card saved from
the page Stripe returns to or from the ``setup_intent.succeeded`` webhook),
removing it, instant booking charging it off session through StripeGateway
(declines and ``authentication_required`` leave the task open with a clear
message), and the Payment Element checkout page's server side.

Every gateway call goes through the real ``stripe`` library to localstripe
behind the loopback fake (tests/payments/fake_stripe.py). What the browser
does with Stripe.js (confirming the SetupIntent) is done here with the same
API call Stripe.js makes (``setup_intents.confirm`` with the card)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.models import Notification
from payments import accounts, services
from payments.models import (
    CardSetup,
    Escrow,
    GatewayCustomer,
    LedgerTransaction,
    SavedPaymentMethod,
    WebhookEvent,
)
from tasks.models import Offer, Task
from tests.factories import UserFactory
from tests.payments.stripe_fixtures import API_KEY, fake_stripe_fixture, make_gateway  # noqa: F401 - fixture
from tests.payments.webhook_helpers import NEW_SECRET, event, post
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import text

pytestmark = pytest.mark.django_db

PK = "pk_test_bittietasks_publishable"
CARD_PAGE = "/payments/card"
SUCCESS = "4242424242424242"
NEEDS_AUTH = "4000002760003184"  # the bank asks for 3-D Secure on every payment
DECLINED_ON_CHARGE = "4000000000000341"  # saves, then every charge is declined


@pytest.fixture(autouse=True)
def stripe_settings(settings, fake_stripe, monkeypatch):
    settings.PAYMENTS_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = fake_stripe.url
    settings.STRIPE_PUBLISHABLE_KEY = PK
    settings.STRIPE_WEBHOOK_SECRETS = [NEW_SECRET]
    from payments.tasks_webhooks import process_webhook_event

    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: process_webhook_event.delay(pk))
    return settings


def stripe_client():
    from payments.gateway import get_gateway

    return get_gateway().client


def browser_confirms(setup: CardSetup, number: str = SUCCESS, *, authenticate: bool = True):
    """What Stripe.js does on "Save card": confirm the SetupIntent with the
    card (and, when the bank asks, the customer passes 3-D Secure)."""
    card = {"type": "card", "card": {"number": number, "exp_month": 11, "exp_year": 2031, "cvc": "123"}}
    seti = stripe_client().v1.setup_intents.confirm(setup.setup_intent_id, {"payment_method_data": card})
    if seti.status == "requires_action" and authenticate:
        seti = stripe_client().v1.setup_intents.confirm(setup.setup_intent_id)
    return seti


def save_card_through_stripe(client, user, number: str = SUCCESS) -> SavedPaymentMethod:
    client.force_login(user)
    assert client.get(CARD_PAGE).status_code == 200
    setup = CardSetup.objects.filter(user=user).latest("created_at")
    browser_confirms(setup, number)
    response = client.get(f"{CARD_PAGE}?setup_intent={setup.setup_intent_id}&redirect_status=succeeded")
    assert response.status_code == 302
    return SavedPaymentMethod.objects.get(user=user)


def setup_event(setup: CardSetup, event_id: str | None = None) -> dict:
    obj = stripe_client().v1.setup_intents.retrieve(setup.setup_intent_id).to_dict()
    return event("setup_intent.succeeded", obj, event_id=event_id)


# --- the gateway ----------------------------------------------------------------------------------------------


def test_stripe_gateway_setup_intents_and_detach(fake_stripe):
    gateway = make_gateway(fake_stripe)
    customer_id = gateway.create_customer("dana@example.com", "user:1:customer")
    setup = gateway.create_setup_intent(customer_id=customer_id, idempotency_key="user:1:setup:a", metadata={"user": 1})
    assert setup.status == "requires_payment_method" and setup.client_secret.startswith(setup.id + "_secret_")
    [sent] = fake_stripe.calls("POST", "/v1/setup_intents")
    assert sent["idempotency_key"] == "user:1:setup:a"
    assert sent["params"]["usage"] == "off_session" and sent["params"]["customer"] == customer_id
    assert gateway.create_setup_intent(customer_id=customer_id, idempotency_key="user:1:setup:a", metadata={"user": 1}).id == setup.id

    gateway.client.v1.setup_intents.confirm(
        setup.id, {"payment_method_data": {"type": "card", "card": {"number": SUCCESS, "exp_month": 4, "exp_year": 2032, "cvc": "123"}}}
    )
    done = gateway.retrieve_setup_intent(setup.id)
    assert (done.status, done.card_brand, done.card_last4, done.card_exp_month, done.card_exp_year, done.customer_id) == (
        "succeeded", "visa", "4242", 4, 2032, customer_id
    )
    assert gateway.client.v1.payment_methods.retrieve(done.payment_method_id).customer == customer_id
    gateway.detach_payment_method(done.payment_method_id)
    assert gateway.client.v1.payment_methods.retrieve(done.payment_method_id).customer is None


# --- the card page --------------------------------------------------------------------------------------------


def test_card_page_mounts_the_payment_element_for_a_setup_intent(client, customer, fake_stripe):
    client.force_login(customer)
    response = client.get(CARD_PAGE)
    assert response.status_code == 200
    setup = CardSetup.objects.get(user=customer)
    customer_row = GatewayCustomer.objects.get(user=customer)
    assert setup.gateway_customer_id == customer_row.gateway_customer_id and setup.status == "started"
    html = response.content.decode()
    secret = stripe_client().v1.setup_intents.retrieve(setup.setup_intent_id).client_secret
    assert f'data-client-secret="{secret}"' in html and f'data-publishable-key="{PK}"' in html
    assert 'src="https://js.stripe.com/v3/"' in html and "payments/stripe_element.js" in html and 'data-confirm="setup"' in html
    assert 'name="card_number"' not in html  # no card field of ours: the number goes to Stripe only
    assert API_KEY not in html

    # Reloading reuses the waiting SetupIntent instead of making another.
    assert client.get(CARD_PAGE).status_code == 200
    assert CardSetup.objects.filter(user=customer).count() == 1
    assert len(fake_stripe.calls("POST", "/v1/setup_intents")) == 1
    assert len(fake_stripe.calls("POST", "/v1/customers")) == 1


def test_back_from_stripe_the_card_is_saved_with_brand_last4_and_expiry(client, customer):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)
    browser_confirms(setup)

    response = client.get(f"{CARD_PAGE}?setup_intent={setup.setup_intent_id}&redirect_status=succeeded&next=/tasks/")
    assert response.status_code == 302 and response["Location"] == "/tasks/"
    card = SavedPaymentMethod.objects.get(user=customer)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 11, 2031)
    assert card.gateway_customer_id == GatewayCustomer.objects.get(user=customer).gateway_customer_id
    assert card.setup_id == setup.pk
    setup.refresh_from_db()
    assert (setup.status, setup.payment_method_id) == ("saved", card.gateway_payment_method_id)
    page = text(client.get(CARD_PAGE))
    assert "Saved: Visa ending in 4242. Expires 11/2031." in page


def test_the_webhook_saves_the_card_when_the_browser_never_comes_back(client, customer, django_capture_on_commit_callbacks):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)
    browser_confirms(setup)
    body = setup_event(setup)
    for _ in range(2):  # delivered twice: saved once
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, body).status_code == 200
    stored = WebhookEvent.objects.get(type="setup_intent.succeeded")
    assert stored.status == "processed", stored.error
    assert SavedPaymentMethod.objects.get(user=customer).last4 == "4242"
    # The browser comes back afterwards: nothing changes, the page says saved.
    response = client.get(f"{CARD_PAGE}?setup_intent={setup.setup_intent_id}")
    assert response.status_code == 302
    assert SavedPaymentMethod.objects.filter(user=customer).count() == 1


def test_a_setup_intent_this_site_did_not_start_is_ignored_and_ours_not_yet_stored_waits(client, customer):
    foreign = {"id": "seti_elsewhere", "object": "setup_intent", "status": "succeeded", "metadata": {}}
    assert post(client, event("setup_intent.succeeded", foreign)).status_code == 200
    assert "ignored" in WebhookEvent.objects.get(event_id__contains="seti_elsewhere").error
    ours = {"id": "seti_not_yet", "object": "setup_intent", "status": "succeeded", "metadata": {"user": str(customer.pk)}}
    post(client, event("setup_intent.succeeded", ours))
    stored = WebhookEvent.objects.get(event_id__contains="seti_not_yet")
    assert stored.status == "failed" and stored.error.startswith("deferred")
    assert not SavedPaymentMethod.objects.exists()


def test_a_setup_that_did_not_succeed_saves_nothing(client, customer):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)
    browser_confirms(setup, NEEDS_AUTH, authenticate=False)  # the customer closed the 3-D Secure window
    response = client.get(f"{CARD_PAGE}?setup_intent={setup.setup_intent_id}&redirect_status=failed")
    assert response.status_code == 200
    assert "The card was not saved" in text(response)
    assert not SavedPaymentMethod.objects.exists()
    assert CardSetup.objects.get(pk=setup.pk).status == "started"  # can still be finished


def test_nobody_else_can_finish_or_see_your_card_setup(client, customer):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)
    browser_confirms(setup)
    mallory = UserFactory(email="mallory@example.com")
    client.force_login(mallory)
    response = client.get(f"{CARD_PAGE}?setup_intent={setup.setup_intent_id}")
    assert response.status_code == 404
    assert not SavedPaymentMethod.objects.exists()
    assert setup.setup_intent_id not in client.get(CARD_PAGE).content.decode()
    assert client.get(f"{CARD_PAGE}?setup_intent=seti_made_up").status_code == 404


def test_an_older_setup_never_replaces_a_newer_card(client, customer, fake_stripe):
    client.force_login(customer)
    client.get(CARD_PAGE)
    older = CardSetup.objects.get(user=customer)
    browser_confirms(older, "5555555555554444")
    # Another tab, an hour later: a new set-up, saved first.
    CardSetup.objects.filter(pk=older.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    client.get(CARD_PAGE)
    newer = CardSetup.objects.filter(user=customer).latest("created_at")
    assert newer.pk != older.pk
    browser_confirms(newer, SUCCESS)
    accounts.card_setup_succeeded(newer.setup_intent_id, user=customer)

    accounts.card_setup_succeeded(older.setup_intent_id, user=customer)

    card = SavedPaymentMethod.objects.get(user=customer)
    assert card.setup_id == newer.pk
    older.refresh_from_db()
    assert older.status == "superseded"


def test_removing_the_card_detaches_it_and_a_late_setup_cannot_bring_it_back(client, customer, fake_stripe, django_capture_on_commit_callbacks):
    card = save_card_through_stripe(client, customer)
    client.get(CARD_PAGE)  # a new set-up starts (the page offers "Use another card")
    waiting = CardSetup.objects.filter(user=customer, status="started").get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/payments/card/remove")
    assert response.status_code == 302
    assert not SavedPaymentMethod.objects.filter(user=customer).exists()
    assert fake_stripe.calls("POST", f"/v1/payment_methods/{card.gateway_payment_method_id}/detach")
    assert stripe_client().v1.payment_methods.retrieve(card.gateway_payment_method_id).customer is None
    assert CardSetup.objects.get(pk=waiting.pk).status == "cancelled"

    browser_confirms(waiting)  # the other tab finishes after the removal
    with django_capture_on_commit_callbacks(execute=True):
        post(client, setup_event(waiting))
    assert not SavedPaymentMethod.objects.filter(user=customer).exists()


def test_card_page_refusals(client, customer, contractor, settings):
    assert client.get(CARD_PAGE).status_code == 302  # anonymous: to the login page
    assert client.post("/payments/card/remove").status_code == 302
    assert not CardSetup.objects.exists()

    client.force_login(contractor)  # a contractor without the customer role saves no card
    contractor.is_customer = False
    contractor.save(update_fields=["is_customer"])
    response = client.get(CARD_PAGE)
    assert response.status_code == 403
    assert "Only customers save a card" in text(response) and "js.stripe.com" not in response.content.decode()
    assert not CardSetup.objects.exists()

    client.force_login(customer)
    assert client.get("/payments/card/remove").status_code == 405
    response = client.post(CARD_PAGE, {"card_number": SUCCESS, "expiry": "12/34", "cvc": "123"})
    assert response.status_code == 400  # with Stripe the card never comes to this server
    assert not SavedPaymentMethod.objects.exists()

    settings.STRIPE_PUBLISHABLE_KEY = ""
    response = client.get(CARD_PAGE)
    assert response.status_code == 503
    assert "js.stripe.com" not in response.content.decode()


def test_removing_only_ever_removes_your_own_card(client, customer):
    card = save_card_through_stripe(client, customer)
    client.force_login(UserFactory(email="eve@example.com"))
    response = client.post("/payments/card/remove")
    assert response.status_code == 302
    assert SavedPaymentMethod.objects.filter(pk=card.pk).exists()


def test_detached_at_stripe_the_saved_card_is_forgotten(client, customer):
    card = save_card_through_stripe(client, customer)
    obj = {"id": card.gateway_payment_method_id, "object": "payment_method", "customer": None}
    post(client, event("payment_method.detached", obj))
    assert not SavedPaymentMethod.objects.filter(user=customer).exists()


# --- instant booking charges the saved card off session -----------------------------------------------------------


@pytest.fixture
def instant_task(customer):
    return TaskFactory(customer=customer, instant_book=True, budget_cents=11_000, title="Mount the TV")


def test_instant_booking_charges_the_saved_card_off_session(client, customer, contractor, instant_task, fake_stripe, api_as):
    card = save_card_through_stripe(client, customer)
    response = api_as(contractor).post(f"/api/v1/tasks/{instant_task.public_id}/instant-book")
    assert response.status_code == 200, response.content

    escrow = Escrow.objects.get(task=instant_task)
    instant_task.refresh_from_db()
    assert (escrow.status, instant_task.status, instant_task.contractor_id) == ("held", "assigned", contractor.pk)
    [sent] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert sent["idempotency_key"] == f"escrow:{escrow.public_id}:payment_intent"
    params = sent["params"]
    assert (params["confirm"], params["off_session"]) == ("true", "true")
    assert (params["customer"], params["payment_method"]) == (card.gateway_customer_id, card.gateway_payment_method_id)
    assert params["amount"] == str(escrow.total_cents)
    assert list(escrow.transactions.values_list("kind", flat=True)) == ["fund"]


@pytest.mark.parametrize(
    ("number", "code", "says"),
    [
        (NEEDS_AUTH, "authentication_required", "The customer's bank wants them to confirm this payment themselves"),
        (DECLINED_ON_CHARGE, "card_declined", "The customer's saved card was declined"),
    ],
)
def test_a_refused_off_session_charge_leaves_the_task_open_with_a_clear_message(
    client, customer, contractor, instant_task, api_as, number, code, says
):
    save_card_through_stripe(client, customer, number)
    response = api_as(contractor).post(f"/api/v1/tasks/{instant_task.public_id}/instant-book")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == code and error["message"].startswith(says)
    assert "Nothing was charged and the task is still open: make an offer instead." in error["message"]
    instant_task.refresh_from_db()
    assert (instant_task.status, instant_task.contractor_id) == (Task.Status.OPEN, None)
    escrow = Escrow.objects.get(task=instant_task)
    assert escrow.status == Escrow.Status.FAILED
    if code == "authentication_required":  # Stripe's 402 names the PaymentIntent (localstripe's declines do not)
        assert escrow.payment_intent_id.startswith("pi_")
    assert not LedgerTransaction.objects.filter(escrow=escrow).exists()
    assert not Offer.objects.filter(task=instant_task, status="accepted").exists()
    assert Notification.objects.filter(user=customer, title="Instant booking failed: check your card").exists()


def test_the_task_page_tells_the_contractor_why_the_booking_failed(client, customer, contractor, instant_task):
    save_card_through_stripe(client, customer, NEEDS_AUTH)
    client.force_login(contractor)
    response = client.post(
        f"/tasks/{instant_task.public_id}/book", {"book-confirm": "on"}, follow=True
    )
    assert "bank wants them to confirm this payment" in text(response)
    assert Task.objects.get(pk=instant_task.pk).status == Task.Status.OPEN


# --- the Payment Element checkout page (server side) -----------------------------------------------------------


@pytest.fixture
def stripe_checkout(customer, contractor):
    task = TaskFactory(customer=customer, title="Fix the dripping kitchen tap")
    offer = OfferFactory(task=task, contractor=contractor, price_cents=11_000)
    return services.checkout_start(offer, by=customer)


def test_checkout_page_renders_the_key_and_its_own_client_secret_to_its_customer(client, customer, stripe_checkout):
    client.force_login(customer)
    response = client.get(f"/payments/checkout/{stripe_checkout.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    secret = stripe_client().v1.payment_intents.retrieve(stripe_checkout.payment_intent_id).client_secret
    assert secret.startswith(stripe_checkout.payment_intent_id + "_secret_")
    assert f'data-client-secret="{secret}"' in html and f'data-publishable-key="{PK}"' in html
    assert f'data-return-url="http://testserver/payments/checkout/{stripe_checkout.public_id}/?return=1"' in html
    assert html.count("https://js.stripe.com/v3/") == 1 and "payments/stripe_element.js" in html and 'data-confirm="payment"' in html
    assert "Demo: no real card is charged." not in text(response) and 'name="card_number"' not in html
    assert API_KEY not in html
    # The only outside address on the page is Stripe.js.
    import re

    outside = {m for m in re.findall(r'(?:src|href)="(https?://[^"/]+)', html) if "testserver" not in m}
    assert outside == {"https://js.stripe.com"}


def test_nobody_else_can_open_the_stripe_checkout(client, customer, contractor, staff, stripe_checkout):
    url = f"/payments/checkout/{stripe_checkout.public_id}/"
    assert client.get(url).status_code == 302  # anonymous: login
    for other in (contractor, staff, UserFactory(email="other@example.com")):
        client.force_login(other)
        response = client.get(url)
        assert response.status_code == 404, other
        assert "_secret_" not in response.content.decode()


def test_stripe_checkout_refuses_our_card_form_and_waits_after_the_return(client, customer, stripe_checkout):
    client.force_login(customer)
    url = f"/payments/checkout/{stripe_checkout.public_id}/"
    response = client.post(url, {"card_number": SUCCESS, "expiry": "12/34", "cvc": "123"})
    assert response.status_code == 400 and "Pay with the card form above." in text(response)
    assert Escrow.objects.get(pk=stripe_checkout.pk).status == Escrow.Status.UNFUNDED

    waiting = client.get(url + "?return=1")  # back from Stripe before its webhook arrived
    assert waiting.status_code == 200
    assert "Confirming your payment" in text(waiting)
    assert "js.stripe.com" not in waiting.content.decode()


def test_stripe_checkout_when_stripe_does_not_answer(client, customer, stripe_checkout, fake_stripe):
    client.force_login(customer)
    fake_stripe.fail_next("GET", r"/v1/payment_intents/.*", times=3)
    response = client.get(f"/payments/checkout/{stripe_checkout.public_id}/")
    assert response.status_code == 503
    assert "The payment service did not answer" in text(response)
    assert "js.stripe.com" not in response.content.decode()


def test_simulated_pages_load_nothing_from_outside(client, customer, settings, contractor):
    settings.PAYMENTS_GATEWAY = "simulated"
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(customer)
    task = TaskFactory(customer=customer)
    escrow = services.checkout_start(OfferFactory(task=task, contractor=contractor), by=customer)
    for url in (CARD_PAGE, f"/payments/checkout/{escrow.public_id}/"):
        html = client.get(url).content.decode()
        assert "js.stripe.com" not in html and "https://" not in html.replace("https://schema", ""), url


def test_a_forged_or_stale_success_event_saves_nothing_the_gateway_does_not_confirm(client, customer):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)  # never confirmed at the gateway
    obj = {"id": setup.setup_intent_id, "object": "setup_intent", "status": "succeeded", "payment_method": "pm_forged",
           "metadata": {"user": str(customer.pk)}}
    post(client, event("setup_intent.succeeded", obj))
    stored = WebhookEvent.objects.get(type="setup_intent.succeeded")
    assert stored.status == "processed" and "not saved" in stored.error
    assert not SavedPaymentMethod.objects.exists()
    assert CardSetup.objects.get(pk=setup.pk).status == "started"


def test_a_refused_card_setup_keeps_its_error_and_can_be_retried(client, customer):
    client.force_login(customer)
    client.get(CARD_PAGE)
    setup = CardSetup.objects.get(user=customer)
    obj = {"id": setup.setup_intent_id, "object": "setup_intent", "status": "requires_payment_method",
           "last_setup_error": {"code": "card_declined", "message": "Your card was declined."}}
    post(client, event("setup_intent.setup_failed", obj))
    setup.refresh_from_db()
    assert (setup.status, setup.error) == ("started", "Your card was declined.")
    client.get(CARD_PAGE)  # the same set-up is offered again
    assert CardSetup.objects.filter(user=customer).count() == 1
    post(client, event("setup_intent.setup_failed", {"id": "seti_unknown", "object": "setup_intent"}))
    assert "ignored" in WebhookEvent.objects.get(event_id__contains="seti_unknown").error


@pytest.mark.parametrize("pm_id", ["pm_never_saved", ""])
def test_a_detached_event_for_another_card_changes_nothing(client, customer, pm_id):
    card = save_card_through_stripe(client, customer)
    post(client, event("payment_method.detached", {"id": pm_id, "object": "payment_method"}, event_id=f"evt_det_{pm_id}"))
    assert SavedPaymentMethod.objects.filter(pk=card.pk).exists()
    assert WebhookEvent.objects.get(event_id=f"evt_det_{pm_id}").status == "processed"


def test_card_events_with_a_bad_signature_are_refused(client, customer):
    card = save_card_through_stripe(client, customer)
    stored_before = WebhookEvent.objects.count()
    for body in (
        event("payment_method.detached", {"id": card.gateway_payment_method_id, "object": "payment_method"}),
        event("setup_intent.succeeded", {"id": "seti_x", "object": "setup_intent"}),
    ):
        assert post(client, body, secret="whsec_wrong").status_code == 400
    assert WebhookEvent.objects.count() == stored_before
    assert SavedPaymentMethod.objects.filter(pk=card.pk).exists()
