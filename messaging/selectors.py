"""Reads of conversations: access, the inbox, history pages and search.

Pages, the API and the socket consumer use these, so who may read what is
decided in one place. Strangers get NotFound (they learn nothing, not even
that a conversation exists).
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from core.errors import NotFound
from tasks.models import Task

from .models import Conversation, Message, ReadState

SEARCH_CONFIG = "english"
MAX_PAGE = 200
# Sentinels PostgreSQL puts around matches; everything else is escaped before
# they become <mark> tags, so a message can't inject markup through a headline.
_HL_START, _HL_STOP = "\x02", "\x03"


def _authenticated(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _staff_reader(user: Any) -> bool:
    return _authenticated(user) and user.is_staff and user.has_perm("messaging.view_conversation")


def _mine(user: Any) -> Q:
    return Q(customer=user) | Q(contractor=user)


def conversation_get_for_user(public_id: uuid.UUID | str, user: Any) -> Conversation:
    """The conversation, for its two participants and for staff with the
    ``messaging.view_conversation`` permission (read only: services refuse
    their writes). NotFound for everyone else."""
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(_("No such conversation.")) from None
    conversation = (
        Conversation.objects.select_related("task", "customer", "contractor").filter(public_id=key).first()
        if _authenticated(user)
        else None
    )
    if conversation is None or not (conversation.is_participant(user) or _staff_reader(user)):
        raise NotFound(_("No such conversation."))
    return conversation


def _with_inbox_columns(queryset: QuerySet[Conversation], user: Any) -> QuerySet[Conversation]:
    """Annotate ``unread_count`` (for ``user``), ``last_body``, ``last_sender_id``
    and ``last_attachment_name`` in the same query."""
    my_read = ReadState.objects.filter(conversation=OuterRef("pk"), user=user).values("last_read_seq")[:1]
    last = Message.objects.filter(conversation=OuterRef("pk"), seq=OuterRef("last_seq"))
    return queryset.select_related("task", "customer", "contractor").annotate(
        unread_count=F("last_seq") - Coalesce(Subquery(my_read, output_field=IntegerField()), Value(0)),
        last_body=Subquery(last.values("body")[:1]),
        last_sender_id=Subquery(last.values("sender_id")[:1]),
        last_attachment_name=Subquery(last.values("attachment_name")[:1]),
    )


def conversations_for_user(user: Any) -> QuerySet[Conversation]:
    """My inbox: every conversation I take part in, latest activity first, with
    unread counts and the last message. One query, however many rows."""
    if not _authenticated(user):
        return Conversation.objects.none()
    return _with_inbox_columns(Conversation.objects.filter(_mine(user)), user).order_by(
        F("last_message_at").desc(nulls_last=True), "-created_at"
    )


def conversations_for_task(task: Task, user: Any) -> QuerySet[Conversation]:
    """The customer (and staff readers) see every conversation on the task; a
    contractor sees theirs; anyone else none."""
    if not _authenticated(user):
        return Conversation.objects.none()
    queryset = Conversation.objects.filter(task=task)
    if task.customer_id != user.pk and not _staff_reader(user):
        queryset = queryset.filter(contractor=user)
    return _with_inbox_columns(queryset, user).order_by(F("last_message_at").desc(nulls_last=True), "-created_at")


def unread_total(user: Any) -> int:
    """Unread messages across all my conversations (the badge)."""
    if not _authenticated(user):
        return 0
    total = _with_inbox_columns(Conversation.objects.filter(_mine(user)), user).aggregate(
        total=Sum("unread_count")
    )["total"]
    return int(total or 0)


def _bounded(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def messages_after(conversation: Conversation, *, after_seq: int = 0, limit: int = MAX_PAGE) -> list[Message]:
    """Messages with seq > ``after_seq``, oldest first, at most ``limit`` (≤ 200):
    what a reconnecting client missed. Call again from the last seq for more."""
    return list(
        Message.objects.select_related("sender")
        .filter(conversation=conversation, seq__gt=max(0, int(after_seq)))
        .order_by("seq")[: _bounded(limit)]
    )


def messages_page(conversation: Conversation, *, before_seq: int | None = None, limit: int = 50) -> list[Message]:
    """One page of history, newest last: the ``limit`` messages before
    ``before_seq`` (the latest ones when None)."""
    queryset = Message.objects.select_related("sender").filter(conversation=conversation)
    if before_seq is not None:
        queryset = queryset.filter(seq__lt=int(before_seq))
    page = list(queryset.order_by("-seq")[: _bounded(limit)])
    page.reverse()
    return page


def _safe_headline(raw: str) -> str:
    return mark_safe(  # noqa: S308 - escaped first; only our own <mark> tags are added
        html.escape(raw).replace(_HL_START, "<mark>").replace(_HL_STOP, "</mark>")
    )


def search_messages(user: Any, q: str, *, conversation: Conversation | None = None, limit: int = 50) -> list[Message]:
    """Messages matching ``q`` in conversations ``user`` takes part in (or in
    ``conversation``, if they take part in it), best match first.

    On PostgreSQL: web-search syntax ("quoted phrases", -exclusions, or) with
    English stemming, ranked, and each message gets ``headline``: the matching
    passage, HTML-escaped, with matches in ``<mark>``. Elsewhere (SQLite for
    ``make run``): a case-insensitive substring match, newest first.
    """
    q = (q or "").strip()[:200]
    if not q or not _authenticated(user):
        return []
    queryset = Message.objects.select_related("sender", "conversation", "conversation__task").filter(
        conversation__in=Conversation.objects.filter(_mine(user))
    )
    if conversation is not None:
        queryset = queryset.filter(conversation=conversation)
    limit = _bounded(limit)
    if connection.vendor == "postgresql":
        query = SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        vector = SearchVector("body", config=SEARCH_CONFIG)
        results = list(
            queryset.annotate(document=vector)
            .filter(document=query)
            .annotate(
                rank=SearchRank(vector, query),
                raw_headline=SearchHeadline(
                    "body",
                    query,
                    config=SEARCH_CONFIG,
                    start_sel=_HL_START,
                    stop_sel=_HL_STOP,
                    max_words=35,
                    min_words=15,
                ),
            )
            .order_by("-rank", "-created_at")[:limit]
        )
        for message in results:
            message.headline = _safe_headline(message.raw_headline)
        return results
    results = list(queryset.filter(body__icontains=q).order_by("-created_at")[:limit])
    pattern = re.compile(re.escape(q), re.IGNORECASE)
    for message in results:
        message.rank = 1.0
        message.headline = _safe_headline(pattern.sub(lambda m: f"{_HL_START}{m.group(0)}{_HL_STOP}", message.body))
    return results
