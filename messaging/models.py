"""Per-task conversations, their messages and read state, and notifications.

A message is saved (with the next per-conversation sequence number, allocated
under the conversation's row lock) before it is broadcast: the channel layer is
a doorbell, not a store. A client that reconnects asks for everything after the
last sequence number it saw. Writes go through ``messaging/services.py``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

MAX_BODY_CHARS = 4000
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class Conversation(models.Model):
    """The customer of a task and one contractor, talking about that task."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="conversations")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    last_seq = models.PositiveIntegerField(default=0, help_text=_("Sequence number of the latest message."))
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_message_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "contractor"], name="one_conversation_per_task_contractor"),
            models.CheckConstraint(condition=~Q(customer=models.F("contractor")), name="conversation_two_people"),
        ]
        indexes = [
            models.Index(fields=["customer", "-last_message_at"], name="conv_customer_recent"),
            models.Index(fields=["contractor", "-last_message_at"], name="conv_contractor_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.task}: {self.customer} / {self.contractor}"

    def other_party(self, user):
        return self.contractor if user.pk == self.customer_id else self.customer

    def is_participant(self, user) -> bool:
        return getattr(user, "pk", None) in (self.customer_id, self.contractor_id)


def attachment_path(instance: Message, filename: str) -> str:
    # Our name, never the uploader's; served only through the checked view.
    ext = "pdf" if instance.attachment_kind == Message.AttachmentKind.PDF else "jpg"
    return f"messages/{instance.conversation.public_id}/{uuid.uuid4().hex}.{ext}"


def attachment_thumb_path(instance: Message, filename: str) -> str:
    return f"messages/{instance.conversation.public_id}/thumbs/{uuid.uuid4().hex}.jpg"


class Message(models.Model):
    class AttachmentKind(models.TextChoices):
        NONE = "", _("None")
        IMAGE = "image", _("Photo")
        PDF = "pdf", _("PDF document")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(_("sequence number"))
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Chosen by the client, so a resend after a dropped socket is saved once.
    client_id = models.UUIDField(_("client message id"))
    body = models.TextField(_("message"), max_length=MAX_BODY_CHARS, blank=True)
    attachment = models.FileField(upload_to=attachment_path, max_length=200, blank=True)
    attachment_thumbnail = models.FileField(upload_to=attachment_thumb_path, max_length=200, blank=True)
    attachment_kind = models.CharField(max_length=8, choices=AttachmentKind.choices, blank=True, default="")
    attachment_name = models.CharField(max_length=120, blank=True, help_text=_("Shown to the reader; sanitised."))
    attachment_size = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_client_id_unique"),
            models.CheckConstraint(
                condition=~Q(body="") | ~Q(attachment=""), name="message_has_body_or_attachment"
            ),
            models.CheckConstraint(
                condition=Q(attachment="", attachment_kind="") | (~Q(attachment="") & ~Q(attachment_kind="")),
                name="message_attachment_kind_matches",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.conversation_id} by {self.sender_id}"


class ReadState(models.Model):
    """How far one participant has read, and how far they've been emailed about."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.PositiveIntegerField(default=0)
    last_emailed_seq = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="one_read_state_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.conversation_id} to #{self.last_read_seq}"


class Notification(models.Model):
    """An entry in a user's notification centre (also the source of email/SMS sends)."""

    class Kind(models.TextChoices):
        NEW_MESSAGE = "new_message", _("New message")
        NEW_OFFER = "new_offer", _("New offer")
        OFFER_ACCEPTED = "offer_accepted", _("Offer accepted")
        OFFER_DECLINED = "offer_declined", _("Offer declined")
        TASK_UPDATE = "task_update", _("Task status changes")
        JOB_STARTING = "job_starting", _("Job starts within the hour")
        CHECKED_IN = "checked_in", _("Contractor checked in")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=1000, blank=True)
    url = models.CharField(max_length=300, blank=True)
    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # Deduplicates a notification raised twice for the same cause (a retried job).
    dedupe_key = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    sms_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="notification_user_unread")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"], condition=~Q(dedupe_key=""), name="notification_dedupe"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user_id}: {self.title}"


class NotificationPreference(models.Model):
    """Which channels a user wants for one kind of event. No row: the defaults."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    kind = models.CharField(max_length=20, choices=Notification.Kind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)
    sms = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_pref_per_kind")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: app={self.in_app} email={self.email} sms={self.sms}"
