"""Jobs the beat runs every minute for notifications.

The message digest: a participant who has messages from the other party that
they haven't read, that no digest has covered yet, and the oldest of which is
older than MESSAGE_DIGEST_DELAY, gets ONE email for that conversation listing
them; then ``last_emailed_seq`` moves past them. Each ReadState row is handled
in its own short transaction under ``select_for_update(no_key=True, skip_locked=True)``: a
second beat run running at the same time skips the row the first one holds,
and finds nothing left to send once it commits.

Jobs starting: booked tasks whose start is within the next hour; both sides
are notified once (``dedupe_key`` per task), by SMS where they opted in.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Conversation, Message, Notification, ReadState
from .notifications import notify, preference_for, unsubscribe_headers, unsubscribe_url

logger = logging.getLogger(__name__)

# Messages listed in full in one digest; the rest are counted.
DIGEST_MAX_LISTED = 20
# Conversations quiet for longer than this are not looked at again.
DIGEST_LOOKBACK = dt.timedelta(days=7)
# Rows handled per run; the next minute picks up the rest.
DIGEST_BATCH = 500


def digest_delay() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "MESSAGE_DIGEST_DELAY", 300)))


def _ensure_read_states(since: dt.datetime) -> None:
    """A participant who never opened a conversation has no ReadState yet;
    give them one (at 0) so their unread messages are found."""
    for field in ("customer", "contractor"):
        missing = (
            Conversation.objects.filter(last_seq__gt=0, last_message_at__gte=since)
            .annotate(
                has_state=Exists(
                    ReadState.objects.filter(conversation=OuterRef("pk"), user=OuterRef(f"{field}_id"))
                )
            )
            .filter(has_state=False)
            .values_list("pk", f"{field}_id")[:DIGEST_BATCH]
        )
        ReadState.objects.bulk_create(
            [ReadState(conversation_id=conv_id, user_id=user_id) for conv_id, user_id in missing],
            ignore_conflicts=True,
        )


def message_digests_send(*, now: dt.datetime | None = None) -> int:
    """Send every digest that is due. Returns how many emails went out."""
    now = now or timezone.now()
    cutoff = now - digest_delay()
    _ensure_read_states(now - DIGEST_LOOKBACK)
    due = list(
        ReadState.objects.filter(
            conversation__last_seq__gt=F("last_read_seq"),
            conversation__last_message_at__gte=now - DIGEST_LOOKBACK,
        )
        .filter(conversation__last_seq__gt=F("last_emailed_seq"))
        .order_by("pk")
        .values_list("pk", flat=True)[:DIGEST_BATCH]
    )
    sent = 0
    for read_state_id in due:
        try:
            if _digest_one(read_state_id, cutoff):
                sent += 1
        except Exception:  # noqa: BLE001 - one bad mailbox must not stop the others
            logger.exception("Message digest for read state %s failed; retried next run", read_state_id)
    return sent


def _digest_one(read_state_id: int, cutoff: dt.datetime) -> bool:
    with transaction.atomic():
        state = (
            ReadState.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
            .select_related("conversation__task", "user")
            .filter(pk=read_state_id)
            .first()
        )
        if state is None:
            return False  # another run holds it
        conversation, user = state.conversation, state.user
        if not conversation.is_participant(user):
            return False
        start = max(state.last_read_seq, state.last_emailed_seq)
        pending = list(
            Message.objects.filter(conversation=conversation, seq__gt=start)
            .exclude(sender_id=user.pk)
            .select_related("sender")
            .order_by("seq")
        )
        if not pending or pending[0].created_at > cutoff:
            return False  # nothing from the other side, or not waited long enough yet
        high = pending[-1].seq
        sent = False
        if user.is_active and user.email and preference_for(user, Notification.Kind.NEW_MESSAGE).email:
            _send_digest(user, conversation, pending)
            sent = True
        # Moved on even when the user turned these emails off: turning them
        # back on later must not mail old messages.
        ReadState.objects.filter(pk=state.pk).update(last_emailed_seq=high, updated_at=timezone.now())
    return sent


def _send_digest(user, conversation: Conversation, messages: list[Message]) -> None:
    task = conversation.task
    other = conversation.other_party(user)
    unsubscribe = unsubscribe_url(user, Notification.Kind.NEW_MESSAGE)
    listed = messages[:DIGEST_MAX_LISTED]
    context = {
        "recipient_name": user.get_short_name() if user.full_name else "",
        "sender_name": other.public_name,
        "task_title": task.title,
        "link": settings.SITE_URL + reverse("tasks:detail", args=[task.public_id]),
        "messages": [
            {
                "at": timezone.localtime(m.created_at).strftime("%a %d %b, %H:%M"),
                "sender": m.sender.public_name,
                "body": m.body,
                "attachment": m.attachment_name if m.attachment_kind else "",
            }
            for m in listed
        ],
        "more": len(messages) - len(listed),
        "count": len(messages),
        "unsubscribe_url": unsubscribe,
        "site_url": settings.SITE_URL,
    }
    subject = ngettext(
        "New message from %(name)s about “%(title)s”",
        "%(count)d new messages from %(name)s about “%(title)s”",
        len(messages),
    ) % {"count": len(messages), "name": other.public_name, "title": task.title}
    EmailMessage(
        subject=f"[BittieTasks] {subject}",
        body=render_to_string("messaging/email/digest.txt", context),
        to=[user.email],
        headers=unsubscribe_headers(unsubscribe),
    ).send()


def jobs_starting_notify(*, now: dt.datetime | None = None) -> int:
    """Tell the customer and the hired contractor of each booked job starting
    within the hour. Returns how many notifications were written."""
    from tasks.models import Offer, Task

    now = now or timezone.now()
    soon = now + dt.timedelta(hours=1)
    # The start is the task's window, or else the start the accepted offer proposed.
    accepted_start = Offer.objects.filter(task=OuterRef("pk"), status=Offer.Status.ACCEPTED).values(
        "proposed_start"
    )[:1]
    tasks = (
        Task.objects.filter(status=Task.Status.ASSIGNED, contractor__isnull=False)
        .annotate(starts_at=Coalesce("window_start", Subquery(accepted_start)))
        .filter(starts_at__gt=now, starts_at__lte=soon)
        .select_related("customer", "contractor")
        .order_by("starts_at")[:DIGEST_BATCH]
    )
    written = 0
    for task in tasks:
        when = timezone.localtime(task.starts_at).strftime("%H:%M")
        link = reverse("tasks:detail", args=[task.public_id])
        key = f"job_starting:{task.public_id}"
        for user, title in (
            (task.customer, _("“%(title)s” starts at %(when)s") % {"title": task.title, "when": when}),
            (task.contractor, _("Your job “%(title)s” starts at %(when)s") % {"title": task.title, "when": when}),
        ):
            with transaction.atomic():
                if notify(user, kind=Notification.Kind.JOB_STARTING, title=title, url=link, task=task, dedupe_key=key):
                    written += 1
    return written
