"""With the channel layer's Redis stopped, a message posted over HTTP is still
saved, and the page tells the people in the conversation that live updates are
paused (the server renders it; the script keeps the same banner while it
reconnects)."""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest
from django.urls import reverse

from messaging import views as messaging_views
from messaging.models import Message
from tests.tasks.pages_support import text

pytestmark = pytest.mark.django_db

PAUSED = "Live updates paused — your messages are still saved. Reload to see new replies."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_redis():
    """A Redis of our own on a free port, so stopping it leaves the shared one alone."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is needed for this test (Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def layer_on(settings, private_redis):
    """Point the channel layer (only) at the private Redis; return a stop() for it."""
    proc, redis_url = private_redis
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layer.PipelinedPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"bt-down-{uuid.uuid4().hex[:8]}"},
        }
    }
    messaging_views._reset_live_cache()

    def stop():
        proc.terminate()
        proc.wait(timeout=10)
        messaging_views._reset_live_cache()

    yield stop
    messaging_views._reset_live_cache()


def _live_state(html: str) -> str:
    match = re.search(r'data-live="(\w+)"', html)
    assert match
    return match.group(1)


def test_with_redis_up_the_page_is_live(client, customer, conversation, layer_on):
    client.force_login(customer)
    response = client.get(reverse("messaging:conversation", args=[conversation.public_id]))
    html = response.content.decode()
    assert _live_state(html) == "ok"
    assert re.search(r'id="live-status" role="status" aria-live="polite" hidden', html)
    assert PAUSED not in text(response)


def test_with_redis_stopped_a_posted_message_is_saved_and_the_page_says_paused(
    client, customer, contractor, conversation, layer_on, caplog, django_capture_on_commit_callbacks
):
    layer_on()  # Redis stops
    client.force_login(customer)
    caplog.set_level(logging.WARNING)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("messaging:send", args=[conversation.public_id]),
            {"body": "Water is off at the main valve.", "client_id": str(uuid.uuid4())},
            follow=True,
        )

    # Saved, with the next sequence number...
    message = Message.objects.get()
    assert (message.body, message.seq, message.sender) == ("Water is off at the main valve.", 1, customer)
    conversation.refresh_from_db()
    assert conversation.last_seq == 1
    # ...although the broadcast after commit really failed (logged, swallowed).
    assert callbacks, "the broadcast was queued for after commit"
    assert any("channel layer: could not send chat.message" in r.getMessage() for r in caplog.records)

    # What the sender sees: their message, a notice that it is saved, and the paused banner.
    assert response.status_code == 200
    page = text(response)
    assert "Water is off at the main valve." in page
    assert "Your message is saved. Live updates are paused, so Bob Builder will see it when their page reconnects or reloads." in page
    assert PAUSED in page
    assert _live_state(response.content.decode()) == "paused"

    # The other side, loading the page over HTTP, gets the message and the same banner.
    client.force_login(contractor)
    other = client.get(reverse("messaging:conversation", args=[conversation.public_id]))
    assert "Water is off at the main valve." in text(other)
    assert PAUSED in text(other)


def test_with_redis_stopped_the_scripts_http_send_is_saved_and_says_not_live(
    client, customer, conversation, layer_on, django_capture_on_commit_callbacks
):
    layer_on()
    client.force_login(customer)
    cid = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("messaging:send", args=[conversation.public_id]),
            {"body": "Sent while the socket is down", "client_id": cid},
            HTTP_ACCEPT="application/json",
        )
    assert response.status_code == 201
    assert response.json()["live"] is False
    assert response.json()["message"]["client_id"] == cid
    assert Message.objects.filter(client_id=cid).count() == 1


def test_catch_up_and_read_still_work_over_http_with_redis_stopped(
    client, customer, contractor, conversation, add_message, layer_on, django_capture_on_commit_callbacks
):
    add_message(conversation, contractor, "Before the outage")
    layer_on()
    client.force_login(customer)
    after = client.get(reverse("messaging:after", args=[conversation.public_id]) + "?seq=0")
    assert [m["body"] for m in after.json()["messages"]] == ["Before the outage"]
    with django_capture_on_commit_callbacks(execute=True):
        read = client.post(
            reverse("messaging:read", args=[conversation.public_id]), {"seq": "1"}, HTTP_ACCEPT="application/json"
        )
    assert read.json() == {"seq": 1}
