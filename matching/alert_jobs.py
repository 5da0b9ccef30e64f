"""Celery job for smart alerts (registered with the worker by ``matching.tasks``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="matching.send_new_task_alerts", ignore_result=True, soft_time_limit=60, time_limit=90)
def send_new_task_alerts(task_id: int) -> int:
    """Alert the best matches about a posted task. Idempotent (one alert per
    task and contractor), so a redelivered message sends nothing twice."""
    from .services import alerts_for_new_task

    return len(alerts_for_new_task(task_id).sent)
