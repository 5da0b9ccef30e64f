"""Calls other apps make when something matching learns from happens.

``tasks/notify.py`` calls these inside the tasks services' transactions
(publish, offer made, offer accepted or instant booking, approval or
auto-approval); ``reputation.services`` calls ``review_published``. Each only
registers an ``on_commit`` callback: a rolled-back booking teaches nothing,
and a failure here is logged, never raised into the caller's request (the
change it records is already committed). The ``record_*`` services are
idempotent, so a replayed hook does no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

if TYPE_CHECKING:
    from tasks.models import Offer, Task

logger = logging.getLogger(__name__)


def _after_commit(label: str, call: Callable[[], object]) -> None:
    def run() -> None:
        try:
            call()
        except Exception:  # noqa: BLE001 - matching must never break a booking
            logger.exception("Matching hook %s failed", label)

    transaction.on_commit(run)


def task_published(task: Task) -> None:
    """Queue the smart alerts for a newly posted task (unless
    ``MATCHING_ALERTS_ON_PUBLISH`` is False, e.g. for a simulated market)."""
    if not getattr(settings, "MATCHING_ALERTS_ON_PUBLISH", True):
        return
    task_id = task.pk

    def queue() -> None:
        from .alert_jobs import send_new_task_alerts

        send_new_task_alerts.delay(task_id)

    _after_commit("task_published", queue)


def offer_made(offer: Offer) -> None:
    task, contractor = offer.task, offer.contractor

    def record() -> None:
        from . import services

        services.record_offered(task=task, contractor=contractor)

    _after_commit("offer_made", record)


def offer_accepted(offer: Offer) -> None:
    task, contractor = offer.task, offer.contractor

    def record() -> None:
        from . import services

        services.record_accepted(task=task, contractor=contractor)

    _after_commit("offer_accepted", record)


def task_completed(task: Task) -> None:
    def record() -> None:
        from . import services

        services.record_completed(task=task)

    _after_commit("task_completed", record)


def review_published(review) -> None:
    """A published review (reputation): 4+ stars from the customer is a
    ``well_reviewed`` outcome."""
    task, contractor_id, stars, reviewer_id = review.task, review.reviewee_id, review.stars, review.reviewer_id

    def record() -> None:
        from . import services

        services.record_review(task=task, contractor_id=contractor_id, stars=stars, reviewer_id=reviewer_id)

    _after_commit("review_published", record)
