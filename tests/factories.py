from __future__ import annotations

import datetime as dt

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import AvailabilitySlot, ContractorProfile, User
from tasks.models import Category

PASSWORD = "correct-horse-battery-9"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Trade {n}")
    slug = factory.Sequence(lambda n: f"trade-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    """A user who can log in with PASSWORD; verified unless verified=False."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Sequence(lambda n: f"User {n}")
    is_customer = True
    is_contractor = False
    email_verified_at = factory.LazyFunction(timezone.now)

    class Params:
        verified = factory.Trait()
        unverified = factory.Trait(email_verified_at=None)

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def email_address(self, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(
                user=self, email=self.email, primary=True, verified=self.email_verified_at is not None
            )


class ContractorProfileFactory(factory.django.DjangoModelFactory):
    """An onboarded contractor in San Francisco's Mission district."""

    class Meta:
        model = ContractorProfile
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, is_contractor=True, is_customer=False)
    slug = factory.Sequence(lambda n: f"pro-{n}")
    bio = "Licensed plumber, 12 years in the Bay Area."
    hourly_rate_cents = 8500
    postal_code = "94110"
    city = "San Francisco"
    state = "CA"
    latitude = 37.7509
    longitude = -122.4153
    service_radius_km = 25
    onboarded_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def trades(self, create, extracted, **kwargs):
        if create:
            self.trades.set(extracted if extracted is not None else [CategoryFactory(name="Plumbing", slug="plumbing")])

    @factory.post_generation
    def weekly_hours(self, create, extracted, **kwargs):
        if create and extracted is not False:
            AvailabilitySlot.objects.bulk_create(
                AvailabilitySlot(profile=self, weekday=day, start_time=dt.time(8), end_time=dt.time(17))
                for day in range(5)
            )
