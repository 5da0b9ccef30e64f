"""The unread-message email digest: one email per conversation, never twice,
never for what was read; through a real Celery worker on the Redis broker."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail
from django.db import connections, transaction
from django.utils import timezone

from marketplace.celery import app
from messaging import digest
from messaging.models import Message, NotificationPreference, ReadState
from messaging.tasks import send_message_digests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://bittie.example"
    settings.MESSAGE_DIGEST_DELAY = 300


@pytest.fixture
def real_worker():
    """Celery as in production for one test: not eager, the Redis broker (db 11
    from REDIS_URL), a solo worker in a thread. Restored afterwards."""
    keys = ("task_always_eager", "broker_url", "result_backend")
    saved = {key: app.conf[key] for key in keys}
    app.conf.task_always_eager = False
    app.conf.broker_url = settings.REDIS_URL
    app.conf.result_backend = settings.REDIS_URL
    _forget_backend(app)  # built again from the new settings
    app.loader.import_module("celery.contrib.testing.tasks")
    try:
        with start_worker(app, pool="solo", perform_ping_check=True, shutdown_timeout=10):
            yield app
    finally:
        app.conf.update(saved)
        _forget_backend(app)


def _forget_backend(celery_app) -> None:
    """Drop the app's cached result backend so the next use reads the settings."""
    celery_app._backend_cache = None
    if hasattr(celery_app._local, "backend"):
        del celery_app._local.backend


def age(messages, minutes: int) -> None:
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(
        created_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


def test_beat_runs_the_digest_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["messaging.send_message_digests"]
    assert entry["task"] == send_message_digests.name == "messaging.send_message_digests"
    assert entry["schedule"] == 60.0
    assert entry["options"]["expires"] <= 60


def test_three_unread_messages_one_email_with_a_real_worker(real_worker, conversation, customer, contractor, add_message):
    sent = [
        add_message(conversation, contractor, "Hi Dana, I can come at 3."),
        add_message(conversation, contractor, "Do you have a shut-off valve?"),
        add_message(conversation, contractor, "I'll bring a new cartridge & washers."),
    ]
    age(sent, 10)

    assert send_message_digests.delay().get(timeout=30) == 1

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["dana@example.com"]
    assert email.subject == "[BittieTasks] 3 new messages from Bob Builder about “Fix the leaking kitchen tap”"
    body = email.body
    assert "Hi Dana, I can come at 3." in body
    assert "Do you have a shut-off valve?" in body
    assert "I'll bring a new cartridge & washers." in body  # plain text, not HTML-escaped
    assert f"https://bittie.example/tasks/{conversation.task.public_id}" in body
    link = re.search(r"https://bittie\.example/notifications/unsubscribe/\S+/", body).group(0)
    assert email.extra_headers["List-Unsubscribe"] == f"<{link}>"
    state = ReadState.objects.get(conversation=conversation, user=customer)
    assert (state.last_read_seq, state.last_emailed_seq) == (0, 3)

    # Running again (the next minute's beat) sends nothing more.
    assert send_message_digests.delay().get(timeout=30) == 0
    assert len(mail.outbox) == 1


def test_messages_already_read_get_no_email_with_a_real_worker(
    real_worker, conversation, customer, contractor, add_message
):
    sent = [add_message(conversation, contractor, f"Message {i}") for i in range(3)]
    age(sent, 10)
    ReadState.objects.create(conversation=conversation, user=customer, last_read_seq=3)

    assert send_message_digests.delay().get(timeout=30) == 0
    assert mail.outbox == []


def test_only_unread_and_unemailed_messages_are_listed(conversation, customer, contractor, add_message):
    first = [add_message(conversation, contractor, "Old one"), add_message(conversation, contractor, "Read one")]
    age(first, 20)
    ReadState.objects.create(conversation=conversation, user=customer, last_read_seq=2)
    later = [add_message(conversation, contractor, "New one")]
    age(later, 6)

    assert digest.message_digests_send() == 1

    body = mail.outbox[0].body
    assert "New one" in body
    assert "Old one" not in body and "Read one" not in body
    assert mail.outbox[0].subject == "[BittieTasks] New message from Bob Builder about “Fix the leaking kitchen tap”"


def test_waits_for_the_delay_then_sends_the_burst_once(conversation, customer, contractor, add_message):
    burst = [add_message(conversation, contractor, "One"), add_message(conversation, contractor, "Two")]
    age(burst[:1], 2)

    assert digest.message_digests_send() == 0  # oldest unread is 2 minutes old
    age(burst[:1], 6)
    assert digest.message_digests_send() == 1
    assert "One" in mail.outbox[0].body and "Two" in mail.outbox[0].body

    # A later message after the digest: its own email, once it has waited.
    more = add_message(conversation, contractor, "Three")
    assert digest.message_digests_send() == 0
    age([more], 6)
    assert digest.message_digests_send() == 1
    assert "Three" in mail.outbox[1].body and "One" not in mail.outbox[1].body


def test_replying_counts_as_reading(conversation, customer, contractor, add_message):
    age([add_message(conversation, contractor, "Question?")], 10)
    add_message(conversation, customer, "Answer.")  # Dana's read state moves to her own message

    assert digest.message_digests_send() == 0
    assert mail.outbox == []


def test_both_sides_get_their_own_digest(conversation, customer, contractor, add_message):
    age([add_message(conversation, contractor, "From Bob")], 10)
    age([add_message(conversation, customer, "From Dana")], 8)
    # Dana replied, so she has read Bob's; Bob hasn't read Dana's.
    assert digest.message_digests_send() == 1
    assert mail.outbox[0].to == ["bob@example.com"]
    assert "From Dana" in mail.outbox[0].body


def test_email_preference_off_sends_nothing_and_does_not_pile_up(conversation, customer, contractor, add_message):
    NotificationPreference.objects.create(user=customer, kind="new_message", in_app=True, email=False)
    age([add_message(conversation, contractor, "Hello")], 10)

    assert digest.message_digests_send() == 0
    assert mail.outbox == []
    assert ReadState.objects.get(conversation=conversation, user=customer).last_emailed_seq == 1

    # Turning emails back on doesn't mail the old message.
    NotificationPreference.objects.filter(user=customer).update(email=True)
    assert digest.message_digests_send() == 0


def test_a_row_held_by_another_run_is_skipped_not_sent_twice(conversation, customer, contractor, add_message):
    age([add_message(conversation, contractor, a) for a in ("a", "b", "c")], 10)
    digest._ensure_read_states(timezone.now() - dt.timedelta(days=1))
    state = ReadState.objects.get(conversation=conversation, user=customer)
    holding, release = threading.Event(), threading.Event()

    def other_run():
        # Another beat run that has locked Dana's row and is still sending.
        try:
            with transaction.atomic():
                ReadState.objects.select_for_update().get(pk=state.pk)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert holding.wait(10)
        assert digest.message_digests_send() == 0  # skipped, not waited on
    finally:
        release.set()
        thread.join(10)
    assert mail.outbox == []
    assert digest.message_digests_send() == 1
    assert digest.message_digests_send() == 0
    assert len(mail.outbox) == 1
