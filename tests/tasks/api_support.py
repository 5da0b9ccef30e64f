"""Helpers for the tasks API tests (tests/tasks/test_api*.py): uploads, token
clients, and a snapshot of everything a task write could touch, so a refused
request can be shown to have changed nothing."""

from __future__ import annotations

import datetime as dt
import io
import os

from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tasks.models import CheckIn, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto
from tests.factories import CategoryFactory, ContractorProfileFactory

MODELS = (Task, TaskPhoto, Offer, CheckIn, ProofSubmission, TaskEvent)
ADDRESS = "3250 24th St"


def jpeg(name: str = "leak.jpg", colour=(200, 40, 40), size=(64, 48)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def not_an_image(name: str = "leak.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 this is not an image at all", content_type="image/jpeg")


def token_client(user) -> APIClient:
    """A client that sends ``Authorization: Token ...`` as a real API client does."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def plumbing():
    return CategoryFactory(name="Plumbing", slug="plumbing")


def make_contractor(email: str, **profile):
    """Another verified, onboarded contractor in San Francisco."""
    return ContractorProfileFactory(
        user__email=email, user__full_name=email.split("@")[0].title(), **profile
    ).user


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def in_days(days: float) -> str:
    return iso(timezone.now() + dt.timedelta(days=days))


def stored_files() -> set[str]:
    root = os.path.join(settings.MEDIA_ROOT, "task-photos")
    found = set()
    for folder, _dirs, files in os.walk(root):
        found.update(os.path.join(folder, name) for name in files)
    return found


def snapshot() -> dict:
    """Every task-side row (all columns), the stored photo files and the
    emails sent: equal before and after means nothing was written."""
    return {
        "rows": {
            model.__name__: sorted(
                (tuple(sorted((k, str(v)) for k, v in row.items())) for row in model.objects.values()),
            )
            for model in MODELS
        },
        "files": stored_files(),
        "emails": len(mail.outbox),
    }


def row(obj) -> dict:
    return type(obj).objects.filter(pk=obj.pk).values().get()


def error(response) -> dict:
    """The body of an error answer, checked for the API's one shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def task_payload(**overrides) -> dict:
    values = {
        "title": "Fix the dripping kitchen tap",
        "description": "The kitchen tap drips all night. Probably the washer or the cartridge.",
        "category": "plumbing",
        "postal_code": "94110",
        "address": ADDRESS,
        "budget_cents": 12_000,
        "deadline": in_days(7),
    }
    values.update(overrides)
    return values
