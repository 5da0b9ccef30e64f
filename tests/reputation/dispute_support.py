"""Helpers for the dispute tests (tests/reputation/test_disputes*.py)."""

from __future__ import annotations

import io

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from messaging.models import Notification
from reputation.dispute_models import Dispute, DisputeEvent, DisputeEvidence, DisputeProposal
from tasks.models import Task, TaskEvent
from tests.factories import UserFactory
from tests.tasks.factories import TaskFactory

MODELS = (Dispute, DisputeEvidence, DisputeProposal, DisputeEvent, TaskEvent, Notification)
TEXT = "The tap still drips after the visit; the washer was never replaced."


def jpeg_upload(name: str = "drip.jpg", colour=(30, 90, 200), size=(120, 90)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def fake_image(name: str = "drip.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"GIF89a but really just some text", content_type="image/jpeg")


def submitted_task(customer, contractor, **kwargs) -> Task:
    return TaskFactory(submitted=True, customer=customer, contractor=contractor, photos=0, **kwargs)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def row(obj) -> dict:
    return type(obj).objects.filter(pk=obj.pk).values().get()


def mediator(email: str = "mia@example.com"):
    """Staff with only the permission to decide disputes (not a superuser)."""
    user = UserFactory(email=email, full_name="Mia Mediator", is_staff=True, is_customer=False)
    user.user_permissions.add(Permission.objects.get(codename="decide_dispute", content_type__app_label="reputation"))
    return type(user).objects.get(pk=user.pk)  # fresh: permission cache


def plain_staff(email: str = "pat@example.com"):
    return UserFactory(email=email, full_name="Pat Staff", is_staff=True, is_customer=False)


def timeline_kinds(dispute) -> list[str]:
    return list(DisputeEvent.objects.filter(dispute=dispute).order_by("id").values_list("kind", flat=True))
