"""Reputation: double-blind reviews, replies and reports, trust scores with
their history, and achievements.

Invariants live in the database (check and unique constraints) as well as in
``reputation/services.py``, the only place that writes these models. Disputes
(another part of this app) are appended below by their own migration.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

REVIEW_WINDOW_DAYS = 14
REVIEW_TEXT_MAX = 2000
REPLY_TEXT_MAX = 2000
REPORT_NOTE_MAX = 1000

# Sub-ratings each role gives: the customer rates the contractor's work, the
# contractor rates the customer as a client. ``communication`` is shared.
CUSTOMER_SUB_RATINGS = ("quality", "punctuality", "communication", "value")
CONTRACTOR_SUB_RATINGS = ("clarity", "communication", "payment_promptness")
ALL_SUB_RATINGS = ("quality", "punctuality", "communication", "value", "clarity", "payment_promptness")


def _one_to_five(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 1, f"{field}__lte": 5})


class Review(models.Model):
    """One side's review of the other for one task.

    Hidden from everyone but its author until ``published_at`` is set: when
    both sides have reviewed, or the 14-day window after completion closes.
    """

    class Role(models.TextChoices):
        CUSTOMER_TO_CONTRACTOR = "customer_to_contractor", _("Customer reviews contractor")
        CONTRACTOR_TO_CUSTOMER = "contractor_to_customer", _("Contractor reviews customer")

    task = models.ForeignKey("tasks.Task", on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_written")
    reviewee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_received")
    role = models.CharField(_("role"), max_length=24, choices=Role.choices)
    stars = models.PositiveSmallIntegerField(_("overall"))
    # Customer -> contractor
    quality = models.PositiveSmallIntegerField(_("quality of work"), null=True, blank=True)
    punctuality = models.PositiveSmallIntegerField(_("punctuality"), null=True, blank=True)
    value = models.PositiveSmallIntegerField(_("value for money"), null=True, blank=True)
    # Both
    communication = models.PositiveSmallIntegerField(_("communication"), null=True, blank=True)
    # Contractor -> customer
    clarity = models.PositiveSmallIntegerField(_("clarity of the job"), null=True, blank=True)
    payment_promptness = models.PositiveSmallIntegerField(_("payment promptness"), null=True, blank=True)
    text = models.CharField(_("review"), max_length=REVIEW_TEXT_MAX, blank=True)

    submitted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Completion + 14 days: the beat job publishes what is still hidden then.
    window_closes_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    hidden_reason = models.CharField(_("reason for hiding"), max_length=500, blank=True)

    class Meta:
        ordering = ["-published_at", "-submitted_at", "-pk"]
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        indexes = [
            models.Index(fields=["reviewee", "role", "published_at"], name="review_reviewee_published"),
            models.Index(fields=["published_at", "window_closes_at"], name="review_publish_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["task", "reviewer"], name="review_one_per_reviewer_per_task"),
            models.UniqueConstraint(fields=["task", "role"], name="review_one_per_side_per_task"),
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="review_stars_1_5"),
            *[
                models.CheckConstraint(condition=_one_to_five(f), name=f"review_{f}_1_5")
                for f in ALL_SUB_RATINGS
            ],
            models.CheckConstraint(
                condition=Q(role="customer_to_contractor", clarity__isnull=True, payment_promptness__isnull=True)
                | Q(role="contractor_to_customer", quality__isnull=True, punctuality__isnull=True, value__isnull=True),
                name="review_sub_ratings_match_role",
            ),
            models.CheckConstraint(condition=~Q(reviewer=models.F("reviewee")), name="review_not_self"),
            models.CheckConstraint(
                condition=Q(hidden_at__isnull=True, hidden_by__isnull=True)
                | (Q(hidden_at__isnull=False) & ~Q(hidden_reason="")),
                name="review_hidden_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} → {self.reviewee}: {self.stars}★ ({self.task_id})"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    @property
    def sub_rating_fields(self) -> tuple[str, ...]:
        return CUSTOMER_SUB_RATINGS if self.role == self.Role.CUSTOMER_TO_CONTRACTOR else CONTRACTOR_SUB_RATINGS

    def sub_ratings(self) -> list[tuple[str, str, int]]:
        """(field, label, value) for the sub-ratings this review gave."""
        out = []
        for name in self.sub_rating_fields:
            value = getattr(self, name)
            if value is not None:
                out.append((name, str(self._meta.get_field(name).verbose_name), value))
        return out


class ReviewReply(models.Model):
    """The reviewed side's one public answer to a published review."""

    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="reply")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.CharField(_("reply"), max_length=REPLY_TEXT_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("review reply")
        verbose_name_plural = _("review replies")
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="reviewreply_text_not_empty")]

    def __str__(self) -> str:
        return f"Reply by {self.author} to review {self.review_id}"


class ReviewReport(models.Model):
    """Someone asks staff to look at a review; staff hide it or dismiss the report."""

    class Reason(models.TextChoices):
        ABUSE = "abuse", _("Abusive or hateful")
        PERSONAL_DATA = "personal_data", _("Shares personal data")
        OTHER = "other", _("Something else")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        HIDDEN = "hidden", _("Review hidden")
        DISMISSED = "dismissed", _("Dismissed")

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    note = models.CharField(_("details"), max_length=REPORT_NOTE_MAX, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("review report")
        verbose_name_plural = _("review reports")
        indexes = [models.Index(fields=["status", "created_at"], name="reviewreport_queue")]
        constraints = [
            models.UniqueConstraint(fields=["review", "reporter"], name="reviewreport_once_per_reporter"),
            models.CheckConstraint(
                condition=Q(status="open", decided_at__isnull=True, decided_by__isnull=True)
                | (Q(status__in=["hidden", "dismissed"], decided_at__isnull=False) & ~Q(decision_reason="")),
                name="reviewreport_decision_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"Report on review {self.review_id} ({self.get_status_display()})"


class TrustScore(models.Model):
    """The latest computed trust score of one user.

    ``score``/``factors`` rate the user as a contractor; ``customer_score`` and
    ``customer_factors`` are the simpler customer score. ``factors`` maps each
    factor to ``{value, weight, contribution, hint}`` (see reputation/scoring.py).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trust_score")
    score = models.PositiveSmallIntegerField(default=0)
    factors = models.JSONField(default=dict, blank=True)
    customer_score = models.PositiveSmallIntegerField(default=0)
    customer_factors = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("trust score")
        verbose_name_plural = _("trust scores")
        indexes = [models.Index(fields=["-score"], name="trustscore_score")]
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=100), name="trustscore_score_0_100"),
            models.CheckConstraint(
                condition=Q(customer_score__gte=0, customer_score__lte=100), name="trustscore_customer_score_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.score}"


class TrustScoreHistory(models.Model):
    """Append-only: every computed score, with the factors behind it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trust_history")
    score = models.PositiveSmallIntegerField()
    factors = models.JSONField(default=dict, blank=True)
    customer_score = models.PositiveSmallIntegerField()
    customer_factors = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=64, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-computed_at", "-pk"]
        verbose_name = _("trust score history")
        verbose_name_plural = _("trust score history")
        indexes = [models.Index(fields=["user", "-computed_at"], name="trusthistory_user_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0, score__lte=100, customer_score__gte=0, customer_score__lte=100),
                name="trusthistory_scores_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.score} at {self.computed_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("Trust score history is append-only.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)


class UserAchievement(models.Model):
    """A milestone a user reached; the definitions are code (reputation/achievements.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="achievements")
    code = models.CharField(max_length=32)
    earned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["earned_at", "pk"]
        verbose_name = _("achievement")
        verbose_name_plural = _("achievements")
        constraints = [models.UniqueConstraint(fields=["user", "code"], name="userachievement_once")]

    def __str__(self) -> str:
        return f"{self.user}: {self.code}"


# Disputes (issue 7) live in their own module, written alongside the models above.
from .dispute_models import Dispute, DisputeEvent, DisputeEvidence, DisputeProposal  # noqa: E402, F401
