"""Shared helpers for the task page tests."""

from __future__ import annotations

import html as htmllib
import io
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tasks.models import CheckIn, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto


def field_errors(html: str, field: str) -> list[str]:
    """The messages rendered right under one field (Django's id="id_<field>_error")."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    if not match:
        return []
    return [htmllib.unescape(m).strip() for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def text(response) -> str:
    """The page's text with tags stripped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def jpeg(name: str = "leak.jpg", size: tuple[int, int] = (64, 48), colour=(90, 120, 200)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


def counts() -> dict[str, int]:
    """Row counts of everything a task page may write: a refusal changes none."""
    return {
        "tasks": Task.objects.count(),
        "photos": TaskPhoto.objects.count(),
        "offers": Offer.objects.count(),
        "events": TaskEvent.objects.count(),
        "check_ins": CheckIn.objects.count(),
        "proofs": ProofSubmission.objects.count(),
    }


def state(task: Task) -> dict:
    """Every column of the task plus its rows elsewhere, to prove nothing changed."""
    task.refresh_from_db()
    return {
        "task": {f.attname: getattr(task, f.attname) for f in Task._meta.concrete_fields},
        "offers": sorted(task.offers.values_list("pk", "status", "price_cents")),
        "photos": sorted(task.photos.values_list("pk", flat=True)),
        "events": task.events.count(),
        "check_ins": task.check_ins.count(),
        "proofs": sorted(task.proofs.values_list("pk", "decision")),
    }
