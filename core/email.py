"""Send Django email through SendGrid's v3 Web API.

A thin backend over the official ``sendgrid`` library: django-anymail has
dropped SendGrid, and the library builds and posts the v3 ``/mail/send``
body for us. Settings select it when ``SENDGRID_API_KEY`` is set; everything
else (allauth, our services) keeps using Django's email API unchanged.

Errors: SendGrid answers 202 when it accepts a message. Any other answer, or
no answer, raises :class:`SendGridError` (``SendGridRejected`` for a 4xx,
which retrying will not fix; ``SendGridUnavailable`` for a 5xx, a timeout or
a refused connection, which a Celery task may retry). With
``fail_silently=True`` the failed message is only logged and not counted.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import urllib.error
from collections.abc import Sequence
from email.mime.base import MIMEBase
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Bcc,
    Cc,
    Content,
    ContentId,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Header,
    Mail,
    Personalization,
    ReplyTo,
    To,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0

# Headers SendGrid refuses in ``headers`` (it sets them itself, or they come
# from the message's own fields).
_RESERVED_HEADERS = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "content-type",
    "content-transfer-encoding",
    "received",
    "dkim-signature",
    "x-sg-id",
    "x-sg-eid",
}


class SendGridError(Exception):
    """SendGrid did not accept a message."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class SendGridRejected(SendGridError):
    """A 4xx: the request or the key is wrong; sending it again will not help."""


class SendGridUnavailable(SendGridError):
    """A 5xx, a timeout or no connection: worth retrying later."""


def _address(raw: str) -> tuple[str, str | None]:
    name, email = parseaddr(raw)
    if "@" not in email:
        raise ValueError(f"Not an email address: {raw!r}")
    return email, name or None


def _unique(addresses: Sequence[str], seen: set[str]) -> list[tuple[str, str | None]]:
    # SendGrid rejects a personalization that names one address twice across
    # to, cc and bcc (400 "Each email address ... should be unique").
    result = []
    for raw in addresses:
        email, name = _address(raw)
        key = email.lower()
        if key not in seen:
            seen.add(key)
            result.append((email, name))
    return result


def _attachment(item: Any) -> Attachment:
    content_id = None
    if isinstance(item, MIMEBase):
        filename = item.get_filename() or "attachment"
        payload = item.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else item.as_bytes()
        mimetype = item.get_content_type()
        if item["Content-ID"]:
            content_id = item["Content-ID"].strip("<>")
    else:
        filename, content, mimetype = item
        mimetype = mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if isinstance(content, str):
        content = content.encode("utf-8")
    attachment = Attachment(
        FileContent(base64.b64encode(content).decode("ascii")),
        FileName(filename),
        FileType(mimetype),
        Disposition("inline" if content_id else "attachment"),
    )
    if content_id:
        attachment.content_id = ContentId(content_id)
    return attachment


def build_mail(message: EmailMessage) -> Mail:
    """The SendGrid ``Mail`` for a Django message (public for tests and tools)."""
    from_email, from_name = _address(message.from_email or settings.DEFAULT_FROM_EMAIL)
    mail = Mail()
    mail.from_email = From(from_email, from_name)
    mail.subject = message.subject

    personalization = Personalization()
    seen: set[str] = set()
    for email, name in _unique(message.to, seen):
        personalization.add_to(To(email, name))
    for email, name in _unique(message.cc, seen):
        personalization.add_cc(Cc(email, name))
    for email, name in _unique(message.bcc, seen):
        personalization.add_bcc(Bcc(email, name))
    mail.add_personalization(personalization)

    reply_to = list(message.reply_to)
    headers = {}
    for key, value in message.extra_headers.items():
        if key.lower() == "reply-to":
            if not reply_to:
                reply_to = [value]
        elif key.lower() not in _RESERVED_HEADERS:
            headers[key] = str(value)
    if len(reply_to) == 1:
        mail.reply_to = ReplyTo(*_address(reply_to[0]))
    elif reply_to:
        mail.reply_to_list = [ReplyTo(*_address(raw)) for raw in reply_to]
    for key, value in headers.items():
        mail.add_header(Header(key, value))

    # The body is plain text unless the message says it is HTML; alternatives
    # (EmailMultiAlternatives) add the other parts. The library puts
    # text/plain first, as SendGrid requires.
    body_type = "text/html" if message.content_subtype == "html" else "text/plain"
    if message.body:
        mail.add_content(Content(body_type, message.body))
    for alternative in getattr(message, "alternatives", []):
        content, mimetype = alternative[0], alternative[1]
        if isinstance(content, bytes):
            content = content.decode("utf-8")
        mail.add_content(Content(mimetype, content))

    # The library inserts each attachment at the front; adding them in
    # reverse keeps the order the message gave them.
    for item in reversed(message.attachments):
        mail.add_attachment(_attachment(item))
    return mail


def _error_detail(body: bytes | str | None) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        errors = json.loads(text).get("errors") or []
        return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict)) or text[:300]
    except (ValueError, AttributeError):
        return text[:300]


class SendGridEmailBackend(BaseEmailBackend):
    """Django email backend posting each message to SendGrid's v3 API."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        api_key: str | None = None,
        host: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.api_key = api_key or getattr(settings, "SENDGRID_API_KEY", "")
        self.host = (host or getattr(settings, "SENDGRID_HOST", "") or "https://api.sendgrid.com").rstrip("/")
        self.timeout = timeout or getattr(settings, "SENDGRID_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
        if not self.api_key:
            raise ImproperlyConfigured("SendGridEmailBackend needs SENDGRID_API_KEY")

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        client = SendGridAPIClient(self.api_key, host=self.host)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self._send(client, message)
            except SendGridError:
                if not self.fail_silently:
                    raise
                logger.exception("SendGrid did not accept the message %r", message.subject)
            else:
                sent += 1
        return sent

    def _send(self, client: SendGridAPIClient, message: EmailMessage) -> None:
        body = build_mail(message).get()
        try:
            response = client.client.mail.send.post(request_body=body, timeout=self.timeout)
        except SendGridHTTPError as exc:
            status = int(exc.status_code)
            detail = _error_detail(exc.body)
            error = SendGridRejected if 400 <= status < 500 else SendGridUnavailable
            raise error(f"SendGrid answered {status}: {detail}".rstrip(": "), status=status, body=detail) from None
        except (urllib.error.URLError, OSError) as exc:
            # Refused connection, DNS failure, timeout: nothing was accepted.
            raise SendGridUnavailable(f"SendGrid did not answer: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise SendGridUnavailable(f"SendGrid answered {response.status_code}", status=response.status_code)
