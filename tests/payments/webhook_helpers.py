"""Building and signing webhook events the way Stripe does, for the webhook tests."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from payments import handlers
from payments.models import Escrow, WebhookEvent

NEW_SECRET = "whsec_test_new_0123456789abcdef"
OLD_SECRET = "whsec_test_old_fedcba9876543210"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{event_type.replace('.', '_')}_{obj['id']}",
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": created or int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def intent_obj(escrow: Escrow, status: str = "succeeded", **extra: Any) -> dict:
    return {
        "id": escrow.payment_intent_id,
        "object": "payment_intent",
        "amount": escrow.total_cents,
        "amount_received": escrow.total_cents if status == "succeeded" else 0,
        "currency": escrow.currency.lower(),
        "status": status,
        "latest_charge": f"ch_for_{escrow.public_id.hex[:12]}" if status == "succeeded" else None,
        "metadata": {"escrow": str(escrow.public_id), "task": str(escrow.task.public_id)},
        **extra,
    }


def dispute_obj(escrow: Escrow) -> dict:
    return {
        "id": f"dp_{escrow.public_id.hex[:12]}",
        "object": "dispute",
        "amount": escrow.total_cents,
        "charge": f"ch_for_{escrow.public_id.hex[:12]}",
        "payment_intent": escrow.payment_intent_id,
        "reason": "fraudulent",
        "status": "needs_response",
    }


def signed(body: dict | str, secret: str = NEW_SECRET, timestamp: int | None = None) -> tuple[str, str]:
    payload = body if isinstance(body, str) else json.dumps(body)
    return payload, stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def post(client, body: dict | str, secret: str = NEW_SECRET, *, timestamp: int | None = None, header: str | None = None):
    payload, signature = signed(body, secret, timestamp)
    extra = {} if header == "" else {"HTTP_STRIPE_SIGNATURE": header or signature}
    return client.post(reverse("payments:stripe_webhook"), data=payload, content_type="application/json", **extra)


# Fixtures for modules that post signed events to the endpoint; import them by
# name (``from tests.payments.webhook_helpers import deliver_fixture,
# webhook_secret_fixture``), as ledger_support's gateway_fixture is.


@pytest.fixture(autouse=True, name="webhook_secret")
def webhook_secret_fixture(settings):
    """Imported into a module, every test there signs with NEW_SECRET."""
    settings.STRIPE_WEBHOOK_SECRETS = [NEW_SECRET]


@pytest.fixture(name="deliver")
def deliver_fixture(client, django_capture_on_commit_callbacks):
    """Post a signed event, run what its commit queued; the stored event."""

    def _deliver(body):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, body)
        assert response.status_code == 200
        return WebhookEvent.objects.get(event_id=body["id"])

    return _deliver


def settle(django_capture_on_commit_callbacks, rounds: int = 5) -> None:
    """Run the beat retry until nothing is left to retry (bounded)."""
    later = timezone.now()
    for _ in range(rounds):
        later += dt.timedelta(days=1)
        with django_capture_on_commit_callbacks(execute=True):
            if handlers.retry_due_events(now=later) == 0:
                return
