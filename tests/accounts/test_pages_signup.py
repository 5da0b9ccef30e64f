"""Sign up, verify, log in and reset a password through the allauth pages."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import ContractorProfile, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)")
RESET_LINK = re.compile(r"https?://[^/\s]+(/accounts/password/reset/key/[^/\s]+/)")


def signup(client, **overrides):
    data = {
        "full_name": "Nia Newcomer",
        "role": "contractor",
        "email": "nia@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return client.post(reverse("account_signup"), data)


def checked_role(html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="role" value="(\w+)"[^>]*\bchecked\b', html)


def test_signup_page_uses_site_layout_with_labels(client):
    response = client.get(reverse("account_signup"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="card auth-card"' in html
    assert 'class="site-header"' in html
    for field_id in ("id_full_name", "id_email", "id_password1", "id_password2"):
        assert f'<label for="{field_id}"' in html
    assert checked_role(html) == ["customer"]


@pytest.mark.parametrize(("query", "expected"), [("contractor", ["contractor"]), ("customer", ["customer"]), ("nonsense", ["customer"])])
def test_signup_preselects_role_from_query(client, query, expected):
    html = client.get(reverse("account_signup") + f"?role={query}").content.decode()
    assert checked_role(html) == expected


def test_signup_creates_contractor_and_sends_one_verification_email(client):
    response = signup(client, email="Nia@Example.COM")

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get()
    assert user.email == "nia@example.com"
    assert user.full_name == "Nia Newcomer"
    assert (user.is_customer, user.is_contractor) == (False, True)
    assert user.email_verified_at is None
    assert ContractorProfile.objects.filter(user=user, onboarded_at__isnull=True).count() == 1
    assert list(EmailAddress.objects.values_list("email", "verified")) == [("nia@example.com", False)]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nia@example.com"]
    assert CONFIRM_LINK.search(mail.outbox[0].body)


def test_signup_as_both_sets_both_roles(client):
    signup(client, role="both")
    user = User.objects.get()
    assert (user.is_customer, user.is_contractor) == (True, True)


def test_following_the_link_verifies_logs_in_and_sends_contractor_to_onboarding(client):
    signup(client)
    path = CONFIRM_LINK.search(mail.outbox[0].body).group(1)

    page = client.get(path)
    assert page.status_code == 200
    assert "nia@example.com" in page.content.decode()
    assert User.objects.get().email_verified_at is None  # a GET alone does not confirm

    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:onboarding")
    user = User.objects.get()
    assert user.email_verified_at is not None
    assert EmailAddress.objects.get(user=user).verified is True
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_customer_lands_on_dashboard_after_verifying(client):
    signup(client, role="customer")
    path = CONFIRM_LINK.search(mail.outbox[0].body).group(1)
    response = client.post(path)
    assert response["Location"] == reverse("accounts:dashboard")


def test_duplicate_email_in_other_case_creates_no_second_user(client, customer):
    before = list(User.objects.values_list("pk", "email", "full_name", "is_contractor"))

    response = signup(client, email="DANA@example.COM", full_name="Impostor")

    # allauth's enumeration prevention: the page looks like any sign-up (so it
    # cannot be used to find out who has an account) and the owner of the
    # address is told by email, with a way back in.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert list(User.objects.values_list("pk", "email", "full_name", "is_contractor")) == before
    assert EmailAddress.objects.count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.com"]
    assert "You already have an account with this address, so no new account was created." in mail.outbox[0].body
    assert RESET_LINK.search(mail.outbox[0].body) is None  # the reset link is to the request form, not a key
    assert "/accounts/password/reset/" in mail.outbox[0].body
    page = client.get(response["Location"]).content.decode()
    assert "If this address already has an account, the email tells you how to log in instead" in page


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password123", "This password is too common."),
        ("short9", "This password is too short. It must contain at least 10 characters."),
        ("8675309123", "This password is entirely numeric."),
    ],
)
def test_weak_password_is_refused_next_to_the_field(client, password, message):
    response = signup(client, password1=password, password2=password)

    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert re.search(r'<ul class="errorlist" id="id_password1_error"><li>[^<]*' + re.escape(message), html)
    assert User.objects.count() == 0
    assert mail.outbox == []


def test_missing_name_and_role_are_refused(client):
    response = signup(client, full_name="", role="")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_full_name_error"' in html
    assert "This field is required." in html
    assert User.objects.count() == 0


@pytest.mark.parametrize("key", ["not-a-real-key", "MQ:1tOtXs:forgedsignaturexxxxxxxxxxxxxxxxxxxx"])
def test_forged_confirmation_key_shows_error_and_verifies_nothing(client, key):
    signup(client)
    page = client.get(f"/accounts/confirm-email/{key}/")
    assert page.status_code == 200
    assert "This email confirmation link expired or is invalid." in page.content.decode()
    assert client.post(f"/accounts/confirm-email/{key}/").status_code == 404
    assert "_auth_user_id" not in client.session
    assert User.objects.get().email_verified_at is None
    assert EmailAddress.objects.get().verified is False


def test_confirmation_key_of_another_account_does_not_verify_mine(client):
    signup(client, email="first@example.com")
    signup(client, email="second@example.com")
    first_path = CONFIRM_LINK.search(mail.outbox[0].body).group(1)
    client.post(first_path)
    assert User.objects.get(email="first@example.com").email_verified_at is not None
    assert User.objects.get(email="second@example.com").email_verified_at is None


def test_login_before_verification_shows_verify_page_and_does_not_log_in(client):
    signup(client)
    client.logout()
    mail.outbox.clear()

    response = client.post(reverse("account_login"), {"login": "nia@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"]).content.decode()
    assert "Verify your email address" in page
    assert User.objects.get().email_verified_at is None


def test_verified_user_logs_in_and_out(client, customer):
    response = client.post(reverse("account_login"), {"login": "Dana@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.session["_auth_user_id"] == str(customer.pk)

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_wrong_password_is_refused_with_message(client, customer):
    response = client.post(reverse("account_login"), {"login": "dana@example.com", "password": "wrong-password-1"})
    assert response.status_code == 200
    assert "The email address and/or password you specified are not correct." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_unonboarded_contractor_is_sent_to_onboarding_after_login(client):
    user = UserFactory(is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=user, slug="new-pro")
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response["Location"] == reverse("accounts:onboarding")


def test_password_reset_by_email(client, customer):
    response = client.post(reverse("account_reset_password"), {"email": "dana@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    path = RESET_LINK.search(mail.outbox[0].body).group(1)

    # allauth moves the key into the session and redirects to a key-less URL.
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    action = form_page.redirect_chain[-1][0]
    new_password = "a-brand-new-passphrase-7"
    response = client.post(action, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302

    customer.refresh_from_db()
    assert customer.check_password(new_password)
    assert not customer.check_password(PASSWORD)


def test_password_reset_with_forged_key_changes_nothing(client, customer):
    response = client.get("/accounts/password/reset/key/1-forged-key/", follow=True)
    assert "The password reset link was invalid" in response.content.decode()
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_password_reset_for_unknown_email_reveals_nothing_and_sends_no_key(client, customer):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    # Same answer as for a real account; the address only hears that it has none.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert [m.to for m in mail.outbox] == [["nobody@example.com"]]
    assert RESET_LINK.search(mail.outbox[0].body) is None
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("url_name", "logged_in"),
    [
        ("account_login", False),
        ("account_signup", False),
        ("account_reset_password", False),
        ("account_reset_password_done", False),
        ("account_email_verification_sent", False),
        ("account_logout", True),
        ("account_email", True),
        ("account_change_password", True),
    ],
)
def test_every_allauth_page_renders_in_the_site_layout(client, customer, url_name, logged_in):
    if logged_in:
        client.force_login(customer)
    response = client.get(reverse(url_name))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="site-header"' in html
    assert 'class="card auth-card"' in html
    assert "· BittieTasks</title>" in html
    # Every visible input has a label pointing at it.
    for input_id in re.findall(r'<input(?![^>]*type="(?:hidden|submit)")[^>]*\bid="([^"]+)"', html):
        assert f'for="{input_id}"' in html, input_id
