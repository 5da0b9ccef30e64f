"""tasks.photos: what a stored task photo keeps (time, place, pixels) and loses
(EXIF), what it refuses, and who may look at it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.errors import ApplicationError
from tasks.models import Offer, ProofSubmission, Task, TaskPhoto
from tasks.photos import gps_to_decimal, photo_add, photo_can_view, photo_delete_files
from tests.accounts.photos import GPS_IFD, jpeg_bytes_with_gps, upload
from tests.factories import ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory, TaskPhotoFactory

pytestmark = pytest.mark.django_db

EXIF_IFD = 0x8769


def jpeg_with_exif(
    size: tuple[int, int] = (1200, 900),
    *,
    taken: str | None = "2024:05:06 07:08:09",
    gps: dict | None = None,
) -> bytes:
    """A camera-like JPEG: GPS in the GPS IFD, DateTimeOriginal in the Exif IFD."""
    image = Image.new("RGB", size, (180, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(GPS_IFD).update(
        gps if gps is not None else {1: "N", 2: (37.0, 45.0, 3.0), 3: "W", 4: (122.0, 25.0, 0.0)}
    )
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[0x9003] = taken
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def stored_files(task: Task) -> list[str]:
    folder = f"task-photos/{task.public_id}"
    if not default_storage.exists(folder):
        return []
    dirs, files = default_storage.listdir(folder)
    thumbs = default_storage.listdir(f"{folder}/thumbs")[1] if "thumbs" in dirs else []
    return files + [f"thumbs/{name}" for name in thumbs]


@pytest.fixture
def task(customer):
    return TaskFactory(customer=customer, photos=0)


# --- photo_add: what is kept -------------------------------------------------


def test_photo_keeps_camera_time_and_place_read_before_the_strip(task, customer):
    original = jpeg_with_exif()
    with Image.open(io.BytesIO(original)) as source:  # the upload really carries both
        assert source.getexif().get_ifd(GPS_IFD)[2] == (37.0, 45.0, 3.0)
        assert source.getexif().get_ifd(EXIF_IFD)[0x9003] == "2024:05:06 07:08:09"

    photo = photo_add(task, by=customer, upload=upload("IMG_0001.jpg", original), kind=TaskPhoto.Kind.PROBLEM)

    photo.refresh_from_db()
    assert photo.taken_latitude == pytest.approx(37 + 45 / 60 + 3 / 3600, abs=1e-6)  # 37.750833 N
    assert photo.taken_longitude == pytest.approx(-(122 + 25 / 60), abs=1e-6)  # 122.416667 W
    # EXIF has no zone; the wall-clock time is kept and read as UTC.
    assert photo.taken_at == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def test_south_and_east_coordinates_are_signed(task, customer):
    sydney = {1: "S", 2: (33.0, 52.0, 4.0), 3: "E", 4: (151.0, 12.0, 36.0)}

    photo = photo_add(
        task, by=customer, upload=upload("opera.jpg", jpeg_with_exif(gps=sydney)), kind=TaskPhoto.Kind.PROBLEM
    )

    assert photo.taken_latitude == pytest.approx(-33.867778, abs=1e-6)
    assert photo.taken_longitude == pytest.approx(151.21, abs=1e-6)


def test_the_accounts_gps_sample_reads_as_the_mission(task, customer):
    photo = photo_add(task, by=customer, upload=upload("a.jpg", jpeg_bytes_with_gps()), kind=TaskPhoto.Kind.PROBLEM)

    assert (photo.taken_latitude, photo.taken_longitude) == (pytest.approx(37.7508333), pytest.approx(-122.4166667))
    assert photo.taken_at is None  # that sample has no DateTimeOriginal


def test_photo_without_exif_has_no_time_or_place(task, customer):
    out = io.BytesIO()
    Image.new("RGB", (100, 80), (1, 2, 3)).save(out, "JPEG")

    photo = photo_add(task, by=customer, upload=upload("plain.jpg", out.getvalue()), kind=TaskPhoto.Kind.PROBLEM)

    assert (photo.taken_at, photo.taken_latitude, photo.taken_longitude) == (None, None, None)


def test_junk_camera_date_and_half_a_position_are_ignored(task, customer):
    half = {1: "N", 2: (37.0, 45.0, 3.0)}  # latitude without longitude

    photo = photo_add(
        task,
        by=customer,
        upload=upload("junk.jpg", jpeg_with_exif(taken="0000:00:00 00:00:00", gps=half)),
        kind=TaskPhoto.Kind.PROBLEM,
    )

    assert (photo.taken_at, photo.taken_latitude, photo.taken_longitude) == (None, None, None)


def test_gps_out_of_range_is_ignored():
    assert gps_to_decimal({1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}) == (None, None)
    assert gps_to_decimal({}) == (None, None)


def test_stored_image_has_no_exif_and_thumbnail_is_at_most_400px(task, customer):
    photo = photo_add(
        task, by=customer, upload=upload("big.jpg", jpeg_with_exif((1200, 900))), kind=TaskPhoto.Kind.PROBLEM, position=3
    )

    photo.refresh_from_db()
    assert photo.image.name.startswith(f"task-photos/{task.public_id}/")
    assert photo.thumbnail.name.startswith(f"task-photos/{task.public_id}/thumbs/")
    assert "big" not in photo.image.name  # our name, not the uploader's
    with default_storage.open(photo.image.name, "rb") as stored:
        data = stored.read()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == (1200, 900) == (photo.width, photo.height)
        assert dict(image.getexif()) == {}
        assert dict(image.getexif().get_ifd(GPS_IFD)) == {}
        assert "exif" not in image.info
    assert photo.content_hash == hashlib.sha256(data).hexdigest()
    with default_storage.open(photo.thumbnail.name, "rb") as stored, Image.open(stored) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (400, 300)
        assert dict(thumb.getexif()) == {}
    assert (photo.task, photo.kind, photo.uploaded_by, photo.position, photo.proof) == (
        task,
        TaskPhoto.Kind.PROBLEM,
        customer,
        3,
        None,
    )


def test_small_photo_thumbnail_is_not_enlarged(task, customer):
    photo = photo_add(task, by=customer, upload=upload("s.jpg", jpeg_with_exif((120, 90))), kind=TaskPhoto.Kind.PROBLEM)

    with default_storage.open(photo.thumbnail.name, "rb") as stored, Image.open(stored) as thumb:
        assert thumb.size == (120, 90)


def test_png_with_transparency_is_accepted_as_jpeg(task, customer):
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (10, 200, 30, 90)).save(out, "PNG")

    photo = photo_add(task, by=customer, upload=upload("leak.png", out.getvalue(), "image/png"), kind="problem")

    assert (photo.width, photo.height) == (300, 200)
    with default_storage.open(photo.image.name, "rb") as stored, Image.open(stored) as image:
        assert (image.format, image.mode) == ("JPEG", "RGB")


def test_proof_photo_is_linked_to_its_submission(customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, in_progress=True, photos=0)
    proof = ProofSubmission.objects.create(task=task, contractor=contractor, note="Done")

    photo = photo_add(task, by=contractor, upload=upload("done.jpg", jpeg_with_exif()), kind="proof", proof=proof)

    assert (photo.kind, photo.proof, photo.uploaded_by) == (TaskPhoto.Kind.PROOF, proof, contractor)


def test_kind_and_proof_must_match(task, customer):
    with pytest.raises(ValueError):
        photo_add(task, by=customer, upload=upload("a.jpg", jpeg_with_exif()), kind="proof")
    with pytest.raises(ValueError):
        photo_add(task, by=customer, upload=upload("a.jpg", jpeg_with_exif()), kind="selfie")
    assert not TaskPhoto.objects.exists()
    assert stored_files(task) == []


# --- photo_add: what is refused ----------------------------------------------


def test_text_named_jpg_is_refused_and_nothing_is_written(task, customer):
    fake = SimpleUploadedFile("leak.jpg", b"this is not a photo, just words\n" * 40, content_type="image/jpeg")

    with pytest.raises(ApplicationError) as caught:
        photo_add(task, by=customer, upload=fake, kind=TaskPhoto.Kind.PROBLEM)

    message = "This file is not a valid image. Upload a JPEG, PNG or WebP photo."
    assert (caught.value.code, caught.value.message, caught.value.status_code) == ("invalid_photo", message, 400)
    assert caught.value.fields == {"photos": [message]}
    assert not TaskPhoto.objects.exists()
    assert stored_files(task) == []


def test_file_over_10_mb_is_refused_and_nothing_is_written(task, customer):
    # A real JPEG padded past the limit: the size is checked before decoding.
    big = jpeg_with_exif((64, 64)) + b"\0" * (11 * 1024 * 1024)

    with pytest.raises(ApplicationError) as caught:
        photo_add(task, by=customer, upload=upload("huge.jpg", big), kind=TaskPhoto.Kind.PROBLEM)

    assert caught.value.code == "invalid_photo"
    assert caught.value.fields == {"photos": ["This file is 11.0 MB; the limit is 10 MB."]}
    assert not TaskPhoto.objects.exists()
    assert stored_files(task) == []


def test_tiny_image_is_refused(task, customer):
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG")

    with pytest.raises(ApplicationError) as caught:
        photo_add(task, by=customer, upload=upload("dot.jpg", out.getvalue()), kind=TaskPhoto.Kind.PROBLEM)

    assert caught.value.fields == {"photos": ["This image is too small to show anything."]}
    assert not TaskPhoto.objects.exists()


def test_delete_files_removes_image_and_thumbnail(task, customer):
    photo = photo_add(task, by=customer, upload=upload("a.jpg", jpeg_with_exif()), kind=TaskPhoto.Kind.PROBLEM)
    assert len(stored_files(task)) == 2

    photo_delete_files(photo)

    assert stored_files(task) == []
    assert not default_storage.exists(photo.image.name)
    assert not default_storage.exists(photo.thumbnail.name)


# --- photo_can_view ----------------------------------------------------------

VIEWERS = ["customer", "assigned", "other_contractor", "offer_maker", "outsider", "anonymous", "staff"]
NOT_OPEN = ["assigned", "in_progress", "submitted", "completed", "cancelled"]


@pytest.fixture
def cast(customer, contractor, outsider, staff):
    return {
        "customer": customer,
        "assigned": contractor,
        "other_contractor": ContractorProfileFactory().user,
        "offer_maker": ContractorProfileFactory().user,
        "outsider": outsider,
        "anonymous": AnonymousUser(),
        "staff": staff,
    }


def task_in(status: str, cast: dict) -> Task:
    """A task in ``status``; from assigned on, Bob is the assigned contractor.
    The offer maker's offer was declined (or is still pending on an open task)."""
    fields: dict = {"customer": cast["customer"], "photos": 0}
    if status == "draft":
        fields["draft"] = True
    elif status == "open":
        pass
    else:
        fields.update(
            status=status,
            contractor=cast["assigned"],
            agreed_price_cents=12_000,
            assigned_at=dt.datetime.now(dt.UTC),
        )
    task = TaskFactory(**fields)
    if status != "draft":
        OfferFactory(
            task=task,
            contractor=cast["offer_maker"],
            status=Offer.Status.PENDING if status == "open" else Offer.Status.DECLINED,
        )
    if status not in ("draft", "open"):
        OfferFactory(task=task, contractor=cast["assigned"], status=Offer.Status.ACCEPTED)
    return task


def visible_to(photo: TaskPhoto, cast: dict) -> set[str]:
    return {name for name in VIEWERS if photo_can_view(photo, cast[name])}


def test_problem_photo_of_an_open_task_is_public(cast):
    photo = TaskPhotoFactory(task=task_in("open", cast))

    assert visible_to(photo, cast) == set(VIEWERS)


def test_problem_photo_of_a_draft_only_for_customer_and_staff(cast):
    photo = TaskPhotoFactory(task=task_in("draft", cast))

    assert visible_to(photo, cast) == {"customer", "staff"}


@pytest.mark.parametrize("status", NOT_OPEN)
def test_problem_photo_after_open_for_participants_and_offer_makers(cast, status):
    photo = TaskPhotoFactory(task=task_in(status, cast))

    assert visible_to(photo, cast) == {"customer", "assigned", "offer_maker", "staff"}


@pytest.mark.parametrize("status", ["in_progress", "submitted", "completed", "cancelled"])
def test_proof_photo_only_for_customer_assigned_contractor_and_staff(cast, status):
    task = task_in(status, cast)
    proof = ProofSubmission.objects.create(task=task, contractor=cast["assigned"], note="Fixed")
    photo = TaskPhotoFactory(task=task, kind=TaskPhoto.Kind.PROOF, proof=proof, uploaded_by=cast["assigned"])

    assert visible_to(photo, cast) == {"customer", "assigned", "staff"}


def test_deactivated_customer_cannot_view_their_draft_photo(cast):
    photo = TaskPhotoFactory(task=task_in("draft", cast))
    cast["customer"].is_active = False

    assert photo_can_view(photo, cast["customer"]) is False


def test_cancelled_open_task_photo_stays_with_customer_and_offer_maker(cast):
    task = TaskFactory(customer=cast["customer"], status=Task.Status.CANCELLED, photos=0)
    OfferFactory(task=task, contractor=cast["offer_maker"], status=Offer.Status.DECLINED)
    photo = TaskPhotoFactory(task=task)

    assert visible_to(photo, cast) == {"customer", "offer_maker", "staff"}
    assert photo_can_view(photo, UserFactory()) is False
