"""The deadline sweep through a real Celery worker on the Redis broker, and
its place in the beat schedule."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from marketplace.celery import app
from tasks.models import ProofSubmission, Task, TaskEvent
from tasks.tasks import sweep_deadlines
from tests.tasks.factories import TaskFactory


def test_beat_runs_the_sweep_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["tasks.sweep_deadlines"]
    assert entry["task"] == "tasks.sweep_deadlines" == sweep_deadlines.name
    assert entry["schedule"] == 60.0
    # A sweep that waited in the queue longer than a minute is replaced by the next one.
    assert entry["options"]["expires"] <= 60


@pytest.fixture
def real_broker():
    """Celery as in production for one test: not eager, the Redis broker. The
    worker's ping check reads its answer from a result backend (Redis too);
    the sweep itself stores no result."""
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "result_backend")}
    app.conf.task_always_eager = False
    app.conf.broker_url = settings.REDIS_URL
    app.conf.result_backend = settings.REDIS_URL
    _forget_backend(app)  # built again from the new setting
    app.loader.import_module("celery.contrib.testing.tasks")
    try:
        yield app
    finally:
        app.conf.update(saved)
        _forget_backend(app)


def _forget_backend(celery_app) -> None:
    """Drop the app's cached result backend so the next use reads the settings."""
    celery_app._backend_cache = None
    if hasattr(celery_app._local, "backend"):
        del celery_app._local.backend


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_auto_approves_work_nobody_answered(customer, contractor, real_broker, mailoutbox):
    submitted = timezone.now() - dt.timedelta(hours=73)
    task = TaskFactory(
        customer=customer,
        contractor=contractor,
        submitted=True,
        submitted_at=submitted,
        auto_approve_at=submitted + dt.timedelta(hours=72),
    )
    ProofSubmission.objects.create(task=task, contractor=contractor, note="Done.")

    with start_worker(real_broker, pool="solo", perform_ping_check=True, shutdown_timeout=10):
        sweep_deadlines.delay()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if Task.objects.filter(pk=task.pk, status=Task.Status.COMPLETED).exists():
                break
            time.sleep(0.2)

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.proofs.get().decision == "auto_approved"
    assert TaskEvent.objects.filter(task=task, kind="auto_approved", actor=None).count() == 1
