"""The marketplace's core loop: a task, its photos, offers, check-in, proof and history.

Invariants live in the database (check and unique constraints) as well as in
``tasks/services.py``, which is the only place that writes these models. The
allowed status changes are in ``tasks/state.py``.
"""

from __future__ import annotations

import math
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

MAX_BUDGET_CENTS = 10_000_000  # $100,000.00: anything above is a typo or abuse
MAX_HOURS = 200
MAX_PHOTOS = 10
MAX_PHOTO_BYTES = 10 * 1024 * 1024
APPROX_GRID_DEG = 0.01  # ~1.1 km of latitude: what strangers see of the location


class Category(models.Model):
    """A trade: what a task needs and what a contractor does."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


def approximate(lat: float, lon: float) -> tuple[float, float]:
    """The centre of the ~1 km grid cell holding the point: stable (the same
    task always shows the same spot) and reveals nothing finer than the cell."""
    return (
        round(math.floor(lat / APPROX_GRID_DEG) * APPROX_GRID_DEG + APPROX_GRID_DEG / 2, 5),
        round(math.floor(lon / APPROX_GRID_DEG) * APPROX_GRID_DEG + APPROX_GRID_DEG / 2, 5),
    )


class Task(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        ASSIGNED = "assigned", _("Assigned")
        IN_PROGRESS = "in_progress", _("In progress")
        SUBMITTED = "submitted", _("Submitted")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        DISPUTED = "disputed", _("Disputed")

    class BudgetType(models.TextChoices):
        FIXED = "fixed", _("Fixed price")
        HOURLY = "hourly", _("Hourly estimate")

    class ScheduleType(models.TextChoices):
        WINDOW = "window", _("In a time window")
        FLEXIBLE = "flexible", _("Flexible, by a deadline")

    class Urgency(models.TextChoices):
        FLEXIBLE = "flexible", _("Flexible")
        SOON = "soon", _("Within a few days")
        URGENT = "urgent", _("Urgent (today)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks_posted", verbose_name=_("customer")
    )
    contractor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tasks_assigned",
        verbose_name=_("assigned contractor"),
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("trade"))
    title = models.CharField(_("title"), max_length=120)
    description = models.TextField(_("description"), max_length=5000)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)

    # Where: the exact place goes to the assigned contractor alone; everyone
    # else sees the approximate point (a ~1 km cell centre) and the city.
    address = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("ZIP code"), max_length=10)
    city = models.CharField(_("city"), max_length=80, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    latitude = models.FloatField(_("latitude"))
    longitude = models.FloatField(_("longitude"))
    approx_latitude = models.FloatField(_("approximate latitude"))
    approx_longitude = models.FloatField(_("approximate longitude"))

    # How much: a fixed total, or an hourly rate times an estimate of hours.
    budget_type = models.CharField(_("budget type"), max_length=8, choices=BudgetType.choices, default=BudgetType.FIXED)
    budget_cents = models.BigIntegerField(_("budget (cents)"), help_text=_("Fixed total, or the hourly rate."))
    estimated_hours = models.PositiveSmallIntegerField(_("estimated hours"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="USD")

    # When: a window, or any time before a deadline.
    schedule_type = models.CharField(
        _("schedule"), max_length=8, choices=ScheduleType.choices, default=ScheduleType.FLEXIBLE
    )
    window_start = models.DateTimeField(_("window starts"), null=True, blank=True)
    window_end = models.DateTimeField(_("window ends"), null=True, blank=True)
    deadline = models.DateTimeField(_("done by"), null=True, blank=True)
    urgency = models.CharField(_("urgency"), max_length=8, choices=Urgency.choices, default=Urgency.FLEXIBLE)
    instant_book = models.BooleanField(
        _("instant booking"), default=False, help_text=_("Contractors may book it at the posted price.")
    )

    # Lifecycle
    agreed_price_cents = models.BigIntegerField(_("agreed price (cents)"), null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(_("cancellation reason"), max_length=500, blank=True)
    changes_requested_count = models.PositiveSmallIntegerField(default=0)
    # Deadlines swept by the beat job (tasks.sweep_deadlines), never by countdowns.
    auto_approve_at = models.DateTimeField(null=True, blank=True)
    reminder_24h_sent_at = models.DateTimeField(null=True, blank=True)
    reminder_48h_sent_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        indexes = [
            models.Index(fields=["customer", "status"], name="task_customer_status"),
            models.Index(fields=["contractor", "status"], name="task_contractor_status"),
            models.Index(fields=["status", "auto_approve_at"], name="task_status_autoapprove"),
            models.Index(fields=["status", "-published_at"], name="task_status_published"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_cents__gt=0, budget_cents__lte=MAX_BUDGET_CENTS), name="task_budget_in_range"
            ),
            models.CheckConstraint(
                condition=Q(budget_type="fixed", estimated_hours__isnull=True)
                | Q(budget_type="hourly", estimated_hours__gte=1, estimated_hours__lte=MAX_HOURS),
                name="task_hours_match_budget_type",
            ),
            models.CheckConstraint(
                condition=Q(schedule_type="window", window_start__isnull=False, window_end__gt=models.F("window_start"))
                | Q(schedule_type="flexible", deadline__isnull=False),
                name="task_schedule_complete",
            ),
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180),
                name="task_coordinates_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["assigned", "in_progress", "submitted", "completed"])
                | Q(contractor__isnull=False, agreed_price_cents__isnull=False),
                name="task_assigned_has_contractor",
            ),
            models.CheckConstraint(
                condition=Q(agreed_price_cents__isnull=True)
                | Q(agreed_price_cents__gt=0, agreed_price_cents__lte=MAX_BUDGET_CENTS),
                name="task_agreed_price_in_range",
            ),
            models.CheckConstraint(condition=~Q(customer=models.F("contractor")), name="task_not_self_assigned"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def budget_total_cents(self) -> int:
        """What the customer expects to pay at most (hourly: rate x hours)."""
        if self.budget_type == self.BudgetType.HOURLY:
            return self.budget_cents * (self.estimated_hours or 1)
        return self.budget_cents

    @property
    def scheduled_for(self):
        return self.window_start if self.schedule_type == self.ScheduleType.WINDOW else self.deadline

    def set_location(self, lat: float, lon: float) -> None:
        self.latitude, self.longitude = lat, lon
        self.approx_latitude, self.approx_longitude = approximate(lat, lon)

    def approx_distance_km(self, lat: float, lon: float) -> float:
        """Kilometres from (lat, lon) to the task's approximate point: the
        distance anyone but its customer and contractor may be shown (the
        exact one would narrow the address below the ~1 km cell)."""
        from core.geo import distance_km

        return distance_km(lat, lon, self.approx_latitude, self.approx_longitude)


def task_photo_path(instance: TaskPhoto, filename: str) -> str:
    # Our name, not the uploader's. Not under a public URL: served by a view
    # that checks who is asking (tasks.views.photo).
    return f"task-photos/{instance.task.public_id}/{uuid.uuid4().hex}.jpg"


def task_thumb_path(instance: TaskPhoto, filename: str) -> str:
    return f"task-photos/{instance.task.public_id}/thumbs/{uuid.uuid4().hex}.jpg"


class ProofSubmission(models.Model):
    """The contractor's claim that the work is done: a note and 1-10 photos."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Waiting for the customer")
        APPROVED = "approved", _("Approved")
        AUTO_APPROVED = "auto_approved", _("Approved automatically")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="proofs")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(_("note"), max_length=2000, blank=True)
    decision = models.CharField(max_length=20, choices=Decision.choices, default=Decision.PENDING)
    decision_reason = models.CharField(max_length=500, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task"], condition=Q(decision="pending"), name="one_pending_proof_per_task"
            ),
        ]

    def __str__(self) -> str:
        return f"Proof for {self.task} ({self.get_decision_display()})"


class TaskPhoto(models.Model):
    class Kind(models.TextChoices):
        PROBLEM = "problem", _("Photo of the job")
        PROOF = "proof", _("Proof of work")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="photos")
    proof = models.ForeignKey(ProofSubmission, on_delete=models.CASCADE, null=True, blank=True, related_name="photos")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    image = models.FileField(upload_to=task_photo_path, max_length=200)
    thumbnail = models.FileField(upload_to=task_thumb_path, max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64, blank=True, help_text=_("SHA-256 of the re-encoded image."))
    # Perceptual hash (tasks/phash.py) and its four 16-bit bands, indexed so a
    # near copy anywhere on the platform is found without scanning every photo.
    phash = models.CharField(_("perceptual hash"), max_length=16, blank=True, db_index=True)
    phash_band0 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_band1 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_band2 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_band3 = models.IntegerField(null=True, blank=True, db_index=True)
    # Read from EXIF before it is stripped: when and where the camera says it was taken.
    taken_at = models.DateTimeField(null=True, blank=True)
    taken_latitude = models.FloatField(null=True, blank=True)
    taken_longitude = models.FloatField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="problem", proof__isnull=True) | Q(kind="proof", proof__isnull=False),
                name="taskphoto_proof_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.task}"


class Offer(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="offers")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="offers")
    price_cents = models.BigIntegerField(_("price (cents)"))
    currency = models.CharField(max_length=3, default="USD")
    message = models.TextField(_("message"), max_length=2000, blank=True)
    proposed_start = models.DateTimeField(_("proposed start"), null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    is_instant = models.BooleanField(default=False, help_text=_("Booked instantly at the posted price."))
    decline_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "contractor"], condition=Q(status="pending"), name="one_pending_offer_per_contractor"
            ),
            models.UniqueConstraint(fields=["task"], condition=Q(status="accepted"), name="one_accepted_offer_per_task"),
            models.CheckConstraint(
                condition=Q(price_cents__gt=0, price_cents__lte=MAX_BUDGET_CENTS), name="offer_price_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contractor} on {self.task}: {self.price_cents / 100:.2f} {self.currency}"


class CheckIn(models.Model):
    """The contractor says they have arrived; the browser's position if it gave one."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="check_ins")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    distance_m = models.FloatField(null=True, blank=True, help_text=_("From the task's address, when known."))

    class Meta:
        ordering = ["at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180),
                name="checkin_coordinates_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Check-in on {self.task} at {self.at:%Y-%m-%d %H:%M}"


class TaskEvent(models.Model):
    """Append-only history of a task: shown as its timeline, raw material for analytics."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        PUBLISHED = "published", _("Posted")
        UPDATED = "updated", _("Edited")
        PHOTO_ADDED = "photo_added", _("Photo added")
        PHOTO_REMOVED = "photo_removed", _("Photo removed")
        OFFER_MADE = "offer_made", _("Offer made")
        OFFER_WITHDRAWN = "offer_withdrawn", _("Offer withdrawn")
        OFFER_DECLINED = "offer_declined", _("Offer declined")
        OFFER_ACCEPTED = "offer_accepted", _("Offer accepted")
        INSTANT_BOOKED = "instant_booked", _("Booked instantly")
        CHECKED_IN = "checked_in", _("Contractor checked in")
        PROOF_SUBMITTED = "proof_submitted", _("Proof of work submitted")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        APPROVED = "approved", _("Approved")
        AUTO_APPROVED = "auto_approved", _("Approved automatically")
        REMINDER_SENT = "reminder_sent", _("Reminder sent")
        CANCELLED = "cancelled", _("Cancelled")
        DISPUTED = "disputed", _("Disputed")

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.task}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Task events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Task events are append-only.")


class PhotoCheck(models.Model):
    """The automatic check of one proof of work's photos, and staff's review of it.

    Written only by ``tasks.verification`` (the Celery task ``tasks.verify_proof``
    and ``photo_check_review``). The customer sees the verdict on the task page;
    approving the work stays the customer's decision.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Checking")
        PASS = "pass", _("Photos checked")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        FAIL = "fail", _("Failed")

    proof = models.OneToOneField(ProofSubmission, on_delete=models.CASCADE, related_name="photo_check")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    # Per photo: valid, size, phash, duplicate_of (photo and task), EXIF time
    # against the job's window, EXIF place against the task's.
    local_findings = models.JSONField(_("local checks"), default=dict, blank=True)
    ai_verdict = models.JSONField(_("AI verdict"), null=True, blank=True, help_text=_("Validated against the schema."))
    ai_raw = models.TextField(_("AI reply as received"), blank=True, max_length=20000)
    ai_model = models.CharField(_("AI model"), max_length=100, blank=True)
    ai_prompt_tokens = models.PositiveIntegerField(default=0)
    ai_completion_tokens = models.PositiveIntegerField(default=0)
    # Hundredths of a cent are real here (one check costs about a cent): an
    # estimate of what the provider bills, never money we move.
    ai_cost_cents_estimate = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    has_duplicate = models.BooleanField(default=False)
    summary_for_customer = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("photo check")
        verbose_name_plural = _("photo checks")
        indexes = [models.Index(fields=["status", "created_at"], name="photocheck_status_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reviewed_at__isnull=True, reviewed_by__isnull=True)
                | (Q(reviewed_at__isnull=False, reviewed_by__isnull=False, status__in=["pass", "fail"]) & ~Q(review_reason="")),
                name="photocheck_review_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"Photo check for {self.proof.task} ({self.get_status_display()})"
