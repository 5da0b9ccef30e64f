"""The Django admin screens for users and contractor profiles."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.models import ContractorProfile, User
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_non_staff_cannot_open_the_admin(client, customer):
    client.force_login(customer)
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(("query", "expected"), [("dana@", ["dana@example.com"]), ("Stranger", ["charlie@example.com"]), ("555-0134", ["dana@example.com"])])
def test_user_search_by_email_name_phone(client, staff, customer, outsider, query, expected):
    User.objects.filter(pk=customer.pk).update(phone="555-0134")
    client.force_login(staff)
    response = client.get(reverse("admin:accounts_user_changelist"), {"q": query})
    assert response.status_code == 200
    assert [u.email for u in response.context["cl"].result_list] == expected


def test_user_filters_roles_and_email_verified(client, staff, customer, contractor):
    unverified = UserFactory(unverified=True, email="late@example.com")
    client.force_login(staff)
    url = reverse("admin:accounts_user_changelist")
    emails = lambda params: sorted(u.email for u in client.get(url, params).context["cl"].result_list)  # noqa: E731
    assert emails({"is_contractor__exact": "1"}) == ["bob@example.com"]
    assert emails({"email_verified": "no"}) == [unverified.email]
    assert emails({"is_staff__exact": "1"}) == ["sam@example.com"]


def test_user_change_page_shows_profile_inline(client, staff, contractor):
    client.force_login(staff)
    response = client.get(reverse("admin:accounts_user_change", args=[contractor.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "bob-builder" in html
    assert "$85.00/h" in html


def test_mark_email_verified_action_goes_through_service_and_is_logged(client, staff):
    late = UserFactory(unverified=True, email="late@example.com")
    client.force_login(staff)
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "mark_email_verified", "_selected_action": [late.pk]},
    )
    assert response.status_code == 302
    late.refresh_from_db()
    assert late.email_verified_at is not None
    assert LogEntry.objects.filter(object_id=str(late.pk), change_message="Email marked verified").count() == 1


def test_add_contractor_role_action_creates_profile(client, staff, customer):
    client.force_login(staff)
    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "add_contractor_role", "_selected_action": [customer.pk]},
    )
    customer.refresh_from_db()
    assert customer.is_contractor is True
    assert ContractorProfile.objects.filter(user=customer).count() == 1


def test_admin_form_cannot_set_verification_dates_or_roles(client, staff, customer):
    client.force_login(staff)
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    response = client.get(url)
    html = response.content.decode()
    assert 'name="email_verified_at' not in html
    assert 'name="is_contractor"' not in html
    assert 'name="id_verified_at' not in html


def test_contractor_profile_admin_search_and_filters(client, staff, contractor):
    painter = ContractorProfileFactory(
        slug="pat-painter", user__full_name="Pat Painter", state="NY", city="New York",
        trades=[CategoryFactory(name="Painting", slug="painting")],
    )
    pending = ContractorProfileFactory(slug="pending-pro", onboarded_at=None)
    client.force_login(staff)
    url = reverse("admin:accounts_contractorprofile_changelist")
    slugs = lambda params: sorted(p.slug for p in client.get(url, params).context["cl"].result_list)  # noqa: E731
    assert slugs({"q": "Painter"}) == ["pat-painter"]
    assert slugs({"state": "NY"}) == ["pat-painter"]
    assert slugs({"trades__id__exact": painter.trades.get().pk}) == ["pat-painter"]
    assert slugs({"onboarded": "no"}) == [pending.slug]
    assert slugs({"onboarded": "yes"}) == ["bob-builder", "pat-painter"]


def test_contractor_profile_admin_is_read_only_with_availability(client, staff, contractor):
    client.force_login(staff)
    profile = contractor.contractor_profile
    url = reverse("admin:accounts_contractorprofile_change", args=[profile.pk])
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Monday" in html
    assert 'name="bio"' not in html
    before = ContractorProfile.objects.get(pk=profile.pk).bio
    client.post(url, {"bio": "changed by staff"})
    assert ContractorProfile.objects.get(pk=profile.pk).bio == before


def test_staff_can_add_a_user_by_email(client, staff):
    client.force_login(staff)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "New.Hire@Example.com", "full_name": "New Hire", "password1": "a-long-pass-phrase-1", "password2": "a-long-pass-phrase-1", "usable_password": "true"},
    )
    assert response.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>", response.content.decode(), re.S)
    user = User.objects.get(email="new.hire@example.com")
    assert user.full_name == "New Hire"
    assert user.check_password("a-long-pass-phrase-1")
    assert user.email_verified_at is None


def test_staff_can_edit_name_and_access_flags(client, staff, customer):
    client.force_login(staff)
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    response = client.post(
        url,
        {
            "email": customer.email,
            "full_name": "Dana L.",
            "phone": "",
            "is_active": "on",
            "contractor_profile-TOTAL_FORMS": "0",
            "contractor_profile-INITIAL_FORMS": "0",
            "contractor_profile-MIN_NUM_FORMS": "0",
            "contractor_profile-MAX_NUM_FORMS": "0",
        },
    )
    assert response.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>", response.content.decode(), re.S)
    customer.refresh_from_db()
    assert customer.full_name == "Dana L."
    assert customer.email_verified_at is not None  # read-only field untouched


def test_admin_add_refuses_case_only_duplicate(client, staff, customer):
    client.force_login(staff)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "DANA@example.com", "full_name": "Dup", "password1": "a-long-pass-phrase-1", "password2": "a-long-pass-phrase-1", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert "An account with this email already exists." in response.content.decode()
    assert User.objects.filter(email__iexact="dana@example.com").count() == 1
