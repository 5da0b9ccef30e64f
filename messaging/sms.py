"""The SMS gateway: one small interface, chosen by settings from the environment.

- ``ConsoleSMS`` (the default, offline): logs the text and keeps it in
  ``ConsoleSMS.outbox`` so tests and ``make run`` can see what would be sent.
- ``TwilioSMS``: Twilio's Messages API through the official ``twilio``
  library, used when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are
  set. TWILIO_API_HOST points it elsewhere (a test fake on loopback).

Errors are mapped to two exceptions so callers know whether to retry:
``SMSRejected`` (the provider said no: bad number, unverified sender; retrying
won't help) and ``SMSUnavailable`` (network trouble or a 5xx/429; retry later).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SMSError(Exception):
    pass


class SMSRejected(SMSError):
    """The provider refused this message; sending it again won't help."""


class SMSUnavailable(SMSError):
    """The provider could not be reached or failed; worth retrying later."""


@dataclass(frozen=True)
class SentSMS:
    to: str
    body: str
    provider_id: str


class SMSGateway:
    name = "base"

    def send(self, *, to: str, body: str) -> SentSMS:
        raise NotImplementedError


class ConsoleSMS(SMSGateway):
    """Offline: nothing leaves the machine. ``outbox`` is like Django's mail.outbox."""

    name = "console"
    outbox: ClassVar[list[SentSMS]] = []

    def send(self, *, to: str, body: str) -> SentSMS:
        sent = SentSMS(to=to, body=body, provider_id=f"console-{len(ConsoleSMS.outbox) + 1}")
        ConsoleSMS.outbox.append(sent)
        logger.info("SMS (console, not sent) to %s: %s", to, body)
        return sent


class TwilioSMS(SMSGateway):
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str | None = None,
        api_host: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.account_sid = account_sid or settings.TWILIO_ACCOUNT_SID
        self.auth_token = auth_token or settings.TWILIO_AUTH_TOKEN
        self.from_number = from_number or settings.TWILIO_FROM
        if not (self.account_sid and self.auth_token and self.from_number):
            raise ImproperlyConfigured("TwilioSMS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM")
        # No library-level retries: Celery retries the task, with the
        # notification's sms_sent_at making sure one text goes out.
        self.client = Client(
            self.account_sid,
            self.auth_token,
            http_client=TwilioHttpClient(timeout=timeout, pool_connections=False),
        )
        host = api_host if api_host is not None else getattr(settings, "TWILIO_API_HOST", "")
        if host:
            self.client.api.base_url = host.rstrip("/")

    def send(self, *, to: str, body: str) -> SentSMS:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            message = self.client.messages.create(to=to, from_=self.from_number, body=body)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                raise SMSUnavailable(f"Twilio answered {exc.status}: {exc.msg}") from exc
            raise SMSRejected(f"Twilio refused the message ({exc.status}, code {exc.code}): {exc.msg}") from exc
        except TwilioException as exc:
            raise SMSUnavailable(f"Twilio could not be reached: {exc}") from exc
        except OSError as exc:  # requests' ConnectionError/Timeout are OSErrors
            raise SMSUnavailable(f"Twilio could not be reached: {exc}") from exc
        return SentSMS(to=to, body=body, provider_id=message.sid or "")


def get_sms_gateway() -> SMSGateway:
    path = getattr(settings, "SMS_BACKEND", "") or "messaging.sms.ConsoleSMS"
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"SMS_BACKEND {path!r} can't be imported") from exc
    return cls()


def sms_offline() -> bool:
    """True when texts are only logged (the page says so)."""
    return (getattr(settings, "SMS_BACKEND", "") or "messaging.sms.ConsoleSMS").endswith(".ConsoleSMS")
