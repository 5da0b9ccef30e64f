"""Celery tasks for the task lifecycle: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from .verification_tasks import verify_proof  # noqa: F401  (registers tasks.verify_proof with the worker)


@shared_task(name="tasks.sweep_deadlines", ignore_result=True, soft_time_limit=50, time_limit=55)
def sweep_deadlines() -> dict[str, int]:
    """Run every minute by beat: approval reminders and auto-approval.

    Deadlines live in the database (``Task.auto_approve_at``), never in a
    countdown: a missed run is caught up by the next one."""
    from .services import task_sweep_deadlines

    return task_sweep_deadlines()
