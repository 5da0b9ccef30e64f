"""Celery tasks for webhook events: thin wrappers around payments.handlers.

Registered through ``CELERY_IMPORTS`` (marketplace/settings.py), since Celery's
autodiscovery only looks at ``tasks`` modules.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="payments.process_webhook_event", ignore_result=True, soft_time_limit=120, time_limit=150)
def process_webhook_event(event_pk: int) -> str:
    """Run the stored event's handler once (locked; a processed event is skipped)."""
    from .handlers import process_event

    return process_event(event_pk)


@shared_task(name="payments.retry_webhook_events", ignore_result=True, soft_time_limit=50, time_limit=55)
def retry_webhook_events() -> int:
    """Beat, every minute: events that failed (e.g. arrived before the event
    they depend on) or were never queued are processed again, with backoff."""
    from .handlers import retry_due_events

    return retry_due_events()
