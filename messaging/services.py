"""Writes to conversations. Pages, the API and the socket consumer call these;
none of them saves a Conversation, Message or ReadState directly.

A message is saved with the next per-conversation sequence number under the
conversation's row lock, then (after commit) rung through the channel layer to
group ``conv.<public_id>``. The layer delivers at most once; clients catch up
by sequence number, so a lost broadcast costs latency, never a message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import types
import unicodedata
import uuid
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
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


def _empty_message() -> ApplicationError:
    return ApplicationError(
        _("Write a message or attach a file."), code="empty_message", fields={"body": [_("Write a message.")]}
    )


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
    notification for the other person (pushed with their unread count after
    commit; email comes later from the digest job, for what is still unread).
    After commit: ``chat.message`` to the conversation's group. A text
    message on PostgreSQL takes one statement (``_TEXT_MESSAGE_SQL``); one
    with a file, or on SQLite, the ORM path below.
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
        raise _empty_message()

    if prepared is None and connection.vendor == "postgresql":
        return _text_message_send(conversation, by=by, key=key, text=text)

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


# One statement saves a text message on PostgreSQL: the conversation row's
# UPDATE takes the row lock and hands out the next sequence number (another
# sender's UPDATE waits for this one's commit and then reads the new last_seq,
# so numbers stay gapless and unique), the message row, the sender's read
# state and the recipient's in-app notification (unless their preference for
# new messages has in-app off) are inserted from it, and the recipient's
# unread notification count comes back for the push. In autocommit that is ONE
# round trip to the database and no ORM work: the ORM path below took 12
# queries (BEGIN, lock, lookups, savepoints, COMMIT) and most of the socket
# server's CPU per message (bench/bench_chat.py, docs/PERFORMANCE.md).
# A client id already saved in the conversation: the UPDATE matches no row
# (nothing is written) or, when the same id is being saved concurrently, the
# INSERT hits message_client_id_unique and the whole statement rolls back;
# either way the caller reads the saved row.
_TEXT_MESSAGE_SQL = """
WITH conv AS (
    UPDATE {conversation} SET last_seq = last_seq + 1, last_message_at = %(now)s
    WHERE id = %(conversation)s
      AND NOT EXISTS (SELECT 1 FROM {message} WHERE conversation_id = %(conversation)s AND client_id = %(client_id)s)
    RETURNING id, last_seq
), msg AS (
    INSERT INTO {message} (public_id, conversation_id, seq, sender_id, client_id, body, attachment,
                           attachment_thumbnail, attachment_kind, attachment_name, attachment_size, created_at)
    SELECT %(public_id)s, conv.id, conv.last_seq, %(sender)s, %(client_id)s, %(body)s, '', '', '', '', NULL, %(now)s
    FROM conv
    RETURNING id, seq
), read_state AS (
    INSERT INTO {read_state} (conversation_id, user_id, last_read_seq, last_emailed_seq, updated_at)
    SELECT conv.id, %(sender)s, conv.last_seq, 0, %(now)s FROM conv
    ON CONFLICT (conversation_id, user_id)
    DO UPDATE SET last_read_seq = EXCLUDED.last_read_seq, updated_at = EXCLUDED.updated_at
), wants AS (
    SELECT %(notify)s AND COALESCE(
        (SELECT in_app FROM {preference} WHERE user_id = %(recipient)s AND kind = %(kind)s), TRUE
    ) AS in_app
), notice AS (
    INSERT INTO {notification} (public_id, user_id, kind, title, body, url, task_id, dedupe_key, created_at)
    SELECT %(notice_id)s, %(recipient)s, %(kind)s, %(title)s, %(preview)s, %(url)s, %(task)s, %(dedupe)s, %(now)s
    FROM msg, wants WHERE wants.in_app
    ON CONFLICT (user_id, dedupe_key) WHERE dedupe_key <> '' DO NOTHING
    RETURNING id
)
SELECT msg.id, msg.seq, (SELECT count(*) FROM notice),
       (SELECT count(*) FROM {notification} WHERE user_id = %(recipient)s AND read_at IS NULL)
FROM msg
"""


@functools.cache
def _text_message_sql() -> str:
    from .models import NotificationPreference

    return _TEXT_MESSAGE_SQL.format(
        conversation=Conversation._meta.db_table,
        message=Message._meta.db_table,
        read_state=ReadState._meta.db_table,
        preference=NotificationPreference._meta.db_table,
        notification=Notification._meta.db_table,
    )


_task_urls: dict[uuid.UUID, str] = {}


def _task_url(conversation: Conversation) -> str:
    """The task page's URL for the notification, reversed once per task and
    process (a task's public id never changes)."""
    public_id = conversation.task.public_id
    url = _task_urls.get(public_id)
    if url is None:
        try:
            url = reverse("tasks:detail", args=[public_id])
        except NoReverseMatch:
            url = ""
        if len(_task_urls) > 10_000:
            _task_urls.clear()
        _task_urls[public_id] = url
    return url


def _preview(text: str, limit: int = 140) -> str:
    """``Truncator(text).chars(limit)``, without its translated ellipsis lookup
    and character walk for a text that fits (most chat messages)."""
    normalized = unicodedata.normalize("NFC", text)
    return normalized if len(normalized) <= limit else Truncator(text).chars(limit)


def _text_message_prepare(conversation: Conversation, by: Any, key: uuid.UUID, text: str):
    """The unsaved message, the recipient's notification (its fields: no model
    instance, ~30 us of CPU less per message on the socket's event loop) and
    the parameters of _TEXT_MESSAGE_SQL that saves them."""
    recipient = conversation.other_party(by)
    now = timezone.now()
    message = Message(
        conversation=conversation, sender=by, client_id=key, body=text, created_at=now, public_id=uuid.uuid4()
    )
    notice_id = uuid.uuid4()
    notice = {
        "user": recipient,
        "public_id": notice_id,
        "kind": Notification.Kind.NEW_MESSAGE.value,
        "title": (_("New message from %(name)s") % {"name": by.public_name})[:200],
        "body": _preview(text)[:1000],
        "url": _task_url(conversation)[:300],
        "created_at": now,
    }
    params = {
        "now": now,
        "conversation": conversation.pk,
        "client_id": key,
        "public_id": message.public_id,
        "sender": by.pk,
        "body": text,
        "notify": bool(recipient.is_active),
        "recipient": recipient.pk,
        "kind": notice["kind"],
        "notice_id": notice_id,
        "title": notice["title"],
        "preview": notice["body"],
        "url": notice["url"],
        "task": conversation.task_id,
        "dedupe": f"message:{message.public_id}",
    }
    return message, notice, params


def _text_message_saved(conversation: Conversation, message: Message, notice: dict[str, Any], row: tuple):
    """Fill in what _TEXT_MESSAGE_SQL returned; the events to send once it is
    committed: (group, event) pairs, the conversation's first."""
    from .notifications import notification_payload, user_group

    message.pk, message.seq, notified, unread = row
    conversation.last_seq = max(conversation.last_seq or 0, message.seq)
    conversation.last_message_at = message.created_at
    events = [(conversation_group(conversation), {"type": "chat.message", "message": message_payload(message)})]
    if notified:
        payload = notification_payload(types.SimpleNamespace(**notice, read_at=None))  # the saved row's
        events.append((user_group(notice["user"]), {"type": "notification", "notification": payload, "unread": unread + 1}))
    return events


def _text_message_send(conversation: Conversation, *, by: Any, key: uuid.UUID, text: str) -> tuple[Message, bool]:
    """message_send for a text message on PostgreSQL (see _TEXT_MESSAGE_SQL):
    the same rows, checks and after-commit events as the ORM path."""
    from .notifications import _group_send

    message, notice, params = _text_message_prepare(conversation, by, key, text)
    # Inside a caller's transaction a savepoint keeps a unique violation from
    # breaking it; alone, the statement commits by itself (autocommit).
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(_text_message_sql(), params)
            row = cursor.fetchone()
    except IntegrityError:
        row = None  # the same client id, saved by a concurrent send
    if row is None:
        existing = _existing_for(conversation, key, by)
        if existing is None:
            raise NotFound(_("No such conversation."))
        return existing, False
    chat, *push = _text_message_saved(conversation, message, notice, row)
    group_send_on_commit(*chat)
    for group, event in push:
        transaction.on_commit(lambda group=group, event=event: _group_send(group, event))
    return message, True


async def message_send_from_loop(
    conversation: Conversation, *, by: Any, body: str, client_id: uuid.UUID | str
) -> tuple[Message, bool] | None:
    """message_send for a text message, called on the event loop (the chat
    socket): on PostgreSQL _TEXT_MESSAGE_SQL goes to the database from the loop
    itself (core.async_db: no worker thread), commits, and then the same events
    as message_send go out from the loop, not waited for. Same checks and
    errors (ApplicationError) as message_send.

    Returns None when message_send must be called instead (in a thread): not
    PostgreSQL, or the client id is already saved (a resend; message_send
    answers with the saved message and ``created=False``).
    """
    import psycopg

    from core import async_db
    from core.realtime import send_from_loop

    _require_participant(conversation, by)
    key = _parse_client_id(client_id)
    text = _clean_body(body)
    if not text:
        raise _empty_message()
    if not async_db.available():
        return None
    message, notice, params = _text_message_prepare(conversation, by, key, text)
    try:
        row = await async_db.fetchone(_text_message_sql(), params)
    except psycopg.IntegrityError:
        row = None  # the same client id, saved by a concurrent send
    if row is None:
        return None
    chat, *push = _text_message_saved(conversation, message, notice, row)
    send_from_loop(*chat, what="channel layer: could not send %s to %s")
    for group, event in push:
        send_from_loop(group, event, what="Could not push %s to %s")
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

