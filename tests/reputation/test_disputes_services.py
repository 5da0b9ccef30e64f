"""Dispute services without money (tasks booked before payments, no escrow):
who may do what, bad input, the steps and the timeline, notifications,
deadlines. Money outcomes are in test_disputes_money.py."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.conf import settings
from django.utils import timezone

from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from messaging.models import Notification
from reputation import disputes
from reputation.dispute_models import Dispute, DisputeEvidence, DisputeProposal
from tasks.models import Task, TaskEvent
from tests.reputation.dispute_support import (
    TEXT,
    fake_image,
    jpeg_upload,
    mediator,
    plain_staff,
    row,
    row_counts,
    submitted_task,
    timeline_kinds,
)
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(customer, contractor):
    return submitted_task(customer, contractor)


@pytest.fixture
def dispute(task, customer):
    return disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT, evidence=[jpeg_upload()])


# --- open -------------------------------------------------------------------------


def test_customer_opens_dispute_on_submitted_work(task, customer, contractor):
    before = timezone.now()
    dispute = disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT, evidence=[jpeg_upload()])
    dispute.refresh_from_db()
    task.refresh_from_db()
    assert dispute.status == "awaiting_response"
    assert (dispute.opened_by, dispute.against) == (customer, contractor)
    assert dispute.escrow is None
    assert dispute.task_status_at_open == "submitted"
    assert before + dt.timedelta(hours=48) <= dispute.response_due_at <= timezone.now() + dt.timedelta(hours=48)
    assert dispute.mediation_due_at - dispute.opened_at == pytest.approx(dt.timedelta(days=7), abs=dt.timedelta(seconds=2))
    assert task.status == Task.Status.DISPUTED
    assert task.auto_approve_at is None
    assert list(TaskEvent.objects.filter(task=task).values_list("kind", "from_status", "to_status")) == [
        ("disputed", "submitted", "disputed")
    ]
    photo = DisputeEvidence.objects.get(dispute=dispute)
    assert photo.by == customer and photo.photo.name.startswith(f"disputes/{dispute.public_id}/")
    assert photo.photo.name.endswith(".jpg") and "drip" not in photo.photo.name
    assert timeline_kinds(dispute) == ["opened"]
    # Both sides are told, with a link to the dispute page.
    notes = Notification.objects.filter(task=task).order_by("user__email")
    assert [n.user for n in notes] == [contractor, customer]
    assert all(n.url == f"/disputes/{dispute.public_id}/" for n in notes)


def test_contractor_opens_dispute_too(task, customer, contractor):
    dispute = disputes.dispute_open(task, by=contractor, reason="not_approved", text=TEXT)
    assert (dispute.opened_by, dispute.against) == (contractor, customer)


@pytest.mark.parametrize("who", ["outsider", "staff"])
def test_non_party_cannot_open_dispute(task, who, request):
    user = request.getfixturevalue(who)
    before, task_row = row_counts(), row(task)
    with pytest.raises(NotFound):
        disputes.dispute_open(task, by=user, reason="poor_quality", text=TEXT)
    assert row_counts() == before and row(task) == task_row


def test_second_open_dispute_refused(dispute, task, contractor):
    before = row_counts()
    with pytest.raises(Conflict) as exc:
        disputes.dispute_open(task, by=contractor, reason="other", text=TEXT)
    assert exc.value.code in ("dispute_exists", "illegal_transition", "not_disputable")
    assert row_counts() == before


@pytest.mark.parametrize("status", ["open", "assigned", "in_progress", "cancelled"])
def test_only_submitted_or_completed_work_can_be_disputed(customer, contractor, status):
    extra = {"in_progress": True} if status == "in_progress" else {}
    if status == "assigned":
        extra = {"assigned": True}
    task = TaskFactory(customer=customer, contractor=contractor if status != "open" else None, photos=0, **extra)
    if status == "cancelled":
        Task.objects.filter(pk=task.pk).update(status="cancelled")
    task.refresh_from_db()
    before, task_row = row_counts(), row(task)
    with pytest.raises((Conflict, NotFound)):
        disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT)
    assert row_counts() == before and row(task) == task_row


def test_completed_task_inside_hold_can_be_disputed_and_shows_as_disputed(customer, contractor):
    task = submitted_task(customer, contractor)
    Task.objects.filter(pk=task.pk).update(status="completed", completed_at=timezone.now() - dt.timedelta(hours=71))
    dispute = disputes.dispute_open(task, by=customer, reason="damage", text=TEXT)
    task.refresh_from_db()
    assert dispute.task_status_at_open == "completed"
    assert task.status == Task.Status.DISPUTED
    assert list(TaskEvent.objects.filter(task=task).values_list("kind", "from_status", "to_status")) == [
        ("disputed", "completed", "disputed")
    ]


def test_dispute_after_the_payout_hold_is_refused(customer, contractor):
    task = submitted_task(customer, contractor)
    Task.objects.filter(pk=task.pk).update(status="completed", completed_at=timezone.now() - dt.timedelta(hours=73))
    task.refresh_from_db()
    before, task_row = row_counts(), row(task)
    with pytest.raises(Conflict) as exc:
        disputes.dispute_open(task, by=customer, reason="damage", text=TEXT)
    assert exc.value.code == "dispute_window_closed"
    assert "72 hours" in exc.value.message
    assert row_counts() == before and row(task) == task_row


@pytest.mark.parametrize(
    ("reason", "text", "field"),
    [
        ("", TEXT, "reason"),
        ("because", TEXT, "reason"),
        ("poor_quality", "", "text"),
        ("poor_quality", "   short ", "text"),
        ("poor_quality", "x" * 4001, "text"),
    ],
)
def test_open_bad_input_changes_nothing(task, customer, reason, text, field):
    before, task_row = row_counts(), row(task)
    with pytest.raises(ApplicationError) as exc:
        disputes.dispute_open(task, by=customer, reason=reason, text=text)
    assert exc.value.status_code == 400 and field in exc.value.fields
    assert row_counts() == before and row(task) == task_row


def test_open_with_fake_image_changes_nothing(task, customer):
    before, task_row = row_counts(), row(task)
    with pytest.raises(ApplicationError) as exc:
        disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT, evidence=[fake_image()])
    assert "photos" in exc.value.fields
    assert row_counts() == before and row(task) == task_row


def test_unverified_party_cannot_open(task, customer):
    type(customer).objects.filter(pk=customer.pk).update(email_verified_at=None)
    customer.refresh_from_db()
    before = row_counts()
    with pytest.raises(PermissionDenied):
        disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT)
    assert row_counts() == before


# --- respond, evidence, proposals ------------------------------------------------


def test_respondent_answers_with_a_proposal(dispute, contractor, customer):
    Notification.objects.all().delete()
    disputes.dispute_respond(
        dispute, by=contractor, text="I replaced the washer; the drip is from the valve.", proposal_kind="partial_refund", percent=25
    )
    dispute.refresh_from_db()
    assert dispute.status == "negotiating" and dispute.responded_at is not None
    proposal = DisputeProposal.objects.get(dispute=dispute)
    # $120.00 price, no escrow: 25 % refunded, the contractor keeps $90.00.
    assert (proposal.kind, proposal.percent, proposal.contractor_cents, proposal.refund_cents) == (
        "partial_refund",
        25,
        9_000,
        3_000,
    )
    assert timeline_kinds(dispute) == ["opened", "responded", "proposed"]
    # The customer hears about the response and the proposal; the contractor acted.
    assert set(Notification.objects.values_list("user__email", flat=True)) == {customer.email}


def test_opener_cannot_respond_to_own_dispute(dispute, customer):
    before = row_counts()
    with pytest.raises(PermissionDenied):
        disputes.dispute_respond(dispute, by=customer, text="Responding to myself here.")
    assert row_counts() == before


def test_response_after_48_hours_refused(dispute, contractor):
    Dispute.objects.filter(pk=dispute.pk).update(response_due_at=timezone.now() - dt.timedelta(minutes=1))
    dispute.refresh_from_db()
    before, dispute_row = row_counts(), row(dispute)
    with pytest.raises(Conflict) as exc:
        disputes.dispute_respond(dispute, by=contractor, text="Sorry, I was away on a job.")
    assert exc.value.code == "response_window_closed"
    assert row_counts() == before and row(dispute) == dispute_row


@pytest.mark.parametrize(
    ("kind", "percent", "field"),
    [
        ("partial_refund", 0, "percent"),
        ("partial_refund", 100, "percent"),
        ("partial_refund", None, "percent"),
        ("partial_refund", "ten", "percent"),
        ("partial_refund", 12.5, "percent"),
        ("full_refund", 10, "percent"),
        ("half", None, "kind"),
    ],
)
def test_bad_proposals_change_nothing(dispute, contractor, kind, percent, field):
    before, dispute_row = row_counts(), row(dispute)
    with pytest.raises(ApplicationError) as exc:
        disputes.dispute_propose(dispute, by=contractor, kind=kind, percent=percent)
    assert exc.value.status_code == 400 and field in exc.value.fields
    assert row_counts() == before and row(dispute) == dispute_row


def test_counter_proposal_supersedes_the_open_one(dispute, customer, contractor):
    first = disputes.dispute_propose(dispute, by=contractor, kind="release")
    second = disputes.dispute_propose(dispute, by=customer, kind="partial_refund", percent=50)
    first.refresh_from_db()
    assert first.status == "superseded" and second.status == "open"
    assert (second.contractor_cents, second.refund_cents) == (6_000, 6_000)


def test_proposer_cannot_accept_own_proposal(dispute, contractor):
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="release")
    before, dispute_row = row_counts(), row(dispute)
    with pytest.raises(PermissionDenied):
        disputes.dispute_accept_proposal(proposal, by=contractor)
    assert row_counts() == before and row(dispute) == dispute_row


@pytest.mark.parametrize("who", ["outsider", "staff"])
def test_non_party_refused_on_every_action(dispute, contractor, who, request):
    user = request.getfixturevalue(who)
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="release")
    before, dispute_row, proposal_row = row_counts(), row(dispute), row(proposal)
    actions = [
        lambda: disputes.dispute_add_evidence(dispute, by=user, text="I saw it all from the street."),
        lambda: disputes.dispute_respond(dispute, by=user, text="I saw it all from the street."),
        lambda: disputes.dispute_propose(dispute, by=user, kind="full_refund"),
        lambda: disputes.dispute_accept_proposal(proposal, by=user),
        lambda: disputes.dispute_reject_proposal(proposal, by=user),
        lambda: disputes.dispute_escalate(dispute, by=user),
    ]
    for action in actions:
        with pytest.raises(NotFound):
            action()
    assert row_counts() == before and row(dispute) == dispute_row and row(proposal) == proposal_row


def test_reject_then_new_proposal(dispute, customer, contractor):
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="release")
    disputes.dispute_reject_proposal(proposal, by=customer, message="No, the tap still drips.")
    proposal.refresh_from_db()
    dispute.refresh_from_db()
    assert proposal.status == "rejected" and dispute.status == "negotiating"
    with pytest.raises(Conflict):
        disputes.dispute_accept_proposal(proposal, by=customer)


def test_add_evidence_text_and_photo(dispute, contractor):
    rows = disputes.dispute_add_evidence(dispute, by=contractor, text="Receipt for the washer.", photos=[jpeg_upload()])
    assert [bool(r.photo) for r in rows] == [False, True]
    assert timeline_kinds(dispute)[-1] == "evidence"


@pytest.mark.parametrize(("text", "photos"), [("", []), ("   ", []), ("", [None])])
def test_empty_evidence_refused(dispute, contractor, text, photos):
    before = row_counts()
    with pytest.raises(ApplicationError):
        disputes.dispute_add_evidence(dispute, by=contractor, text=text, photos=photos)
    assert row_counts() == before


def test_fake_image_evidence_refused(dispute, contractor):
    before = row_counts()
    with pytest.raises(ApplicationError) as exc:
        disputes.dispute_add_evidence(dispute, by=contractor, text="Here is a photo.", photos=[fake_image()])
    assert "photos" in exc.value.fields
    assert row_counts() == before


def stored_evidence_files() -> set[str]:
    root = os.path.join(settings.MEDIA_ROOT, "disputes")
    return {os.path.join(folder, name) for folder, _dirs, names in os.walk(root) for name in names}


def broken(*args, **kwargs):
    raise RuntimeError("a later step fell over")


def test_a_failure_after_the_photos_are_stored_leaves_no_files(task, customer, dispute, contractor, monkeypatch):
    # Opening and adding evidence store the photos before the event and the
    # notifications: if a later step fails, the rows roll back and so do the files.
    before_files, before_rows = stored_evidence_files(), row_counts()
    monkeypatch.setattr(disputes, "_notify_parties", broken)
    with pytest.raises(RuntimeError):
        disputes.dispute_add_evidence(dispute, by=contractor, text="Two photos.", photos=[jpeg_upload(), jpeg_upload()])
    assert stored_evidence_files() == before_files
    assert row_counts() == before_rows


def test_a_failure_after_a_response_photo_is_stored_leaves_no_file(dispute, contractor, monkeypatch):
    before_files, before_rows = stored_evidence_files(), row_counts()
    monkeypatch.setattr(disputes, "_notify_parties", broken)
    with pytest.raises(RuntimeError):
        disputes.dispute_respond(dispute, by=contractor, text="Here is the finished tap.", photos=[jpeg_upload()])
    assert stored_evidence_files() == before_files
    assert row_counts() == before_rows
    dispute.refresh_from_db()
    assert dispute.status == "awaiting_response"


def test_a_failure_while_opening_leaves_no_photo_behind(task, customer, monkeypatch):
    before_files, before_rows = stored_evidence_files(), row_counts()
    monkeypatch.setattr(disputes, "_event", broken)
    with pytest.raises(RuntimeError):
        disputes.dispute_open(task, by=customer, reason="poor_quality", text=TEXT, evidence=[jpeg_upload()])
    assert stored_evidence_files() == before_files
    assert row_counts() == before_rows
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED


# --- settle without money -------------------------------------------------------------


def test_accepting_release_completes_the_task(dispute, task, customer, contractor):
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="release")
    disputes.dispute_accept_proposal(proposal, by=customer)
    dispute.refresh_from_db()
    task.refresh_from_db()
    assert (dispute.status, dispute.outcome, dispute.contractor_cents, dispute.refund_cents) == (
        "resolved",
        "release",
        12_000,
        0,
    )
    assert dispute.decided_by is None and dispute.settled_by_proposal == proposal
    assert task.status == Task.Status.COMPLETED
    assert timeline_kinds(dispute) == ["opened", "proposed", "proposal_accepted"]


def test_accepting_full_refund_cancels_the_task(dispute, task, customer, contractor):
    proposal = disputes.dispute_propose(dispute, by=contractor, kind="full_refund")
    disputes.dispute_accept_proposal(proposal, by=customer)
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED
    assert TaskEvent.objects.filter(task=task).last().kind == "cancelled"


# --- escalation, decision, deadlines -------------------------------------------------


def test_party_requests_mediation(dispute, contractor):
    disputes.dispute_escalate(dispute, by=contractor)
    dispute.refresh_from_db()
    assert (dispute.status, dispute.escalation_reason, dispute.escalated_by) == ("mediation", "requested", contractor)
    with pytest.raises(Conflict):
        disputes.dispute_escalate(dispute, by=contractor)


def test_no_response_after_48_hours_goes_to_mediation(dispute):
    now = timezone.now()
    assert disputes.dispute_sweep(now=now + dt.timedelta(hours=47)) == {"no_response": 0, "timeout": 0, "errors": 0}
    dispute.refresh_from_db()
    assert dispute.status == "awaiting_response"
    assert disputes.dispute_sweep(now=now + dt.timedelta(hours=48, minutes=1))["no_response"] == 1
    dispute.refresh_from_db()
    assert (dispute.status, dispute.escalation_reason, dispute.escalated_by) == ("mediation", "no_response", None)
    assert timeline_kinds(dispute)[-1] == "escalated"
    # A second run finds nothing left to do.
    assert disputes.dispute_sweep(now=now + dt.timedelta(hours=49)) == {"no_response": 0, "timeout": 0, "errors": 0}


def test_not_settled_after_7_days_goes_to_mediation(dispute, contractor):
    disputes.dispute_respond(dispute, by=contractor, text="The drip is from the valve, not my washer.")
    now = timezone.now()
    assert disputes.dispute_sweep(now=now + dt.timedelta(days=6, hours=23))["timeout"] == 0
    dispute.refresh_from_db()
    assert dispute.status == "negotiating"
    assert disputes.dispute_sweep(now=now + dt.timedelta(days=7, minutes=1))["timeout"] == 1
    dispute.refresh_from_db()
    assert (dispute.status, dispute.escalation_reason) == ("mediation", "timeout")


def test_celery_task_runs_the_sweep(dispute):
    from reputation.dispute_tasks import sweep_disputes

    Dispute.objects.filter(pk=dispute.pk).update(response_due_at=timezone.now() - dt.timedelta(seconds=1))
    assert sweep_disputes.apply().get()["no_response"] == 1


def test_decide_needs_permission(dispute, customer, contractor, outsider):
    disputes.dispute_escalate(dispute, by=contractor)
    dispute_row = row(dispute)
    for user in (customer, contractor, outsider, plain_staff()):
        with pytest.raises(PermissionDenied):
            disputes.dispute_decide(dispute, by=user, outcome="refund", reason="The photos show the tap still drips.")
    assert row(dispute) == dispute_row


def test_decide_only_in_mediation(dispute):
    with pytest.raises(Conflict) as exc:
        disputes.dispute_decide(dispute, by=mediator(), outcome="refund", reason="The photos show the tap still drips.")
    assert exc.value.code == "not_in_mediation"


@pytest.mark.parametrize(
    ("outcome", "cents", "reason", "field"),
    [
        ("refund", None, "", "reason"),
        ("refund", None, "too short", "reason"),
        ("maybe", None, "The photos show the tap still drips.", "outcome"),
        ("split", None, "The photos show the tap still drips.", "contractor_cents"),
        ("split", 0, "The photos show the tap still drips.", "contractor_cents"),
        ("split", 12_000, "The photos show the tap still drips.", "contractor_cents"),
        ("split", -5, "The photos show the tap still drips.", "contractor_cents"),
        ("split", "lots", "The photos show the tap still drips.", "contractor_cents"),
        ("release", 500, "The photos show the tap still drips.", "contractor_cents"),
    ],
)
def test_decide_bad_input_changes_nothing(dispute, contractor, outcome, cents, reason, field):
    disputes.dispute_escalate(dispute, by=contractor)
    before, dispute_row = row_counts(), row(dispute)
    with pytest.raises(ApplicationError) as exc:
        disputes.dispute_decide(dispute, by=mediator(), outcome=outcome, contractor_cents=cents, reason=reason)
    assert exc.value.status_code == 400 and field in exc.value.fields
    assert row_counts() == before and row(dispute) == dispute_row


def test_mediator_decides_a_split(dispute, task, contractor):
    disputes.dispute_escalate(dispute, by=contractor)
    mia = mediator()
    disputes.dispute_decide(
        dispute, by=mia, outcome="split", contractor_cents="8000", reason="Half the job was done; the valve was not."
    )
    dispute.refresh_from_db()
    task.refresh_from_db()
    assert (dispute.status, dispute.outcome, dispute.contractor_cents, dispute.decided_by) == (
        "resolved",
        "split",
        8_000,
        mia,
    )
    assert dispute.decision_reason == "Half the job was done; the valve was not."
    assert task.status == Task.Status.COMPLETED
    with pytest.raises(Conflict) as exc:
        disputes.dispute_decide(dispute, by=mia, outcome="refund", reason="Changed my mind about the whole thing.")
    assert exc.value.code == "dispute_resolved"
    # A resolved dispute takes no more steps.
    with pytest.raises(Conflict):
        disputes.dispute_add_evidence(dispute, by=contractor, text="One more thing to add here.")
