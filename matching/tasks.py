"""Celery jobs of the matching app: nightly training (and, registered from
their module, the smart-alert job)."""

from __future__ import annotations

import contextlib

from celery import shared_task

# The alert job lives beside the alert services; importing it here registers it with the worker.
with contextlib.suppress(ImportError):  # only while that module is not there yet
    from .alert_jobs import send_new_task_alerts  # noqa: F401


@shared_task(name="matching.train_nightly", ignore_result=False, soft_time_limit=1800, time_limit=2000)
def train_nightly() -> str:
    """Train on all logged outcomes; the new version is activated only if it
    beats the rules on its holdout (``ranking.train``). Returns the version,
    or "" when there was too little data (the rules keep serving).
    Safe to run twice: each run stores its own version."""
    from . import ranking

    record = ranking.train()
    return record.version if record is not None else ""
