"""Phone verification: a code by SMS, expiry, attempts, resend cooldown, the badge."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import verification
from accounts.models import AuditEntry, PhoneVerification
from core.errors import ApplicationError
from messaging.sms import ConsoleSMS, SMSRejected, SMSUnavailable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/verify/phone"


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.SMS_BACKEND = "messaging.sms.ConsoleSMS"
    ConsoleSMS.outbox.clear()
    yield ConsoleSMS.outbox
    ConsoleSMS.outbox.clear()


def sent_code(outbox) -> str:
    match = re.search(r"\b(\d{6})\b", outbox[-1].body)
    assert match, outbox[-1].body
    return match.group(1)


def other(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def field_errors(html: str, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    if not match:
        return []
    return [htmllib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


T0 = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)


# --- Services ----------------------------------------------------------------


def test_send_code_texts_six_digits_to_e164_and_stores_only_a_hash(customer, outbox):
    challenge = verification.phone_send_code(customer, "(415) 555-0100", now=T0)

    assert [sms.to for sms in outbox] == ["+14155550100"]
    code = sent_code(outbox)
    assert "expires in 10 minutes" in outbox[0].body
    challenge.refresh_from_db()
    assert challenge.phone == "+14155550100"
    assert challenge.expires_at == T0 + dt.timedelta(minutes=10)
    assert challenge.attempts == 0
    assert challenge.sends_today == 1
    # The code is nowhere in the row: not in clear, not as a plain digest.
    row = PhoneVerification.objects.filter(pk=challenge.pk).values().get()
    assert all(code not in str(value) for value in row.values())
    assert len(challenge.code_hash) == 64
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


@pytest.mark.parametrize(
    ("typed", "e164"),
    [("+44 7700 900123", "+447700900123"), ("1-415-555-0100", "+14155550100"), ("415.555.0100", "+14155550100")],
)
def test_numbers_are_normalised(typed, e164):
    assert verification.phone_normalize(typed) == e164


@pytest.mark.parametrize("typed", ["", "555-0100", "+1 415 555 01000", "call me", "+0 123 4567", "41555501001234567"])
def test_bad_numbers_are_refused_and_nothing_is_sent(customer, outbox, typed):
    with pytest.raises(ApplicationError) as exc:
        verification.phone_send_code(customer, typed)
    assert exc.value.code == "invalid_phone"
    assert "phone" in exc.value.fields
    assert outbox == []
    assert not PhoneVerification.objects.exists()


def test_right_code_verifies_sets_the_phone_and_badge_and_is_audited(customer, outbox):
    verification.phone_send_code(customer, "415 555 0100", now=T0)
    user = verification.phone_confirm(customer, sent_code(outbox), now=T0 + dt.timedelta(minutes=9))

    customer.refresh_from_db()
    assert customer.phone == "+14155550100"
    assert customer.phone_verified_at == T0 + dt.timedelta(minutes=9)
    assert user.phone_verified_at == customer.phone_verified_at
    entry = AuditEntry.objects.get(action="phone.verified")
    assert (entry.actor, entry.subject_id, entry.data) == (customer, str(customer.pk), {"phone": "+14155550100"})
    # A used code can't be used again.
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, sent_code(outbox))
    assert exc.value.code == "no_code"


def test_expired_code_is_refused(customer, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, sent_code(outbox), now=T0 + dt.timedelta(minutes=10))
    assert exc.value.code == "code_expired"
    assert exc.value.fields == {"code": ["This code has expired. Ask for a new code."]}
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


def test_expiry_with_the_clock_moved(customer, outbox, monkeypatch):
    verification.phone_send_code(customer, "4155550100", now=T0)
    monkeypatch.setattr(timezone, "now", lambda: T0 + dt.timedelta(minutes=11))
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, sent_code(outbox))
    assert exc.value.code == "code_expired"


def test_wrong_code_counts_and_says_how_many_tries_are_left(customer, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    code = sent_code(outbox)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, other(code), now=T0)
    assert exc.value.code == "wrong_code"
    assert exc.value.message == "That code is not right. 4 tries left."
    # The failed try was committed even though the call raised.
    assert PhoneVerification.objects.get(user=customer).attempts == 1
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


def test_five_wrong_codes_lock_the_code_even_the_right_one(customer, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    code = sent_code(outbox)
    codes = []
    for _ in range(5):
        with pytest.raises(ApplicationError) as exc:
            verification.phone_confirm(customer, other(code), now=T0)
        codes.append(exc.value.code)
    assert codes == ["wrong_code"] * 4 + ["too_many_attempts"]
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, code, now=T0)
    assert exc.value.code == "too_many_attempts"
    assert exc.value.message == "Too many wrong codes. Ask for a new code."
    assert PhoneVerification.objects.get(user=customer).attempts == 5
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


def test_a_new_code_after_the_cooldown_resets_attempts_and_the_old_code_dies(customer, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    first = sent_code(outbox)
    with pytest.raises(ApplicationError):
        verification.phone_confirm(customer, other(first), now=T0)
    verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(seconds=60))
    second = sent_code(outbox)
    assert PhoneVerification.objects.get(user=customer).attempts == 0
    if first != second:
        with pytest.raises(ApplicationError) as exc:
            verification.phone_confirm(customer, first, now=T0 + dt.timedelta(seconds=61))
        assert exc.value.code == "wrong_code"
    verification.phone_confirm(customer, second, now=T0 + dt.timedelta(seconds=62))
    customer.refresh_from_db()
    assert customer.phone_verified_at is not None


def test_resend_too_soon_is_refused_with_the_wait_and_sends_nothing(customer, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    before = PhoneVerification.objects.values().get(user=customer)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(seconds=45))
    assert exc.value.code == "resend_too_soon"
    assert exc.value.status_code == 429
    assert exc.value.extra == {"retry_after": 15}
    assert exc.value.message == "We just sent a code. You can ask for another in 15 seconds."
    assert len(outbox) == 1
    assert PhoneVerification.objects.values().get(user=customer) == before


def test_daily_cap_on_sends(customer, outbox):
    for i in range(5):
        verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(minutes=2 * i))
    with pytest.raises(ApplicationError) as exc:
        verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(minutes=20))
    assert exc.value.code == "too_many_sends"
    assert len(outbox) == 5
    # A new (UTC) day opens again.
    verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(days=1))
    assert len(outbox) == 6
    assert PhoneVerification.objects.get(user=customer).sends_today == 1


@pytest.mark.parametrize(("error", "code"), [(SMSRejected, "sms_rejected"), (SMSUnavailable, "sms_unavailable")])
def test_gateway_failure_records_nothing_and_spends_no_cooldown(customer, outbox, monkeypatch, error, code):
    def fail(self, *, to, body):
        raise error("no")

    monkeypatch.setattr(ConsoleSMS, "send", fail)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_send_code(customer, "4155550100", now=T0)
    assert exc.value.code == code
    assert not PhoneVerification.objects.exists()
    monkeypatch.undo()
    verification.phone_send_code(customer, "4155550100", now=T0 + dt.timedelta(seconds=1))
    assert len(outbox) == 1


def test_codes_are_per_user(customer, outsider, outbox):
    verification.phone_send_code(customer, "4155550100", now=T0)
    code = sent_code(outbox)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(outsider, code, now=T0)
    assert exc.value.code == "no_code"
    verification.phone_send_code(outsider, "4155550199", now=T0)
    with pytest.raises(ApplicationError):
        verification.phone_confirm(outsider, code if code != sent_code(outbox) else other(code), now=T0)
    outsider.refresh_from_db()
    customer.refresh_from_db()
    assert (outsider.phone_verified_at, customer.phone_verified_at) == (None, None)


@pytest.mark.parametrize("typed", ["", "12345", "abcdef", "1234567"])
def test_malformed_code_is_refused_without_counting(customer, outbox, typed):
    verification.phone_send_code(customer, "4155550100", now=T0)
    with pytest.raises(ApplicationError) as exc:
        verification.phone_confirm(customer, typed, now=T0)
    assert exc.value.code == "invalid_code"
    assert PhoneVerification.objects.get(user=customer).attempts == 0


def test_changing_the_phone_in_the_profile_drops_the_badge(customer, outbox):
    from accounts.services import user_update_profile

    verification.phone_send_code(customer, "4155550100", now=T0)
    verification.phone_confirm(customer, sent_code(outbox), now=T0)
    user_update_profile(user=customer, phone="+14155550999")
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


# --- The page ----------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_page_flow_number_code_badge(client, customer, outbox):
    client.force_login(customer)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'type="tel"' in page.text and 'inputmode="tel"' in page.text
    assert "Offline mode: texts are printed in the server console" in page.text

    response = client.post(PAGE, {"action": "send", "phone": "(415) 555-0100"}, follow=True)
    assert "We texted a 6-digit code to +14155550100." in response.text
    assert "Enter the code we texted to +14155550100" in response.text
    assert 'autocomplete="one-time-code"' in response.text

    response = client.post(PAGE, {"action": "confirm", "code": sent_code(outbox)}, follow=True)
    assert "Your phone number is verified." in response.text
    customer.refresh_from_db()
    when = f"{timezone.localtime(customer.phone_verified_at):%b} {timezone.localtime(customer.phone_verified_at).day}"
    profile = client.get("/profile/")
    assert f"Phone verified {when}" in profile.text


def test_page_wrong_code_message_next_to_the_field(client, customer, outbox):
    client.force_login(customer)
    client.post(PAGE, {"action": "send", "phone": "4155550100"})
    response = client.post(PAGE, {"action": "confirm", "code": other(sent_code(outbox))})
    assert response.status_code == 400
    assert field_errors(response.text, "code") == ["That code is not right. 4 tries left."]


def test_page_expired_code_message(client, customer, outbox, monkeypatch):
    client.force_login(customer)
    client.post(PAGE, {"action": "send", "phone": "4155550100"})
    later = timezone.now() + dt.timedelta(minutes=11)
    monkeypatch.setattr(timezone, "now", lambda: later)
    response = client.post(PAGE, {"action": "confirm", "code": sent_code(outbox)})
    assert field_errors(response.text, "code") == ["This code has expired. Ask for a new code."]


def test_page_too_many_attempts_message(client, customer, outbox):
    client.force_login(customer)
    client.post(PAGE, {"action": "send", "phone": "4155550100"})
    code = sent_code(outbox)
    for _ in range(5):
        client.post(PAGE, {"action": "confirm", "code": other(code)})
    response = client.post(PAGE, {"action": "confirm", "code": code})
    assert field_errors(response.text, "code") == ["Too many wrong codes. Ask for a new code."]
    customer.refresh_from_db()
    assert customer.phone_verified_at is None


def test_page_resend_too_soon_message(client, customer, outbox):
    client.force_login(customer)
    client.post(PAGE, {"action": "send", "phone": "4155550100"})
    response = client.post(PAGE, {"action": "resend"})
    assert response.status_code == 429
    match = re.search(r'<p class="message message-error" role="alert" id="resend-error">(.*?)</p>', response.text)
    assert re.fullmatch(r"We just sent a code\. You can ask for another in (60|59) seconds\.", match.group(1))
    assert len(outbox) == 1


def test_page_bad_number_message(client, customer, outbox):
    client.force_login(customer)
    response = client.post(PAGE, {"action": "send", "phone": "555-0100"})
    assert response.status_code == 400
    assert field_errors(response.text, "phone") == [
        "Enter a mobile number with its area code, like (415) 555-0100, or +44 7700 900123 outside the US."
    ]
    assert outbox == []


def test_dashboard_links_to_verification(client, contractor):
    client.force_login(contractor)
    page = client.get("/dashboard/")
    assert 'href="/verify/phone"' in page.text
    assert 'href="/verify/id"' in page.text


def test_customer_dashboard_has_no_id_link(client):
    user = UserFactory()
    client.force_login(user)
    page = client.get("/dashboard/")
    assert 'href="/verify/phone"' in page.text
    assert 'href="/verify/id"' not in page.text
