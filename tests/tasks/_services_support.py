"""Helpers for the task service tests (tests/tasks/test_services*.py, test_concurrency.py, test_sweep*.py)."""

from __future__ import annotations

import datetime as dt
import io
import os

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from tasks.models import CheckIn, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto
from tasks.services import TaskInput
from tests.factories import CategoryFactory, ContractorProfileFactory

MODELS = (Task, TaskPhoto, Offer, CheckIn, ProofSubmission, TaskEvent)


def jpeg_upload(name: str = "leak.jpg", colour=(200, 40, 40), size=(120, 90)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def text_upload(name: str = "leak.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"this is not an image at all", content_type="image/jpeg")


def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def task_input(**overrides) -> TaskInput:
    values = {
        "title": "Fix the dripping kitchen tap",
        "description": "The kitchen tap drips all night. Probably the washer or the cartridge.",
        "category": plumbing(),
        "postal_code": "94110",
        "address": "3250 24th St, San Francisco, CA 94110",
        "budget_cents": 12_000,
        "deadline": timezone.now() + dt.timedelta(days=7),
    }
    values.update(overrides)
    return TaskInput(**values)


def make_contractor(email: str, **profile):
    """Another onboarded, verified contractor in San Francisco."""
    return ContractorProfileFactory(user__email=email, user__full_name=email.split("@")[0].title(), **profile).user


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def row(obj) -> dict:
    """The object's row as it is in the database now."""
    return type(obj).objects.filter(pk=obj.pk).values().get()


def stored_files() -> set[str]:
    root = os.path.join(settings.MEDIA_ROOT, "task-photos")
    found = set()
    for folder, _dirs, files in os.walk(root):
        found.update(os.path.join(folder, name) for name in files)
    return found


def events(task) -> list[tuple[str, str, str]]:
    return list(TaskEvent.objects.filter(task=task).values_list("kind", "from_status", "to_status"))
