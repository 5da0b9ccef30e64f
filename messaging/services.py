"""Writes to conversations. Pages, the API and the socket consumer call these;
none of them saves a Conversation, Message or ReadState directly.

A message is saved with the next per-conversation sequence number under the
conversation's row lock, then (after commit) rung through the channel layer to
group ``conv.<public_id>``. The layer delivers at most once; clients catch up
by sequence number, so a lost broadcast costs latency, never a message.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from core.realtime import group_send_on_commit
from tasks.models import Offer, Task
from tasks.selectors import task_can_view

from .attachments import attachment_prepare
from .models import MAX_BODY_CHARS, Conversation, Message, Notification, ReadState
from .notifications import Channels, notify, preference_for

logger = logging.getLogger(__name__)


def conversation_group(conversation: Conversation) -> str:
    """The channel-layer group of a conversation's open sockets."""
    return f"conv.{conversation.public_id}"


def _require_participant(conversation: Conversation, user: Any) -> None:
    user_require_verified(user)
    if not conversation.is_participant(user):
        # Staff may read a conversation (selectors) but never write in it.
        raise PermissionDenied(_("Only the two people in this conversation can write in it."), code="not_participant")


def _has_offer_or_assignment(task: Task, contractor: Any) -> bool:
    if task.contractor_id is not None and task.contractor_id == contractor.pk:
        return True
    return Offer.objects.filter(task=task, contractor=contractor).exists()


# --- Conversations -------------------------------------------------------------


def conversation_open(task: Task, *, by: Any, contractor: Any = None) -> Conversation:
    """The conversation about ``task`` between its customer and a contractor,
    created the first time (one per task and contractor; safe when two requests
    race: the loser reads the winner's row).

    - A contractor (``by``) opens theirs with the customer: to ask a question
      while the task is open, or once they made an offer or are assigned.
    - The customer opens one with ``contractor``, who must have made an offer
      on the task or be assigned to it.

    Raises NotFound for a task ``by`` may not see, PermissionDenied otherwise.
    """
    user_require_verified(by)
    if not task_can_view(task, by):
        raise NotFound(_("No such task."))
    if by.pk == task.customer_id:
        if contractor is None:
            raise ApplicationError(
                _("Choose who to write to."), code="contractor_required", fields={"contractor": [_("Choose a contractor.")]}
            )
        if contractor.pk == task.customer_id or not _has_offer_or_assignment(task, contractor):
            raise PermissionDenied(
                _("You can write to contractors who made an offer on this task."), code="no_offer"
            )
    else:
        if contractor is not None and contractor.pk != by.pk:
            raise PermissionDenied(_("You can only open your own conversation."), code="not_participant")
        contractor = by
        may_ask = task.status == Task.Status.OPEN and bool(getattr(by, "is_contractor", False))
        if not (may_ask or _has_offer_or_assignment(task, by)):
            raise PermissionDenied(
                _("Questions can be asked while the task is open; after that only its contractors can write."),
                code="conversation_closed",
            )
    existing = Conversation.objects.filter(task=task, contractor=contractor).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Conversation.objects.create(task=task, customer_id=task.customer_id, contractor=contractor)
    except IntegrityError:
        # Two first messages at once: the other request created it.
        return Conversation.objects.get(task=task, contractor=contractor)


# --- Messages ------------------------------------------------------------------


def _parse_client_id(client_id: Any) -> uuid.UUID:
    if isinstance(client_id, uuid.UUID):
        return client_id
    try:
        return uuid.UUID(str(client_id))
    except (TypeError, ValueError, AttributeError):
        raise ApplicationError(
            _("The message id is not valid."), code="invalid_client_id", fields={"client_id": [_("Use a UUID.")]}
        ) from None


def _clean_body(body: Any) -> str:
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise ApplicationError(_("Write a message."), code="invalid_body", fields={"body": [_("Write a message.")]})
    body = body.strip()
    if len(body) > MAX_BODY_CHARS:
        raise ApplicationError(
            _("Messages can be at most %(limit)d characters.") % {"limit": MAX_BODY_CHARS},
            code="body_too_long",
            fields={"body": [_("Use at most %(limit)d characters.") % {"limit": MAX_BODY_CHARS}]},
        )
    return body


def _existing_for(conversation: Conversation, client_id: uuid.UUID, by: Any) -> Message | None:
    # At most one row (unique per conversation): no ORDER BY. ``.first()`` would
    # order by Message.Meta.ordering, whose "conversation" pulls in a join to
    # the conversation and its ordering: measurable CPU on every send.
    existing = next(
        iter(Message.objects.select_related("sender").filter(conversation=conversation, client_id=client_id).order_by()[:1]),
        None,
    )
    if existing is not None and existing.sender_id != by.pk:
        raise Conflict(_("This message id is already used."), code="client_id_taken")
    return existing


def message_send(
    conversation: Conversation,
    *,
    by: Any,
    body: str,
    client_id: uuid.UUID | str,
    attachment: UploadedFile | None = None,
) -> tuple[Message, bool]:
    """Save a message from ``by`` (a participant) with the next sequence number.

    Returns ``(message, created)``; a resend with a ``client_id`` already saved
    returns the saved message and ``created=False`` (nothing written, nothing
    broadcast). The body is trimmed, at most 4,000 characters; a body or an
    attachment is required. Locks the conversation row, so sequence numbers are
    gapless and unique. In the same transaction, an in-app ``new_message``
    notification for the other person (pushed by notify after commit; email
    comes later from the digest job, for what is still unread). After commit:
    ``chat.message`` to the conversation's group.
    Raises ApplicationError (nothing written) for bad input or non-participants.
    """
    _require_participant(conversation, by)
    key = _parse_client_id(client_id)
    text = _clean_body(body)

    prepared = None
    if attachment is not None:
        # A resend after a dropped socket: answer before doing any work on the file.
        existing = _existing_for(conversation, key, by)
        if existing is not None:
            return existing, False
        prepared = attachment_prepare(attachment)
    if not text and prepared is None:
        raise ApplicationError(
            _("Write a message or attach a file."), code="empty_message", fields={"body": [_("Write a message.")]}
        )

    message = Message(conversation=conversation, sender=by, client_id=key, body=text)
    # Read before the transaction: the recipient's preference is a query that
    # need not run under the conversation lock, and inside the transaction the
    # notification is then one insert in notify's own savepoint (no second
    # savepoint around it: 2 round trips less per message).
    notice = _new_message_channels(conversation, by)
    stored: list = []
    try:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update(no_key=True).get(pk=conversation.pk)
            existing = _existing_for(locked, key, by)
            if existing is not None:
                return existing, False
            if prepared is not None:
                kind, content, thumbnail, safe_name, size = prepared
                message.attachment_kind = kind
                message.attachment_name = safe_name
                message.attachment_size = size
                message.attachment.save(safe_name or "file", content, save=False)
                stored.append(message.attachment)
                if thumbnail is not None:
                    message.attachment_thumbnail.save("thumb.jpg", thumbnail, save=False)
                    stored.append(message.attachment_thumbnail)
            now = timezone.now()
            message.seq = locked.last_seq + 1
            message.save()
            locked.last_seq = message.seq
            locked.last_message_at = now
            locked.save(update_fields=["last_seq", "last_message_at"])
            # Writing means having read everything up to one's own message. One
            # upsert; under the conversation lock this seq is the newest, so the
            # read state still only moves forward.
            ReadState.objects.bulk_create(
                [ReadState(conversation=locked, user=by, last_read_seq=message.seq)],
                update_conflicts=True,
                unique_fields=["conversation", "user"],
                update_fields=["last_read_seq", "updated_at"],
            )
            payload = message_payload(message)
            group_send_on_commit(conversation_group(locked), {"type": "chat.message", "message": payload})
            # In the same transaction (one commit per message, not two). A
            # failing notification never costs the message: its only database
            # work here is notify's insert, in notify's own savepoint (the
            # preference and the task were read above), so a failure rolls back
            # just that and is logged.
            if notice is not None:
                try:
                    _notify_new_message(message, notice)
                except Exception:  # noqa: BLE001
                    logger.exception("could not notify about message %s", message.pk)
    except BaseException:
        for field in stored:
            field.delete(save=False)
        raise
    conversation.last_seq = locked.last_seq
    conversation.last_message_at = locked.last_message_at
    return message, True


def _new_message_channels(conversation: Conversation, by: Any) -> Channels | None:
    """The recipient's channels for ``new_message`` (None, logged, when they
    can't be read: the message is sent without its notification). Also loads
    the conversation's task, so nothing is fetched lazily mid-transaction."""
    try:
        recipient = conversation.other_party(by)
        conversation.task  # noqa: B018 - load it now (select_related by the callers that can)
        return preference_for(recipient, Notification.Kind.NEW_MESSAGE)
    except Exception:  # noqa: BLE001 - a notification never costs the message
        logger.exception("could not read notification preferences for conversation %s", conversation.pk)
        return None


def _notify_new_message(message: Message, channels: Channels) -> None:
    conversation = message.conversation
    recipient = conversation.other_party(message.sender)
    preview = message.body or message.attachment_name or _("Sent a file")
    try:
        url = reverse("tasks:detail", args=[conversation.task.public_id])
    except NoReverseMatch:
        url = ""
    notify(
        recipient,
        kind="new_message",
        title=_("New message from %(name)s") % {"name": message.sender.public_name},
        body=Truncator(preview).chars(140),
        url=url,
        task=conversation.task,
        dedupe_key=f"message:{message.public_id}",
        channels=channels,
    )


def message_mark_read(conversation: Conversation, *, by: Any, up_to_seq: int) -> ReadState:
    """Record that ``by`` (a participant) has read up to ``up_to_seq``.

    Monotonic: never moves back; capped at the conversation's latest message.
    Locks the conversation row (the same lock message_send takes, so the read
    state row is created once). After commit, when it moved: ``chat.read`` to
    the conversation's group, which shows the other side a read receipt.
    """
    _require_participant(conversation, by)
    if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise ApplicationError(
            _("Give the number of the last message read."), code="invalid_seq", fields={"seq": [_("Use a whole number.")]}
        )
    with transaction.atomic():
        locked = Conversation.objects.select_for_update(no_key=True).get(pk=conversation.pk)
        state, _created = ReadState.objects.select_for_update(no_key=True).get_or_create(conversation=locked, user=by)
        target = min(up_to_seq, locked.last_seq)
        if target > state.last_read_seq:
            state.last_read_seq = target
            state.save(update_fields=["last_read_seq", "updated_at"])
            group_send_on_commit(
                conversation_group(locked), {"type": "chat.read", "user": str(by.public_id), "seq": target}
            )
    return state


def message_payload(message: Message) -> dict[str, Any]:
    """The JSON shape of a message in socket frames and HTTP answers."""
    attachment = None
    if message.attachment_kind:
        attachment = {
            "kind": message.attachment_kind,
            "name": message.attachment_name,
            "size": message.attachment_size,
            "url": reverse("messaging:attachment", args=[message.public_id]),
            "thumb_url": (
                reverse("messaging:attachment_thumb", args=[message.public_id])
                if message.attachment_thumbnail
                else None
            ),
        }
    return {
        "seq": message.seq,
        "id": str(message.public_id),
        "client_id": str(message.client_id),
        "sender": {"id": str(message.sender.public_id), "name": message.sender.public_name},
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "attachment": attachment,
    }

