"""The shared cast, like healthchecks' alice/bob/charlie:

- ``customer``: Dana, verified, posts tasks.
- ``contractor``: Bob, verified and onboarded plumber in San Francisco.
- ``outsider``: Charlie, verified customer with nothing to do with the others.
- ``staff``: Sam, staff with every permission.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import PASSWORD, ContractorProfileFactory, UserFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    # allauth's rate limits live in the cache; one test's failed logins must
    # not lock out the next test's user. The matching model is cached per
    # process for 60 s: a model one test trained must not rank the next's.
    from matching.ranking import reset_cache

    cache.clear()
    reset_cache()
    yield
    cache.clear()
    reset_cache()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def customer(db):
    return UserFactory(email="dana@example.com", full_name="Dana Lee")


@pytest.fixture
def contractor(db):
    return ContractorProfileFactory(
        user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-builder"
    ).user


@pytest.fixture
def outsider(db):
    return UserFactory(email="charlie@example.com", full_name="Charlie Stranger")


@pytest.fixture
def staff(db):
    return UserFactory(email="sam@example.com", full_name="Sam Staff", is_staff=True, is_superuser=True, is_customer=False)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as():
    """An API client logged in (by token) as the given user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make
