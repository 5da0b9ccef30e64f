"""``manage.py seed_demo``: the demo data ``make run`` shows."""

from __future__ import annotations

import io
import sys
import types

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.core.management import CommandError, call_command

from accounts.demo import ADMIN_EMAIL, DEMO_PASSWORD, PEOPLE, TRADES
from accounts.models import ContractorProfile, User
from core.geo import distance_km
from tasks.models import Category

# Civic Center, San Francisco: every demo ZIP centroid lies within 12 km.
SF_CENTER = (37.7793, -122.4193)


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict[str, list[dict]]:
    """Every row of every table (tasks' demo data included once it exists)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models(include_auto_created=True)
    }


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True


@pytest.mark.django_db
def test_refuses_with_debug_off_and_writes_nothing(settings):
    settings.DEBUG = False
    before = snapshot()

    with pytest.raises(CommandError, match="DJANGO_DEBUG=true"):
        seed()

    assert snapshot() == before
    assert User.objects.count() == 0
    assert Category.objects.count() == 0


@pytest.mark.django_db
def test_force_runs_with_debug_off(settings):
    settings.DEBUG = False

    seed(force=True)

    assert User.objects.count() == len(PEOPLE) + 1


@pytest.mark.django_db
def test_creates_the_twelve_trades_in_order(debug_on):
    seed()

    assert list(Category.objects.values_list("name", "slug", "is_active")) == [
        ("Plumbing", "plumbing", True),
        ("Electrical", "electrical", True),
        ("Carpentry", "carpentry", True),
        ("Handyman", "handyman", True),
        ("Painting", "painting", True),
        ("Cleaning", "cleaning", True),
        ("Moving help", "moving-help", True),
        ("Appliance repair", "appliance-repair", True),
        ("HVAC", "hvac", True),
        ("Landscaping", "landscaping", True),
        ("Furniture assembly", "furniture-assembly", True),
        ("Roofing", "roofing", True),
    ]
    assert (
        Category.objects.get(slug="plumbing").description == "Leaks, clogs, fixtures, water heaters and pipe repairs."
    )
    assert all(description for description in Category.objects.values_list("description", flat=True))


@pytest.mark.django_db
def test_contractors_are_onboarded_in_san_francisco_with_trades_rates_and_hours(debug_on):
    seed()

    contractors = [p for p in PEOPLE if p.is_contractor]
    assert ContractorProfile.objects.count() == len(contractors) == 6
    for person in contractors:
        profile = ContractorProfile.objects.get(user__email=person.email)
        assert profile.onboarded_at is not None
        assert (profile.postal_code, profile.city, profile.state) == (person.postal_code, "San Francisco", "CA")
        assert distance_km(*SF_CENTER, profile.latitude, profile.longitude) < 12
        assert profile.hourly_rate_cents == person.hourly_rate_cents
        assert profile.service_radius_km == person.service_radius_km
        assert profile.bio == person.bio
        assert sorted(profile.trades.values_list("slug", flat=True)) == sorted(person.trades)
        assert profile.availability.count() == sum(len(days) for days, _start, _end in person.hours)

    rosa = ContractorProfile.objects.get(user__email="rosa@bittietasks.local")
    assert [str(slot) for slot in rosa.availability.all()] == [
        "Monday 07:00-16:00",
        "Tuesday 07:00-16:00",
        "Wednesday 07:00-16:00",
        "Thursday 07:00-16:00",
        "Friday 07:00-16:00",
    ]
    assert rosa.user.is_contractor and not rosa.user.is_customer
    leo = User.objects.get(email="leo@bittietasks.local")
    assert leo.is_customer and leo.is_contractor


@pytest.mark.django_db
def test_customers_are_in_san_francisco_without_a_contractor_profile(debug_on):
    seed()

    for person in (p for p in PEOPLE if not p.is_contractor):
        user = User.objects.get(email=person.email)
        assert (user.is_customer, user.is_contractor, user.is_staff) == (True, False, False)
        assert (user.postal_code, user.city, user.state) == (person.postal_code, "San Francisco", "CA")
        assert not ContractorProfile.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_every_demo_email_is_verified_for_us_and_for_allauth(debug_on):
    seed()

    users = User.objects.all()
    assert users.count() == 10
    for user in users:
        assert user.email_verified_at is not None
        assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
            (user.email, True, True)
        ]


@pytest.mark.django_db
def test_admin_is_staff_and_superuser(debug_on):
    seed()

    admin = User.objects.get(email=ADMIN_EMAIL)
    assert (admin.is_staff, admin.is_superuser, admin.is_customer, admin.is_contractor) == (True, True, False, False)
    assert admin.check_password(DEMO_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize("email", [ADMIN_EMAIL] + [p.email for p in PEOPLE])
def test_each_demo_login_gets_through_allauths_mandatory_verification(debug_on, client, email):
    seed()

    response = client.post("/accounts/login/", {"login": email, "password": DEMO_PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(email=email).pk)


@pytest.mark.django_db
def test_a_wrong_password_does_not_log_in(debug_on, client):
    seed()

    response = client.post("/accounts/login/", {"login": "rosa@bittietasks.local", "password": "not-the-demo-one"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_running_twice_creates_nothing_and_changes_nothing(debug_on):
    seed()
    first = snapshot()

    output = seed()

    assert snapshot() == first
    assert "Trades: 0 created, 12 already there." in output
    assert "Demo people: 0 created, 10 already there." in output


@pytest.mark.django_db
def test_a_second_run_keeps_what_an_admin_changed_and_adds_what_is_missing(debug_on):
    seed()
    Category.objects.filter(slug="roofing").update(name="Roofs and gutters")
    User.objects.filter(email="maya@bittietasks.local").delete()
    rosa_before = ContractorProfile.objects.filter(user__email="rosa@bittietasks.local").values().get()

    output = seed()

    assert Category.objects.get(slug="roofing").name == "Roofs and gutters"
    assert Category.objects.count() == len(TRADES)
    assert User.objects.get(email="maya@bittietasks.local").email_verified_at is not None
    assert ContractorProfile.objects.filter(user__email="rosa@bittietasks.local").values().get() == rosa_before
    assert "Demo people: 1 created, 9 already there." in output


@pytest.mark.django_db
def test_prints_the_shared_password_and_every_login(debug_on):
    output = seed()

    assert f"Demo logins (password for all: {DEMO_PASSWORD}):" in output
    for email in [ADMIN_EMAIL] + [p.email for p in PEOPLE]:
        assert email in output
    rosa = ContractorProfile.objects.get(user__email="rosa@bittietasks.local")
    assert f"rosa@bittietasks.local    contractor, Plumbing, HVAC, /pros/{rosa.slug}/" in output


@pytest.mark.django_db
def test_calls_the_tasks_demo_after_accounts_when_it_exists(debug_on, monkeypatch):
    calls = []
    module = types.ModuleType("tasks.demo")
    module.seed = lambda stdout: calls.append(User.objects.count()) or stdout.write("Tasks: seeded.\n")
    monkeypatch.setitem(sys.modules, "tasks.demo", module)

    output = seed()

    # The accounts part ran first: the tasks part saw every demo person.
    assert calls == [len(PEOPLE) + 1]
    assert output.endswith("Tasks: seeded.\n")


@pytest.mark.django_db
def test_skips_the_tasks_demo_when_the_module_is_missing(debug_on, monkeypatch):
    # None in sys.modules makes the import fail with ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, "tasks.demo", None)

    seed()

    assert User.objects.count() == len(PEOPLE) + 1


@pytest.mark.django_db
def test_an_import_error_inside_a_demo_module_is_not_hidden(debug_on, monkeypatch, tmp_path):
    # A tasks/demo.py that itself imports something missing: a bug to show,
    # not a missing module to skip.
    import tasks

    (tmp_path / "demo.py").write_text("import nonexistent_lib_for_seed_demo_test\n")
    monkeypatch.setattr(tasks, "__path__", [str(tmp_path), *tasks.__path__])  # ahead of the real tasks/demo.py
    monkeypatch.delitem(sys.modules, "tasks.demo", raising=False)

    with pytest.raises(ModuleNotFoundError, match="nonexistent_lib_for_seed_demo_test"):
        seed()
