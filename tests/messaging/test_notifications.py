"""notify(): preferences, dedupe, email/SMS sends; the centre, preferences and
unsubscribe pages, and who may touch whose notifications."""

from __future__ import annotations

import re

import pytest
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from messaging import notifications as service
from messaging.models import Notification, NotificationPreference
from messaging.sms import ConsoleSMS
from tests.factories import UserFactory

Kind = Notification.Kind


@pytest.fixture(autouse=True)
def _clean_outboxes(settings):
    settings.SMS_BACKEND = "messaging.sms.ConsoleSMS"
    settings.SITE_URL = "https://bittie.example"
    ConsoleSMS.outbox.clear()
    yield
    ConsoleSMS.outbox.clear()


@pytest.fixture
def pushes(monkeypatch):
    """Every channel-layer push notify() makes after commit (the socket tests
    cover the real Redis layer)."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(service, "_group_send", lambda group, event: sent.append((group, event)))
    return sent


def set_prefs(user, kind, *, in_app=True, email=True, sms=False):
    NotificationPreference.objects.update_or_create(
        user=user, kind=kind, defaults={"in_app": in_app, "email": email, "sms": sms}
    )


def unsubscribe_link(body: str) -> str:
    match = re.search(r"https://bittie\.example(/notifications/unsubscribe/[^/\s]+/)", body)
    assert match, body
    return match.group(1)


# --- notify() and preferences -------------------------------------------------


def test_defaults_in_app_and_email_for_a_new_offer(customer, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification = service.notify(
            customer, kind=Kind.NEW_OFFER, title="Bob offered $85.00", body="Can come today", url="/tasks/x"
        )

    assert notification is not None
    assert Notification.objects.get(user=customer).title == "Bob offered $85.00"
    assert service.unread_count(customer) == 1
    assert len(pushes) == 1
    group, event = pushes[0]
    assert group == f"user.{customer.public_id}"
    assert event["type"] == "notification"
    assert event["unread"] == 1
    assert event["notification"]["id"] == str(notification.public_id)
    assert event["notification"]["title"] == "Bob offered $85.00"
    assert event["notification"]["read"] is False
    # One email (eager Celery in tests), with the unsubscribe link and headers.
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["dana@example.com"]
    assert email.subject == "[BittieTasks] Bob offered $85.00"
    assert "Can come today" in email.body
    assert "https://bittie.example/tasks/x" in email.body
    link = unsubscribe_link(email.body)
    assert email.extra_headers["List-Unsubscribe"] == f"<https://bittie.example{link}>"
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    assert ConsoleSMS.outbox == []


def test_new_message_is_in_app_only_the_digest_emails_it(customer, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.NEW_MESSAGE, title="New message from Bob")

    assert service.unread_count(customer) == 1
    assert len(pushes) == 1
    assert mail.outbox == []


def test_job_starting_defaults_to_in_app_only(customer, pushes, django_capture_on_commit_callbacks):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.JOB_STARTING, title="Starts at 10:00")

    assert service.unread_count(customer) == 1
    assert mail.outbox == []
    assert ConsoleSMS.outbox == []


def test_everything_off_writes_nothing(customer, pushes, django_capture_on_commit_callbacks):
    set_prefs(customer, Kind.NEW_OFFER, in_app=False, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert service.notify(customer, kind=Kind.NEW_OFFER, title="Bob offered") is None

    assert Notification.objects.count() == 0
    assert pushes == []
    assert mail.outbox == []


def test_in_app_off_email_on_emails_without_an_unread_badge(customer, pushes, django_capture_on_commit_callbacks):
    set_prefs(customer, Kind.OFFER_DECLINED, in_app=False, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        notification = service.notify(customer, kind=Kind.OFFER_DECLINED, title="Not accepted")

    assert notification.read_at is not None
    assert service.unread_count(customer) == 0
    assert pushes == []
    assert len(mail.outbox) == 1


def test_email_off_keeps_in_app(customer, pushes, django_capture_on_commit_callbacks):
    set_prefs(customer, Kind.TASK_UPDATE, in_app=True, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.TASK_UPDATE, title="Checked in")

    assert service.unread_count(customer) == 1
    assert len(pushes) == 1
    assert mail.outbox == []


def test_sms_for_checked_in_when_chosen_and_phone_set(customer, pushes, django_capture_on_commit_callbacks):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    set_prefs(customer, Kind.CHECKED_IN, in_app=True, email=False, sms=True)
    with django_capture_on_commit_callbacks(execute=True):
        notification = service.notify(customer, kind=Kind.CHECKED_IN, title="Bob checked in", url="/tasks/abc")

    assert [(s.to, s.body) for s in ConsoleSMS.outbox] == [
        ("+14155550100", "BittieTasks: Bob checked in https://bittie.example/tasks/abc")
    ]
    notification.refresh_from_db()
    assert notification.sms_sent_at is not None
    # A retried task sends nothing more.
    assert service.notification_send_sms(notification.pk) is False
    assert len(ConsoleSMS.outbox) == 1


def test_sms_chosen_but_phone_removed_sends_no_text(customer, pushes, django_capture_on_commit_callbacks):
    set_prefs(customer, Kind.CHECKED_IN, sms=True)
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.CHECKED_IN, title="Bob checked in")

    assert ConsoleSMS.outbox == []
    assert Notification.objects.get(user=customer).sms_sent_at is None


def test_dedupe_key_gives_one_notification(customer, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = service.notify(customer, kind=Kind.NEW_OFFER, title="Offer", dedupe_key="offer:1")
        second = service.notify(customer, kind=Kind.NEW_OFFER, title="Offer again", dedupe_key="offer:1")

    assert first is not None
    assert second is None
    assert list(Notification.objects.values_list("title", flat=True)) == ["Offer"]
    assert len(pushes) == 1
    assert len(mail.outbox) == 1


def test_dedupe_inside_a_callers_transaction_keeps_the_transaction_usable(customer, pushes):
    from django.db import transaction

    with transaction.atomic():
        service.notify(customer, kind=Kind.NEW_OFFER, title="Offer", dedupe_key="offer:1")
        assert service.notify(customer, kind=Kind.NEW_OFFER, title="Again", dedupe_key="offer:1") is None
        # The savepoint rolled back only the duplicate insert.
        assert Notification.objects.filter(user=customer).count() == 1


def test_same_dedupe_key_for_two_users_is_two_notifications(customer, contractor, pushes):
    assert service.notify(customer, kind=Kind.JOB_STARTING, title="Soon", dedupe_key="job_starting:t1")
    assert service.notify(contractor, kind=Kind.JOB_STARTING, title="Soon", dedupe_key="job_starting:t1")
    assert Notification.objects.count() == 2


def test_email_send_is_once_even_if_the_task_runs_twice(customer, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification = service.notify(customer, kind=Kind.OFFER_ACCEPTED, title="You got the job")

    assert service.notification_send_email(notification.pk) is False
    assert len(mail.outbox) == 1


def test_email_not_sent_if_turned_off_before_the_task_runs(customer, pushes, django_capture_on_commit_callbacks):
    notification = service.notify(customer, kind=Kind.OFFER_ACCEPTED, title="You got the job")
    set_prefs(customer, Kind.OFFER_ACCEPTED, email=False)

    assert service.notification_send_email(notification.pk) is False
    assert mail.outbox == []


def test_redis_down_does_not_break_the_write(customer, settings, django_capture_on_commit_callbacks):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layer.PipelinedPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            notification = service.notify(customer, kind=Kind.NEW_MESSAGE, title="Hello")
    finally:
        channel_layers.backends.clear()

    assert notification is not None
    assert service.unread_count(customer) == 1


def test_unknown_kind_is_a_programming_error(customer):
    with pytest.raises(ValueError):
        service.notify(customer, kind="party", title="x")
    assert Notification.objects.count() == 0


def test_preferences_defaults():
    prefs = {kind: service.default_channels(kind) for kind in service.KINDS}
    assert {k for k, c in prefs.items() if c.email} == {
        "new_message",
        "new_offer",
        "offer_accepted",
        "offer_declined",
        "task_update",
    }
    assert all(c.in_app for c in prefs.values())
    assert not any(c.sms for c in prefs.values())


def test_preferences_set_refuses_sms_where_not_allowed_and_writes_nothing(customer):
    customer.phone = "+14155550100"
    with pytest.raises(service.ApplicationError) as info:
        service.preferences_set(
            user=customer,
            values={
                "job_starting": {"in_app": True, "email": True, "sms": True},
                "new_offer": {"in_app": True, "email": False, "sms": True},
            },
        )
    assert list(info.value.fields) == ["new_offer"]
    assert NotificationPreference.objects.count() == 0


def test_preferences_set_refuses_sms_without_phone(customer):
    with pytest.raises(service.ApplicationError) as info:
        service.preferences_set(user=customer, values={"checked_in": {"in_app": True, "email": False, "sms": True}})
    assert "phone" in info.value.fields["checked_in"][0]
    assert NotificationPreference.objects.count() == 0


# --- mark read ------------------------------------------------------------------


def test_mark_read_some_and_all(customer, pushes, django_capture_on_commit_callbacks):
    a = service.notify(customer, kind=Kind.NEW_MESSAGE, title="a")
    service.notify(customer, kind=Kind.NEW_MESSAGE, title="b")
    service.notify(customer, kind=Kind.NEW_MESSAGE, title="c")

    with django_capture_on_commit_callbacks(execute=True):
        assert service.notification_mark_read(customer, [str(a.public_id)]) == 1
    assert service.unread_count(customer) == 2
    assert pushes[-1] == (f"user.{customer.public_id}", {"type": "unread", "unread": 2})
    assert service.notification_mark_read(customer, "all") == 2
    assert service.unread_count(customer) == 0


def test_cannot_mark_someone_elses_notification(customer, outsider, pushes):
    mine = service.notify(customer, kind=Kind.NEW_MESSAGE, title="a")
    with pytest.raises(service.NotFound):
        service.notification_mark_read(outsider, [str(mine.public_id)])
    with pytest.raises(service.NotFound):
        service.notification_mark_read(outsider, ["not-a-uuid"])
    assert service.notification_mark_read(outsider, "all") == 0
    mine.refresh_from_db()
    assert mine.read_at is None


# --- pages ----------------------------------------------------------------------


def test_centre_lists_only_my_notifications(client, customer, outsider, pushes):
    service.notify(customer, kind=Kind.NEW_OFFER, title="Bob offered $85.00", url="/tasks/x")
    service.notify(outsider, kind=Kind.NEW_OFFER, title="Somebody else's offer")
    client.force_login(customer)

    response = client.get(reverse("notifications:centre"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Bob offered $85.00" in html
    assert "Somebody else" not in html
    assert "1 unread" in html
    # The bell in the header carries the server-rendered count.
    assert re.search(r'id="notif-badge"[^>]*>1</span>', html)
    assert "/ws/notifications/" in html


def test_centre_needs_login(client):
    response = client.get(reverse("notifications:centre"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_mark_one_and_all_read_from_the_page(client, customer, pushes):
    a = service.notify(customer, kind=Kind.NEW_MESSAGE, title="a")
    service.notify(customer, kind=Kind.NEW_MESSAGE, title="b")
    client.force_login(customer)

    response = client.post(reverse("notifications:mark_read"), {"id": str(a.public_id)})
    assert response.status_code == 302
    assert service.unread_count(customer) == 1

    response = client.post(reverse("notifications:mark_read"), {"all": "1"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"marked": 1, "unread": 0}


def test_mark_read_with_nothing_chosen_says_so(client, customer, pushes):
    service.notify(customer, kind=Kind.NEW_MESSAGE, title="a")
    client.force_login(customer)
    response = client.post(reverse("notifications:mark_read"), {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Choose notifications to mark read."
    assert service.unread_count(customer) == 1


def test_other_user_cannot_read_open_or_mark_my_notification(client, customer, outsider, pushes):
    mine = service.notify(customer, kind=Kind.NEW_OFFER, title="Private offer", url="/tasks/x")
    client.force_login(outsider)

    assert client.post(reverse("notifications:mark_read"), {"id": str(mine.public_id)}).status_code == 404
    assert client.post(reverse("notifications:open", args=[mine.public_id])).status_code == 404
    assert "Private offer" not in client.get(reverse("notifications:centre")).content.decode()
    mine.refresh_from_db()
    assert mine.read_at is None


def test_open_marks_read_and_follows_only_local_links(client, customer, pushes):
    local = service.notify(customer, kind=Kind.NEW_OFFER, title="a", url="/tasks/x")
    evil = service.notify(customer, kind=Kind.NEW_OFFER, title="b", url="https://evil.example/")
    client.force_login(customer)

    response = client.post(reverse("notifications:open", args=[local.public_id]))
    assert response["Location"] == "/tasks/x"
    response = client.post(reverse("notifications:open", args=[evil.public_id]))
    assert response["Location"] == "/notifications/"
    assert service.unread_count(customer) == 0


def _pref_post(**overrides) -> dict:
    data = {}
    for kind in service.KINDS:
        channels = service.default_channels(kind)
        for channel in ("in_app", "email", "sms"):
            if getattr(channels, channel):
                data[f"{kind}__{channel}"] = "on"
    for key, value in overrides.items():
        if value:
            data[key] = "on"
        else:
            data.pop(key, None)
    return data


def test_preferences_page_shows_sms_only_where_allowed_and_a_phone_note(client, customer):
    client.force_login(customer)
    html = client.get(reverse("notifications:preferences")).content.decode()

    assert 'name="checked_in__sms"' not in html  # no phone: disabled box without a name
    assert "Text messages need a phone number." in html
    assert 'name="new_offer__sms"' not in html
    assert 'name="new_offer__email"' in html


def test_preferences_page_with_phone_offers_sms_for_urgent_kinds(client, customer):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    client.force_login(customer)
    html = client.get(reverse("notifications:preferences")).content.decode()

    assert 'name="checked_in__sms"' in html
    assert 'name="job_starting__sms"' in html
    assert 'name="new_offer__sms"' not in html
    assert "Text messages need a phone number." not in html


def test_save_preferences(client, customer):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    client.force_login(customer)

    response = client.post(
        reverse("notifications:preferences"), _pref_post(new_offer__email=False, checked_in__sms=True)
    )

    assert response.status_code == 302
    prefs = service.preferences_get(customer)
    assert prefs["new_offer"] == service.Channels(in_app=True, email=False, sms=False)
    assert prefs["checked_in"] == service.Channels(in_app=True, email=False, sms=True)


def test_preferences_sms_for_a_kind_that_does_not_allow_it_is_refused(client, customer):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    client.force_login(customer)

    response = client.post(
        reverse("notifications:preferences"), _pref_post(new_offer__sms=True, new_offer__email=False)
    )

    assert response.status_code == 400
    assert "Text messages are only sent when a job starts within the hour" in response.content.decode()
    assert NotificationPreference.objects.count() == 0


def test_preferences_sms_without_phone_is_refused(client, customer):
    client.force_login(customer)

    response = client.post(reverse("notifications:preferences"), _pref_post(checked_in__sms=True, new_offer__email=False))

    assert response.status_code == 400
    assert "Add a phone number to your profile to get text messages." in response.content.decode()
    assert NotificationPreference.objects.count() == 0


def test_preferences_are_only_mine(client, customer, outsider):
    set_prefs(customer, Kind.NEW_OFFER, in_app=True, email=True)
    client.force_login(outsider)

    client.post(reverse("notifications:preferences"), _pref_post(new_offer__email=False))

    assert service.preferences_get(customer)["new_offer"].email is True
    assert service.preferences_get(outsider)["new_offer"].email is False


def test_preferences_need_login(client, customer):
    response = client.post(reverse("notifications:preferences"), _pref_post(new_offer__email=False))
    assert response.status_code == 302
    assert NotificationPreference.objects.count() == 0


# --- unsubscribe ---------------------------------------------------------------


def test_unsubscribe_link_from_an_email_works_without_login(
    client, customer, outsider, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.NEW_OFFER, title="Bob offered")
    link = unsubscribe_link(mail.outbox[0].body)

    page = client.get(link)
    assert page.status_code == 200
    assert "Stop “New offer” emails for this account." in page.content.decode()
    assert NotificationPreference.objects.count() == 0  # GET only asks

    done = client.post(link)
    assert done.status_code == 200
    assert "We won't send you “New offer” emails any more." in done.content.decode()
    assert service.preferences_get(customer)["new_offer"] == service.Channels(in_app=True, email=False, sms=False)
    # Only that kind, only that user.
    assert service.preferences_get(customer)["offer_accepted"].email is True
    assert service.preferences_get(outsider)["new_offer"].email is True
    assert not NotificationPreference.objects.filter(user=outsider).exists()

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        service.notify(customer, kind=Kind.NEW_OFFER, title="Another offer")
    assert mail.outbox == []
    assert service.unread_count(customer) == 2


def test_one_click_unsubscribe_post_without_csrf(customer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    token = service.unsubscribe_token(customer, "all")

    response = client.post(
        reverse("notifications:unsubscribe", args=[token]), {"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    assert all(not c.email for c in service.preferences_get(customer).values())


def test_tampered_unsubscribe_token_is_refused(client, customer):
    token = service.unsubscribe_token(customer, "new_offer")
    value, stamp, sig = token.rsplit(":", 2)
    forged = f"{value}:{stamp}:{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"

    for bad in (forged, "garbage", token + "x"):
        assert client.get(reverse("notifications:unsubscribe", args=[bad])).status_code == 404
        response = client.post(reverse("notifications:unsubscribe", args=[bad]))
        assert response.status_code == 404
        assert "This unsubscribe link is not valid" in response.content.decode()
    assert NotificationPreference.objects.count() == 0


def test_token_signed_for_another_purpose_is_refused(client, customer):
    other = signing.TimestampSigner(salt="something.else").sign_object({"u": str(customer.public_id), "k": "all"})
    assert client.post(reverse("notifications:unsubscribe", args=[other])).status_code == 404
    assert NotificationPreference.objects.count() == 0


def test_expired_unsubscribe_token_is_refused(client, customer, monkeypatch):
    token = service.unsubscribe_token(customer, "all")
    monkeypatch.setattr(service, "UNSUBSCRIBE_MAX_AGE", -1)
    assert client.post(reverse("notifications:unsubscribe", args=[token])).status_code == 404
    assert NotificationPreference.objects.count() == 0


def test_unsubscribe_token_for_an_inactive_user_is_refused(client, db):
    user = UserFactory(is_active=False)
    token = service.unsubscribe_token(user, "all")
    assert client.post(reverse("notifications:unsubscribe", args=[token])).status_code == 404
    assert NotificationPreference.objects.count() == 0


def test_header_bell_shows_server_count(client, customer, pushes):
    service.notify(customer, kind=Kind.NEW_OFFER, title="x")
    service.notify(customer, kind=Kind.NEW_OFFER, title="y")
    Notification.objects.filter(title="y").update(read_at=timezone.now())
    client.force_login(customer)

    html = client.get(reverse("notifications:preferences")).content.decode()

    assert re.search(r'id="notif-badge"[^>]*>1</span>', html)
    assert "Notifications, 1 unread" in html
