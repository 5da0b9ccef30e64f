"""The conversation socket through Channels' test communicator, against the
real ASGI application (origin check, session auth, URL router) on the Redis
Pub/Sub channel layer and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from marketplace.asgi import application
from messaging import consumers
from messaging.models import Message, ReadState

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 3


@pytest.fixture
def dana_headers(session_headers, customer):
    return session_headers(customer)


@pytest.fixture
def bob_headers(session_headers, contractor):
    return session_headers(contractor)


def _path(conversation) -> str:
    return f"/ws/conversations/{conversation.public_id}/"


async def _open(path: str, headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _subprotocol = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def _closed_with(communicator: WebsocketCommunicator) -> int | None:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", output
    return output.get("code")


async def _frames_until(communicator: WebsocketCommunicator, frame_type: str) -> list[dict]:
    """Every frame received up to and including the first of ``frame_type``."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames


async def _count(**filters) -> int:
    return await database_sync_to_async(Message.objects.filter(**filters).count)()


def _send_frame(body: str = "Is Thursday OK?", client_id: str | None = None) -> dict:
    return {"type": "send", "client_id": client_id or str(uuid.uuid4()), "body": body}


# --- Who may connect ---------------------------------------------------------------


async def test_participants_chat_live(conversation, dana_headers, bob_headers, customer, contractor):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)

    client_id = str(uuid.uuid4())
    await dana.send_json_to(_send_frame("Can you come Thursday?", client_id))

    dana_frames = await _frames_until(dana, "ack")
    assert dana_frames[-1] == {"type": "ack", "client_id": client_id, "seq": 1}
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "message"
    message = frame["message"]
    assert message["seq"] == 1
    assert message["body"] == "Can you come Thursday?"
    assert message["client_id"] == client_id
    assert message["sender"] == {"id": str(customer.public_id), "name": "Dana Lee"}
    assert message["attachment"] is None

    await bob.send_json_to(_send_frame("Thursday at 9 works."))
    frame = await dana.receive_json_from(timeout=TIMEOUT)
    if frame["type"] == "message" and frame["message"]["seq"] == 1:  # her own echo, if it came after the ack
        frame = await dana.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "message"
    assert frame["message"]["seq"] == 2
    assert frame["message"]["sender"]["name"] == "Bob Builder"
    assert await _count(conversation=conversation) == 2

    await dana.disconnect()
    await bob.disconnect()


async def test_anonymous_refused_with_4401(conversation):
    communicator = WebsocketCommunicator(application, _path(conversation), headers=[(b"origin", b"http://testserver")])
    await communicator.connect(timeout=TIMEOUT)
    assert await _closed_with(communicator) == 4401
    await communicator.disconnect()


@pytest.fixture(params=["outsider", "other_contractor"])
def stranger_headers(request, session_headers):
    """Another customer, and a contractor with no offer on the task."""
    return session_headers(request.getfixturevalue(request.param))


async def test_non_participant_refused_with_4403(conversation, stranger_headers):
    communicator = WebsocketCommunicator(application, _path(conversation), headers=stranger_headers)
    await communicator.connect(timeout=TIMEOUT)
    assert await _closed_with(communicator) == 4403
    await communicator.disconnect()


async def test_unknown_conversation_gets_the_same_4403(conversation, dana_headers):
    communicator = WebsocketCommunicator(application, f"/ws/conversations/{uuid.uuid4()}/", headers=dana_headers)
    await communicator.connect(timeout=TIMEOUT)
    assert await _closed_with(communicator) == 4403
    await communicator.disconnect()


async def test_foreign_origin_refused(conversation, session_headers, customer):
    headers = await database_sync_to_async(session_headers)(customer, origin="https://evil.example")
    communicator = WebsocketCommunicator(application, _path(conversation), headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected


async def test_staff_reader_can_follow_but_not_write(conversation, session_headers, staff, bob_headers):
    headers = await database_sync_to_async(session_headers)(staff)
    sam = await _open(_path(conversation), headers)
    bob = await _open(_path(conversation), bob_headers)

    await sam.send_json_to(_send_frame("Staff here"))
    error = await sam.receive_json_from(timeout=TIMEOUT)
    assert error["type"] == "error"
    assert error["code"] == "not_participant"
    assert await _count() == 0

    await bob.send_json_to(_send_frame("Hello Dana"))
    frame = await sam.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "message"
    assert frame["message"]["body"] == "Hello Dana"
    await sam.disconnect()
    await bob.disconnect()


async def test_twenty_first_socket_of_a_user_refused_with_4429(conversation, dana_headers):
    open_sockets = [await _open(_path(conversation), dana_headers) for _ in range(consumers.SOCKETS_PER_USER)]
    extra = WebsocketCommunicator(application, _path(conversation), headers=dana_headers)
    await extra.connect(timeout=TIMEOUT)
    assert await _closed_with(extra) == 4429
    await extra.disconnect()

    # Closing one frees a place.
    await open_sockets.pop().disconnect()
    again = await _open(_path(conversation), dana_headers)
    await again.send_json_to({"type": "resume", "after_seq": 0})
    assert await again.receive_nothing(timeout=0.3)
    await again.disconnect()
    for communicator in open_sockets:
        await communicator.disconnect()


# --- Reconnecting, resending ---------------------------------------------------------------


async def test_reconnecting_client_gets_exactly_what_it_missed(conversation, dana_headers, bob_headers):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)
    await dana.send_json_to(_send_frame("one"))
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert frame["message"]["seq"] == 1
    await bob.disconnect()  # Bob's train goes into a tunnel

    for body in ("two", "three", "four"):
        await dana.send_json_to(_send_frame(body))
        await _frames_until(dana, "ack")

    bob = await _open(_path(conversation), bob_headers)
    await bob.send_json_to({"type": "resume", "after_seq": 1})
    missed = [await bob.receive_json_from(timeout=TIMEOUT) for _ in range(3)]
    assert [(f["type"], f["message"]["seq"], f["message"]["body"]) for f in missed] == [
        ("message", 2, "two"),
        ("message", 3, "three"),
        ("message", 4, "four"),
    ]
    assert await bob.receive_nothing(timeout=0.3)  # and nothing twice

    # And live delivery carries on after the catch-up.
    await dana.send_json_to(_send_frame("five"))
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert (frame["message"]["seq"], frame["message"]["body"]) == (5, "five")
    await dana.disconnect()
    await bob.disconnect()


async def test_resume_from_zero_pages_through_long_history(conversation, dana_headers, customer):
    def fill():
        Message.objects.bulk_create(
            Message(conversation=conversation, seq=n, sender=customer, client_id=uuid.uuid4(), body=f"message {n}")
            for n in range(1, 251)
        )
        type(conversation).objects.filter(pk=conversation.pk).update(last_seq=250)

    await database_sync_to_async(fill)()
    dana = await _open(_path(conversation), dana_headers)
    await dana.send_json_to({"type": "resume", "after_seq": 0})
    seqs = [(await dana.receive_json_from(timeout=TIMEOUT))["message"]["seq"] for _ in range(250)]
    assert seqs == list(range(1, 251))
    assert await dana.receive_nothing(timeout=0.3)
    await dana.disconnect()


async def test_duplicate_client_id_saved_once_and_acked_with_the_same_seq(conversation, dana_headers, bob_headers):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)
    client_id = str(uuid.uuid4())

    await dana.send_json_to(_send_frame("Did my message arrive?", client_id))
    first_ack = (await _frames_until(dana, "ack"))[-1]
    # The socket dropped before the ack reached her; the page resends on a new one.
    await dana.disconnect()
    dana = await _open(_path(conversation), dana_headers)
    await dana.send_json_to(_send_frame("Did my message arrive?", client_id))
    second_ack = (await _frames_until(dana, "ack"))[-1]

    assert first_ack == second_ack == {"type": "ack", "client_id": client_id, "seq": 1}
    assert await _count(conversation=conversation) == 1
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert frame["message"]["seq"] == 1
    assert await bob.receive_nothing(timeout=0.3)  # the resend is not broadcast again
    await dana.disconnect()
    await bob.disconnect()


async def test_same_message_from_two_tabs_at_once_saved_once(conversation, dana_headers, bob_headers):
    # Two of Dana's tabs resend the same unacked message at the same moment.
    tabs = [await _open(_path(conversation), dana_headers) for _ in range(2)]
    bob = await _open(_path(conversation), bob_headers)
    client_id = str(uuid.uuid4())

    await asyncio.gather(*(tab.send_json_to(_send_frame("Only once, please", client_id)) for tab in tabs))
    acks = [(await _frames_until(tab, "ack"))[-1] for tab in tabs]

    assert acks == [{"type": "ack", "client_id": client_id, "seq": 1}] * 2
    assert await _count(conversation=conversation) == 1
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert (frame["message"]["seq"], frame["message"]["body"]) == (1, "Only once, please")
    assert await bob.receive_nothing(timeout=0.3)
    for communicator in (*tabs, bob):
        await communicator.disconnect()


async def test_a_socket_message_marks_it_read_for_the_sender_and_notifies_the_other(
    conversation, task, dana_headers, bob_headers, customer, contractor
):
    from django.urls import reverse

    from messaging.models import Notification

    dana = await _open(_path(conversation), dana_headers)
    bob_bell = WebsocketCommunicator(application, "/ws/notifications/", headers=bob_headers)
    assert (await bob_bell.connect(timeout=TIMEOUT))[0]
    assert await bob_bell.receive_json_from(timeout=TIMEOUT) == {"type": "unread", "unread": 0}

    await dana.send_json_to(_send_frame("The tap drips again"))
    assert (await _frames_until(dana, "ack"))[-1]["seq"] == 1

    frame = await bob_bell.receive_json_from(timeout=TIMEOUT)
    notice = await database_sync_to_async(Notification.objects.get)(user=contractor)
    assert (notice.kind, notice.body, notice.read_at) == ("new_message", "The tap drips again", None)
    assert frame == {
        "type": "notification",
        "unread": 1,
        "notification": {
            "id": str(notice.public_id),
            "kind": "new_message",
            "kind_label": "New message",
            "title": "New message from Dana Lee",
            "body": "The tap drips again",
            "url": notice.url,
            "created_at": notice.created_at.isoformat(),
            "read": False,
        },
    }
    assert notice.url == reverse("tasks:detail", args=[task.public_id])
    state = await database_sync_to_async(ReadState.objects.get)(conversation=conversation, user=customer)
    assert state.last_read_seq == 1
    await dana.disconnect()
    await bob_bell.disconnect()


# --- Bad frames ---------------------------------------------------------------------------


BAD_FRAMES = [
    ("{not json", "malformed"),
    ("[1, 2, 3]", "malformed"),
    ('"send"', "malformed"),
    ('{"body": "no type"}', "malformed"),
    ('{"type": "shout", "body": "hi"}', "unknown_type"),
    ('{"type": "send", "body": "no client id"}', "invalid"),
    (json.dumps({"type": "send", "client_id": str(uuid.uuid4())}), "invalid"),
    (json.dumps({"type": "send", "client_id": "not-a-uuid", "body": "hi"}), "invalid_client_id"),
    (json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "body": 42}), "invalid"),
    (json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "body": "   "}), "empty_message"),
    (json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "body": "x" * 4001}), "body_too_long"),
    ('{"type": "read"}', "invalid"),
    ('{"type": "read", "seq": -1}', "invalid"),
    ('{"type": "read", "seq": "3"}', "invalid"),
    ('{"type": "resume"}', "invalid"),
    ('{"type": "resume", "after_seq": "zero"}', "invalid"),
]


async def test_bad_frames_get_an_error_frame_and_save_nothing(conversation, dana_headers):
    for raw, code in BAD_FRAMES:
        # A fresh socket per frame, so the frame rate limit never kicks in.
        dana = await _open(_path(conversation), dana_headers)
        await dana.send_to(text_data=raw)
        frame = await dana.receive_json_from(timeout=TIMEOUT)
        assert (frame["type"], frame["code"]) == ("error", code), raw
        assert frame["message"]
        assert await _count() == 0, raw
        await dana.disconnect()

    # The socket stays usable after a bad frame.
    dana = await _open(_path(conversation), dana_headers)
    await dana.send_to(text_data="{not json")
    assert (await dana.receive_json_from(timeout=TIMEOUT))["code"] == "malformed"
    await dana.send_json_to(_send_frame("still here"))
    assert (await _frames_until(dana, "ack"))[-1]["seq"] == 1
    await dana.disconnect()


async def test_binary_frame_gets_an_error_frame(conversation, dana_headers):
    dana = await _open(_path(conversation), dana_headers)
    await dana.send_to(bytes_data=b'{"type": "send"}')
    frame = await dana.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "malformed")
    await dana.disconnect()


async def test_oversized_frame_closes_with_1009_and_saves_nothing(conversation, dana_headers, bob_headers):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)
    frame = json.dumps(_send_frame("x" * 70_000))
    assert len(frame) > 65_536
    await dana.send_to(text_data=frame)
    assert await _closed_with(dana) == 1009
    assert await _count() == 0
    assert await bob.receive_nothing(timeout=0.3)
    await bob.disconnect()


async def test_multibyte_frame_over_64_kb_closes_with_1009(conversation, dana_headers):
    dana = await _open(_path(conversation), dana_headers)
    frame = json.dumps(_send_frame("é" * 3000 + "🔧" * 15_000), ensure_ascii=False)
    assert len(frame) < 65_536 < len(frame.encode())
    await dana.send_to(text_data=frame)
    assert await _closed_with(dana) == 1009
    assert await _count() == 0


async def test_more_than_ten_frames_a_second_rate_limited(conversation, dana_headers):
    dana = await _open(_path(conversation), dana_headers)
    for _ in range(consumers.FRAMES_PER_SECOND):
        await dana.send_json_to({"type": "typing"})
    await dana.send_json_to(_send_frame("one too many"))
    frame = await dana.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["code"]) == ("error", "rate_limited")
    assert await _count() == 0

    await asyncio.sleep(1.05)
    await dana.send_json_to(_send_frame("after a breath"))
    assert (await _frames_until(dana, "ack"))[-1]["seq"] == 1
    await dana.disconnect()


# --- Typing and read receipts -----------------------------------------------------------


async def test_typing_reaches_the_other_participant_only(conversation, dana_headers, bob_headers, customer):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)
    await dana.send_json_to({"type": "typing"})
    frame = await bob.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "typing", "user": str(customer.public_id), "name": "Dana Lee"}
    assert await dana.receive_nothing(timeout=0.3)
    assert await _count() == 0
    await dana.disconnect()
    await bob.disconnect()


async def test_read_frame_reaches_the_other_participant(conversation, dana_headers, bob_headers, contractor):
    dana = await _open(_path(conversation), dana_headers)
    bob = await _open(_path(conversation), bob_headers)
    await dana.send_json_to(_send_frame("Please bring a cartridge"))
    await _frames_until(dana, "message")  # her own message, broadcast
    assert (await bob.receive_json_from(timeout=TIMEOUT))["message"]["seq"] == 1

    await bob.send_json_to({"type": "read", "seq": 1})
    frame = await dana.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "read", "user": str(contractor.public_id), "seq": 1}
    state = await database_sync_to_async(ReadState.objects.get)(conversation=conversation, user=contractor)
    assert state.last_read_seq == 1

    # Reading again (or an older seq) moves nothing and rings nobody.
    await bob.send_json_to({"type": "read", "seq": 0})
    assert await dana.receive_nothing(timeout=0.3)
    await dana.disconnect()
    await bob.disconnect()
