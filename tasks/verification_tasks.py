"""The Celery task that checks a proof's photos (tasks.verification does the work).

Registered by ``tasks/tasks.py`` importing this module (Celery autodiscovers
``tasks.tasks`` only).
"""

from __future__ import annotations

import random

from celery import shared_task
from django.conf import settings

# Seconds before AI attempt 2, 3, ...: 15, 60, 240 (x 0.8-1.2 jitter), capped
# far below the broker's visibility timeout (3600 s).
BACKOFF_BASE_SECONDS = 15
BACKOFF_FACTOR = 4
BACKOFF_CAP_SECONDS = 600


def backoff_seconds(retries: int) -> float:
    # PHOTO_CHECK_RETRY_BASE_SECONDS exists for tests with a real worker.
    base = getattr(settings, "PHOTO_CHECK_RETRY_BASE_SECONDS", BACKOFF_BASE_SECONDS)
    delay = min(base * BACKOFF_FACTOR**retries, BACKOFF_CAP_SECONDS)
    return delay * random.uniform(0.8, 1.2)


@shared_task(
    bind=True,
    name="tasks.verify_proof",
    ignore_result=True,
    acks_late=True,
    # The AI call's own timeout (OPENAI_TIMEOUT_SECONDS, 60 by default) times
    # the library's retries fits well inside these.
    soft_time_limit=240,
    time_limit=270,
)
def verify_proof(self, proof_id: int) -> str | None:
    """Check one proof's photos. Idempotent (a decided check is left alone);
    retried with backoff while the AI gives no usable verdict, at most
    PHOTO_CHECK_AI_ATTEMPTS attempts in all, then the check goes to review."""
    from .verification import photo_check_run

    max_retries = settings.PHOTO_CHECK_AI_ATTEMPTS - 1
    retries = self.request.retries
    while True:
        outcome = photo_check_run(proof_id=proof_id, final_attempt=retries >= max_retries)
        if not outcome.retry:
            return outcome.check.status if outcome.check else None
        if not self.request.is_eager:
            raise self.retry(countdown=backoff_seconds(retries), max_retries=max_retries)
        # Eager (make run, tests): no broker to hold a countdown, and Celery's
        # eager apply() does not re-run a retry; the attempts run here, at once.
        retries += 1
