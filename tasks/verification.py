"""Verification of proof-of-work photos: local checks, the AI check, a decision,
and staff's review of it.

Flow: ``task_submit_proof`` queues ``tasks.verify_proof`` after commit
(``queue_photo_check``); the Celery task calls ``photo_check_run``, which

1. runs the local checks on every proof photo, always (``local_checks``):
   the stored file is a real image of a usable size; its perceptual hash is
   compared with every earlier photo on the platform (tasks/phash.py explains
   the indexed band lookup and the distance threshold); the EXIF time and
   place read at upload are compared with the job's window and address;
2. asks the AI (tasks/ai.py) when ``OPENAI_API_KEY`` is set, outside any
   transaction (no row lock is held across a network call);
3. decides (``decide``) and stores the verdict, with the model's answer, the
   model name, the tokens and their estimated cost.

Decision rules (never pass on doubt):
- fail: a photo is a copy of a photo from another task, or the AI says with
  at least ``PHOTO_CHECK_FAIL_CONFIDENCE`` that the photos don't match the job;
- needs_review: any other local finding (a copy of this task's own photo, an
  unusable or blank image, EXIF time outside the job's window, EXIF place far
  from the task), an AI verdict that is not a confident yes, or no AI verdict
  after the bounded attempts (timeout, API error, refusal, malformed reply);
- pass: the local checks are clean and the AI says the photos match, show the
  work and show it complete with at least ``PHOTO_CHECK_PASS_CONFIDENCE``.
  Offline (no key) a clean local check passes as "basic checks only", and the
  task page says the AI check is off.

The verdict informs; approving the work stays the customer's decision. Staff
with ``accounts.review_verifications`` settle needs_review and fail verdicts
with ``photo_check_review``, which writes the audit log and tells both sides.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageStat, UnidentifiedImageError

from core.errors import ApplicationError, Conflict, PermissionDenied
from core.geo import distance_km
from messaging import notifications

from . import ai, phash
from .models import PhotoCheck, ProofSubmission, Task, TaskPhoto

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

S = PhotoCheck.Status
REVIEW_PERMISSION = "accounts.review_verifications"
# Shorter side below this: too small to show whether work was done.
MIN_PROOF_SIDE = 200
# Grey-level standard deviation below this: a blank or nearly uniform frame
# (a lens cap, a wall of one colour). Its hash says nothing, so it is not
# matched for duplicates; it goes to review instead.
MIN_DETAIL_STDDEV = 6.0
# EXIF times carry no zone and are stored as if UTC (tasks/photos.py), so a
# real photo can look up to 14 hours off; allow that either side of the window.
EXIF_CLOCK_SLACK = dt.timedelta(hours=14)
# At most this many band-sharing candidates are compared per photo, oldest
# first; with evenly spread hashes that is far more than a million photos give.
MAX_CANDIDATES = 5000
REVIEW_REASON_MAX = 1000

# Problem codes in local_findings, most serious first.
DUPLICATE_OTHER_TASK = "duplicate_other_task"
DUPLICATE_SAME_TASK = "duplicate_same_task"
INVALID_IMAGE = "invalid_image"
TOO_SMALL = "too_small"
BLANK_IMAGE = "blank_image"
EXIF_TIME_OUTSIDE_WINDOW = "exif_time_outside_window"
EXIF_PLACE_FAR = "exif_place_far"
NO_PHOTOS = "no_photos"


# --- Local checks ------------------------------------------------------------


def _read(photo: TaskPhoto) -> bytes | None:
    try:
        with photo.image.open("rb") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def _image_facts(data: bytes | None) -> dict[str, Any]:
    """Whether the bytes are an image, its size, detail and perceptual hash."""
    if not data:
        return {"valid": False}
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            stddev = ImageStat.Stat(image.convert("L")).stddev[0]
            return {
                "valid": True,
                "width": image.width,
                "height": image.height,
                "bytes": len(data),
                "detail": round(stddev, 2),
                "phash": phash.phash_image(image),
            }
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return {"valid": False, "bytes": len(data)}


def duplicate_candidates(photo: TaskPhoto, hash_value: str) -> QuerySet[TaskPhoto]:
    """Earlier photos sharing a band with ``hash_value`` up to one bit: a
    superset of every photo within 7 bits (tasks/phash.py), oldest first.
    Photos of the same proof are left out: two shots of one job may look alike."""
    near = Q()
    for index, band in enumerate(phash.bands(hash_value)):
        near |= Q(**{f"phash_band{index}__in": phash.band_probes(band)})
    candidates = TaskPhoto.objects.filter(near, pk__lt=photo.pk)
    if photo.proof_id is not None:
        candidates = candidates.exclude(proof_id=photo.proof_id)
    return candidates.order_by("pk")


def find_duplicate(photo: TaskPhoto, hash_value: str) -> dict[str, Any] | None:
    """The closest earlier photo (by id) within DUPLICATE_MAX_DISTANCE bits,
    from another task if there is one (that is the graver finding), else from
    this task; photos of the same proof don't count against each other."""
    candidates = duplicate_candidates(photo, hash_value).values_list(
        "pk", "public_id", "phash", "kind", "task_id", "task__public_id"
    )[:MAX_CANDIDATES]
    best: tuple[tuple[bool, int, int], dict[str, Any]] | None = None
    for pk, public_id, other_hash, kind, task_id, task_public_id in candidates:
        bits = phash.distance(hash_value, other_hash)
        if bits > phash.DUPLICATE_MAX_DISTANCE:
            continue
        same_task = task_id == photo.task_id
        rank = (same_task, bits, pk)  # other tasks first, then the closest, then the oldest
        if best is None or rank < best[0]:
            best = (
                rank,
                {
                    "photo_id": pk,
                    "photo_public_id": str(public_id),
                    "kind": kind,
                    "task_id": task_id,
                    "task_public_id": str(task_public_id),
                    "same_task": same_task,
                    "distance": bits,
                },
            )
    return best[1] if best else None


def _exif_window(task: Task, proof: ProofSubmission) -> tuple[dt.datetime, dt.datetime]:
    """When proof photos can have been taken: from the booking to the proof."""
    start = task.assigned_at or task.published_at or task.created_at
    end = proof.submitted_at or timezone.now()
    return start - EXIF_CLOCK_SLACK, end + EXIF_CLOCK_SLACK


def check_photo(photo: TaskPhoto, *, task: Task, proof: ProofSubmission) -> dict[str, Any]:
    """Every local finding about one proof photo (see the module docstring)."""
    facts = _image_facts(_read(photo))
    finding: dict[str, Any] = {"photo_id": photo.pk, "photo_public_id": str(photo.public_id), **facts}
    problems: list[str] = []
    if not facts["valid"]:
        problems.append(INVALID_IMAGE)
    else:
        if min(facts["width"], facts["height"]) < MIN_PROOF_SIDE:
            problems.append(TOO_SMALL)
        if facts["detail"] < MIN_DETAIL_STDDEV:
            problems.append(BLANK_IMAGE)
        else:
            duplicate = find_duplicate(photo, facts["phash"])
            finding["duplicate_of"] = duplicate
            if duplicate:
                problems.append(DUPLICATE_SAME_TASK if duplicate["same_task"] else DUPLICATE_OTHER_TASK)
    if photo.taken_at is not None:
        start, end = _exif_window(task, proof)
        inside = start <= photo.taken_at <= end
        finding["exif_time"] = {
            "taken_at": photo.taken_at.isoformat(),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "ok": inside,
        }
        if not inside:
            problems.append(EXIF_TIME_OUTSIDE_WINDOW)
    if photo.taken_latitude is not None and photo.taken_longitude is not None:
        km = distance_km(photo.taken_latitude, photo.taken_longitude, task.latitude, task.longitude)
        near = km <= settings.PHOTO_CHECK_MAX_DISTANCE_KM
        finding["exif_place"] = {
            "latitude": photo.taken_latitude,
            "longitude": photo.taken_longitude,
            "distance_km": round(km, 2),
            "max_km": settings.PHOTO_CHECK_MAX_DISTANCE_KM,
            "ok": near,
        }
        if not near:
            problems.append(EXIF_PLACE_FAR)
    finding["problems"] = problems
    return finding


def local_checks(proof: ProofSubmission) -> dict[str, Any]:
    """``{"photos": [finding per photo], "problems": [codes, no repeats]}``."""
    task = proof.task
    photos = list(proof.photos.order_by("position", "pk"))
    findings = [check_photo(photo, task=task, proof=proof) for photo in photos]
    problems: list[str] = [] if photos else [NO_PHOTOS]
    for finding in findings:
        for code in finding["problems"]:
            if code not in problems:
                problems.append(code)
    return {"photos": findings, "problems": problems}


# --- Decision ------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    status: str
    summary_for_customer: str


def decide(*, local_problems: list[str], verdict: ai.Verdict | None, ai_enabled: bool, ai_error: str = "") -> Decision:
    """The rules in the module docstring, as one pure function."""
    if DUPLICATE_OTHER_TASK in local_problems:
        return Decision(S.FAIL, _("One of these photos was already used on another job, so it can't prove this one."))
    if verdict is not None and not verdict.matches_task and verdict.confidence >= settings.PHOTO_CHECK_FAIL_CONFIDENCE:
        problems = "; ".join(verdict.problems[:3]) or verdict.summary
        return Decision(S.FAIL, _("These photos don't seem to show the work asked for: %(problems)s") % {"problems": problems})
    closer_look = _("We're taking a closer look at these photos. You can still approve the work or ask for changes.")
    if local_problems:
        return Decision(S.NEEDS_REVIEW, closer_look)
    if not ai_enabled:
        return Decision(S.PASS, _("These photos passed our basic checks. The AI check is off."))
    if verdict is None:
        return Decision(S.NEEDS_REVIEW, closer_look)
    if (
        verdict.matches_task
        and verdict.work_visible
        and verdict.complete
        and verdict.confidence >= settings.PHOTO_CHECK_PASS_CONFIDENCE
    ):
        return Decision(S.PASS, verdict.summary)
    return Decision(S.NEEDS_REVIEW, closer_look)


# --- Running a check --------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    check: PhotoCheck | None
    retry: bool = False


def queue_photo_check(proof: ProofSubmission) -> None:
    """Queue ``tasks.verify_proof`` once the caller's transaction commits. A
    broker that is down is logged, never turned into an error for the
    contractor whose proof is already saved."""
    from .verification_tasks import verify_proof

    proof_id = proof.pk
    transaction.on_commit(lambda: verify_proof.delay(proof_id), robust=True)


def _before_photos(task: Task) -> list[bytes]:
    return [data for p in task.photos.filter(kind=TaskPhoto.Kind.PROBLEM).order_by("position", "pk") if (data := _read(p))]


def _after_photos(proof: ProofSubmission) -> list[bytes]:
    return [data for p in proof.photos.order_by("position", "pk") if (data := _read(p))]


_DEFAULT = object()


def photo_check_run(*, proof_id: int, final_attempt: bool = True, judge: Any = _DEFAULT) -> RunOutcome:
    """Check a proof's photos once and store the verdict.

    Idempotent: a proof that is gone, or whose check is already decided,
    returns at once. ``judge`` defaults to ``ai.photo_judge()`` (None offline).
    When the AI gives no usable verdict and asking again may help, the
    attempt is recorded and ``RunOutcome(retry=True)`` returned unless this is
    ``final_attempt``; otherwise the check is decided (needs review). The AI
    call runs outside any transaction; the writes run in one, with the check
    row locked.
    """
    proof = ProofSubmission.objects.select_related("task").filter(pk=proof_id).first()
    if proof is None:
        return RunOutcome(None)
    try:
        check, _created = PhotoCheck.objects.get_or_create(proof=proof)
    except IntegrityError:  # another worker created it between our get and create
        check = PhotoCheck.objects.get(proof=proof)
    if check.status != S.PENDING:
        return RunOutcome(check)

    findings = local_checks(proof)
    if judge is _DEFAULT:
        judge = ai.photo_judge()
    answer: ai.AIAnswer | None = None
    error: ai.AICheckError | None = None
    # The bound is per check, not per Celery chain: a proof queued twice
    # (a redelivery, a manual re-run) still gets at most this many AI calls.
    attempts_left = settings.PHOTO_CHECK_AI_ATTEMPTS - check.attempts
    if judge is not None and attempts_left <= 0:
        error = ai.AICheckError("No usable AI verdict within the allowed attempts.", retryable=False)
    elif judge is not None:
        task = proof.task
        try:
            answer = judge.judge(
                title=task.title,
                description=task.description,
                note=proof.note,
                before=_before_photos(task),
                after=_after_photos(proof),
            )
        except ai.AICheckError as exc:
            error = exc
            logger.warning("AI photo check of proof %s failed: %s", proof_id, exc)

    with transaction.atomic():
        check = PhotoCheck.objects.select_for_update(no_key=True).get(pk=check.pk)
        if check.status != S.PENDING:
            return RunOutcome(check)
        _store_hashes(findings)
        check.local_findings = findings
        check.has_duplicate = DUPLICATE_OTHER_TASK in findings["problems"] or DUPLICATE_SAME_TASK in findings["problems"]
        if judge is not None and attempts_left > 0:
            _record_attempt(check, answer=answer, error=error)
        if check.attempts >= settings.PHOTO_CHECK_AI_ATTEMPTS:
            final_attempt = True
        if error is not None and error.retryable and not final_attempt:
            check.save()
            return RunOutcome(check, retry=True)
        decision = decide(
            local_problems=findings["problems"],
            verdict=answer.verdict if answer else None,
            ai_enabled=judge is not None,
        )
        check.status = decision.status
        check.summary_for_customer = decision.summary_for_customer[:500]
        check.decided_at = timezone.now()
        check.save()
        if check.status == S.FAIL:
            _notify_failed(check)
    return RunOutcome(check)


def _store_hashes(findings: dict[str, Any]) -> None:
    """Photos stored before hashes existed (or by fixtures) get theirs now, so
    later photos are compared with them too."""
    for finding in findings["photos"]:
        value = finding.get("phash")
        if value:
            fields = {f"phash_band{i}": band for i, band in enumerate(phash.bands(value))}
            TaskPhoto.objects.filter(pk=finding["photo_id"], phash="").update(phash=value, **fields)


def _record_attempt(check: PhotoCheck, *, answer: ai.AIAnswer | None, error: ai.AICheckError | None) -> None:
    source: Any = answer or error
    check.attempts += 1
    check.ai_model = getattr(source, "model", "") or check.ai_model
    prompt, completion = source.prompt_tokens, source.completion_tokens
    check.ai_prompt_tokens += prompt
    check.ai_completion_tokens += completion
    check.ai_cost_cents_estimate = Decimal(check.ai_cost_cents_estimate) + ai.cost_cents(prompt, completion)
    if answer is not None:
        check.ai_verdict = answer.verdict.as_dict()
        check.ai_raw = answer.raw[:20000]
        check.last_error = ""
    else:
        check.ai_raw = (error.raw or "")[:20000]
        check.last_error = str(error)[:500]


def _task_link(task: Task) -> str:
    return reverse("tasks:detail", args=[task.public_id])


def _notify_failed(check: PhotoCheck) -> None:
    task = check.proof.task
    notifications.notify(
        task.customer,
        kind="task_update",
        title=_("The photos for “%(title)s” didn't pass our check") % {"title": task.title},
        body=check.summary_for_customer,
        url=_task_link(task),
        task=task,
        dedupe_key=f"photo_check_failed:{check.pk}",
    )
    notifications.notify(
        check.proof.contractor,
        kind="task_update",
        title=_("Your proof photos for “%(title)s” didn't pass our check") % {"title": task.title},
        body=_("Our team will look at them. Send clear photos of the finished work if you can."),
        url=_task_link(task),
        task=task,
        dedupe_key=f"photo_check_failed:{check.pk}",
    )


# --- Staff review --------------------------------------------------------------------


def _require_reviewer(user: User) -> None:
    if not (user is not None and user.is_active and user.is_staff and user.has_perm(REVIEW_PERMISSION)):
        raise PermissionDenied(_("Only staff who review verifications can decide about photo checks."))


@transaction.atomic
def photo_check_review(check: PhotoCheck, *, by: User, decision: str, reason: str) -> PhotoCheck:
    """Staff settle a check that needs review or failed: ``decision`` is
    "pass" (the photos are fine) or "fail" (they don't prove the work).

    Only active staff with ``accounts.review_verifications``. The check row is
    locked; a check already reviewed, or still running, is a Conflict. Writes
    an append-only audit entry and tells the customer and the contractor.
    """
    _require_reviewer(by)
    reason = (reason or "").strip()
    fields: dict[str, list[str]] = {}
    if decision not in (S.PASS, S.FAIL):
        fields["decision"] = [_("Choose pass or fail.")]
    if not reason:
        fields["reason"] = [_("Say why: the customer and the contractor are told.")]
    elif len(reason) > REVIEW_REASON_MAX:
        fields["reason"] = [_("Use at most 1,000 characters.")]
    if fields:
        raise ApplicationError(_("Check the decision."), code="invalid", fields=fields)

    check = PhotoCheck.objects.select_for_update(no_key=True).select_related("proof__task").get(pk=check.pk)
    if check.reviewed_at is not None:
        raise Conflict(_("This photo check has already been reviewed."), code="already_reviewed")
    if check.status not in (S.NEEDS_REVIEW, S.FAIL):
        raise Conflict(_("Only checks that need review or failed can be reviewed."), code="not_reviewable")
    previous = check.status
    now = timezone.now()
    check.status = decision
    check.reviewed_by = by
    check.reviewed_at = now
    check.review_reason = reason
    check.summary_for_customer = (
        _("Photos checked by our team.") if decision == S.PASS else _("Our team found a problem with these photos: %(reason)s") % {"reason": reason}
    )[:500]
    check.save()

    from accounts.verification import audit_record  # accounts owns the audit log

    audit_record(
        by,
        f"photo_check.{decision}",
        check,
        reason,
        {"from": previous, "to": decision, "proof": check.proof_id, "task": str(check.proof.task.public_id)},
    )
    task = check.proof.task
    if decision == S.PASS:
        title = _("The photos for “%(title)s” were checked by our team") % {"title": task.title}
    else:
        title = _("Our team found a problem with the photos for “%(title)s”") % {"title": task.title}
    for user in (task.customer, check.proof.contractor):
        notifications.notify(
            user,
            kind="task_update",
            title=title,
            body=reason,
            url=_task_link(task),
            task=task,
            dedupe_key=f"photo_check_reviewed:{check.pk}",
        )
    return check


# --- Selectors for the admin dashboard -----------------------------------------------------


def _queue(qs: QuerySet[PhotoCheck]) -> QuerySet[PhotoCheck]:
    return qs.select_related("proof__task", "proof__contractor").order_by("created_at", "pk")


def checks_needing_review() -> QuerySet[PhotoCheck]:
    """Oldest first: verdicts waiting for staff."""
    return _queue(PhotoCheck.objects.filter(status=S.NEEDS_REVIEW, reviewed_at__isnull=True))


def failed_checks() -> QuerySet[PhotoCheck]:
    """Automatic fails staff have not looked at yet."""
    return _queue(PhotoCheck.objects.filter(status=S.FAIL, reviewed_at__isnull=True))


def flagged_duplicates() -> QuerySet[PhotoCheck]:
    """Checks where a photo matched an earlier one, not yet reviewed."""
    return _queue(PhotoCheck.objects.filter(has_duplicate=True, reviewed_at__isnull=True))


def duplicate_matches(check: PhotoCheck) -> list[dict[str, Any]]:
    """For the review screen: each flagged photo with the earlier photo it matched."""
    matches = []
    for finding in check.local_findings.get("photos", []):
        duplicate = finding.get("duplicate_of")
        if duplicate:
            matches.append(
                {
                    "photo": TaskPhoto.objects.filter(pk=finding["photo_id"]).first(),
                    "matched": TaskPhoto.objects.select_related("task").filter(pk=duplicate["photo_id"]).first(),
                    "distance": duplicate["distance"],
                    "same_task": duplicate["same_task"],
                }
            )
    return matches
