"""make run's in-process beat: the same jobs a worker would run, on their schedule."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tasks.models import ProofSubmission, Task
from tests.tasks.factories import TaskFactory


@pytest.mark.django_db
def test_once_runs_the_deadline_sweep_and_approves_overdue_work(settings, customer, contractor, monkeypatch):
    released = []
    monkeypatch.setattr("tasks.payment_hooks.on_completed", lambda task: released.append(task.pk))
    settings.CELERY_BEAT_SCHEDULE = {"deadlines": {"task": "tasks.sweep_deadlines", "schedule": 60.0}}
    overdue = TaskFactory(
        customer=customer,
        contractor=contractor,
        submitted=True,
        submitted_at=timezone.now() - dt.timedelta(hours=80),
        auto_approve_at=timezone.now() - dt.timedelta(hours=8),
    )
    ProofSubmission.objects.create(task=overdue, contractor=contractor, note="Done.")

    call_command("run_schedule", "--once", stdout=io.StringIO())

    overdue.refresh_from_db()
    assert overdue.status == Task.Status.COMPLETED
    assert released == [overdue.pk]


def test_refuses_to_run_beside_a_real_worker(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with pytest.raises(CommandError, match="celery beat"):
        call_command("run_schedule", "--once")
