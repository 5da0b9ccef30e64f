"""The SMS gateway: console offline, and the real Twilio client (the official
``twilio`` library, its own request building) against a fake Twilio Messages
API on loopback that records what it receives."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured

from messaging import notifications as service
from messaging.models import Notification, NotificationPreference
from messaging.sms import ConsoleSMS, SMSRejected, SMSUnavailable, TwilioSMS, get_sms_gateway, sms_offline
from messaging.tasks import send_notification_sms

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-test-token"
FROM = "+14155550199"
BASE_DIR = Path(__file__).resolve().parents[2]


class FakeTwilio:
    """Answers POST /2010-04-01/Accounts/<sid>/Messages.json like Twilio: 201
    with a message resource, or the queued (status, body) replies."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: list[tuple[int, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                fake.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "form": form}
                )
                if fake.replies:
                    status, body = fake.replies.pop(0)
                else:
                    status = 201
                    body = {
                        "sid": f"SM{len(fake.requests):032d}",
                        "account_sid": SID,
                        "to": form.get("To"),
                        "from": form.get("From"),
                        "body": form.get("Body"),
                        "status": "queued",
                        "num_segments": "1",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                        "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{len(fake.requests):032d}.json",
                    }
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio_fake(settings):
    with FakeTwilio() as fake:
        settings.SMS_BACKEND = "messaging.sms.TwilioSMS"
        settings.TWILIO_ACCOUNT_SID = SID
        settings.TWILIO_AUTH_TOKEN = TOKEN
        settings.TWILIO_FROM = FROM
        settings.TWILIO_API_HOST = fake.url
        yield fake


@pytest.fixture(autouse=True)
def _console_outbox():
    ConsoleSMS.outbox.clear()
    yield
    ConsoleSMS.outbox.clear()


def test_console_is_the_offline_default(settings):
    assert settings.SMS_BACKEND == "messaging.sms.ConsoleSMS"
    gateway = get_sms_gateway()
    assert isinstance(gateway, ConsoleSMS)
    assert sms_offline() is True

    sent = gateway.send(to="+14155550100", body="BittieTasks: Bob checked in")

    assert ConsoleSMS.outbox == [sent]
    assert (sent.to, sent.body) == ("+14155550100", "BittieTasks: Bob checked in")


def test_twilio_client_posts_the_messages_api_request(twilio_fake):
    gateway = get_sms_gateway()
    assert isinstance(gateway, TwilioSMS)
    assert sms_offline() is False

    sent = gateway.send(to="+14155550100", body="BittieTasks: your job starts at 10:00")

    assert sent.provider_id == "SM" + "1".zfill(32)
    assert len(twilio_fake.requests) == 1
    request = twilio_fake.requests[0]
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["user-agent"].startswith("twilio-python/")
    assert request["form"] == {"To": "+14155550100", "From": FROM, "Body": "BittieTasks: your job starts at 10:00"}
    assert ConsoleSMS.outbox == []


def test_a_bad_number_is_rejected_not_retried(twilio_fake):
    twilio_fake.replies.append(
        (
            400,
            {
                "code": 21211,
                "message": "The 'To' number +1555 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        )
    )
    with pytest.raises(SMSRejected) as info:
        get_sms_gateway().send(to="+1555", body="x")
    assert "21211" in str(info.value)
    assert "not a valid phone number" in str(info.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_provider_trouble_is_unavailable(twilio_fake, status):
    twilio_fake.replies.append((status, {"code": 20500, "message": "Internal Server Error", "status": status}))
    with pytest.raises(SMSUnavailable):
        get_sms_gateway().send(to="+14155550100", body="x")


def test_unreachable_provider_is_unavailable(settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM = SID, TOKEN, FROM
    with FakeTwilio() as fake:
        closed = fake.url  # nothing listens here once the fake stops
    with pytest.raises(SMSUnavailable):
        TwilioSMS(api_host=closed, timeout=2).send(to="+14155550100", body="x")


def test_twilio_without_keys_is_a_configuration_error(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    with pytest.raises(ImproperlyConfigured):
        TwilioSMS()


@pytest.fixture
def texting_customer(customer):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    NotificationPreference.objects.create(user=customer, kind="checked_in", in_app=True, email=False, sms=True)
    return customer


def test_checked_in_notification_is_texted_once_through_twilio(
    twilio_fake, texting_customer, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(service, "_group_send", lambda group, event: None)
    with django_capture_on_commit_callbacks(execute=True):
        notification = service.notify(
            texting_customer, kind=Notification.Kind.CHECKED_IN, title="Bob checked in", url="/tasks/abc"
        )

    assert [r["form"]["To"] for r in twilio_fake.requests] == ["+14155550100"]
    assert twilio_fake.requests[0]["form"]["Body"].startswith("BittieTasks: Bob checked in http")
    notification.refresh_from_db()
    assert notification.sms_sent_at is not None

    # The task delivered again (a retry after a lost ack) sends nothing.
    assert send_notification_sms.apply(args=[notification.pk]).get() is False
    assert len(twilio_fake.requests) == 1


def test_failed_send_leaves_it_unsent_for_the_retry(twilio_fake, texting_customer, monkeypatch):
    monkeypatch.setattr(service, "_group_send", lambda group, event: None)
    notification = service.notify(texting_customer, kind=Notification.Kind.CHECKED_IN, title="Bob checked in")
    twilio_fake.replies.append((503, {"code": 20503, "message": "Service unavailable", "status": 503}))

    with pytest.raises(SMSUnavailable):
        service.notification_send_sms(notification.pk)
    notification.refresh_from_db()
    assert notification.sms_sent_at is None

    assert service.notification_send_sms(notification.pk) is True
    assert service.notification_send_sms(notification.pk) is False
    assert len(twilio_fake.requests) == 2


def test_sms_task_retries_only_when_the_provider_is_unavailable():
    assert send_notification_sms.autoretry_for == (SMSUnavailable,)
    assert send_notification_sms.max_retries == 5


PRINT_SMS = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps(settings.SMS_BACKEND))
"""


def _settings_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "DJANGO_DEBUG": "true",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_SMS], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


def test_settings_choose_twilio_only_with_all_its_keys():
    assert json.loads(_settings_process({}).stdout.strip().splitlines()[-1]) == "messaging.sms.ConsoleSMS"
    full = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": FROM}
    assert json.loads(_settings_process(full).stdout.strip().splitlines()[-1]) == "messaging.sms.TwilioSMS"
    partial = _settings_process({"TWILIO_ACCOUNT_SID": SID})
    assert partial.returncode != 0
    assert "Set all of TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM, or none" in partial.stderr
