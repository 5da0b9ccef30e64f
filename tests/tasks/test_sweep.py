"""task_sweep_deadlines: approval reminders at 24 h and 48 h, auto-approval at
72 h, idempotent, and safe with two sweepers or a customer acting at once."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connections, transaction
from django.utils import timezone

from tasks import notify, services
from tasks.models import ProofSubmission, Task, TaskEvent
from tests.tasks.factories import TaskFactory

S = Task.Status
T0 = timezone.now().replace(microsecond=0) - dt.timedelta(days=10)


def submitted_at(customer, contractor, when=T0, **kwargs):
    task = TaskFactory(
        customer=customer,
        contractor=contractor,
        submitted=True,
        submitted_at=when,
        auto_approve_at=when + dt.timedelta(hours=72),
        title="Fix the leaking kitchen tap",
        **kwargs,
    )
    ProofSubmission.objects.create(task=task, contractor=contractor, note="New cartridge fitted.")
    return task


def sweep(at, capture):
    with capture(execute=True):
        return services.task_sweep_deadlines(now=at)


@pytest.fixture
def completed_hook(monkeypatch):
    calls = []
    monkeypatch.setattr("tasks.payment_hooks.on_completed", lambda task: calls.append(task.pk))
    return calls


@pytest.mark.django_db
def test_reminders_at_24_and_48_hours_then_auto_approval_at_72(
    customer, contractor, mailoutbox, django_capture_on_commit_callbacks, completed_hook
):
    task = submitted_at(customer, contractor)
    capture = django_capture_on_commit_callbacks
    zero = {"reminded_24h": 0, "reminded_48h": 0, "auto_approved": 0, "errors": 0}

    assert sweep(T0 + dt.timedelta(hours=23, minutes=59), capture) == zero
    assert mailoutbox == []

    at24 = T0 + dt.timedelta(hours=24)
    assert sweep(at24, capture) == {**zero, "reminded_24h": 1}
    assert sweep(at24 + dt.timedelta(minutes=1), capture) == zero  # idempotent
    task.refresh_from_db()
    assert (task.status, task.reminder_24h_sent_at, task.reminder_48h_sent_at) == (S.SUBMITTED, at24, None)
    [first] = mailoutbox
    assert first.to == [customer.email]
    assert "Reminder" in first.subject
    assert "last reminder" not in first.body
    assert f"/tasks/{task.public_id}/" in first.body

    at48 = T0 + dt.timedelta(hours=48)
    assert sweep(at48, capture) == {**zero, "reminded_48h": 1}
    assert sweep(at48, capture) == zero
    task.refresh_from_db()
    assert (task.reminder_24h_sent_at, task.reminder_48h_sent_at) == (at24, at48)
    assert len(mailoutbox) == 2
    assert "This is the last reminder." in mailoutbox[1].body

    assert sweep(T0 + dt.timedelta(hours=71, minutes=59), capture) == zero
    at72 = T0 + dt.timedelta(hours=72)
    assert sweep(at72, capture) == {**zero, "auto_approved": 1}
    assert sweep(at72 + dt.timedelta(hours=1), capture) == zero
    task.refresh_from_db()
    assert (task.status, task.completed_at, task.auto_approve_at) == (S.COMPLETED, at72, None)
    proof = task.proofs.get()
    assert (proof.decision, proof.decided_at) == ("auto_approved", at72)
    assert completed_hook == [task.pk]

    timeline = list(TaskEvent.objects.filter(task=task).values_list("kind", "actor", "from_status", "to_status", "data"))
    assert timeline == [
        ("reminder_sent", None, "submitted", "submitted", {"reminder": "24h"}),
        ("reminder_sent", None, "submitted", "submitted", {"reminder": "48h"}),
        ("auto_approved", None, "submitted", "completed", {"proof": proof.pk}),
    ]
    approved_mail = mailoutbox[2:]
    assert sorted(m.to[0] for m in approved_mail) == sorted([customer.email, contractor.email])
    assert all("approved automatically" in m.subject for m in approved_mail)


@pytest.mark.django_db
def test_a_late_sweep_sends_only_the_last_reminder(customer, contractor, mailoutbox, django_capture_on_commit_callbacks):
    task = submitted_at(customer, contractor)
    at = T0 + dt.timedelta(hours=50)
    assert sweep(at, django_capture_on_commit_callbacks)["reminded_48h"] == 1
    task.refresh_from_db()
    assert (task.reminder_24h_sent_at, task.reminder_48h_sent_at) == (at, at)
    assert len(mailoutbox) == 1
    assert sweep(at, django_capture_on_commit_callbacks)["reminded_24h"] == 0


@pytest.mark.django_db
def test_a_sweep_days_late_approves_without_reminding(customer, contractor, mailoutbox, django_capture_on_commit_callbacks):
    task = submitted_at(customer, contractor)
    result = sweep(T0 + dt.timedelta(days=5), django_capture_on_commit_callbacks)
    assert (result["auto_approved"], result["reminded_24h"], result["reminded_48h"]) == (1, 0, 0)
    assert Task.objects.get(pk=task.pk).status == S.COMPLETED
    assert all("approved automatically" in m.subject for m in mailoutbox)


@pytest.mark.django_db
def test_only_submitted_tasks_are_swept(customer, contractor, mailoutbox, django_capture_on_commit_callbacks):
    waiting = submitted_at(customer, contractor)
    sent_back = TaskFactory(
        customer=customer,
        contractor=contractor,
        in_progress=True,
        submitted_at=T0,
        auto_approve_at=None,
        changes_requested_count=1,
    )
    approved = TaskFactory(
        customer=customer, contractor=contractor, status=S.COMPLETED, agreed_price_cents=10_000, submitted_at=T0
    )
    result = sweep(T0 + dt.timedelta(hours=80), django_capture_on_commit_callbacks)
    assert result["auto_approved"] == 1
    assert Task.objects.get(pk=waiting.pk).status == S.COMPLETED
    assert Task.objects.get(pk=sent_back.pk).status == S.IN_PROGRESS
    assert not TaskEvent.objects.filter(task__in=[sent_back, approved]).exists()


@pytest.mark.django_db
def test_the_clock_restarts_with_the_next_proof(customer, contractor, django_capture_on_commit_callbacks):
    task = TaskFactory(customer=customer, contractor=contractor, in_progress=True)
    services.task_submit_proof(task, by=contractor, note="Done.", files=[_jpeg()])
    services.task_request_changes(task, by=customer, reason="The tap still drips.")
    later = timezone.now() + dt.timedelta(hours=100)
    assert sweep(later, django_capture_on_commit_callbacks)["auto_approved"] == 0
    services.task_submit_proof(task, by=contractor, note="Done again.", files=[_jpeg()])
    task.refresh_from_db()
    assert task.auto_approve_at > timezone.now() + dt.timedelta(hours=71)
    assert sweep(task.auto_approve_at, django_capture_on_commit_callbacks)["auto_approved"] == 1


def _jpeg():
    from tests.tasks._services_support import jpeg_upload

    return jpeg_upload()


# --- concurrency: skip_locked ------------------------------------------------------------


def _in_thread(target):
    def run():
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_task_locked_by_someone_else_is_left_for_the_next_run(customer, contractor):
    task = submitted_at(customer, contractor)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            Task.objects.select_for_update().get(pk=task.pk)
            locked.set()
            release.wait(timeout=10)

    thread = _in_thread(hold_lock)
    assert locked.wait(timeout=10)
    try:
        result = services.task_sweep_deadlines(now=T0 + dt.timedelta(hours=72))
    finally:
        release.set()
        thread.join(timeout=10)
    assert result["auto_approved"] == 0  # did not wait on the lock, did not act
    assert Task.objects.get(pk=task.pk).status == S.SUBMITTED
    assert services.task_sweep_deadlines(now=T0 + dt.timedelta(hours=72))["auto_approved"] == 1
    assert Task.objects.get(pk=task.pk).status == S.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_act_once(customer, contractor, mailoutbox, monkeypatch):
    tasks = [submitted_at(customer, contractor) for _ in range(4)]
    barrier = threading.Barrier(2)
    results = []
    real_notify = notify.task_auto_approved

    def slow_notify(task):
        # Hold each task's lock a while, so the sweepers' work overlaps.
        time.sleep(0.2)
        real_notify(task)

    monkeypatch.setattr(notify, "task_auto_approved", slow_notify)

    def sweeper():
        barrier.wait(timeout=10)
        results.append(services.task_sweep_deadlines(now=T0 + dt.timedelta(hours=72)))

    threads = [_in_thread(sweeper) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    assert sum(r["auto_approved"] for r in results) == 4
    assert sum(r["errors"] for r in results) == 0
    assert TaskEvent.objects.filter(kind="auto_approved").count() == 4
    assert all(t.status == S.COMPLETED for t in Task.objects.filter(pk__in=[t.pk for t in tasks]))
    assert len(mailoutbox) == 8  # customer and contractor, once per task


@pytest.mark.django_db
@pytest.mark.parametrize("verdict", ["fail", "needs_review"])
def test_auto_approval_waits_while_the_photo_check_doubts_the_proof(
    verdict, customer, contractor, django_capture_on_commit_callbacks, completed_hook
):
    from tasks.models import PhotoCheck

    task = submitted_at(customer, contractor)
    check = PhotoCheck.objects.create(proof=task.proofs.get(), status=verdict)
    after = T0 + dt.timedelta(hours=80)

    counts = sweep(after, django_capture_on_commit_callbacks)

    task.refresh_from_db()
    assert task.status == S.SUBMITTED
    assert counts["auto_approved"] == 0
    assert completed_hook == []
    # Staff clear the photos: the next sweep approves the overdue work.
    PhotoCheck.objects.filter(pk=check.pk).update(status="pass")
    assert sweep(after, django_capture_on_commit_callbacks)["auto_approved"] == 1
    task.refresh_from_db()
    assert task.status == S.COMPLETED
    assert completed_hook == [task.pk]
