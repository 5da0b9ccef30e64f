"""Two people chat about a task in two real Chromium contexts, over real
WebSockets: the site runs under uvicorn (ASGI, as deployed) in this process,
against the test database and the Redis channel layer. A message typed by one
appears on the other's page without a reload, a shared photo's thumbnail
appears for the other, and "Seen" shows once the other has read it.

Run in its own process:
    DJANGO_ALLOW_ASYNC_UNSAFE=true .venv/bin/python -m pytest tests/browser/test_chat.py
"""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest
import uvicorn
from django.conf import settings
from django.db import connection
from django.test import Client
from PIL import Image
from playwright.sync_api import expect

from messaging.models import Conversation, Message, ReadState
from tests.browser.conftest import ARTIFACTS, PHONE, shot
from tests.factories import ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server():
    """uvicorn serving marketplace.asgi (HTTP and WebSockets) in a thread of this
    process, so it uses the test database and settings. pytest-django's
    live_server is WSGI only: no sockets."""
    from marketplace.asgi import application

    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning", ws_max_size=65536
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    # The server's worker threads kept their own database connections: end them,
    # or the test database can't be flushed and dropped.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def jpeg_bytes(size=(1024, 768)) -> bytes:
    image = Image.new("RGB", size, (40, 110, 190))
    for x in range(0, size[0], 64):  # stripes, so the thumbnail visibly is the photo
        image.paste((230, 180, 40), (x, 0, x + 24, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def logged_in_page(browser, browser_context_args, base: str, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context(**browser_context_args)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": base}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def phone_shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)


def test_two_people_chat_live_share_a_photo_and_see_read_receipts(browser, browser_context_args, asgi_server):
    dana = UserFactory(email="dana@example.com", full_name="Dana Lee")
    bob = ContractorProfileFactory(
        user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-builder"
    ).user
    task = TaskFactory(customer=dana, title="Fix the leaking kitchen tap", photos=0)
    OfferFactory(task=task, contractor=bob)
    base = asgi_server

    dana_context, dana_page = logged_in_page(browser, browser_context_args, base, dana)
    bob_context, bob_page = logged_in_page(browser, browser_context_args, base, bob)
    errors: list[str] = []
    for page in (dana_page, bob_page):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # Dana starts the conversation from the task page's chat panel.
        dana_page.goto(f"{base}/tasks/{task.public_id}")
        panel = dana_page.locator("#chat-panel")
        expect(panel).to_contain_text("Messages")
        shot(dana_page, "chat-task-panel")
        panel.get_by_role("button", name="Message Bob Builder").click()
        dana_page.wait_for_url("**/messages/*/")
        conversation = Conversation.objects.get()
        assert (conversation.customer, conversation.contractor) == (dana, bob)

        bob_page.goto(f"{base}/messages/")
        bob_page.get_by_role("link", name="Dana Lee").click()
        bob_page.wait_for_url(f"**/messages/{conversation.public_id}/")

        for page in (dana_page, bob_page):
            expect(page.locator("#chat")).to_have_attribute("data-socket", "open")
            expect(page.locator("#live-status")).to_be_hidden()

        # Dana writes; Bob's page shows it without reloading.
        dana_page.get_by_role("textbox", name="Message").fill("Hi Bob, can you come Tuesday morning?")
        dana_page.get_by_role("button", name="Send").click()
        expect(bob_page.locator("#messages")).to_contain_text("Hi Bob, can you come Tuesday morning?")
        expect(dana_page.locator("#messages .msg-mine")).to_contain_text("Hi Bob, can you come Tuesday morning?")
        assert bob_page.evaluate("performance.getEntriesByType('navigation').length") == 1

        # Bob has the page open and visible: Dana sees "Seen".
        expect(dana_page.locator("#read-receipt")).to_be_visible()
        expect(dana_page.locator("#read-receipt")).to_have_text("✓ Seen")

        # Bob types: Dana sees him typing; then his reply arrives.
        bob_page.get_by_role("textbox", name="Message").press_sequentially("Tuesday 9 am works.", delay=20)
        expect(dana_page.locator("#typing")).to_have_text("Bob Builder is typing…")
        bob_page.get_by_role("button", name="Send").click()
        expect(dana_page.locator("#messages")).to_contain_text("Tuesday 9 am works.")
        # Dana's "Seen" is about her last message; Bob's turns on once Dana has read his.
        expect(bob_page.locator("#read-receipt")).to_be_visible()

        # Bob shares a photo of the part; its thumbnail appears on Dana's page.
        bob_page.get_by_role("textbox", name="Message").fill("This is the cartridge I will bring.")
        bob_page.set_input_files(
            "#id_attachment", files=[{"name": "cartridge.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes()}]
        )
        bob_page.get_by_role("button", name="Send").click()
        thumb = dana_page.locator("#messages img[alt='Photo: cartridge.jpg']")
        expect(thumb).to_be_visible()
        dana_page.wait_for_function(
            "() => { const i = document.querySelector(\"#messages img[alt='Photo: cartridge.jpg']\");"
            " return i && i.complete && i.naturalWidth === 400; }"
        )
        expect(bob_page.locator("#messages img[alt='Photo: cartridge.jpg']")).to_be_visible()
        expect(dana_page.locator("#messages")).to_contain_text("This is the cartridge I will bring.")

        photo = Message.objects.get(attachment_kind="image")
        assert photo.sender == bob
        assert photo.attachment_name == "cartridge.jpg"
        assert list(Message.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
        # Dana read everything as it arrived on her visible page.
        dana_page.wait_for_function("() => true")
        deadline = time.monotonic() + 10
        while ReadState.objects.get(conversation=conversation, user=dana).last_read_seq < 3:
            assert time.monotonic() < deadline, "Dana's page marks what she sees as read"
            time.sleep(0.1)
        expect(bob_page.locator("#read-receipt")).to_be_visible()

        phone_shot(bob_page, "chat-bob")
        shot(dana_page, "chat-dana")
        dana_page.goto(f"{base}/messages/")
        expect(dana_page.locator("#inbox")).to_contain_text("Bob Builder")
        shot(dana_page, "chat-inbox")
        dana_page.goto(f"{base}/messages/search?q=cartridge")
        expect(dana_page.locator(".search-headline mark")).to_have_text("cartridge")
        shot(dana_page, "chat-search")
        assert errors == []
    finally:
        dana_context.close()
        bob_context.close()


def test_page_says_paused_while_the_socket_is_down_and_the_form_still_sends(browser, browser_context_args, asgi_server):
    dana = UserFactory(email="dana@example.com", full_name="Dana Lee")
    bob = ContractorProfileFactory(user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-b").user
    task = TaskFactory(customer=dana, title="Hang two shelves", photos=0)
    OfferFactory(task=task, contractor=bob)
    conversation = Conversation.objects.create(task=task, customer=dana, contractor=bob)
    base = asgi_server
    context, page = logged_in_page(browser, browser_context_args, base, dana)
    try:
        # Every socket attempt fails (as when the socket server or Redis is down).
        page.route_web_socket("**/ws/conversations/**", lambda ws: ws.close(code=1011, reason="down"))
        page.goto(f"{base}/messages/{conversation.public_id}/")
        status = page.locator("#live-status")
        expect(status).to_be_visible()
        expect(status).to_have_text("Live updates paused — reconnecting…")
        page.get_by_role("textbox", name="Message").fill("Sent over HTTP while live updates are paused")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#messages li[data-seq='1']")).to_contain_text("Sent over HTTP while live updates are paused")
        deadline = time.monotonic() + 10
        while not Message.objects.filter(conversation=conversation).exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert Message.objects.get().body == "Sent over HTTP while live updates are paused"
        shot(page, "chat-paused")
    finally:
        context.close()
