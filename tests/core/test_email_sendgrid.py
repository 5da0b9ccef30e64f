"""The SendGrid backend, through the real ``sendgrid`` library, against a fake
SendGrid v3 API on loopback that records what it receives."""

from __future__ import annotations

import base64
import json
import socket
import threading
from email.mime.image import MIMEImage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection, send_mail

from core.email import SendGridEmailBackend, SendGridRejected, SendGridUnavailable

API_KEY = "SG.test-key-123"
BACKEND = "core.email.SendGridEmailBackend"


class FakeSendGrid:
    """Answers POST /v3/mail/send with the queued statuses (202 when none are
    left) and keeps every request it saw."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[tuple[int, dict | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(raw) if raw else None,
                    }
                )
                status, body = fake.replies.pop(0) if fake.replies else (202, None)
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeSendGrid:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sendgrid_fake(settings):
    with FakeSendGrid() as fake:
        settings.EMAIL_BACKEND = BACKEND
        settings.SENDGRID_API_KEY = API_KEY
        settings.SENDGRID_HOST = fake.url
        settings.DEFAULT_FROM_EMAIL = "BittieTasks <no-reply@bittietasks.example>"
        yield fake


def test_plain_message_posts_the_exact_v3_payload(sendgrid_fake):
    count = send_mail("Your task", "Bob made an offer.", None, ["dana@example.com"])

    assert count == 1
    assert len(sendgrid_fake.requests) == 1
    request = sendgrid_fake.requests[0]
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["content-type"] == "application/json"
    assert request["json"] == {
        "from": {"name": "BittieTasks", "email": "no-reply@bittietasks.example"},
        "subject": "Your task",
        "personalizations": [{"to": [{"email": "dana@example.com"}]}],
        "content": [{"type": "text/plain", "value": "Bob made an offer."}],
    }


def test_text_and_html_with_cc_bcc_reply_to_and_attachment(sendgrid_fake):
    message = EmailMultiAlternatives(
        subject="Invoice T-1001",
        body="Your invoice is attached.",
        from_email="Billing <billing@bittietasks.example>",
        to=["Dana Lee <dana@example.com>", "ops@example.com"],
        cc=["Bob Builder <bob@example.com>", "DANA@example.com"],
        bcc=["audit@example.com", "ops@example.com"],
        reply_to=["Support <support@bittietasks.example>"],
        headers={"X-Task": "T-1001"},
    )
    message.attach_alternative("<p>Your invoice is <b>attached</b>.</p>", "text/html")
    message.attach("invoice.txt", "Total: $85.00\n", "text/plain")
    message.attach("raw.bin", b"\x00\x01\xff", None)

    assert message.send() == 1

    assert sendgrid_fake.requests[0]["json"] == {
        "from": {"name": "Billing", "email": "billing@bittietasks.example"},
        "subject": "Invoice T-1001",
        # Addresses already named are dropped from cc and bcc: SendGrid
        # refuses a personalization that repeats one.
        "personalizations": [
            {
                "to": [{"name": "Dana Lee", "email": "dana@example.com"}, {"email": "ops@example.com"}],
                "cc": [{"name": "Bob Builder", "email": "bob@example.com"}],
                "bcc": [{"email": "audit@example.com"}],
            }
        ],
        "content": [
            {"type": "text/plain", "value": "Your invoice is attached."},
            {"type": "text/html", "value": "<p>Your invoice is <b>attached</b>.</p>"},
        ],
        "attachments": [
            {
                "content": base64.b64encode(b"Total: $85.00\n").decode(),
                "filename": "invoice.txt",
                "type": "text/plain",
                "disposition": "attachment",
            },
            {
                "content": base64.b64encode(b"\x00\x01\xff").decode(),
                "filename": "raw.bin",
                "type": "application/octet-stream",
                "disposition": "attachment",
            },
        ],
        "headers": {"X-Task": "T-1001"},
        "reply_to": {"name": "Support", "email": "support@bittietasks.example"},
    }


def test_html_only_body_inline_image_and_several_reply_tos(sendgrid_fake):
    message = EmailMessage(
        "Photo check",
        "<p>See <img src='cid:proof1'></p>",
        "no-reply@bittietasks.example",
        ["dana@example.com"],
        reply_to=["a@example.com", "B <b@example.com>"],
    )
    message.content_subtype = "html"
    image = MIMEImage(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "gif")
    image.add_header("Content-ID", "<proof1>")
    image.add_header("Content-Disposition", "inline", filename="proof.gif")
    message.attach(image)

    assert message.send() == 1

    body = sendgrid_fake.requests[0]["json"]
    assert body["content"] == [{"type": "text/html", "value": "<p>See <img src='cid:proof1'></p>"}]
    assert body["attachments"] == [
        {
            "content": base64.b64encode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode(),
            "filename": "proof.gif",
            "type": "image/gif",
            "disposition": "inline",
            "content_id": "proof1",
        }
    ]
    assert body["reply_to_list"] == [{"email": "a@example.com"}, {"name": "B", "email": "b@example.com"}]
    assert "reply_to" not in body


def test_each_message_is_one_request_and_counted(sendgrid_fake):
    messages = [EmailMessage(f"Note {i}", "Hello", None, [f"user{i}@example.com"]) for i in range(3)]

    assert get_connection().send_messages(messages) == 3

    assert [r["json"]["personalizations"][0]["to"][0]["email"] for r in sendgrid_fake.requests] == [
        "user0@example.com",
        "user1@example.com",
        "user2@example.com",
    ]


def test_message_without_recipients_is_not_sent(sendgrid_fake):
    assert get_connection().send_messages([EmailMessage("Nobody", "Hello", None, [])]) == 0
    assert sendgrid_fake.requests == []


def test_a_400_raises_rejected_with_sendgrids_message(sendgrid_fake):
    sendgrid_fake.replies.append(
        (400, {"errors": [{"message": "The from address does not match a verified Sender Identity.", "field": "from"}]})
    )

    with pytest.raises(SendGridRejected) as caught:
        send_mail("Hi", "Body", None, ["dana@example.com"])

    assert caught.value.status == 400
    assert str(caught.value) == "SendGrid answered 400: The from address does not match a verified Sender Identity."
    assert len(sendgrid_fake.requests) == 1


def test_a_401_for_a_bad_key_raises_rejected(sendgrid_fake):
    sendgrid_fake.replies.append(
        (401, {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked"}]})
    )

    with pytest.raises(SendGridRejected) as caught:
        send_mail("Hi", "Body", None, ["dana@example.com"])

    assert caught.value.status == 401


def test_a_500_raises_unavailable(sendgrid_fake):
    sendgrid_fake.replies.append((500, {"errors": [{"message": "internal error"}]}))

    with pytest.raises(SendGridUnavailable) as caught:
        send_mail("Hi", "Body", None, ["dana@example.com"])

    assert caught.value.status == 500
    assert str(caught.value) == "SendGrid answered 500: internal error"


def test_fail_silently_returns_zero_for_400_and_500(sendgrid_fake):
    sendgrid_fake.replies += [(400, {"errors": [{"message": "bad"}]}), (500, None)]

    assert send_mail("Hi", "Body", None, ["dana@example.com"], fail_silently=True) == 0
    assert send_mail("Hi", "Body", None, ["dana@example.com"], fail_silently=True) == 0
    assert len(sendgrid_fake.requests) == 2


def test_fail_silently_counts_only_the_accepted_messages(sendgrid_fake):
    sendgrid_fake.replies += [(202, None), (500, None), (202, None)]
    messages = [EmailMessage(f"Note {i}", "Hello", None, [f"user{i}@example.com"]) for i in range(3)]

    assert get_connection(fail_silently=True).send_messages(messages) == 2
    assert len(sendgrid_fake.requests) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_raises_unavailable_or_zero_when_silent(settings):
    backend = SendGridEmailBackend(api_key=API_KEY, host=f"http://127.0.0.1:{_closed_port()}", timeout=2)
    message = EmailMessage("Hi", "Body", "a@example.com", ["dana@example.com"])

    with pytest.raises(SendGridUnavailable) as caught:
        backend.send_messages([message])
    assert caught.value.status is None

    silent = SendGridEmailBackend(fail_silently=True, api_key=API_KEY, host=backend.host, timeout=2)
    assert silent.send_messages([message]) == 0


def test_backend_without_api_key_refuses_to_start(settings):
    settings.SENDGRID_API_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="SENDGRID_API_KEY"):
        SendGridEmailBackend()


def test_nothing_goes_to_the_test_outbox(sendgrid_fake):
    # The backend really replaced locmem: a sent message reaches the fake only.
    send_mail("Hi", "Body", None, ["dana@example.com"])
    assert mail.outbox == []
    assert len(sendgrid_fake.requests) == 1
