"""Celery task for dispute deadlines (beat: ``reputation.sweep_disputes``).

Registered with the worker through ``reputation/tasks.py`` (one import line),
which Celery's autodiscovery loads."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="reputation.sweep_disputes", soft_time_limit=50, time_limit=55)
def sweep_disputes() -> dict[str, int]:
    """Disputes with no response after 48 hours, or unsettled after 7 days,
    go to mediation. Idempotent: a dispute moved once is not found again."""
    from .disputes import dispute_sweep

    return dispute_sweep()
