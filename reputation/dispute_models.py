"""Structured disputes: a dispute on a task, its evidence, settlement proposals
and an append-only timeline.

Imported by ``reputation/models.py`` (one line at its end) so the models
belong to the ``reputation`` app while the reviews/trust models and these
live in separate files (two helpers wrote them at the same time).

Writes go through ``reputation/disputes.py`` only. Deadlines are columns
(``response_due_at``, ``mediation_due_at``) swept by the beat job
``reputation.sweep_disputes``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

MAX_TEXT_CHARS = 4000
MIN_TEXT_CHARS = 10
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_EVIDENCE_PHOTOS = 10


class Dispute(models.Model):
    class Reason(models.TextChoices):
        NOT_DONE = "not_done", _("The work was not done")
        POOR_QUALITY = "poor_quality", _("The work is poor or unfinished")
        NOT_AS_AGREED = "not_as_agreed", _("It is not what was agreed")
        DAMAGE = "damage", _("Something was damaged")
        NOT_APPROVED = "not_approved", _("The work is done but not approved")
        OTHER = "other", _("Something else")

    class Status(models.TextChoices):
        AWAITING_RESPONSE = "awaiting_response", _("Waiting for a response")
        NEGOTIATING = "negotiating", _("Negotiating")
        MEDIATION = "mediation", _("In mediation")
        RESOLVED = "resolved", _("Resolved")

    class Outcome(models.TextChoices):
        RELEASE = "release", _("Paid to the contractor")
        REFUND = "refund", _("Refunded to the customer")
        SPLIT = "split", _("Split")

    OPEN_STATUSES = ("awaiting_response", "negotiating", "mediation")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey("tasks.Task", on_delete=models.PROTECT, related_name="disputes")
    escrow = models.ForeignKey(
        "payments.Escrow", on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    against = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    text = models.TextField(_("what happened"), max_length=MAX_TEXT_CHARS)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_RESPONSE)
    # The task's status when the dispute was opened: "submitted" (the money is
    # still held) or "completed" (released, payout hold running).
    task_status_at_open = models.CharField(max_length=16)
    currency = models.CharField(max_length=3, default="USD")

    opened_at = models.DateTimeField(auto_now_add=True)
    response_due_at = models.DateTimeField(help_text=_("The other side answers by then, or mediation starts."))
    mediation_due_at = models.DateTimeField(help_text=_("Not settled by then: an admin mediates."))
    responded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    escalation_reason = models.CharField(max_length=20, blank=True)  # requested | no_response | timeout

    # The decision (by the parties through a proposal, or by an admin).
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    contractor_cents = models.BigIntegerField(
        null=True, blank=True, help_text=_("Of the price, paid to the contractor (gross, before commission).")
    )
    refund_cents = models.BigIntegerField(null=True, blank=True, help_text=_("Returned to the customer."))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The admin who decided; empty when the parties settled."),
    )
    decision_reason = models.TextField(max_length=MAX_TEXT_CHARS, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    settled_by_proposal = models.ForeignKey(
        "DisputeProposal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at"]
        permissions = [("decide_dispute", "Can decide disputes in mediation")]
        indexes = [
            models.Index(fields=["status", "response_due_at"], name="dispute_status_response_due"),
            models.Index(fields=["status", "mediation_due_at"], name="dispute_status_mediation_due"),
            models.Index(fields=["against", "status"], name="dispute_against_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=["awaiting_response", "negotiating", "mediation"]),
                name="one_open_dispute_per_task",
            ),
            models.CheckConstraint(condition=~Q(opened_by=models.F("against")), name="dispute_two_parties"),
            models.CheckConstraint(
                condition=(Q(status="resolved") & ~Q(outcome="") & Q(decided_at__isnull=False))
                | (~Q(status="resolved") & Q(outcome="") & Q(decided_at__isnull=True)),
                name="dispute_resolved_has_outcome",
            ),
            models.CheckConstraint(
                condition=Q(contractor_cents__isnull=True) | Q(contractor_cents__gte=0),
                name="dispute_contractor_cents_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(refund_cents__isnull=True) | Q(refund_cents__gte=0),
                name="dispute_refund_cents_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute on {self.task} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def party_ids(self) -> tuple[int, int]:
        return (self.opened_by_id, self.against_id)


def evidence_photo_path(instance: DisputeEvidence, filename: str) -> str:
    # Our name, never the uploader's; not under a public URL (served by a view
    # that checks who is asking: reputation.dispute_views.evidence_photo).
    return f"disputes/{instance.dispute.public_id}/{uuid.uuid4().hex}.jpg"


class DisputeEvidence(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="evidence")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=MAX_TEXT_CHARS, blank=True)
    photo = models.FileField(upload_to=evidence_photo_path, max_length=200, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text="") | ~Q(photo=""), name="evidence_has_text_or_photo"),
        ]

    def __str__(self) -> str:
        return f"Evidence on {self.dispute_id} by {self.by_id}"


class DisputeProposal(models.Model):
    """A settlement one side offers the other. One open proposal per dispute:
    a counter-proposal supersedes the one on the table."""

    class Kind(models.TextChoices):
        FULL_REFUND = "full_refund", _("Full refund to the customer")
        PARTIAL_REFUND = "partial_refund", _("Partial refund")
        RELEASE = "release", _("Full payment to the contractor")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        SUPERSEDED = "superseded", _("Replaced by a newer proposal")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="proposals")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    percent = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Partial refund: the share of the price refunded, 1-99 %.")
    )
    contractor_cents = models.BigIntegerField(help_text=_("What the contractor would get of the price (gross)."))
    refund_cents = models.BigIntegerField(help_text=_("What the customer would get back."))
    message = models.TextField(max_length=MAX_TEXT_CHARS, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dispute"], condition=Q(status="open"), name="one_open_proposal"),
            models.CheckConstraint(
                condition=Q(kind="partial_refund", percent__gte=1, percent__lte=99)
                | (~Q(kind="partial_refund") & Q(percent__isnull=True)),
                name="proposal_percent_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(contractor_cents__gte=0, refund_cents__gte=0), name="proposal_cents_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.dispute_id} ({self.status})"


class DisputeEvent(models.Model):
    """Append-only timeline of a dispute: shown to both sides and to admins."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Dispute opened")
        EVIDENCE = "evidence", _("Evidence added")
        RESPONDED = "responded", _("Response")
        PROPOSED = "proposed", _("Settlement proposed")
        PROPOSAL_REJECTED = "proposal_rejected", _("Proposal rejected")
        PROPOSAL_ACCEPTED = "proposal_accepted", _("Proposal accepted")
        ESCALATED = "escalated", _("Sent to mediation")
        DECIDED = "decided", _("Decided by an admin")
        MONEY_MOVED = "money_moved", _("Money moved")

    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.dispute_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Dispute events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Dispute events are append-only.")
