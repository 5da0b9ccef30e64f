"""Task photos: checked, stripped of EXIF, thumbnailed and stored; and who may see them.

``photo_add`` has no transaction of its own: it is called by ``tasks.services``
inside the service's transaction, after the task row is locked, and the
service writes the task event. Files are written to ``default_storage`` only
after the image has passed every check, so a bad upload leaves neither a row
nor a file. Each stored file is reported to ``core.files.file_stored``: the
services run as ``core.files.atomic_with_files``, so if their transaction
later rolls back for another reason the files go with it (no orphans in
MEDIA_ROOT). ``photo_delete_files`` removes a photo's files when a service
deletes the row, after commit.

EXIF has no time zone. ``taken_at`` treats the camera's DateTimeOriginal as
UTC: it is a hint for the customer and for photo checks (was this taken
today, near the address?), not a timestamp we trust to the minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
from typing import IO, Any

from django.core.files.base import ContentFile
from PIL import Image

from core.errors import ApplicationError
from core.files import file_stored
from core.images import ImageRejected, clean_image

from .models import MAX_PHOTO_BYTES, Offer, Task, TaskPhoto
from .phash import phash_fields

THUMB_SIDE = 400
THUMB_QUALITY = 80

# Tags inside the Exif sub-IFD (0x8769) and the GPS sub-IFD (0x8825).
DATETIME_ORIGINAL = 0x9003
DATETIME_DIGITIZED = 0x9004
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4


def photo_add(
    task: Task,
    *,
    by: Any,
    upload: IO[bytes],
    kind: str,
    proof: Any = None,
    position: int = 0,
) -> TaskPhoto:
    """Check ``upload`` by content, read its EXIF time and place, store it
    re-encoded without metadata plus a 400 px thumbnail, and return the row.

    Who may add a photo is the calling service's decision. Raises
    ApplicationError(code="invalid_photo", fields={"photos": [...]}) for a file
    that is not a usable image or is over 10 MB; nothing is written then.
    """
    if kind not in TaskPhoto.Kind.values:
        raise ValueError(f"Unknown photo kind {kind!r}")
    if (kind == TaskPhoto.Kind.PROOF) != (proof is not None):
        raise ValueError("Proof photos need their proof submission, and only they have one.")
    try:
        cleaned = clean_image(upload, max_bytes=MAX_PHOTO_BYTES)
    except ImageRejected as exc:
        message = str(exc)
        raise ApplicationError(message, code="invalid_photo", fields={"photos": [message]}) from exc

    image_bytes = cleaned.content.read()
    latitude, longitude = gps_to_decimal(cleaned.gps)
    photo = TaskPhoto(
        task=task,
        proof=proof,
        kind=kind,
        uploaded_by=by,
        width=cleaned.width,
        height=cleaned.height,
        content_hash=hashlib.sha256(image_bytes).hexdigest(),
        **phash_fields(image_bytes),  # for duplicate checks (tasks.verification)
        taken_at=exif_taken_at(cleaned.exif_ifd),
        taken_latitude=latitude,
        taken_longitude=longitude,
        position=position,
    )
    thumb_bytes = _thumbnail(image_bytes)
    # The names are ignored: task_photo_path / task_thumb_path choose them.
    photo.image.save("photo.jpg", ContentFile(image_bytes), save=False)
    file_stored(photo.image)
    try:
        photo.thumbnail.save("thumb.jpg", ContentFile(thumb_bytes), save=False)
        file_stored(photo.thumbnail)
        photo.save()
    except BaseException:
        photo_delete_files(photo)
        raise
    return photo


def photo_delete_files(photo: TaskPhoto) -> None:
    """Remove a photo's stored image and thumbnail (the row is the caller's).

    Services call this after the deleting transaction commits
    (``transaction.on_commit``), so a rollback never leaves a row without files.
    """
    for field_file in (photo.image, photo.thumbnail):
        if field_file and field_file.name:
            field_file.storage.delete(field_file.name)


def photo_can_view(photo: TaskPhoto, user: Any) -> bool:
    """Whether ``user`` (possibly anonymous) may see this photo's image or thumbnail.

    - Problem photos of an open task: anyone, as the task itself is public.
    - Everything else (drafts, tasks past open, every proof photo): the
      customer, the assigned contractor and staff; for problem photos also
      contractors who made an offer on the task (they still see its page).
    """
    task = photo.task
    is_problem = photo.kind == TaskPhoto.Kind.PROBLEM
    if is_problem and task.status == Task.Status.OPEN:
        return True
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.pk == task.customer_id:
        return True
    if task.contractor_id is not None and user.pk == task.contractor_id:
        return True
    if is_problem and task.status != Task.Status.DRAFT:
        return Offer.objects.filter(task=task, contractor=user).exists()
    return False


def exif_taken_at(exif_ifd: dict) -> dt.datetime | None:
    """DateTimeOriginal ("YYYY:MM:DD HH:MM:SS", no zone) as an aware UTC datetime."""
    for tag in (DATETIME_ORIGINAL, DATETIME_DIGITIZED):
        value = exif_ifd.get(tag)
        if isinstance(value, bytes):
            value = value.decode("ascii", "ignore")
        if not isinstance(value, str):
            continue
        try:
            # EXIF carries no zone: read it as UTC (see the module docstring).
            return dt.datetime.strptime(value.strip("\x00 ").strip()[:19] + "+0000", "%Y:%m:%d %H:%M:%S%z")
        except ValueError:
            continue  # "0000:00:00 00:00:00" and other camera junk
    return None


def gps_to_decimal(gps: dict) -> tuple[float | None, float | None]:
    """GPS IFD degrees/minutes/seconds rationals to signed decimal degrees.

    South and West are negative. Returns (None, None) unless both coordinates
    are present, finite and in range.
    """
    latitude = _dms(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), "S")
    longitude = _dms(gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), "W")
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None, None
    return round(latitude, 7), round(longitude, 7)


def _dms(value: Any, ref: Any, negative_ref: str) -> float | None:
    if value is None:
        return None
    try:
        parts = [float(part) for part in (value if isinstance(value, (tuple, list)) else (value,))]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(part) and part >= 0 for part in parts):
        return None
    degrees = sum(part / 60**i for i, part in enumerate(parts))
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip("\x00 ").upper() == negative_ref:
        degrees = -degrees
    return degrees


def _thumbnail(image_bytes: bytes) -> bytes:
    with Image.open(io.BytesIO(image_bytes)) as image:
        image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return out.getvalue()
