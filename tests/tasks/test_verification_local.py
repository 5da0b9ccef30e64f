"""Local photo checks (always on, the only ones offline): copies of earlier
photos anywhere on the platform, EXIF time and place against the job, images
too small or blank to prove anything; the verdict is stored without an AI."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.models import Notification
from tasks import phash
from tasks.models import PhotoCheck, TaskPhoto
from tasks.photos import photo_add
from tasks.verification import (
    checks_needing_review,
    duplicate_candidates,
    failed_checks,
    find_duplicate,
    flagged_duplicates,
    photo_check_run,
)
from tasks.verification_tasks import verify_proof
from tests.factories import UserFactory
from tests.tasks.factories import SF_LAT, SF_LON, TaskFactory, TaskPhotoFactory
from tests.tasks.verification_support import (
    check_of,
    jpeg,
    resized_copy,
    submit_proof,
    task_in_progress,
    tiles,
    upload,
    with_exif,
)

pytestmark = pytest.mark.django_db

WALL = tiles(1)


@pytest.fixture
def task(customer, contractor):
    return task_in_progress(customer, contractor, before=[jpeg(tiles(50))])


@pytest.fixture
def earlier_task():
    """Someone else's job elsewhere, whose photo of a tiled wall is already on the platform."""
    other_customer = UserFactory(email="erin@example.com")
    earlier = TaskFactory(customer=other_customer, photos=0, title="Regrout the shower wall")
    photo_add(earlier, by=other_customer, upload=upload(jpeg(WALL)), kind=TaskPhoto.Kind.PROBLEM)
    return earlier


# --- The hash ------------------------------------------------------------------------


def test_upload_stores_the_perceptual_hash_and_its_bands(task):
    photo = task.photos.get()
    assert len(photo.phash) == 16
    assert photo.phash == phash.phash_bytes(photo.image.open("rb").read())
    assert (photo.phash_band0, photo.phash_band1, photo.phash_band2, photo.phash_band3) == phash.bands(photo.phash)


def test_resized_recompressed_copy_is_within_the_threshold_and_other_walls_are_not():
    original = phash.phash_image(WALL)
    copy = phash.phash_bytes(resized_copy(WALL, scale=0.5, quality=60))
    assert phash.distance(original, copy) <= 2
    for seed in range(2, 12):  # ten other tiled walls, made the same way
        assert phash.distance(original, phash.phash_image(tiles(seed))) > 3 * phash.DUPLICATE_MAX_DISTANCE


def _with_hash(value: str) -> TaskPhoto:
    return TaskPhotoFactory(phash=value, **{f"phash_band{i}": b for i, b in enumerate(phash.bands(value))})


BASE = 0x0123456789ABCDEF


def test_band_lookup_finds_every_photo_up_to_seven_bits_even_when_every_band_differs():
    # Seven bits flipped, spread over all four bands (2+2+2+1): no band is equal.
    flipped = BASE ^ (0b11 << 60) ^ (0b11 << 40) ^ (0b11 << 20) ^ (1 << 3)
    earlier, probe = f"{BASE:016x}", f"{flipped:016x}"
    assert all(a != b for a, b in zip(phash.bands(earlier), phash.bands(probe), strict=True))
    assert phash.distance(earlier, probe) == 7
    older = _with_hash(earlier)
    unrelated = _with_hash(f"{BASE ^ 0xFFFF_FFFF_FFFF_FFFF:016x}")  # every band far off
    newer = TaskPhotoFactory()

    assert list(duplicate_candidates(newer, probe)) == [older]
    assert unrelated not in duplicate_candidates(newer, probe)
    # Seven bits is past DUPLICATE_MAX_DISTANCE (6): a candidate, not a duplicate.
    assert find_duplicate(newer, probe) is None


def test_six_bits_apart_in_four_different_bands_is_a_duplicate():
    flipped = BASE ^ (0b11 << 60) ^ (0b11 << 40) ^ (1 << 20) ^ (1 << 3)
    older = _with_hash(f"{BASE:016x}")
    newer = TaskPhotoFactory()

    found = find_duplicate(newer, f"{flipped:016x}")

    assert (found["photo_id"], found["distance"], found["same_task"]) == (older.pk, 6, False)


def test_only_earlier_photos_are_compared():
    value = "0123456789abcdef"
    first = _with_hash(value)
    later = _with_hash(value)

    assert find_duplicate(first, value) is None
    assert find_duplicate(later, value)["photo_id"] == first.pk


# --- Duplicates through the whole check -------------------------------------------------------------


def test_resized_copy_of_a_photo_from_another_task_fails_with_that_task(
    task, earlier_task, contractor, customer, django_capture_on_commit_callbacks
):
    proof = submit_proof(
        task, contractor, [jpeg(tiles(60)), resized_copy(WALL, scale=0.5, quality=60)], capture=django_capture_on_commit_callbacks
    )

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.FAIL
    assert check.has_duplicate is True
    first, second = check.local_findings["photos"]
    assert first["problems"] == [] and first["duplicate_of"] is None
    assert second["problems"] == ["duplicate_other_task"]
    original = earlier_task.photos.get()
    assert second["duplicate_of"] == {
        "photo_id": original.pk,
        "photo_public_id": str(original.public_id),
        "kind": "problem",
        "task_id": earlier_task.pk,
        "task_public_id": str(earlier_task.public_id),
        "same_task": False,
        "distance": second["duplicate_of"]["distance"],
    }
    assert second["duplicate_of"]["distance"] <= 2
    # The customer is told why, without anything about the other customer's job.
    assert check.summary_for_customer == "One of these photos was already used on another job, so it can't prove this one."
    assert "shower" not in check.summary_for_customer
    assert set(Notification.objects.filter(task=task, title__contains="didn't pass").values_list("user", flat=True)) == {
        customer.pk,
        contractor.pk,
    }
    assert list(flagged_duplicates()) == [check]
    assert list(failed_checks()) == [check]


def test_a_different_photo_of_the_same_kind_is_not_a_duplicate(
    task, earlier_task, contractor, django_capture_on_commit_callbacks
):
    proof = submit_proof(task, contractor, [jpeg(tiles(2)), jpeg(tiles(3))], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.PASS
    assert [f["duplicate_of"] for f in check.local_findings["photos"]] == [None, None]
    assert check.has_duplicate is False
    assert list(flagged_duplicates()) == []


def test_the_customers_own_before_photo_sent_back_as_proof_goes_to_review(
    customer, contractor, django_capture_on_commit_callbacks
):
    task = task_in_progress(customer, contractor, before=[jpeg(WALL)])

    proof = submit_proof(task, contractor, [resized_copy(WALL, scale=0.7, quality=70)], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    (finding,) = check.local_findings["photos"]
    assert finding["problems"] == ["duplicate_same_task"]
    assert finding["duplicate_of"]["task_public_id"] == str(task.public_id)
    assert finding["duplicate_of"]["kind"] == "problem"
    assert list(flagged_duplicates()) == [check]
    assert list(checks_needing_review()) == [check]
    assert not Notification.objects.filter(title__contains="didn't pass").exists()


def test_photos_within_one_proof_are_not_duplicates_of_each_other(task, contractor, django_capture_on_commit_callbacks):
    photo = jpeg(tiles(70))

    proof = submit_proof(task, contractor, [photo, photo], capture=django_capture_on_commit_callbacks)

    assert check_of(proof).status == PhotoCheck.Status.PASS


# --- EXIF time and place --------------------------------------------------------------------


def test_exif_time_long_before_the_booking_goes_to_review(task, contractor, django_capture_on_commit_callbacks):
    old = with_exif(tiles(80), taken=dt.datetime(2019, 6, 1, 12, 0), place=(SF_LAT, SF_LON))

    proof = submit_proof(task, contractor, [old], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    (finding,) = check.local_findings["photos"]
    assert finding["problems"] == ["exif_time_outside_window"]
    assert finding["exif_time"]["taken_at"] == "2019-06-01T12:00:00+00:00"
    assert finding["exif_time"]["ok"] is False
    assert finding["exif_place"]["ok"] is True


def test_exif_place_far_from_the_task_goes_to_review(task, contractor, django_capture_on_commit_callbacks):
    brooklyn = with_exif(tiles(81), taken=timezone.now().replace(tzinfo=None), place=(40.6782, -73.9442))

    proof = submit_proof(task, contractor, [brooklyn], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    (finding,) = check.local_findings["photos"]
    assert finding["problems"] == ["exif_place_far"]
    assert 4100 < finding["exif_place"]["distance_km"] < 4200
    assert finding["exif_place"]["max_km"] == 5
    assert finding["exif_time"]["ok"] is True


def test_exif_taken_today_at_the_address_passes(task, contractor, django_capture_on_commit_callbacks):
    here_now = with_exif(tiles(82), taken=timezone.now().replace(tzinfo=None), place=(SF_LAT + 0.002, SF_LON))

    proof = submit_proof(task, contractor, [here_now], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.PASS
    (finding,) = check.local_findings["photos"]
    assert finding["exif_place"]["distance_km"] == pytest.approx(0.22, abs=0.01)
    assert finding["exif_time"]["ok"] is True


# --- Unusable images ------------------------------------------------------------------------------


def test_a_blank_frame_goes_to_review_and_is_not_matched(task, contractor, django_capture_on_commit_callbacks):
    from PIL import Image

    blank = jpeg(Image.new("RGB", (640, 480), (40, 40, 40)))

    proof = submit_proof(task, contractor, [blank], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    (finding,) = check.local_findings["photos"]
    assert finding["problems"] == ["blank_image"]
    assert "duplicate_of" not in finding


def test_a_tiny_photo_goes_to_review(task, contractor, django_capture_on_commit_callbacks):
    tiny = jpeg(tiles(90, size=(160, 120), tile=20))

    proof = submit_proof(task, contractor, [tiny], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.local_findings["photos"][0]["problems"] == ["too_small"]
    assert (check.local_findings["photos"][0]["width"], check.local_findings["photos"][0]["height"]) == (160, 120)


def test_a_stored_file_that_is_not_an_image_goes_to_review(task, contractor, django_capture_on_commit_callbacks):
    proof = submit_proof(task, contractor, [jpeg(tiles(91))], capture=_no_run)
    photo = proof.photos.get()
    with open(photo.image.path, "wb") as handle:  # the storage got corrupted
        handle.write(b"not a jpeg any more")

    outcome = photo_check_run(proof_id=proof.pk)

    assert outcome.check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert outcome.check.local_findings["photos"][0]["valid"] is False
    assert outcome.check.local_findings["photos"][0]["problems"] == ["invalid_image"]


# --- Offline, idempotent, the Celery task ---------------------------------------------------------------


def test_offline_runs_local_checks_only_and_stores_the_verdict(settings, task, contractor, django_capture_on_commit_callbacks):
    assert settings.OPENAI_API_KEY == ""

    proof = submit_proof(task, contractor, [jpeg(tiles(100))], capture=django_capture_on_commit_callbacks)

    check = check_of(proof)
    assert check.status == PhotoCheck.Status.PASS
    assert check.summary_for_customer == "These photos passed our basic checks. The AI check is off."
    assert (check.ai_model, check.attempts, check.ai_prompt_tokens, check.ai_verdict) == ("", 0, 0, None)
    assert check.local_findings["photos"][0]["valid"] is True
    assert check.decided_at is not None


def test_running_again_leaves_a_decided_check_alone(task, contractor, django_capture_on_commit_callbacks):
    proof = submit_proof(task, contractor, [jpeg(tiles(101))], capture=django_capture_on_commit_callbacks)
    before = PhotoCheck.objects.filter(proof=proof).values().get()

    assert verify_proof.delay(proof.pk).get() == "pass"

    assert PhotoCheck.objects.filter(proof=proof).values().get() == before
    assert PhotoCheck.objects.count() == 1


def test_a_proof_that_is_gone_is_skipped():
    assert verify_proof.delay(987654).get() is None
    assert PhotoCheck.objects.count() == 0


def test_photos_stored_before_hashes_existed_get_one_and_are_matched_later(
    customer, contractor, django_capture_on_commit_callbacks
):
    first = task_in_progress(customer, contractor)
    proof = submit_proof(first, contractor, [jpeg(WALL)], capture=_no_run)
    TaskPhoto.objects.filter(proof=proof).update(phash="", phash_band0=None, phash_band1=None, phash_band2=None, phash_band3=None)

    photo_check_run(proof_id=proof.pk)  # hashes it on the way

    stored = TaskPhoto.objects.get(proof=proof)
    assert stored.phash == phash.phash_bytes(stored.image.open("rb").read())
    second = task_in_progress(customer, contractor)
    again = submit_proof(second, contractor, [resized_copy(WALL)], capture=django_capture_on_commit_callbacks)
    assert check_of(again).local_findings["photos"][0]["duplicate_of"]["task_public_id"] == str(first.public_id)


class _NoRun:
    """Stands in for django_capture_on_commit_callbacks when the test runs the check itself."""

    def __call__(self, execute=False):
        import contextlib

        return contextlib.nullcontext()


_no_run = _NoRun()
