"""Celery tasks for notifications: thin, idempotent, calling services.

Each takes ids, re-reads the rows under a lock and returns early when the work
was already done (``emailed_at``, ``sms_sent_at``, ``last_emailed_seq``), so a
retry or a duplicated delivery never sends twice.
"""

from __future__ import annotations

import logging

from celery import shared_task

from core.email import SendGridUnavailable

from . import digest, notifications
from .sms import SMSUnavailable

logger = logging.getLogger(__name__)


@shared_task(
    name="messaging.send_notification_email",
    # Retry only what may pass: a mail server that is down (SMTP errors are
    # OSErrors) or SendGrid unreachable/5xx. A rejected address is not retried.
    autoretry_for=(OSError, SendGridUnavailable),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def send_notification_email(notification_id: int) -> bool:
    return notifications.notification_send_email(notification_id)


@shared_task(
    name="messaging.send_notification_sms",
    autoretry_for=(SMSUnavailable,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def send_notification_sms(notification_id: int) -> bool:
    return notifications.notification_send_sms(notification_id)


@shared_task(name="messaging.send_message_digests", soft_time_limit=50, time_limit=58)
def send_message_digests() -> int:
    """Every minute (beat): one email per conversation with unread messages
    older than MESSAGE_DIGEST_DELAY."""
    return digest.message_digests_send()


@shared_task(name="messaging.notify_jobs_starting", soft_time_limit=50, time_limit=58)
def notify_jobs_starting() -> int:
    """Every minute (beat): booked jobs starting within the hour, both sides
    told once (dedupe key per task)."""
    return digest.jobs_starting_notify()
