"""messaging/services.py: opening conversations, sending, reading."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from core.errors import ApplicationError, NotFound, PermissionDenied
from messaging.models import Conversation, Message, Notification, ReadState
from messaging.services import conversation_open, message_mark_read, message_payload, message_send
from tasks.models import Task
from tests.factories import UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory


def _send(conversation, by, body="Is Thursday OK?", client_id=None):
    return message_send(conversation, by=by, body=body, client_id=client_id or uuid.uuid4())


def _assert_nothing_written(conversation, callbacks):
    assert Message.objects.count() == 0
    conversation.refresh_from_db()
    assert conversation.last_seq == 0
    assert conversation.last_message_at is None
    assert ReadState.objects.count() == 0
    assert Notification.objects.count() == 0
    assert callbacks == []  # no broadcast, no notification queued


# --- Sending ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_messages_numbered_in_order_per_conversation(conversation, customer, contractor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, created = _send(conversation, customer, "  Can you come Thursday?\n")
        second, _ = _send(conversation, contractor, "Thursday at 9 works.")
        third, _ = _send(conversation, customer, "Great, see you then.")

    assert created is True
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.body == "Can you come Thursday?"  # trimmed
    conversation.refresh_from_db()
    assert conversation.last_seq == 3
    assert conversation.last_message_at is not None
    # Writing means having read up to one's own message.
    assert ReadState.objects.get(conversation=conversation, user=customer).last_read_seq == 3
    assert ReadState.objects.get(conversation=conversation, user=contractor).last_read_seq == 2
    # The other party gets an in-app notification per message (the digest job emails later).
    to_bob = Notification.objects.filter(user=contractor, kind="new_message")
    assert [n.body for n in to_bob.order_by("created_at")] == ["Can you come Thursday?", "Great, see you then."]
    assert to_bob.first().title == "New message from Dana Lee"
    assert to_bob.first().task_id == conversation.task_id
    assert Notification.objects.filter(user=customer, kind="new_message").count() == 1


@pytest.mark.django_db
def test_sequence_is_per_conversation(conversation, customer, contractor, other_contractor):
    OfferFactory(task=conversation.task, contractor=other_contractor)
    with_eve = conversation_open(conversation.task, by=other_contractor)
    _send(conversation, customer)
    _send(conversation, customer)
    message, _ = _send(with_eve, customer)
    assert message.seq == 1


@pytest.mark.django_db
def test_broadcast_after_commit_with_the_payload(conversation, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        message, _ = _send(conversation, customer, "Hello Bob")
    # One broadcast to the conversation's group and one notification, both after commit.
    assert len(callbacks) == 2
    payload = message_payload(message)
    assert payload == {
        "seq": 1,
        "id": str(message.public_id),
        "client_id": str(message.client_id),
        "sender": {"id": str(customer.public_id), "name": "Dana Lee"},
        "body": "Hello Bob",
        "created_at": message.created_at.isoformat(),
        "attachment": None,
    }


@pytest.mark.django_db
def test_resend_with_same_client_id_saved_once(conversation, customer, django_capture_on_commit_callbacks):
    client_id = uuid.uuid4()
    first, created = _send(conversation, customer, "Hello", client_id)
    with django_capture_on_commit_callbacks() as callbacks:
        again, created_again = _send(conversation, customer, "Hello", str(client_id))
    assert created is True
    assert created_again is False
    assert again.pk == first.pk
    assert again.seq == 1
    assert Message.objects.count() == 1
    conversation.refresh_from_db()
    assert conversation.last_seq == 1
    assert callbacks == []  # not broadcast or notified twice


@pytest.mark.django_db
def test_client_id_of_the_other_participant_refused(conversation, customer, contractor):
    client_id = uuid.uuid4()
    _send(conversation, customer, "Hello", client_id)
    with pytest.raises(ApplicationError) as error:
        _send(conversation, contractor, "Hi", client_id)
    assert error.value.code == "client_id_taken"
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_body_of_4000_characters_accepted(conversation, customer):
    message, _ = _send(conversation, customer, "x" * 4000)
    assert len(message.body) == 4000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "client_id", "code", "field"),
    [
        ("x" * 4001, uuid.uuid4(), "body_too_long", "body"),
        ("", uuid.uuid4(), "empty_message", "body"),
        ("  \n\t ", uuid.uuid4(), "empty_message", "body"),
        (None, uuid.uuid4(), "empty_message", "body"),
        (42, uuid.uuid4(), "invalid_body", "body"),
        ("Hello", "not-a-uuid", "invalid_client_id", "client_id"),
        ("Hello", None, "invalid_client_id", "client_id"),
    ],
)
def test_bad_message_refused_with_nothing_written(
    body, client_id, code, field, conversation, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as error:
        message_send(conversation, by=customer, body=body, client_id=client_id)
    assert error.value.code == code
    assert field in error.value.fields
    _assert_nothing_written(conversation, callbacks)


@pytest.mark.django_db
def test_fake_attachment_refused_with_nothing_written(conversation, customer, django_capture_on_commit_callbacks, settings):
    upload = SimpleUploadedFile("holiday.jpg", b"MZ\x90\x00 this is a program, not a photo", content_type="image/jpeg")
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as error:
        message_send(conversation, by=customer, body="", client_id=uuid.uuid4(), attachment=upload)
    assert "attachment" in error.value.fields
    _assert_nothing_written(conversation, callbacks)
    folder = Path(settings.MEDIA_ROOT) / "messages" / str(conversation.public_id)
    assert not [p for p in folder.glob("**/*") if p.is_file()]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["outsider", "other_contractor", "anonymous", "staff", "unverified_customer"])
def test_non_participant_cannot_write(who, request, conversation, django_capture_on_commit_callbacks):
    if who == "anonymous":
        user = AnonymousUser()
    elif who == "unverified_customer":
        # Dana herself, before verifying her email.
        user = conversation.customer
        user.email_verified_at = None
        user.save(update_fields=["email_verified_at"])
    else:
        user = request.getfixturevalue(who)
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(PermissionDenied):
        _send(conversation, user, "Let me in")
    _assert_nothing_written(conversation, callbacks)


@pytest.mark.django_db(transaction=True)
def test_two_messages_sent_at_the_same_moment_get_seq_1_and_2(conversation, customer, contractor):
    barrier = threading.Barrier(2)
    seqs: list[int] = []
    errors: list[BaseException] = []

    def send(user, body):
        try:
            barrier.wait(timeout=5)
            message, _ = message_send(conversation, by=user, body=body, client_id=uuid.uuid4())
            seqs.append(message.seq)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(customer, "From Dana")),
        threading.Thread(target=send, args=(contractor, "From Bob")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert sorted(seqs) == [1, 2]
    assert sorted(Message.objects.values_list("seq", flat=True)) == [1, 2]
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 2


@pytest.mark.django_db(transaction=True)
def test_same_client_id_sent_twice_at_once_saved_once(conversation, customer):
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    client_id = uuid.uuid4()

    def send():
        try:
            barrier.wait(timeout=5)
            message, created = message_send(conversation, by=customer, body="Hello", client_id=client_id)
            results.append((message.seq, created))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results) == [(1, False), (1, True)]
    assert Message.objects.count() == 1


# --- Read state ------------------------------------------------------------------------


@pytest.mark.django_db
def test_read_state_only_moves_forward_and_stops_at_the_last_message(
    conversation, customer, contractor, django_capture_on_commit_callbacks
):
    for _ in range(3):
        _send(conversation, customer)
    with django_capture_on_commit_callbacks() as callbacks:
        state = message_mark_read(conversation, by=contractor, up_to_seq=2)
    assert state.last_read_seq == 2
    assert len(callbacks) == 1  # the read receipt

    with django_capture_on_commit_callbacks() as callbacks:
        state = message_mark_read(conversation, by=contractor, up_to_seq=1)
    assert state.last_read_seq == 2
    assert callbacks == []  # nothing moved, nobody rung

    state = message_mark_read(conversation, by=contractor, up_to_seq=999)
    assert state.last_read_seq == 3
    assert ReadState.objects.get(conversation=conversation, user=contractor).last_read_seq == 3


@pytest.mark.django_db
@pytest.mark.parametrize("seq", [-1, "2", None, 1.5, True])
def test_bad_read_seq_refused(seq, conversation, contractor):
    with pytest.raises(ApplicationError) as error:
        message_mark_read(conversation, by=contractor, up_to_seq=seq)
    assert error.value.code == "invalid_seq"
    assert ReadState.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["outsider", "staff"])
def test_non_participant_cannot_mark_read(who, request, conversation, customer):
    _send(conversation, customer)
    with pytest.raises(PermissionDenied):
        message_mark_read(conversation, by=request.getfixturevalue(who), up_to_seq=1)
    assert list(ReadState.objects.values_list("user_id", flat=True)) == [customer.pk]


# --- Opening conversations -----------------------------------------------------------------


@pytest.mark.django_db
def test_contractor_asks_a_question_on_an_open_task(task, other_contractor, customer):
    conversation = conversation_open(task, by=other_contractor)
    assert (conversation.task, conversation.customer, conversation.contractor) == (task, customer, other_contractor)
    assert conversation_open(task, by=other_contractor) == conversation
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_customer_opens_with_a_contractor_who_made_an_offer(task, offer, customer, contractor):
    conversation = conversation_open(task, by=customer, contractor=contractor)
    assert conversation.contractor == contractor
    assert conversation_open(task, by=contractor) == conversation


@pytest.mark.django_db
def test_assigned_contractor_keeps_talking_after_the_task_is_booked(customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True, photos=0)
    assert conversation_open(task, by=contractor).contractor == contractor
    assert conversation_open(task, by=customer, contractor=contractor).contractor == contractor


@pytest.mark.django_db
def test_customer_cannot_open_with_a_contractor_without_an_offer(task, customer, other_contractor):
    with pytest.raises(PermissionDenied):
        conversation_open(task, by=customer, contractor=other_contractor)
    with pytest.raises(ApplicationError) as error:
        conversation_open(task, by=customer)
    assert error.value.code == "contractor_required"
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_no_new_questions_once_the_task_is_booked(customer, contractor, other_contractor):
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True, photos=0)
    with pytest.raises((PermissionDenied, NotFound)):
        conversation_open(task, by=other_contractor)
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_draft_task_is_not_found_for_contractors(customer, other_contractor):
    task = TaskFactory(customer=customer, draft=True, photos=0)
    with pytest.raises(NotFound):
        conversation_open(task, by=other_contractor)
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_customers_who_are_not_contractors_cannot_ask(task, outsider):
    with pytest.raises(PermissionDenied):
        conversation_open(task, by=outsider)
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_unverified_contractor_cannot_open(task):
    user = UserFactory(unverified=True, is_contractor=True)
    with pytest.raises(PermissionDenied):
        conversation_open(task, by=user)
    assert Conversation.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_first_questions_at_once_make_one_conversation(task, other_contractor):
    barrier = threading.Barrier(2)
    opened: list[int] = []

    def open_it():
        try:
            barrier.wait(timeout=5)
            opened.append(conversation_open(Task.objects.get(pk=task.pk), by=other_contractor).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(opened) == 2
    assert len(set(opened)) == 1
    assert Conversation.objects.count() == 1



# --- The recipient's notification, from the send -----------------------------------------


@pytest.fixture
def pushes(monkeypatch):
    from messaging import notifications

    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(notifications, "_group_send", lambda group, event: sent.append((group, event)))
    return sent


@pytest.mark.django_db
def test_the_recipient_gets_a_live_notification_with_their_unread_count(
    conversation, customer, contractor, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _send(conversation, customer, "Can you come Thursday?")
        _send(conversation, customer, "Or Friday?")

    notices = [event for group, event in pushes if group == f"user.{contractor.public_id}"]
    assert [n["unread"] for n in notices] == [1, 2]
    saved = Notification.objects.get(user=contractor, body="Or Friday?")
    assert notices[1]["notification"] == {
        "id": str(saved.public_id),
        "kind": "new_message",
        "kind_label": "New message",
        "title": "New message from Dana Lee",
        "body": "Or Friday?",
        "url": saved.url,
        "created_at": saved.created_at.isoformat(),
        "read": False,
    }
    assert saved.url == reverse("tasks:detail", args=[conversation.task.public_id])
    assert not [group for group, _event in pushes if group == f"user.{customer.public_id}"]


@pytest.mark.django_db
def test_in_app_off_for_new_messages_saves_the_message_without_a_notification(
    conversation, customer, contractor, pushes, django_capture_on_commit_callbacks
):
    from messaging.models import NotificationPreference

    NotificationPreference.objects.create(user=contractor, kind="new_message", in_app=False, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        message, created = _send(conversation, customer, "Quiet please")

    assert created and message.seq == 1
    assert Notification.objects.filter(user=contractor).count() == 0
    assert pushes == []


@pytest.mark.django_db
def test_the_notification_shows_the_first_140_characters(conversation, customer, contractor):
    short = "Cafe\u0301 at 9?"  # decomposed accent: shown composed, as before
    exact = "x" * 140
    long = "Can you also look at the boiler? " * 10
    for body in (short, exact, long):
        _send(conversation, customer, body)

    previews = list(Notification.objects.filter(user=contractor).order_by("id").values_list("body", flat=True))
    assert previews[:2] == ["Caf\u00e9 at 9?", exact]
    assert len(previews[2]) == 140 and previews[2].endswith("\u2026")
    assert long.startswith(previews[2][:-1])


@pytest.mark.django_db
def test_no_notification_for_a_deactivated_recipient(conversation, customer, contractor, pushes):
    contractor.is_active = False
    contractor.save(update_fields=["is_active"])
    conversation.refresh_from_db()
    message, created = _send(conversation, customer, "Still there?")
    assert created and Message.objects.get(pk=message.pk).body == "Still there?"
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_a_text_message_is_saved_in_one_statement(conversation, customer, contractor):
    from django.test.utils import CaptureQueriesContext

    conversation = Conversation.objects.select_related("task", "customer", "contractor").get(pk=conversation.pk)
    _send(conversation, customer, "warm-up")  # the first send creates the sender's read state
    with CaptureQueriesContext(connection) as queries:
        _send(conversation, customer, "Second")
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 1, statements
    assert Message.objects.filter(conversation=conversation).count() == 2
    assert ReadState.objects.get(conversation=conversation, user=customer).last_read_seq == 2
