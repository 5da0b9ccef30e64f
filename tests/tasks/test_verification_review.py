"""Staff settle photo verdicts through photo_check_review: only active staff
with the verification permission; a reason is required; every decision is in
the append-only audit log and both sides are told."""

from __future__ import annotations

import contextlib

import pytest
from django.contrib.auth.models import Permission

from accounts.models import AuditEntry
from core.errors import ApplicationError, Conflict, PermissionDenied
from messaging.models import Notification
from tasks.models import PhotoCheck
from tasks.verification import checks_needing_review, failed_checks, flagged_duplicates, photo_check_review
from tests.factories import UserFactory
from tests.tasks.verification_support import jpeg, submit_proof, task_in_progress, tiles

pytestmark = pytest.mark.django_db


def _no_run(execute=False):
    return contextlib.nullcontext()


@pytest.fixture
def task(customer, contractor):
    return task_in_progress(customer, contractor, before=[jpeg(tiles(20))])


def make_check(task, contractor, status=PhotoCheck.Status.NEEDS_REVIEW, **fields) -> PhotoCheck:
    proof = submit_proof(task, contractor, [jpeg(tiles(21))], capture=_no_run)
    return PhotoCheck.objects.create(proof=proof, status=status, summary_for_customer="We're taking a closer look.", **fields)


@pytest.fixture
def reviewer(db):
    user = UserFactory(email="rita@example.com", full_name="Rita Reviewer", is_staff=True, is_customer=False)
    user.user_permissions.add(Permission.objects.get(codename="review_verifications", content_type__app_label="accounts"))
    return user


def snapshot(check):
    return (
        PhotoCheck.objects.filter(pk=check.pk).values().get(),
        AuditEntry.objects.count(),
        Notification.objects.count(),
    )


def test_reviewer_passes_a_check_with_audit_and_notices(task, contractor, customer, reviewer):
    check = make_check(task, contractor)

    photo_check_review(check, by=reviewer, decision="pass", reason="The tap is clearly fixed in photo 1.")

    check.refresh_from_db()
    assert check.status == PhotoCheck.Status.PASS
    assert (check.reviewed_by, check.review_reason) == (reviewer, "The tap is clearly fixed in photo 1.")
    assert check.reviewed_at is not None
    assert check.summary_for_customer == "Photos checked by our team."
    (entry,) = AuditEntry.objects.all()
    assert (entry.actor, entry.action, entry.subject_id, entry.reason) == (
        reviewer,
        "photo_check.pass",
        str(check.pk),
        "The tap is clearly fixed in photo 1.",
    )
    assert entry.data == {"from": "needs_review", "to": "pass", "proof": check.proof_id, "task": str(task.public_id)}
    notices = dict(Notification.objects.filter(task=task, title__contains="our team").values_list("user", "title"))
    assert notices == {
        customer.pk: f"The photos for “{task.title}” were checked by our team",
        contractor.pk: f"The photos for “{task.title}” were checked by our team",
    }
    assert list(checks_needing_review()) == []


def test_reviewer_fails_a_check_and_it_leaves_the_queues(task, contractor, customer, reviewer):
    check = make_check(task, contractor, has_duplicate=True)
    assert list(flagged_duplicates()) == [check]

    photo_check_review(check, by=reviewer, decision="fail", reason="  Photo 1 is a stock image.  ")

    check.refresh_from_db()
    assert check.status == PhotoCheck.Status.FAIL
    assert check.review_reason == "Photo 1 is a stock image."
    assert check.summary_for_customer == "Our team found a problem with these photos: Photo 1 is a stock image."
    assert AuditEntry.objects.get().action == "photo_check.fail"
    assert list(flagged_duplicates()) == []
    assert list(failed_checks()) == []  # reviewed fails are no longer waiting
    assert Notification.objects.filter(task=task, body="Photo 1 is a stock image.").count() == 2


def test_an_automatic_fail_can_be_overturned(task, contractor, reviewer):
    check = make_check(task, contractor, status=PhotoCheck.Status.FAIL)

    photo_check_review(check, by=reviewer, decision="pass", reason="Same tiles, but a new grout line: real work.")

    check.refresh_from_db()
    assert check.status == PhotoCheck.Status.PASS
    assert AuditEntry.objects.get().data["from"] == "fail"


@pytest.mark.parametrize("who", ["customer", "contractor", "outsider", "staff_without_permission", "inactive_reviewer"])
def test_only_active_staff_with_the_permission_may_review(request, task, contractor, who):
    if who == "staff_without_permission":
        user = UserFactory(email="pat@example.com", is_staff=True)
    elif who == "inactive_reviewer":
        user = request.getfixturevalue("reviewer")
        user.is_active = False
        user.save()
    else:
        user = request.getfixturevalue(who)
    check = make_check(task, contractor)
    before = snapshot(check)

    with pytest.raises(PermissionDenied):
        photo_check_review(check, by=user, decision="pass", reason="Looks fine to me.")

    assert snapshot(check) == before


@pytest.mark.parametrize(
    "decision, reason, field",
    [("pass", "", "reason"), ("pass", "   ", "reason"), ("pass", "x" * 1001, "reason"), ("approve", "Fine.", "decision"), ("pending", "Fine.", "decision")],
)
def test_bad_input_is_refused_and_changes_nothing(task, contractor, reviewer, decision, reason, field):
    check = make_check(task, contractor)
    before = snapshot(check)

    with pytest.raises(ApplicationError) as caught:
        photo_check_review(check, by=reviewer, decision=decision, reason=reason)

    assert list(caught.value.fields) == [field]
    assert snapshot(check) == before


def test_a_reviewed_check_cannot_be_reviewed_again(task, contractor, reviewer, staff):
    check = make_check(task, contractor)
    photo_check_review(check, by=reviewer, decision="fail", reason="Blurry.")
    before = snapshot(check)

    with pytest.raises(Conflict) as caught:
        photo_check_review(check, by=staff, decision="pass", reason="Changed my mind.")

    assert caught.value.code == "already_reviewed"
    assert snapshot(check) == before


@pytest.mark.parametrize("status", [PhotoCheck.Status.PASS, PhotoCheck.Status.PENDING])
def test_passed_or_running_checks_are_not_reviewable(task, contractor, reviewer, status):
    check = make_check(task, contractor, status=status)
    before = snapshot(check)

    with pytest.raises(Conflict):
        photo_check_review(check, by=reviewer, decision="fail", reason="Hmm.")

    assert snapshot(check) == before
