"""Shared cast for messaging tests (used by services, pages, notifications and
consumer tests alike):

- ``task``: an open task posted by Dana (``customer``).
- ``offer``: Bob's (``contractor``) pending offer on it.
- ``conversation``: Dana and Bob talking about that task (no messages yet).
- ``other_contractor``: Eve, an onboarded contractor with nothing to do with the task.
- ``add_message(conversation, sender, body)``: a saved message with the next seq, built
  directly (like a factory, skipping the service: no broadcast, no notification).
- ``session_headers(user)``: WebSocket handshake headers carrying a logged-in session
  cookie and an allowed Origin, for ``channels.testing.WebsocketCommunicator``.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.db.models import F
from django.test import Client
from django.utils import timezone

from messaging.models import Conversation, Message, ReadState
from tests.factories import ContractorProfileFactory
from tests.tasks.factories import OfferFactory, TaskFactory


@pytest.fixture
def task(customer):
    return TaskFactory(customer=customer, title="Fix the leaking kitchen tap", photos=0)


@pytest.fixture
def offer(task, contractor):
    return OfferFactory(task=task, contractor=contractor)


@pytest.fixture
def conversation(task, offer, customer, contractor):
    return Conversation.objects.create(task=task, customer=customer, contractor=contractor)


@pytest.fixture
def other_contractor(db):
    return ContractorProfileFactory(
        user__email="eve@example.com", user__full_name="Eve Electric", slug="eve-electric"
    ).user


@pytest.fixture
def add_message():
    """Save a message directly with the next sequence number (no broadcast)."""

    def make(conversation: Conversation, sender, body: str = "Hello", *, client_id: uuid.UUID | None = None) -> Message:
        Conversation.objects.filter(pk=conversation.pk).update(last_seq=F("last_seq") + 1, last_message_at=timezone.now())
        conversation.refresh_from_db(fields=["last_seq", "last_message_at"])
        message = Message.objects.create(
            conversation=conversation,
            seq=conversation.last_seq,
            sender=sender,
            client_id=client_id or uuid.uuid4(),
            body=body,
        )
        # The sender has read their own message, as message_send records.
        ReadState.objects.update_or_create(
            conversation=conversation, user=sender, defaults={"last_read_seq": conversation.last_seq}
        )
        return message

    return make


@pytest.fixture
def session_headers(db):
    """Handshake headers for a WebSocket opened by ``user``'s logged-in browser."""

    def make(user, *, origin: str = "http://testserver") -> list[tuple[bytes, bytes]]:
        client = Client()
        client.force_login(user)
        sessionid = client.cookies[settings.SESSION_COOKIE_NAME].value
        return [
            (b"cookie", f"{settings.SESSION_COOKIE_NAME}={sessionid}".encode()),
            (b"origin", origin.encode()),
            (b"host", b"testserver"),
        ]

    return make
