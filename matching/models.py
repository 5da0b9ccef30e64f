"""Matching: logged outcomes, trained ranking models, invitations, smart
alerts, learned preferences, time off and calendars.

Written only by ``matching/services.py`` (and the training job). The outcome
log and the alert log are append-only: they are what models train on and what
the evaluation reads.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class MatchEvent(models.Model):
    """Something a contractor did (or had done) about a task: the training signal."""

    class Kind(models.TextChoices):
        SHOWN = "shown", _("Shown in a list")
        VIEWED = "viewed", _("Task page viewed")
        SKIPPED = "skipped", _("Skipped")
        INVITED = "invited", _("Invited by the customer")
        ALERTED = "alerted", _("Alerted")
        OFFERED = "offered", _("Made an offer")
        ACCEPTED = "accepted", _("Hired")
        COMPLETED = "completed", _("Completed")
        WELL_REVIEWED = "well_reviewed", _("Reviewed 4+ stars")

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="match_events")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("Rank in the list, when shown."))
    model_version = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["task", "contractor", "kind"], name="match_event_pair_kind"),
            models.Index(fields=["contractor", "kind", "-created_at"], name="match_event_contractor"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.contractor_id} on {self.task_id}"


class RankingModel(models.Model):
    """One trained, versioned ranking model with what it was trained on and how it scored."""

    version = models.CharField(max_length=40, unique=True)
    algorithm = models.CharField(max_length=80)
    feature_names = models.JSONField(default=list)
    trained_from = models.DateTimeField(null=True, blank=True)
    trained_to = models.DateTimeField(null=True, blank=True)
    training_rows = models.PositiveIntegerField(default=0)
    evaluation = models.JSONField(default=dict, blank=True, help_text=_("top1/top5/ndcg10 and the baselines."))
    blob = models.BinaryField(help_text=_("The fitted estimator (joblib)."))
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_ranking_model"),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.algorithm}{', active' if self.is_active else ''})"


class Invitation(models.Model):
    """A customer asks a contractor to look at their task."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        OFFERED = "offered", _("Offer made")
        DECLINED = "declined", _("Declined")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="invitations")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "contractor"], name="one_invitation_per_pair")]

    def __str__(self) -> str:
        return f"{self.contractor_id} invited to {self.task_id}"


class AlertLog(models.Model):
    """A smart alert sent to a contractor about a new task (append-only)."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="alerts")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channels = models.JSONField(default=list, help_text=_("in_app / email / sms, as the contractor's settings allowed."))
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()
    model_version = models.CharField(max_length=40, blank=True)
    sent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "contractor"], name="one_alert_per_pair")]
        indexes = [models.Index(fields=["contractor", "-sent_at"], name="alert_contractor_recent")]

    def __str__(self) -> str:
        return f"Alert to {self.contractor_id} about {self.task_id}"


class AlertSettings(models.Model):
    """A contractor's limits on smart alerts."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_settings")
    enabled = models.BooleanField(default=True)
    daily_cap = models.PositiveSmallIntegerField(default=5)
    quiet_start = models.TimeField(null=True, blank=True, help_text=_("Local time; no alerts from here..."))
    quiet_end = models.TimeField(null=True, blank=True, help_text=_("...until here."))
    time_zone = models.CharField(max_length=64, default="America/Los_Angeles")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(daily_cap__lte=50), name="alert_daily_cap_sane"),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="alert_quiet_hours_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"Alerts for {self.user_id}: cap {self.daily_cap}"


class Preference(models.Model):
    """A learned lean of one user towards another user (customer -> contractor)
    or towards a category (contractor -> trade), updated as they act."""

    class Kind(models.TextChoices):
        CONTRACTOR = "contractor", _("Prefers this contractor")
        CATEGORY = "category", _("Prefers this trade")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    contractor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    category = models.ForeignKey("tasks.Category", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    weight = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="contractor", contractor__isnull=False, category__isnull=True)
                | Q(kind="category", category__isnull=False, contractor__isnull=True),
                name="preference_target_matches_kind",
            ),
            models.UniqueConstraint(fields=["user", "contractor"], condition=Q(kind="contractor"), name="pref_contractor_unique"),
            models.UniqueConstraint(fields=["user", "category"], condition=Q(kind="category"), name="pref_category_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.contractor_id or self.category_id}: {self.weight:+.2f}"


class BusyBlock(models.Model):
    """Time a contractor can't work: time off they entered, or busy times imported from a calendar."""

    class Source(models.TextChoices):
        TIME_OFF = "time_off", _("Time off")
        IMPORTED = "imported", _("Imported calendar")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="busy_blocks")
    source = models.CharField(max_length=10, choices=Source.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    summary = models.CharField(max_length=200, blank=True)
    import_uid = models.CharField(max_length=255, blank=True, help_text=_("UID of the imported event."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["user", "starts_at"], name="busy_user_start")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="busy_block_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} busy {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"


def new_feed_secret() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """The secret address of a contractor's private ICS feed of their jobs."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    secret = models.CharField(max_length=64, unique=True, default=new_feed_secret)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Calendar feed for {self.user_id}"
