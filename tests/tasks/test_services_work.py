"""task_check_in / task_submit_proof / task_approve / task_request_changes, and
every lifecycle service refused from every state it may not start from."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import ApplicationError, Conflict, PermissionDenied
from tasks import services
from tasks.models import CheckIn, ProofSubmission, Task, TaskEvent, TaskPhoto
from tasks.state import TRANSITIONS, IllegalTransition
from tests.tasks._services_support import (
    events,
    jpeg_upload,
    make_contractor,
    row,
    row_counts,
    stored_files,
    task_input,
    text_upload,
)
from tests.tasks.factories import SF_LAT, SF_LON, OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture
def hooks(monkeypatch):
    calls = []
    monkeypatch.setattr("tasks.payment_hooks.on_completed", lambda task: calls.append(("completed", task.pk)))
    return calls


def assigned(customer, contractor, **kwargs):
    return TaskFactory(customer=customer, contractor=contractor, assigned=True, **kwargs)


def in_progress(customer, contractor):
    return TaskFactory(customer=customer, contractor=contractor, in_progress=True)


def submitted(customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, in_progress=True)
    services.task_submit_proof(task, by=contractor, note="New cartridge fitted.", files=[jpeg_upload()])
    return Task.objects.get(pk=task.pk)


# --- check-in ---------------------------------------------------------------------------------


def test_assigned_contractor_checks_in_with_position(customer, contractor):
    task = assigned(customer, contractor)
    check_in = services.task_check_in(task, by=contractor, latitude=SF_LAT + 0.001, longitude=SF_LON, accuracy_m=12)
    check_in = CheckIn.objects.get(pk=check_in.pk)
    assert (check_in.contractor, check_in.latitude, check_in.longitude, check_in.accuracy_m) == (
        contractor,
        SF_LAT + 0.001,
        SF_LON,
        12,
    )
    assert 105 < check_in.distance_m < 117  # 0.001 degrees of latitude is about 111 m
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS and task.started_at is not None
    event = TaskEvent.objects.get(task=task, kind="checked_in")
    assert (event.actor, event.from_status, event.to_status) == (contractor, "assigned", "in_progress")
    assert event.data == {"distance_m": check_in.distance_m}


def test_check_in_without_a_position(customer, contractor):
    task = assigned(customer, contractor)
    check_in = services.task_check_in(task, by=contractor, accuracy_m=30)
    assert (check_in.latitude, check_in.distance_m, check_in.accuracy_m) == (None, None, None)
    assert row(task)["status"] == S.IN_PROGRESS


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("location", {"latitude": 91, "longitude": 0}),
        ("location", {"latitude": 37.7, "longitude": None}),
        ("location", {"latitude": "here", "longitude": "there"}),
        ("accuracy_m", {"latitude": 37.7, "longitude": -122.4, "accuracy_m": -1}),
    ],
)
def test_bad_check_in_position_is_refused(customer, contractor, field, kwargs):
    task = assigned(customer, contractor)
    before, task_row = row_counts(), row(task)
    with pytest.raises(ApplicationError) as caught:
        services.task_check_in(task, by=contractor, **kwargs)
    assert field in caught.value.fields
    assert (row_counts(), row(task)) == (before, task_row)


def test_only_the_assigned_contractor_checks_in(customer, contractor, outsider, staff):
    task = assigned(customer, contractor)
    before, task_row = row_counts(), row(task)
    for by in (customer, outsider, staff, make_contractor("rival@example.com")):
        with pytest.raises(PermissionDenied):
            services.task_check_in(task, by=by)
    assert (row_counts(), row(task)) == (before, task_row)


def test_a_contractor_who_only_offered_cannot_check_in(customer, contractor):
    task = TaskFactory(customer=customer)
    OfferFactory(task=task, contractor=contractor)
    with pytest.raises(PermissionDenied):
        services.task_check_in(task, by=contractor)
    assert row(task)["status"] == S.OPEN


# --- proof ------------------------------------------------------------------------------------


def test_contractor_submits_proof_and_the_customer_is_emailed(
    customer, contractor, mailoutbox, django_capture_on_commit_callbacks
):
    task = in_progress(customer, contractor)
    Task.objects.filter(pk=task.pk).update(reminder_24h_sent_at=timezone.now(), reminder_48h_sent_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        proof = services.task_submit_proof(
            task, by=contractor, note=" Replaced the cartridge. ", files=[jpeg_upload(), jpeg_upload("b.jpg")]
        )
    task.refresh_from_db()
    proof = ProofSubmission.objects.get(pk=proof.pk)
    assert (proof.contractor, proof.note, proof.decision) == (contractor, "Replaced the cartridge.", "pending")
    assert list(proof.photos.values_list("kind", "position", "uploaded_by")) == [
        (TaskPhoto.Kind.PROOF, 0, contractor.pk),
        (TaskPhoto.Kind.PROOF, 1, contractor.pk),
    ]
    assert task.status == S.SUBMITTED
    assert task.auto_approve_at == task.submitted_at + dt.timedelta(hours=72)
    assert (task.reminder_24h_sent_at, task.reminder_48h_sent_at) == (None, None)
    event = TaskEvent.objects.get(task=task, kind="proof_submitted")
    assert (event.actor, event.from_status, event.to_status, event.data) == (
        contractor,
        "in_progress",
        "submitted",
        {"proof": proof.pk, "photos": 2},
    )
    [email] = mailoutbox
    assert email.to == [customer.email]
    assert "sent 2 photos of the finished work" in email.body
    assert "Replaced the cartridge." in email.body
    assert f"/tasks/{task.public_id}/" in email.body


@pytest.mark.parametrize(
    ("field", "note", "count", "bad_file"),
    [
        ("photos", "Done.", 0, False),
        ("photos", "Done.", 11, False),
        ("note", "x" * 2001, 1, False),
        ("photos", "Done.", 2, True),
    ],
)
def test_bad_proof_is_refused_and_nothing_written(customer, contractor, field, note, count, bad_file, mailoutbox):
    task = in_progress(customer, contractor)
    files = [jpeg_upload() for _ in range(count)]
    if bad_file:
        files[-1] = text_upload()
    before, task_row, stored = row_counts(), row(task), stored_files()
    with pytest.raises(ApplicationError) as caught:
        services.task_submit_proof(task, by=contractor, note=note, files=files)
    assert field in caught.value.fields
    assert (row_counts(), row(task), stored_files()) == (before, task_row, stored)
    assert mailoutbox == []


def test_proof_refused_after_its_photos_were_stored_leaves_no_files(customer, contractor, monkeypatch, mailoutbox):
    task = in_progress(customer, contractor)
    before, task_row, stored = row_counts(), row(task), stored_files()

    def mail_down(*args, **kwargs):
        raise RuntimeError("mail queue unreachable")

    monkeypatch.setattr("tasks.notify.proof_submitted", mail_down)
    with pytest.raises(RuntimeError):
        services.task_submit_proof(task, by=contractor, note="Done.", files=[jpeg_upload(), jpeg_upload("b.jpg")])

    assert (row_counts(), row(task), stored_files()) == (before, task_row, stored)


def test_only_the_assigned_contractor_submits_proof(customer, contractor, outsider):
    task = in_progress(customer, contractor)
    before, task_row = row_counts(), row(task)
    for by in (customer, outsider, make_contractor("rival@example.com")):
        with pytest.raises(PermissionDenied):
            services.task_submit_proof(task, by=by, note="Done.", files=[jpeg_upload()])
    assert (row_counts(), row(task)) == (before, task_row)


# --- approve / request changes ------------------------------------------------------------


def test_customer_approves_and_the_contractor_is_emailed(
    customer, contractor, hooks, mailoutbox, django_capture_on_commit_callbacks
):
    task = submitted(customer, contractor)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.task_approve(task, by=customer)
    task.refresh_from_db()
    assert result.status == task.status == S.COMPLETED
    assert task.completed_at is not None and task.auto_approve_at is None
    proof = task.proofs.get()
    assert proof.decision == "approved" and proof.decided_at is not None
    assert events(task)[-1] == ("approved", "submitted", "completed")
    assert TaskEvent.objects.filter(task=task, kind="approved").get().actor == customer
    assert hooks == [("completed", task.pk)]
    [email] = mailoutbox
    assert email.to == [contractor.email]
    assert "approved your work" in email.body


@pytest.mark.parametrize("action", ["approve", "request_changes"])
def test_only_the_customer_decides_on_proof(customer, contractor, outsider, staff, action, hooks, mailoutbox):
    task = submitted(customer, contractor)
    before, task_row, proof_row = row_counts(), row(task), row(task.proofs.get())
    for by in (contractor, outsider, staff, make_contractor("rival@example.com")):
        with pytest.raises(PermissionDenied):
            if action == "approve":
                services.task_approve(task, by=by)
            else:
                services.task_request_changes(task, by=by, reason="Please redo it.")
    assert (row_counts(), row(task), row(task.proofs.get())) == (before, task_row, proof_row)
    assert hooks == [] and mailoutbox == []


def test_customer_asks_for_changes_once(customer, contractor, mailoutbox, django_capture_on_commit_callbacks):
    task = submitted(customer, contractor)
    with django_capture_on_commit_callbacks(execute=True):
        services.task_request_changes(task, by=customer, reason="  The tap still drips a little.  ")
    task.refresh_from_db()
    assert task.status == S.IN_PROGRESS
    assert task.changes_requested_count == 1
    assert task.auto_approve_at is None
    proof = task.proofs.get()
    assert (proof.decision, proof.decision_reason) == ("changes_requested", "The tap still drips a little.")
    event = TaskEvent.objects.get(task=task, kind="changes_requested")
    assert (event.actor, event.from_status, event.to_status) == (customer, "submitted", "in_progress")
    assert event.data == {"reason": "The tap still drips a little.", "proof": proof.pk}
    [email] = mailoutbox
    assert email.to == [contractor.email]
    assert "The tap still drips a little." in email.body

    # The contractor fixes it and submits again; a second request is refused.
    services.task_submit_proof(task, by=contractor, note="Fixed for good.", files=[jpeg_upload()])
    task.refresh_from_db()
    assert task.status == S.SUBMITTED
    before, task_row = row_counts(), row(task)
    with pytest.raises(Conflict) as caught:
        services.task_request_changes(task, by=customer, reason="Still not right.")
    assert caught.value.code == "changes_already_requested"
    assert (row_counts(), row(task)) == (before, task_row)
    assert task.proofs.filter(decision="pending").count() == 1
    services.task_approve(task, by=customer)
    assert row(task)["status"] == S.COMPLETED


@pytest.mark.parametrize("reason", ["", "   ", "No", "x" * 501])
def test_changes_need_a_reason(customer, contractor, reason):
    task = submitted(customer, contractor)
    before, task_row = row_counts(), row(task)
    with pytest.raises(ApplicationError) as caught:
        services.task_request_changes(task, by=customer, reason=reason)
    assert "reason" in caught.value.fields
    assert (row_counts(), row(task)) == (before, task_row)


# --- illegal transitions from every state ----------------------------------------------------

ALL_STATES = [s.value for s in S]
ACTIONS = {
    # service action -> (state table key, who acts)
    "publish": ("publish", "customer"),
    "check_in": ("check_in", "contractor"),
    "submit_proof": ("submit_proof", "contractor"),
    "approve": ("approve", "customer"),
    "request_changes": ("request_changes", "customer"),
    "cancel": ("cancel", "customer"),
    "update": (None, "customer"),
}
EDITABLE_STATES = {"draft", "open"}


def _call(action, task, customer, contractor):
    if action == "publish":
        return services.task_publish(task, by=customer)
    if action == "check_in":
        return services.task_check_in(task, by=contractor)
    if action == "submit_proof":
        return services.task_submit_proof(task, by=contractor, note="Done.", files=[jpeg_upload()])
    if action == "approve":
        return services.task_approve(task, by=customer)
    if action == "request_changes":
        return services.task_request_changes(task, by=customer, reason="Please redo the seal.")
    if action == "cancel":
        return services.task_cancel(task, by=customer, reason="Plans changed.")
    if action == "update":
        return services.task_update(task, by=customer, data=task_input())
    raise AssertionError(action)


ILLEGAL = [
    (action, state)
    for action, (key, _who) in ACTIONS.items()
    for state in ALL_STATES
    if state not in (TRANSITIONS[key].sources if key else EDITABLE_STATES)
]


@pytest.mark.parametrize(("action", "state"), ILLEGAL)
def test_illegal_transitions_are_refused_and_change_nothing(customer, contractor, action, state, mailoutbox):
    task = TaskFactory(customer=customer, contractor=contractor, status=state, agreed_price_cents=12_000)
    if state in ("draft", "open"):
        Task.objects.filter(pk=task.pk).update(contractor=None, agreed_price_cents=None)
        task.refresh_from_db()
    if action in ("check_in", "submit_proof") and task.contractor_id is None:
        # Nobody is assigned yet, so the contractor is simply not the right person.
        expected = PermissionDenied
    else:
        expected = IllegalTransition
    before, task_row = row_counts(), row(task)
    with pytest.raises(expected) as caught:
        _call(action, task, customer, contractor)
    if expected is IllegalTransition:
        assert caught.value.code == "illegal_transition"
        assert caught.value.status_code == 409
    assert (row_counts(), row(task)) == (before, task_row)
    assert mailoutbox == []
