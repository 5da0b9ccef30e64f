"""The Stripe webhook endpoint: POST /payments/webhooks/stripe.

``receive(payload, sig_header)`` does the work; the view is a thin wrapper and
the simulated gateway calls ``receive`` directly with events it signed, so both
go through the same checks:

1. The ``Stripe-Signature`` header is verified with ``stripe.Webhook.construct_event``
   against each accepted secret (``STRIPE_WEBHOOK_SECRETS``: during a rotation
   the new and the old secret are both accepted; with the simulated gateway also
   its own secret), with Stripe's five-minute tolerance on the timestamp.
2. A missing or bad signature, a stale timestamp, or a body that is not a
   Stripe event answers 400 and stores nothing.
3. The event is stored once (``WebhookEvent.event_id`` is unique). A duplicate
   answers 200 and changes nothing (if its first copy failed, processing is
   queued again).
4. Processing happens in Celery after the commit
   (``payments.tasks_webhooks.process_webhook_event``), through the handler
   table in ``payments/handlers.py``. The answer goes back at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import WebhookEvent

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300


def accepted_secrets() -> list[str]:
    from .gateway import gateway_name
    from .gateway.simulated import simulated_webhook_secret

    secrets = [s for s in (getattr(settings, "STRIPE_WEBHOOK_SECRETS", []) or []) if s]
    if gateway_name() == "simulated":
        secrets.append(simulated_webhook_secret())
    return secrets


def _verify(payload: bytes, sig_header: str | None) -> dict[str, Any]:
    """The verified event as a plain dict; ValueError with the reason otherwise."""
    if not sig_header:
        raise ValueError("missing Stripe-Signature header")
    secrets = accepted_secrets()
    if not secrets:
        logger.error("Stripe webhook refused: no STRIPE_WEBHOOK_SECRETS configured")
        raise ValueError("no webhook secret configured")
    last_error = "bad signature"
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(payload, sig_header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            last_error = str(exc)
            continue
        except (ValueError, AttributeError, TypeError) as exc:  # signed, but not JSON / not an object
            raise ValueError(f"malformed body: {exc}") from exc
        break
    else:
        raise ValueError(last_error)
    event = json.loads(payload)
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
        and event["type"]
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise ValueError("malformed body: not a Stripe event")
    if len(event["id"]) > 120 or len(event["type"]) > 80:
        raise ValueError("malformed body: id or type too long")
    return event


def _enqueue(event_pk: int) -> None:
    from .tasks_webhooks import process_webhook_event

    transaction.on_commit(lambda: process_webhook_event.delay(event_pk), robust=True)


def receive(payload: bytes, sig_header: str | None) -> tuple[int, dict[str, Any]]:
    """Verify, store once, queue. Returns (HTTP status, JSON body)."""
    try:
        event = _verify(payload, sig_header)
    except ValueError as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        return 400, {"error": {"code": "invalid_webhook", "message": str(exc)}}

    created = event.get("created")
    gateway_created_at = (
        dt.datetime.fromtimestamp(created, tz=dt.UTC) if isinstance(created, int) and created > 0 else None
    )
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                event_id=event["id"], type=event["type"], payload=event, gateway_created_at=gateway_created_at
            )
    except IntegrityError:
        existing = WebhookEvent.objects.filter(event_id=event["id"]).first()
        if existing is not None and existing.status in (WebhookEvent.Status.FAILED, WebhookEvent.Status.RECEIVED):
            _enqueue(existing.pk)
        return 200, {"received": True, "duplicate": True}
    _enqueue(stored.pk)
    return 200, {"received": True}


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    status, body = receive(request.body, request.headers.get("Stripe-Signature"))
    return JsonResponse(body, status=status)
