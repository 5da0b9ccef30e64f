"""Messaging pages as people use them: the inbox, a conversation with its
history and the plain form, search, the JSON catch-up, attachments, starting a
conversation from the task page; and every page refused to the wrong people
with nothing changed."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from messaging import views as messaging_views
from messaging.models import Conversation, Message, ReadState
from tests.factories import UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import field_errors, text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _live_probe_fresh():
    messaging_views._reset_live_cache()
    yield
    messaging_views._reset_live_cache()


def jpeg(name: str = "sink.jpg", size=(800, 600)) -> SimpleUploadedFile:
    out = io.BytesIO()
    image = Image.new("RGB", size, (90, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    image.save(out, "JPEG", exif=exif)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def url(name: str, *args) -> str:
    return reverse(f"messaging:{name}", args=args)


def client_id_of(response) -> str:
    match = re.search(r'name="client_id" value="([0-9a-f-]{36})"', response.content.decode())
    assert match, "the form carries a client id"
    return match.group(1)


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "messages"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def headlines(html: str) -> list[str]:
    """Each search result's highlighted passage; the only markup in it is <mark>."""
    found = [h.strip() for h in re.findall(r'<p class="search-headline">(.*?)</p>', html, re.S)]
    for headline in found:
        assert "<" not in re.sub(r"</?mark>", "", headline), headline
    return found


def snapshot(conversation: Conversation) -> dict:
    conversation.refresh_from_db()
    return {
        "messages": sorted(Message.objects.values_list("pk", "seq", "body")),
        "last_seq": conversation.last_seq,
        "read": sorted(ReadState.objects.values_list("conversation_id", "user_id", "last_read_seq")),
        "conversations": Conversation.objects.count(),
        "files": stored_files(),
    }


# --- inbox -------------------------------------------------------------------------


def test_inbox_lists_my_conversations_with_name_task_last_message_and_unread(
    client, customer, contractor, conversation, add_message
):
    add_message(conversation, contractor, "Can I come Tuesday?")
    add_message(conversation, contractor, "Around 10 am works for me.")
    client.force_login(customer)

    response = client.get(url("inbox"))

    assert response.status_code == 200
    page = text(response)
    assert "Bob Builder" in page
    assert "Fix the leaking kitchen tap" in page
    assert "Around 10 am works for me." in page
    assert "2 unread" in page
    assert f'href="{url("conversation", conversation.public_id)}"' in response.content.decode()
    assert "bob@example.com" not in response.content.decode()


def test_inbox_shows_my_own_last_message_and_no_unread(client, customer, conversation, add_message):
    add_message(conversation, customer, "Thanks!")
    client.force_login(customer)
    page = text(client.get(url("inbox")))
    assert "You: Thanks!" in page
    assert "unread" not in page


def test_empty_inbox_says_what_to_do(client, contractor):
    client.force_login(contractor)
    page = text(client.get(url("inbox")))
    assert "No conversations yet." in page
    assert "Ask a question on an open task, or make an offer" in page


def test_inbox_is_not_shown_others_conversations(client, outsider, conversation, add_message, contractor):
    add_message(conversation, contractor, "Private to Dana")
    client.force_login(outsider)
    page = text(client.get(url("inbox")))
    assert "Private to Dana" not in page
    assert "No conversations yet." in page


def test_inbox_query_count_does_not_grow_with_conversations(
    client, customer, contractor, add_message, django_assert_max_num_queries
):
    def make_conversations(n):
        for _ in range(n):
            task = TaskFactory(customer=customer, photos=0)
            OfferFactory(task=task, contractor=contractor)
            conv = Conversation.objects.create(task=task, customer=customer, contractor=contractor)
            add_message(conv, contractor, "Hello")

    client.force_login(customer)
    make_conversations(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(url("inbox")).status_code == 200
    make_conversations(10)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url("inbox"))
    assert text(response).count("1 unread") == 12
    assert len(many) == len(few)
    with django_assert_max_num_queries(8):
        client.get(url("inbox"))


def test_nav_shows_messages_link_with_unread_count(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, "One")
    add_message(conversation, contractor, "Two")
    add_message(conversation, contractor, "Three")
    client.force_login(customer)
    html = client.get(reverse("accounts:dashboard")).content.decode()
    match = re.search(r'<a href="/messages/" id="nav-messages">(.*?)</a>', html, re.S)
    assert match
    assert "Messages" in match.group(1)
    assert re.search(r">\s*3\s*</span>", match.group(1))


# --- conversation page -------------------------------------------------------------


def test_conversation_shows_history_newest_last_for_both_participants(
    client, customer, contractor, conversation, add_message
):
    add_message(conversation, customer, "Is the tap dripping or running?")
    add_message(conversation, contractor, "Dripping, about once a second.")
    for user, other in ((customer, "Bob Builder"), (contractor, "Dana Lee")):
        client.force_login(user)
        response = client.get(url("conversation", conversation.public_id))
        assert response.status_code == 200
        page = text(response)
        assert page.index("Is the tap dripping or running?") < page.index("Dripping, about once a second.")
        assert f"{other}" in page
        assert "Fix the leaking kitchen tap" in page
        html = response.content.decode()
        assert 'id="send-form"' in html
        assert 'data-last-seq="2"' in html
        assert "messaging/chat.js" in html


def test_each_render_has_a_new_client_id(client, customer, conversation):
    client.force_login(customer)
    first = client_id_of(client.get(url("conversation", conversation.public_id)))
    second = client_id_of(client.get(url("conversation", conversation.public_id)))
    assert first != second


def test_opening_the_newest_page_marks_it_read(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, "Hi")
    add_message(conversation, contractor, "Hello?")
    client.force_login(customer)
    client.get(url("conversation", conversation.public_id))
    assert ReadState.objects.get(conversation=conversation, user=customer).last_read_seq == 2
    assert "unread" not in text(client.get(url("inbox")))


def test_seen_shows_when_the_other_read_my_last_message(client, customer, contractor, conversation, add_message):
    add_message(conversation, customer, "Are you free Tuesday?")
    client.force_login(customer)
    html = client.get(url("conversation", conversation.public_id)).content.decode()
    assert re.search(r'id="read-receipt" hidden', html)

    ReadState.objects.create(conversation=conversation, user=contractor, last_read_seq=1)
    html = client.get(url("conversation", conversation.public_id)).content.decode()
    assert re.search(r'id="read-receipt">✓ Seen', html)


def test_older_messages_page_back_through_history(client, customer, contractor, conversation, add_message):
    for n in range(1, 61):
        add_message(conversation, contractor if n % 2 else customer, f"Message number {n:02d}")
    client.force_login(customer)

    latest = client.get(url("conversation", conversation.public_id))
    page = text(latest)
    assert "Message number 11" in page and "Message number 60" in page
    assert "Message number 10" not in page
    assert 'href="?before=11"' in latest.content.decode()

    older = client.get(url("conversation", conversation.public_id) + "?before=11")
    page = text(older)
    assert "Message number 01" in page and "Message number 10" in page
    assert "Message number 11" not in page
    assert "Older messages" not in page
    assert "Newer messages" in page
    assert "messaging/chat.js" not in older.content.decode()


def test_bad_before_parameter_shows_the_latest_page(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, "Latest")
    client.force_login(customer)
    response = client.get(url("conversation", conversation.public_id) + "?before=abc")
    assert response.status_code == 200
    assert "Latest" in text(response)


def test_message_body_is_escaped(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, '<script>alert("x")</script><b>bold</b>')
    client.force_login(customer)
    html = client.get(url("conversation", conversation.public_id)).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


# --- sending with the form -----------------------------------------------------------


def test_form_post_saves_the_message_and_shows_it(client, customer, contractor, conversation):
    client.force_login(customer)
    cid = client_id_of(client.get(url("conversation", conversation.public_id)))

    response = client.post(url("send", conversation.public_id), {"body": "  Gate code is 4412.  ", "client_id": cid})

    assert response.status_code == 302
    assert response["Location"] == url("conversation", conversation.public_id) + "#m-1"
    message = Message.objects.get()
    assert (message.body, message.seq, message.sender, str(message.client_id)) == ("Gate code is 4412.", 1, customer, cid)
    client.force_login(contractor)
    assert "Gate code is 4412." in text(client.get(url("conversation", conversation.public_id)))


def test_double_submit_with_the_same_client_id_saves_once(client, customer, conversation):
    client.force_login(customer)
    cid = client_id_of(client.get(url("conversation", conversation.public_id)))
    data = {"body": "On my way", "client_id": cid}
    first = client.post(url("send", conversation.public_id), data)
    second = client.post(url("send", conversation.public_id), data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Message.objects.count() == 1
    conversation.refresh_from_db()
    assert conversation.last_seq == 1


def test_json_send_for_the_script_fallback(client, customer, conversation):
    client.force_login(customer)
    cid = str(uuid.uuid4())
    first = client.post(
        url("send", conversation.public_id), {"body": "Offline hello", "client_id": cid}, HTTP_ACCEPT="application/json"
    )
    assert first.status_code == 201
    body = first.json()
    assert body["created"] is True
    assert body["message"]["client_id"] == cid
    assert body["message"]["seq"] == 1
    assert body["message"]["body"] == "Offline hello"
    again = client.post(
        url("send", conversation.public_id), {"body": "Offline hello", "client_id": cid}, HTTP_ACCEPT="application/json"
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert Message.objects.count() == 1


def test_json_send_errors_use_the_api_shape(client, customer, conversation):
    client.force_login(customer)
    response = client.post(
        url("send", conversation.public_id), {"body": "", "client_id": str(uuid.uuid4())}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Write a message or attach a photo or PDF.",
            "fields": {"body": ["Write a message or attach a photo or PDF."]},
        }
    }
    assert Message.objects.count() == 0


def test_photo_is_shared_and_served_only_to_participants(
    client, customer, contractor, outsider, other_contractor, conversation
):
    client.force_login(customer)
    response = client.post(
        url("send", conversation.public_id),
        {"body": "", "client_id": str(uuid.uuid4()), "attachment": jpeg("../../IMG_1234.jpeg")},
    )
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.attachment_kind == "image"
    assert message.attachment_name == "IMG_1234.jpg"
    assert message.attachment_thumbnail.name

    client.force_login(contractor)
    html = client.get(url("conversation", conversation.public_id)).content.decode()
    assert f'src="{url("attachment_thumb", message.public_id)}"' in html
    full = client.get(url("attachment", message.public_id))
    assert full.status_code == 200
    assert full["Content-Type"] == "image/jpeg"
    assert full["Cache-Control"] == "private, max-age=3600"
    assert full["X-Content-Type-Options"] == "nosniff"
    data = b"".join(full.streaming_content)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (800, 600)
        assert dict(image.getexif()) == {}
    thumb = client.get(url("attachment_thumb", message.public_id))
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(b"".join(thumb.streaming_content))) as image:
        assert image.size == (400, 300)

    for stranger in (outsider, other_contractor):
        client.force_login(stranger)
        assert client.get(url("attachment", message.public_id)).status_code == 404
        assert client.get(url("attachment_thumb", message.public_id)).status_code == 404
    client.logout()
    assert client.get(url("attachment", message.public_id)).status_code == 404
    assert client.get(url("attachment_thumb", message.public_id)).status_code == 404
    assert client.get(url("attachment", uuid.uuid4())).status_code == 404


def test_pdf_is_downloaded_with_its_safe_name(client, customer, contractor, conversation):
    client.force_login(contractor)
    client.post(
        url("send", conversation.public_id),
        {"body": "My quote", "client_id": str(uuid.uuid4()), "attachment": SimpleUploadedFile("Quote #7.pdf", PDF)},
    )
    message = Message.objects.get()
    client.force_login(customer)
    page = text(client.get(url("conversation", conversation.public_id)))
    assert "Quote #7.pdf (PDF, 77 bytes)" in page
    response = client.get(url("attachment", message.public_id))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Quote #7.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert b"".join(response.streaming_content) == PDF
    assert client.get(url("attachment_thumb", message.public_id)).status_code == 404


EXE = b"MZ\x90\x00" + b"\x00" * 300


@pytest.mark.parametrize(
    "data, field, expected",
    [
        ({"body": ""}, "body", "Write a message or attach a photo or PDF."),
        ({"body": "   "}, "body", "Write a message or attach a photo or PDF."),
        ({"body": "x" * 4001}, "body", "A message can be at most 4000 characters (this one has 4001). Split it in two."),
        (
            {"body": "", "attachment": ("photo.jpg", b"not really a jpeg")},
            "attachment",
            "Only photos (JPEG, PNG, WebP) and PDF documents can be shared.",
        ),
        (
            {"body": "invoice", "attachment": ("invoice.pdf", EXE)},
            "attachment",
            "Only photos (JPEG, PNG, WebP) and PDF documents can be shared.",
        ),
        (
            {"body": "", "attachment": ("big.pdf", b"%PDF-1.4\n" + b"0" * (11 * 1024 * 1024) + b"%%EOF")},
            "attachment",
            "This file is 11.0 MB; the limit is 10 MB.",
        ),
        (
            {"body": "", "attachment": ("js.pdf", b"%PDF-1.4\n<< /S /JavaScript /JS (x) >>\n%%EOF")},
            "attachment",
            "This PDF contains JavaScript, which could run code on the reader's device. Share a plain PDF.",
        ),
    ],
    ids=["empty", "blank", "4001-chars", "fake-image", "exe-as-pdf", "11-mb", "pdf-javascript"],
)
def test_bad_message_shows_the_error_and_writes_nothing(client, customer, conversation, data, field, expected):
    client.force_login(customer)
    before = snapshot(conversation)
    post = {"client_id": str(uuid.uuid4()), **data}
    if "attachment" in data:
        name, content = data["attachment"]
        post["attachment"] = SimpleUploadedFile(name, content)

    response = client.post(url("send", conversation.public_id), post)

    assert response.status_code == 400
    assert field_errors(response.content.decode(), field) == [expected]
    assert snapshot(conversation) == before
    # The typed text is kept, with the same client id, to fix and resend.
    assert client_id_of(response) == post["client_id"]


def test_missing_client_id_is_refused(client, customer, conversation):
    client.force_login(customer)
    before = snapshot(conversation)
    response = client.post(url("send", conversation.public_id), {"body": "Hello"})
    assert response.status_code == 400
    assert "This page was out of date. Check your message and send it again." in text(response)
    assert client_id_of(response)
    assert snapshot(conversation) == before


# --- JSON catch-up and read ---------------------------------------------------------


def test_after_returns_messages_after_seq(client, customer, contractor, conversation, add_message):
    for n in range(1, 5):
        add_message(conversation, contractor, f"m{n}")
    client.force_login(customer)
    response = client.get(url("after", conversation.public_id) + "?seq=2")
    assert response.status_code == 200
    body = response.json()
    assert [m["seq"] for m in body["messages"]] == [3, 4]
    assert [m["body"] for m in body["messages"]] == ["m3", "m4"]
    assert body["messages"][0]["sender"] == {"id": str(contractor.public_id), "name": "Bob Builder"}
    assert body["last_seq"] == 4
    assert body["has_more"] is False


@pytest.mark.parametrize("seq", ["-1", "abc", "1.5", "99999999999"])
def test_after_with_bad_seq_is_400(client, customer, conversation, seq):
    client.force_login(customer)
    response = client.get(url("after", conversation.public_id) + f"?seq={seq}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"seq": ["Expected a whole number of 0 or more."]}


def test_read_moves_forward_only(client, customer, contractor, conversation, add_message):
    for _ in range(3):
        add_message(conversation, contractor, "x")
    client.force_login(customer)
    read_url = url("read", conversation.public_id)
    assert client.post(read_url, {"seq": "2"}, HTTP_ACCEPT="application/json").json() == {"seq": 2}
    assert client.post(read_url, {"seq": "1"}, HTTP_ACCEPT="application/json").json() == {"seq": 2}
    assert client.post(read_url, {"seq": "99"}, HTTP_ACCEPT="application/json").json() == {"seq": 3}
    bad = client.post(read_url, {"seq": "x"}, HTTP_ACCEPT="application/json")
    assert bad.status_code == 400
    assert ReadState.objects.get(conversation=conversation, user=customer).last_read_seq == 3


# --- who may see and do what ---------------------------------------------------------


def _every_request(conversation: Conversation, message: Message):
    cid = str(uuid.uuid4())
    return [
        ("get", url("conversation", conversation.public_id), {}),
        ("post", url("send", conversation.public_id), {"body": "Let me in", "client_id": cid}),
        ("get", url("after", conversation.public_id) + "?seq=0", {}),
        ("post", url("read", conversation.public_id), {"seq": "1"}),
        ("get", url("attachment", message.public_id), {}),
        ("get", url("attachment_thumb", message.public_id), {}),
        ("get", url("search") + f"?q=gate&conversation={conversation.public_id}", {}),
    ]


@pytest.fixture
def shared_photo(conversation, customer):
    from messaging import services

    message, _created = services.message_send(
        conversation, by=customer, body="The gate code is 4412", client_id=uuid.uuid4(), attachment=jpeg()
    )
    return message


@pytest.mark.parametrize("who", ["outsider", "other_contractor", "unverified_stranger"])
def test_strangers_get_404_everywhere_and_change_nothing(client, request, conversation, shared_photo, who):
    stranger = UserFactory(unverified=True) if who == "unverified_stranger" else request.getfixturevalue(who)
    client.force_login(stranger)
    before = snapshot(conversation)
    for method, address, data in _every_request(conversation, shared_photo):
        response = getattr(client, method)(address, data)
        assert response.status_code == 404, (method, address)
        assert "4412" not in response.content.decode(errors="replace")
    assert snapshot(conversation) == before


def test_anonymous_is_sent_to_log_in_or_404_and_changes_nothing(client, conversation, shared_photo):
    before = snapshot(conversation)
    for method, address, data in _every_request(conversation, shared_photo):
        response = getattr(client, method)(address, data)
        if "/messages/files/" in address:
            assert response.status_code == 404
        else:
            assert response.status_code == 302, address
            assert response["Location"].startswith(reverse("account_login"))
    assert client.get(url("inbox")).status_code == 302
    assert snapshot(conversation) == before


def test_staff_with_permission_reads_but_cannot_write(client, conversation, shared_photo):
    reader = UserFactory(is_staff=True, is_customer=False)
    reader.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(reader)
    before = snapshot(conversation)
    response = client.get(url("conversation", conversation.public_id))
    assert response.status_code == 200
    page = text(response)
    assert "The gate code is 4412" in page
    assert "You are reading this conversation as staff." in page
    assert 'id="send-form"' not in response.content.decode()
    assert client.get(url("attachment", shared_photo.public_id)).status_code == 200
    assert client.post(url("send", conversation.public_id), {"body": "hi", "client_id": str(uuid.uuid4())}).status_code == 403
    assert client.post(url("read", conversation.public_id), {"seq": "1"}).status_code == 403
    assert snapshot(conversation) == before


def test_staff_without_the_permission_gets_404(client, conversation, shared_photo):
    client.force_login(UserFactory(is_staff=True, is_customer=False))
    assert client.get(url("conversation", conversation.public_id)).status_code == 404
    assert client.get(url("attachment", shared_photo.public_id)).status_code == 404


# --- search ------------------------------------------------------------------------


def test_search_across_my_conversations_highlights_matches_safely(
    client, customer, contractor, conversation, add_message, other_contractor
):
    add_message(conversation, contractor, "The <b>pipes</b> under the sink are leaking badly")
    add_message(conversation, contractor, "Unrelated note about Tuesday")
    other_task = TaskFactory(photos=0)
    OfferFactory(task=other_task, contractor=other_contractor)
    elsewhere = Conversation.objects.create(task=other_task, customer=other_task.customer, contractor=other_contractor)
    add_message(elsewhere, other_contractor, "Someone else's leaking pipe")
    client.force_login(customer)

    response = client.get(url("search") + "?q=leak+pipe")

    assert response.status_code == 200
    html = response.content.decode()
    assert "1 message found" in text(response)
    [headline] = headlines(html)
    assert "<mark>pipes</mark>" in headline
    assert "<mark>leaking</mark>" in headline
    assert "<b>" not in headline
    assert "Someone else" not in html
    assert "Unrelated" not in html
    assert f'{url("conversation", conversation.public_id)}?before=26#m-1' in html


def test_search_within_one_conversation(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, "Bring the wrench")
    task2 = TaskFactory(customer=customer, photos=0)
    OfferFactory(task=task2, contractor=contractor)
    second = Conversation.objects.create(task=task2, customer=customer, contractor=contractor)
    add_message(second, contractor, "Another wrench here")
    client.force_login(customer)
    response = client.get(url("search") + f"?q=wrench&conversation={conversation.public_id}")
    page = text(response)
    assert "1 message found" in page
    assert "Bring the wrench" in page
    assert "Another" not in page
    assert "Search in “Fix the leaking kitchen tap”" in page


def test_search_markup_typed_by_a_user_stays_text(client, customer, contractor, conversation, add_message):
    add_message(conversation, contractor, "<mark>fake</mark> <img src=x onerror=alert(1)> faucet")
    client.force_login(customer)
    html = client.get(url("search") + "?q=faucet").content.decode()
    [headline] = headlines(html)
    assert headline.endswith("<mark>faucet</mark>")
    assert "<mark>fake" not in headline
    assert "&lt;img src=x onerror=alert(1)&gt;" in headline
    assert "<img src=x" not in html


@pytest.mark.parametrize("q, message", [("a", "Type at least 2 characters."), ("x" * 201, "Search for at most 200 characters.")])
def test_bad_search_says_why(client, customer, q, message):
    client.force_login(customer)
    response = client.get(url("search") + f"?q={q}")
    assert response.status_code == 400
    assert message in text(response)


def test_search_with_no_results_says_so(client, customer, conversation):
    client.force_login(customer)
    assert "No messages match “plumbing”." in text(client.get(url("search") + "?q=plumbing"))


# --- starting a conversation from the task page --------------------------------------------


def test_task_page_panel_offers_to_message_each_bidder_and_the_customer(client, customer, contractor, task, offer):
    client.force_login(customer)
    page = text(client.get(reverse("tasks:detail", args=[task.public_id])))
    assert "Message Bob Builder" in page

    client.force_login(contractor)
    response = client.get(reverse("tasks:detail", args=[task.public_id]))
    assert "Message the customer" in text(response)

    response = client.post(url("start", task.public_id))
    conversation = Conversation.objects.get()
    assert (conversation.customer, conversation.contractor, conversation.task) == (customer, contractor, task)
    assert response["Location"] == url("conversation", conversation.public_id)

    # Opening again finds the same conversation; the panel now links to it.
    client.force_login(customer)
    again = client.post(url("start", task.public_id), {"contractor": str(contractor.public_id)})
    assert again["Location"] == url("conversation", conversation.public_id)
    assert Conversation.objects.count() == 1
    html = client.get(reverse("tasks:detail", args=[task.public_id])).content.decode()
    assert f'href="{url("conversation", conversation.public_id)}"' in html
    assert "Message Bob Builder" not in html


def test_contractor_without_offer_may_ask_on_an_open_task(client, task, other_contractor):
    client.force_login(other_contractor)
    response = client.post(url("start", task.public_id))
    conversation = Conversation.objects.get()
    assert conversation.contractor == other_contractor
    assert response["Location"] == url("conversation", conversation.public_id)


def test_customer_cannot_start_with_someone_who_made_no_offer(client, customer, task, other_contractor):
    client.force_login(customer)
    response = client.post(url("start", task.public_id), {"contractor": str(other_contractor.public_id)})
    assert response.status_code == 403
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize("contractor_value", ["", "not-a-uuid", "5f0c2a4e-9d1b-4c7e-8a3f-2b6d1e0f9a7c"])
def test_customer_start_with_missing_or_unknown_contractor(client, customer, task, contractor_value):
    client.force_login(customer)
    response = client.post(url("start", task.public_id), {"contractor": contractor_value})
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == reverse("tasks:detail", args=[task.public_id])
    assert Conversation.objects.count() == 0


def test_outsiders_cannot_start_conversations(client, outsider, task):
    client.force_login(outsider)
    assert client.post(url("start", task.public_id)).status_code == 403
    client.logout()
    assert client.post(url("start", task.public_id)).status_code == 302
    assert client.post(url("start", uuid.uuid4())).status_code == 302
    assert Conversation.objects.count() == 0


def test_panel_hidden_from_outsiders(client, outsider, task, conversation):
    client.force_login(outsider)
    html = client.get(reverse("tasks:detail", args=[task.public_id])).content.decode()
    assert 'id="chat-panel"' not in html
