"""The Stripe webhook endpoint: verified like Stripe, stored once, processed
by the handler table; bad input answers 400 and stores nothing."""

from __future__ import annotations

import json
import time

import pytest

from payments.gateway.simulated import simulated_webhook_secret
from payments.models import ConnectedAccount, Escrow, LedgerTransaction, WebhookEvent
from tasks.models import Task
from tests.payments.factories import EscrowFactory
from tests.payments.webhook_helpers import NEW_SECRET, OLD_SECRET, dispute_obj, event, intent_obj, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.STRIPE_WEBHOOK_SECRETS = [NEW_SECRET, OLD_SECRET]


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    def _deliver(body, secret=NEW_SECRET, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, body, secret, **kwargs)

    return _deliver


def funds(escrow: Escrow) -> int:
    return LedgerTransaction.objects.filter(escrow=escrow, kind="fund").count()


def test_payment_succeeded_event_funds_the_escrow_and_books_the_task(deliver):
    escrow = EscrowFactory()
    response = deliver(event("payment_intent.succeeded", intent_obj(escrow)))

    assert response.status_code == 200
    assert response.json() == {"received": True}
    stored = WebhookEvent.objects.get()
    assert (stored.type, stored.status, stored.attempts) == ("payment_intent.succeeded", "processed", 1)
    assert stored.gateway_created_at is not None
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.HELD
    assert escrow.captured_cents == escrow.total_cents
    assert funds(escrow) == 1
    assert Task.objects.get(pk=escrow.task_id).status == Task.Status.ASSIGNED


def test_the_same_event_twice_has_one_effect(deliver):
    escrow = EscrowFactory()
    body = event("payment_intent.succeeded", intent_obj(escrow))
    assert deliver(body).status_code == 200
    second = deliver(body)

    assert second.status_code == 200
    assert second.json() == {"received": True, "duplicate": True}
    assert WebhookEvent.objects.count() == 1
    assert WebhookEvent.objects.get().attempts == 1
    assert funds(escrow) == 1


def test_a_new_event_for_the_same_payment_changes_nothing_more(deliver):
    escrow = EscrowFactory()
    deliver(event("payment_intent.succeeded", intent_obj(escrow), event_id="evt_first"))
    deliver(event("payment_intent.succeeded", intent_obj(escrow), event_id="evt_resent_by_stripe"))

    assert WebhookEvent.objects.filter(status="processed").count() == 2
    assert funds(escrow) == 1


def test_unknown_event_types_are_stored_and_ignored(deliver):
    response = deliver(event("customer.created", {"id": "cus_123", "object": "customer"}))

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.type, stored.status) == ("customer.created", "ignored")
    assert stored.processed_at is not None


@pytest.mark.parametrize("secret", [NEW_SECRET, OLD_SECRET])
def test_both_secrets_are_accepted_during_rotation(deliver, secret):
    response = deliver(event("customer.created", {"id": "cus_1", "object": "customer"}), secret)
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_after_rotation_the_retired_secret_is_refused(deliver, settings):
    settings.STRIPE_WEBHOOK_SECRETS = [NEW_SECRET]
    response = deliver(event("customer.created", {"id": "cus_1", "object": "customer"}), OLD_SECRET)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def _refused(response, escrow: Escrow) -> None:
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook"
    assert not WebhookEvent.objects.exists()
    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.UNFUNDED
    assert funds(escrow) == 0


def test_a_bad_signature_is_refused_and_nothing_stored(deliver):
    escrow = EscrowFactory()
    _refused(deliver(event("payment_intent.succeeded", intent_obj(escrow)), "whsec_someone_else"), escrow)


def test_a_tampered_body_is_refused(client, deliver):
    escrow = EscrowFactory()
    body = event("payment_intent.succeeded", intent_obj(escrow))
    from tests.payments.webhook_helpers import signed

    _payload, signature = signed(body)
    body["data"]["object"]["amount"] = 1
    _refused(deliver(body, header=signature), escrow)


def test_a_stale_timestamp_is_refused(deliver):
    escrow = EscrowFactory()
    six_minutes_ago = int(time.time()) - 360
    _refused(deliver(event("payment_intent.succeeded", intent_obj(escrow)), timestamp=six_minutes_ago), escrow)


def test_a_timestamp_within_five_minutes_is_accepted(deliver):
    response = deliver(
        event("customer.created", {"id": "cus_1", "object": "customer"}), timestamp=int(time.time()) - 240
    )
    assert response.status_code == 200


def test_a_missing_signature_header_is_refused(deliver):
    escrow = EscrowFactory()
    _refused(deliver(event("payment_intent.succeeded", intent_obj(escrow)), header=""), escrow)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}),  # no data.object
        json.dumps({"type": "customer.created", "data": {"object": {}}}),  # no id
        json.dumps({"id": "evt_" + "x" * 200, "type": "customer.created", "data": {"object": {}}}),
    ],
)
def test_a_signed_body_that_is_not_a_stripe_event_is_refused(deliver, body):
    escrow = EscrowFactory()
    _refused(deliver(body), escrow)


def test_the_endpoint_takes_only_post(client):
    from django.urls import reverse

    assert client.get(reverse("payments:stripe_webhook")).status_code == 405
    assert not WebhookEvent.objects.exists()


def test_the_simulated_gateways_secret_is_refused_when_stripe_is_configured(deliver, settings):
    body = event("customer.created", {"id": "cus_1", "object": "customer"})
    settings.PAYMENTS_GATEWAY = "simulated"
    assert deliver(body, simulated_webhook_secret()).status_code == 200

    WebhookEvent.objects.all().delete()
    settings.PAYMENTS_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    assert deliver(body, simulated_webhook_secret()).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_payment_failed_marks_an_unfunded_escrow_failed(deliver):
    escrow = EscrowFactory()
    obj = intent_obj(escrow, status="requires_payment_method", last_payment_error={"message": "Your card was declined."})
    deliver(event("payment_intent.payment_failed", obj))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.FAILED
    assert Task.objects.get(pk=escrow.task_id).status == Task.Status.OPEN
    assert "declined" in WebhookEvent.objects.get().error


def test_a_late_failure_after_success_changes_nothing(deliver):
    escrow = EscrowFactory()
    deliver(event("payment_intent.succeeded", intent_obj(escrow)))
    deliver(event("payment_intent.payment_failed", intent_obj(escrow, status="requires_payment_method")))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.HELD
    assert funds(escrow) == 1


def test_a_chargeback_freezes_the_money(deliver):
    escrow = EscrowFactory(state="held")
    deliver(event("charge.dispute.created", dispute_obj(escrow)))

    escrow.refresh_from_db()
    assert escrow.status == Escrow.Status.FROZEN
    assert escrow.status_before_freeze == Escrow.Status.HELD
    assert WebhookEvent.objects.get().status == "processed"


def test_account_updated_sets_the_contractors_payout_flags(deliver, contractor):
    ConnectedAccount.objects.create(user=contractor, gateway_account_id="acct_bob")
    obj = {"id": "acct_bob", "object": "account", "details_submitted": True, "payouts_enabled": True}
    deliver(event("account.updated", obj))

    account = ConnectedAccount.objects.get(user=contractor)
    assert (account.details_submitted, account.payouts_enabled) == (True, True)


def test_an_event_for_an_unknown_account_waits_and_changes_nothing(deliver):
    obj = {"id": "acct_nobody", "object": "account", "details_submitted": True, "payouts_enabled": True}
    deliver(event("account.updated", obj))

    stored = WebhookEvent.objects.get()
    assert stored.status == "failed"
    assert stored.error.startswith("deferred")
    assert not ConnectedAccount.objects.exists()
