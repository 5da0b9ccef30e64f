"""Shared set-up for the verification dashboard tests: reviewers, an ID
waiting for review, and photo checks in each queue."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts import verification
from tests.accounts.photos import png_bytes, upload
from tests.factories import UserFactory
from tests.tasks.factories import TaskFactory, TaskPhotoFactory

DASHBOARD = "/admin/accounts/identitydocument/verification/"


def reviewer(**kwargs):
    """Staff (not superuser) holding only accounts.review_verifications."""
    kwargs.setdefault("is_customer", False)
    user = UserFactory(is_staff=True, **kwargs)
    user.user_permissions.add(Permission.objects.get(codename="review_verifications"))
    return user


def pending_id(contractor):
    return verification.id_submit(
        contractor,
        upload("licence.png", png_bytes((120, 80), (40, 90, 160)), "image/png"),
        upload("me.png", png_bytes((80, 80), (200, 150, 120)), "image/png"),
    )


def photo_check(customer, contractor, *, status="needs_review", duplicate_of=None, title="Fix the leaking tap"):
    """A submitted task with a before photo, one proof photo and its check."""
    from tasks.models import PhotoCheck, ProofSubmission, TaskPhoto

    task = TaskFactory(customer=customer, contractor=contractor, submitted=True, photos=1, title=title)
    proof = ProofSubmission.objects.create(task=task, contractor=contractor, note="New cartridge fitted.")
    after = TaskPhotoFactory(task=task, proof=proof, kind=TaskPhoto.Kind.PROOF, uploaded_by=contractor)
    findings = {"photos": [{"photo_id": after.pk, "valid": True}]}
    if duplicate_of is not None:
        findings["photos"][0]["duplicate_of"] = {
            "photo_id": duplicate_of.pk,
            "photo_public_id": str(duplicate_of.public_id),
            "kind": duplicate_of.kind,
            "task_id": duplicate_of.task_id,
            "task_public_id": str(duplicate_of.task.public_id),
            "same_task": duplicate_of.task_id == task.pk,
            "distance": 3,
        }
    check = PhotoCheck.objects.create(
        proof=proof,
        status=status,
        local_findings=findings,
        ai_verdict={
            "matches_task": True,
            "work_visible": False,
            "complete": False,
            "confidence": 0.41,
            "problems": ["The tap is not visible"],
            "summary": "Unclear photo of a sink.",
        },
        ai_model="gpt-4o-2024-08-06",
        ai_prompt_tokens=1200,
        ai_completion_tokens=80,
        attempts=1,
        has_duplicate=duplicate_of is not None,
        decided_at=timezone.now(),
    )
    return check
