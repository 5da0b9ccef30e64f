"""GET/PATCH /api/v1/me: my details, roles and contractor profile. Every
refusal names its field and writes nothing; a token only ever changes its
own account."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import ContractorProfile, User
from tests.accounts.api_support import account_state, token_client
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"

BOB_HOURS = [{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(5)]


@pytest.fixture
def trades(db):
    return {
        "plumbing": CategoryFactory(name="Plumbing", slug="plumbing"),
        "electrical": CategoryFactory(name="Electrical", slug="electrical"),
        "retired": CategoryFactory(name="Chimney sweeping", slug="chimney", is_active=False),
    }


@pytest.fixture
def newcomer(db):
    """A verified contractor who has not filled in anything yet."""
    return ContractorProfileFactory(
        user__email="nina@example.com",
        user__full_name="Nina New",
        slug="nina-new",
        bio="",
        hourly_rate_cents=None,
        postal_code="",
        city="",
        state="",
        latitude=None,
        longitude=None,
        onboarded_at=None,
        trades=[],
        weekly_hours=False,
    ).user


def patch(client, body):
    return client.patch(ME, body, format="json")


def error(response) -> dict:
    return response.json()["error"]


# --- Reading ----------------------------------------------------------------


def test_customer_reads_their_account(customer):
    response = token_client(customer).get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "public_id": str(customer.public_id),
        "email": "dana@example.com",
        "full_name": "Dana Lee",
        "phone": "",
        "is_customer": True,
        "is_contractor": False,
        "postal_code": "",
        "city": "",
        "state": "",
        "photo_url": "",
        "email_verified": True,
        "roles": ["customer"],
        "contractor_profile": None,
    }


def test_contractor_reads_their_profile_with_hours_and_nothing_missing(contractor):
    body = token_client(contractor).get(ME).json()
    assert body["roles"] == ["contractor"]
    assert body["contractor_profile"] == {
        "slug": "bob-builder",
        "bio": "Licensed plumber, 12 years in the Bay Area.",
        "trades": ["plumbing"],
        "hourly_rate_cents": 8500,
        "currency": "USD",
        "postal_code": "94110",
        "address": "",
        "city": "San Francisco",
        "state": "CA",
        "service_radius_km": 25,
        "latitude": 37.7509,
        "longitude": -122.4153,
        "availability": BOB_HOURS,
        "onboarded": True,
        "missing": [],
    }


def test_new_contractor_sees_what_is_missing(newcomer):
    profile = token_client(newcomer).get(ME).json()["contractor_profile"]
    assert profile["onboarded"] is False
    assert profile["missing"] == ["trades", "hourly rate", "service area", "availability"]


def test_me_needs_a_login(api_client):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert error(response)["code"] == "not_authenticated"


def test_reading_me_takes_a_fixed_number_of_queries(contractor, django_assert_max_num_queries):
    client = token_client(contractor)
    # token+user, user+profile, trades, hours
    with django_assert_max_num_queries(4):
        assert client.get(ME).status_code == 200


# --- Personal details -------------------------------------------------------


def test_patch_personal_details_geocodes_the_zip(customer):
    response = patch(token_client(customer), {"full_name": "  Dana Q. Lee ", "phone": "+1 (415) 555-0100", "postal_code": "10001"})
    assert response.status_code == 200
    body = response.json()
    assert (body["full_name"], body["phone"], body["postal_code"], body["city"], body["state"]) == (
        "Dana Q. Lee",
        "+14155550100",
        "10001",
        "New York",
        "NY",
    )
    customer.refresh_from_db()
    assert (customer.full_name, customer.phone, customer.postal_code, customer.city, customer.state) == (
        "Dana Q. Lee",
        "+14155550100",
        "10001",
        "New York",
        "NY",
    )


def test_email_public_id_city_and_verification_are_read_only(customer):
    before = account_state(customer)
    response = patch(
        token_client(customer),
        {"email": "evil@example.com", "public_id": "00000000-0000-0000-0000-000000000000", "city": "Paris", "email_verified": False},
    )
    assert response.status_code == 200
    assert response.json()["email"] == "dana@example.com"
    assert account_state(customer) == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"postal_code": "00000"}, "postal_code", "We don't know the ZIP code 00000. Check it and try again."),
        ({"postal_code": "SW1A 1AA"}, "postal_code", "Enter a 5-digit US ZIP code, or an address that ends with one."),
        ({"phone": "12"}, "phone", "Enter a phone number with 7 to 15 digits."),
        ({"full_name": "   "}, "full_name", "Enter your name."),
        ({"full_name": "x" * 151}, "full_name", "Use at most 150 characters."),
        ({"is_customer": False, "is_contractor": False}, "roles", "Choose a role."),
        ({"is_customer": "maybe"}, "is_customer", "Must be a valid boolean."),
    ],
)
def test_bad_personal_details_are_refused_and_nothing_is_written(customer, body, field, message):
    before = account_state(customer)
    response = patch(token_client(customer), body)
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert error(response)["fields"] == {field: [message]}
    assert account_state(customer) == before


def test_one_bad_field_keeps_the_good_ones_from_being_saved_and_all_errors_are_listed(contractor):
    before = account_state(contractor)
    response = patch(
        token_client(contractor),
        {"full_name": "Robert Builder", "phone": "12", "contractor_profile": {"bio": "New bio", "hourly_rate_cents": -5}},
    )
    assert response.status_code == 400
    assert error(response)["fields"] == {
        "phone": ["Enter a phone number with 7 to 15 digits."],
        "contractor_profile.hourly_rate_cents": ["Enter an hourly rate between $0.01 and $1,000.00."],
    }
    assert account_state(contractor) == before


# --- Roles -------------------------------------------------------------------


def test_customer_becomes_a_contractor_and_gets_an_empty_profile(customer):
    response = patch(token_client(customer), {"is_contractor": True})
    assert response.status_code == 200
    body = response.json()
    assert body["roles"] == ["customer", "contractor"]
    profile = ContractorProfile.objects.get(user=customer)
    assert body["contractor_profile"]["slug"] == profile.slug
    assert profile.slug.startswith("dana-lee-")
    assert body["contractor_profile"]["missing"] == ["trades", "hourly rate", "service area", "availability"]


def test_becoming_a_contractor_and_filling_the_profile_in_one_request(customer, trades):
    response = patch(
        token_client(customer),
        {"is_contractor": True, "contractor_profile": {"trades": ["electrical"], "hourly_rate_cents": 9000}},
    )
    assert response.status_code == 200
    profile = ContractorProfile.objects.get(user=customer)
    assert (list(profile.trades.values_list("slug", flat=True)), profile.hourly_rate_cents) == (["electrical"], 9000)


def test_contractor_who_stops_working_hides_the_profile_but_keeps_it(contractor):
    response = patch(token_client(contractor), {"is_contractor": False, "is_customer": True})
    assert response.status_code == 200
    assert response.json()["contractor_profile"] is None
    assert ContractorProfile.objects.filter(user=contractor, slug="bob-builder").exists()


def test_customer_cannot_write_a_contractor_profile(customer, trades):
    before = account_state(customer)
    response = patch(token_client(customer), {"full_name": "Dana X", "contractor_profile": {"hourly_rate_cents": 5000}})
    assert response.status_code == 403
    assert error(response)["code"] == "not_contractor"
    assert account_state(customer) == before
    assert not ContractorProfile.objects.filter(user=customer).exists()


# --- Contractor profile ------------------------------------------------------


def test_newcomer_fills_in_the_whole_profile(newcomer, trades):
    response = patch(
        token_client(newcomer),
        {
            "contractor_profile": {
                "bio": "Electrician and plumber.",
                "trades": ["plumbing", "electrical"],
                "hourly_rate_cents": 12550,
                "postal_code": "94103",
                "service_radius_km": 40,
                "availability": [
                    {"weekday": 5, "start": "09:00", "end": "12:00"},
                    {"weekday": 0, "start": "18:00", "end": "21:30"},
                    {"weekday": 0, "start": "07:00", "end": "12:00"},
                ],
            }
        },
    )
    assert response.status_code == 200
    body = response.json()["contractor_profile"]
    assert sorted(body["trades"]) == ["electrical", "plumbing"]
    assert body["availability"] == [
        {"weekday": 0, "start": "07:00", "end": "12:00"},
        {"weekday": 0, "start": "18:00", "end": "21:30"},
        {"weekday": 5, "start": "09:00", "end": "12:00"},
    ]
    assert (body["city"], body["state"], body["latitude"], body["longitude"]) == ("San Francisco", "CA", 37.7725, -122.4147)
    assert body["missing"] == []
    assert body["onboarded"] is False  # going live is its own step

    profile = ContractorProfile.objects.get(user=newcomer)
    assert profile.hourly_rate_cents == 12550
    assert profile.service_radius_km == 40
    assert profile.bio == "Electrician and plumber."
    assert sorted(profile.trades.values_list("slug", flat=True)) == ["electrical", "plumbing"]
    assert list(profile.availability.values_list("weekday", "start_time", "end_time")) == [
        (0, dt.time(7), dt.time(12)),
        (0, dt.time(18), dt.time(21, 30)),
        (5, dt.time(9), dt.time(12)),
    ]


def test_an_address_with_its_zip_is_kept_and_coordinates_are_read_only(contractor):
    response = patch(
        token_client(contractor),
        {"contractor_profile": {"address": "1 Market St, San Francisco, CA 94103", "latitude": 0, "longitude": 0}},
    )
    assert response.status_code == 200
    profile = ContractorProfile.objects.get(user=contractor)
    assert (profile.address, profile.postal_code, profile.latitude, profile.longitude) == (
        "1 Market St, San Francisco, CA 94103",
        "94103",
        37.7725,
        -122.4147,
    )


def test_an_address_without_a_zip_takes_the_postal_code_given_with_it(contractor):
    response = patch(token_client(contractor), {"contractor_profile": {"address": "1 Market St", "postal_code": "94103"}})
    assert response.status_code == 200
    profile = ContractorProfile.objects.get(user=contractor)
    assert (profile.address, profile.postal_code) == ("1 Market St 94103", "94103")


def test_a_zip_alone_clears_the_street_address(contractor):
    patch(token_client(contractor), {"contractor_profile": {"address": "1 Market St, CA 94103"}})
    response = patch(token_client(contractor), {"contractor_profile": {"postal_code": "94110"}})
    assert response.status_code == 200
    assert response.json()["contractor_profile"]["address"] == ""


def test_replacing_hours_with_an_empty_list_clears_them(contractor):
    response = patch(token_client(contractor), {"contractor_profile": {"availability": []}})
    assert response.status_code == 200
    assert response.json()["contractor_profile"]["availability"] == []
    assert response.json()["contractor_profile"]["missing"] == ["availability"]


@pytest.mark.parametrize(
    ("profile_body", "field", "message"),
    [
        ({"hourly_rate_cents": -100}, "hourly_rate_cents", "Enter an hourly rate between $0.01 and $1,000.00."),
        ({"hourly_rate_cents": 0}, "hourly_rate_cents", "Enter an hourly rate between $0.01 and $1,000.00."),
        ({"hourly_rate_cents": 10**15}, "hourly_rate_cents", "Enter an hourly rate between $0.01 and $1,000.00."),
        ({"hourly_rate_cents": "85.50"}, "hourly_rate_cents", "A valid integer is required."),
        ({"service_radius_km": 0}, "service_radius_km", "Choose a radius between 1 and 160 km."),
        ({"service_radius_km": 5000}, "service_radius_km", "Choose a radius between 1 and 160 km."),
        ({"trades": ["plumbing", "astrology"]}, "trades", "There is no trade called astrology."),
        ({"trades": ["chimney"]}, "trades", "There is no trade called chimney."),
        ({"postal_code": "00000"}, "postal_code", "We don't know the ZIP code 00000. Check it and try again."),
        ({"postal_code": "abc"}, "postal_code", "Enter a 5-digit US ZIP code, or an address that ends with one."),
        ({"address": "1 Main Street"}, "address", "Enter a 5-digit US ZIP code, or an address that ends with one."),
        (
            {"address": "1 Market St, CA 94103", "postal_code": "10001"},
            "postal_code",
            "The address has ZIP code 94103, not 10001.",
        ),
        ({"bio": "x" * 2001}, "bio", "Use at most 2,000 characters."),
        (
            {"availability": [{"weekday": 0, "start": "08:00", "end": "12:00"}, {"weekday": 0, "start": "11:00", "end": "14:00"}]},
            "availability",
            "On Monday, two time windows overlap.",
        ),
        (
            {"availability": [{"weekday": 2, "start": "17:00", "end": "09:00"}]},
            "availability",
            "On Wednesday, the end time must be after the start time.",
        ),
        ({"availability": [{"weekday": 7, "start": "08:00", "end": "09:00"}]}, "availability.0.weekday",
         "Ensure this value is less than or equal to 6."),
        ({"availability": [{"weekday": 1, "start": "25:00", "end": "09:00"}]}, "availability.0.start",
         "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]]."),
    ],
)
def test_bad_contractor_fields_are_refused_and_nothing_is_written(contractor, trades, profile_body, field, message):
    before = account_state(contractor)
    response = patch(token_client(contractor), {"contractor_profile": profile_body})
    assert response.status_code == 400, response.json()
    assert error(response)["code"] == "validation_error"
    assert error(response)["fields"] == {f"contractor_profile.{field}": [message]}
    assert error(response)["message"] == message
    assert account_state(contractor) == before


def test_more_than_ten_trades_is_refused(contractor):
    slugs = [CategoryFactory(name=f"Trade {n}", slug=f"t{n}").slug for n in range(11)]
    before = account_state(contractor)
    response = patch(token_client(contractor), {"contractor_profile": {"trades": slugs}})
    assert response.status_code == 400
    assert error(response)["fields"] == {"contractor_profile.trades": ["Choose at most 10 trades."]}
    assert account_state(contractor) == before


def test_a_bad_nested_field_also_undoes_role_and_detail_changes(customer, trades):
    before = account_state(customer)
    response = patch(
        token_client(customer),
        {"full_name": "Dana Pro", "is_contractor": True, "contractor_profile": {"hourly_rate_cents": 999_999_999}},
    )
    assert response.status_code == 400
    assert account_state(customer) == before
    assert not ContractorProfile.objects.filter(user=customer).exists()


# --- Nobody else's account ---------------------------------------------------


def test_my_token_only_ever_changes_my_account(customer, contractor, outsider):
    theirs = {user.pk: account_state(user) for user in (contractor, outsider)}
    response = patch(
        token_client(customer),
        {
            "full_name": "Dana Changed",
            "email": outsider.email,
            "public_id": str(outsider.public_id),
            "contractor_profile": None,
        },
    )
    assert response.status_code == 200
    assert response.json()["public_id"] == str(customer.public_id)
    assert User.objects.get(pk=customer.pk).full_name == "Dana Changed"
    for user in (contractor, outsider):
        assert account_state(user) == theirs[user.pk]


def test_a_contractor_slug_in_the_body_does_not_reach_that_profile(newcomer, contractor, trades):
    bob = account_state(contractor)
    response = patch(token_client(newcomer), {"contractor_profile": {"slug": "bob-builder", "hourly_rate_cents": 100}})
    assert response.status_code == 200
    assert response.json()["contractor_profile"]["slug"] == "nina-new"
    assert ContractorProfile.objects.get(user=newcomer).hourly_rate_cents == 100
    assert account_state(contractor) == bob


def test_there_is_no_url_that_addresses_another_user(customer, outsider):
    client = token_client(customer)
    for url in (f"/api/v1/me/{outsider.public_id}", f"/api/v1/users/{outsider.public_id}", f"/api/v1/me?user={outsider.pk}"):
        before = account_state(outsider)
        response = client.patch(url, {"full_name": "Hacked"}, format="json")
        assert response.status_code in (200, 404)
        assert account_state(outsider) == before
    assert User.objects.get(pk=customer.pk).full_name == "Hacked"  # the ?user= one patched me, not them


def test_unverified_user_may_edit_their_own_details(api_as):
    newbie = UserFactory(email="newbie@example.com", unverified=True)
    response = api_as(newbie).patch(ME, {"full_name": "New Bie"}, format="json")
    assert response.status_code == 200
    assert response.json()["email_verified"] is False
