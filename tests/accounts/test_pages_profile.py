"""My profile, the dashboard, public contractor pages and photos."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ContractorProfile, User
from accounts.views import POST_TASK_URL_NAMES, _first_url
from tests.accounts.photos import png_bytes, upload
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

PROFILE = "/profile/"


def field_errors(html: str, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    if not match:
        return []
    return [htmllib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def person(user: User) -> tuple:
    user.refresh_from_db()
    return (
        user.full_name,
        user.phone,
        user.postal_code,
        user.city,
        user.state,
        user.photo.name,
        user.is_customer,
        user.is_contractor,
        user.phone_verified_at,
    )


def test_profile_requires_login(client):
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_profile_shows_details_badges_and_edit_form(client, customer):
    customer.phone_verified_at = None
    customer.save()
    client.force_login(customer)
    html = client.get(PROFILE).content.decode()
    verified_on = timezone.localtime(customer.email_verified_at).strftime("%b %-d, %Y")
    assert f"Email verified {verified_on}" in html
    assert "Phone not verified" in html
    assert "ID not verified" in html
    assert re.search(r'<input type="tel" name="phone"', html)
    assert re.search(r'<input type="file" name="photo"[^>]*accept="image/\*"', html)
    assert 'value="Dana Lee"' in html
    assert "Verify your email" not in html


def test_edit_own_profile(client, customer, django_capture_on_commit_callbacks):
    client.force_login(customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            PROFILE,
            {
                "action": "details",
                "full_name": "  Dana Q. Lee ",
                "phone": "(415) 555-0134",
                "postal_code": "94110",
                "photo": upload("me.png", png_bytes(), "image/png"),
            },
        )
    assert response.status_code == 302
    assert response["Location"] == PROFILE
    customer.refresh_from_db()
    assert customer.full_name == "Dana Q. Lee"
    assert customer.phone == "4155550134"
    assert (customer.postal_code, customer.city, customer.state) == ("94110", "San Francisco", "CA")
    assert customer.photo.name.startswith(f"profile-photos/{customer.public_id}/")
    assert "Your profile is saved." in client.get(PROFILE).content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("full_name", "   ", "Enter your name."),
        ("phone", "12", "Enter a phone number with 7 to 15 digits."),
        ("postal_code", "00000", "We don't know the ZIP code 00000. Check it and try again."),
        ("postal_code", "nowhere", "Enter a 5-digit US ZIP code, or an address that ends with one."),
    ],
)
def test_bad_profile_input_is_refused_and_nothing_written(client, customer, field, value, message):
    before = person(customer)
    client.force_login(customer)
    data = {
        "action": "details",
        "full_name": "New Name",
        "phone": "4155550100",
        "postal_code": "94110",
        "photo": upload("me.png", png_bytes(), "image/png"),
    }
    data[field] = value
    response = client.post(PROFILE, data)
    assert response.status_code == 400
    html = response.content.decode()
    if field == "full_name":
        # Django's form strips the blanks and refuses the empty name first.
        assert field_errors(html, field) == ["This field is required."]
    else:
        assert field_errors(html, field) == [message]
    assert person(customer) == before


def test_fake_photo_on_profile_is_refused_and_nothing_written(client, customer):
    before = person(customer)
    client.force_login(customer)
    response = client.post(
        PROFILE,
        {"action": "details", "full_name": "New Name", "phone": "", "postal_code": "", "photo": upload("x.jpg", b"GIF89a nope")},
    )
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "photo") == [
        "This file is not a valid image. Upload a JPEG, PNG or WebP photo."
    ]
    assert person(customer) == before


def test_changing_roles_to_contractor_creates_profile_and_goes_to_onboarding(client, customer):
    client.force_login(customer)
    response = client.post(PROFILE, {"action": "roles", "is_customer": "on", "is_contractor": "on"})
    assert response["Location"] == reverse("accounts:onboarding")
    customer.refresh_from_db()
    assert (customer.is_customer, customer.is_contractor) == (True, True)
    assert ContractorProfile.objects.filter(user=customer).count() == 1


def test_dropping_every_role_is_refused(client, customer):
    before = person(customer)
    client.force_login(customer)
    response = client.post(PROFILE, {"action": "roles"})
    assert response.status_code == 400
    assert "Choose at least one: hiring, working, or both." in response.content.decode()
    assert person(customer) == before


def test_posting_to_my_pages_as_another_user_changes_only_their_own(client, customer, outsider):
    """There is no URL naming whose profile to change: every write is to the
    logged-in user. Even a forged field naming Dana changes only Charlie."""
    dana_before = person(customer)
    client.force_login(outsider)
    response = client.post(
        PROFILE,
        {
            "action": "details",
            "full_name": "Hacked",
            "phone": "4155550199",
            "postal_code": "94110",
            "email": customer.email,
            "user": customer.pk,
            "public_id": str(customer.public_id),
        },
    )
    assert response.status_code == 302
    assert person(customer) == dana_before
    outsider.refresh_from_db()
    assert outsider.full_name == "Hacked"
    assert outsider.email == "charlie@example.com"

    client.post(PROFILE, {"action": "roles", "is_contractor": "on", "user": customer.pk})
    assert person(customer) == dana_before


def test_onboarding_post_as_another_user_changes_only_their_own(client, contractor):
    other = UserFactory(is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=other, slug="other-pro")
    bob = ContractorProfile.objects.get(user=contractor)
    bob_before = (bob.hourly_rate_cents, bob.bio, bob.postal_code, list(bob.trades.all()))
    category = CategoryFactory(name="Roofing", slug="roofing")
    client.force_login(other)
    client.post(
        "/onboarding/",
        {
            "trades": [category.pk],
            "hourly_rate": "1",
            "location": "10001",
            "service_radius_km": "5",
            "day_1": "on",
            "day_1_start": "08:00",
            "day_1_end": "09:00",
            "slug": "bob-builder",
            "user": contractor.pk,
        },
    )
    bob.refresh_from_db()
    assert (bob.hourly_rate_cents, bob.bio, bob.postal_code, list(bob.trades.all())) == bob_before
    assert ContractorProfile.objects.get(user=other).hourly_rate_cents == 100


def test_public_profile_shows_the_pro_but_never_the_street(client, contractor):
    services.contractor_profile_update(
        user=contractor, location="1 Secret Lane, San Francisco, CA 94110", service_radius_km=15
    )
    contractor.phone = "4155550134"
    contractor.save()
    response = client.get(reverse("accounts:public_profile", kwargs={"slug": "bob-builder"}))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Bob Builder" in html
    assert "San Francisco, CA" in html
    assert re.search(r'<span class="money">\$85\.00</span>/hour', html)
    assert "Works within 15 km of San Francisco." in html
    assert "Plumbing" in html
    assert "<dt>Monday</dt><dd>08:00–17:00</dd>" in html
    assert "<dt>Saturday</dt>" not in html
    assert "Email verified" in html
    assert "Member since" in html
    assert "Secret Lane" not in html
    assert "94110" not in html
    assert "4155550134" not in html
    assert "bob@example.com" not in html


def test_public_profile_404s_until_onboarded(client):
    user = UserFactory(is_contractor=True, is_customer=False)
    ContractorProfile.objects.create(user=user, slug="not-yet")
    assert client.get("/pros/not-yet/").status_code == 404
    assert client.get("/pros/no-such-pro/").status_code == 404


def test_public_profile_hidden_for_deactivated_or_former_contractor(client):
    gone = ContractorProfileFactory(slug="gone", user__is_active=False)
    former = ContractorProfileFactory(slug="former")
    services.user_set_roles(user=former.user, is_customer=True, is_contractor=False)
    assert gone.is_onboarded and former.is_onboarded
    assert client.get("/pros/gone/").status_code == 404
    assert client.get("/pros/former/").status_code == 404


def test_photo_view_serves_a_live_contractors_photo_to_anyone(client, contractor):
    services.user_set_photo(user=contractor, upload=upload("me.png", png_bytes(), "image/png"))
    url = reverse("accounts:photo", kwargs={"public_id": contractor.public_id})
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    body = b"".join(response.streaming_content)
    assert body[:3] == b"\xff\xd8\xff"
    html = client.get("/pros/bob-builder/").content.decode()
    assert f'src="{url}?v=' in html
    assert "/files/" not in html


def test_customer_photo_is_only_for_themselves_and_staff(client, customer, outsider, staff):
    services.user_set_photo(user=customer, upload=upload("me.png", png_bytes(), "image/png"))
    url = reverse("accounts:photo", kwargs={"public_id": customer.public_id})
    assert client.get(url).status_code == 404
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(customer)
    assert client.get(url).status_code == 200
    client.force_login(staff)
    assert client.get(url).status_code == 200


def test_photo_view_404s_without_photo_or_for_unknown_id(client, contractor):
    assert client.get(reverse("accounts:photo", kwargs={"public_id": contractor.public_id})).status_code == 404
    assert client.get("/u/00000000-0000-0000-0000-000000000000/photo").status_code == 404
    assert client.get(f"/u/{contractor.pk}/photo").status_code == 404


def test_media_url_is_not_served(client, contractor):
    services.user_set_photo(user=contractor, upload=upload("me.png", png_bytes(), "image/png"))
    contractor.refresh_from_db()
    assert client.get("/files/" + contractor.photo.name).status_code == 404


def test_dashboard_for_unonboarded_contractor_lists_what_is_missing(client):
    user = UserFactory(is_contractor=True, is_customer=False, full_name="Nia Newcomer")
    ContractorProfile.objects.create(user=user, slug="nia")
    client.force_login(user)
    html = client.get("/dashboard/").content.decode()
    assert "Not live yet" in html
    assert "Still to fill in: trades, hourly rate, service area, availability." in html
    assert 'href="/onboarding/"' in html
    assert "Getting something done" not in html


def test_dashboard_for_live_contractor_links_public_page(client, contractor):
    client.force_login(contractor)
    html = client.get("/dashboard/").content.decode()
    assert "Live" in html
    assert 'href="/pros/bob-builder/"' in html


def test_dashboard_for_customer_has_no_dead_post_task_link(client, customer):
    client.force_login(customer)
    html = client.get("/dashboard/").content.decode()
    assert "Getting something done" in html
    assert "Your work profile" not in html
    # The link appears only once the tasks app has a "post a task" page.
    post_url = _first_url(POST_TASK_URL_NAMES)
    if post_url:
        assert f'href="{post_url}"' in html
    else:
        assert "Post a task</a>" not in html


def test_unverified_user_sees_verify_banner_with_resend(client):
    user = UserFactory(unverified=True, email="late@example.com")
    client.force_login(user)
    html = client.get("/dashboard/").content.decode()
    assert "Verify your email" in html
    assert 'action="/accounts/email/"' in html
    assert 'name="email" value="late@example.com"' in html
    assert "Email not verified" in html


def test_public_profile_never_shows_the_email_even_without_a_name(client):
    pro = ContractorProfileFactory(user__email="nameless@example.com", user__full_name="", slug="nameless-pro").user

    html = client.get(reverse("accounts:public_profile", args=["nameless-pro"])).content.decode()

    assert "nameless@example.com" not in html
    assert "BittieTasks member" in html
    assert pro.public_name == "BittieTasks member"
