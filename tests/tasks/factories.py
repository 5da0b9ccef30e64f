"""Tasks in every state, for tests. Rows are built directly (factories are the
one place allowed to skip services) so a test can start from any state."""

from __future__ import annotations

import datetime as dt
import io

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from tasks.models import Offer, Task, TaskPhoto, approximate
from tests.factories import CategoryFactory, UserFactory

# The Mission, San Francisco (Bob the contractor's service area centre is 37.7509, -122.4153).
SF_LAT, SF_LON = 37.7599, -122.4148


def jpeg_content(colour: tuple[int, int, int] = (120, 160, 90), size: tuple[int, int] = (64, 48)) -> ContentFile:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return ContentFile(out.getvalue(), name="photo.jpg")


class TaskFactory(factory.django.DjangoModelFactory):
    """An open, fixed-price plumbing task in the Mission with a one-week deadline."""

    class Meta:
        model = Task
        skip_postgeneration_save = True

    customer = factory.SubFactory(UserFactory)
    category = factory.LazyFunction(lambda: CategoryFactory(name="Plumbing", slug="plumbing"))
    title = factory.Sequence(lambda n: f"Fix the leaking kitchen tap #{n}")
    description = "The kitchen tap drips all night. Washer or cartridge, probably."
    status = Task.Status.OPEN
    address = "3250 24th St"
    postal_code = "94110"
    city = "San Francisco"
    state = "CA"
    latitude = SF_LAT
    longitude = SF_LON
    approx_latitude = factory.LazyAttribute(lambda o: approximate(o.latitude, o.longitude)[0])
    approx_longitude = factory.LazyAttribute(lambda o: approximate(o.latitude, o.longitude)[1])
    budget_type = Task.BudgetType.FIXED
    budget_cents = 12_000
    schedule_type = Task.ScheduleType.FLEXIBLE
    deadline = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=7))
    published_at = factory.LazyAttribute(lambda o: timezone.now() if o.status != Task.Status.DRAFT else None)

    class Params:
        draft = factory.Trait(status=Task.Status.DRAFT)
        # Assigned to `contractor` at the budget price.
        assigned = factory.Trait(
            status=Task.Status.ASSIGNED,
            agreed_price_cents=factory.SelfAttribute("budget_cents"),
            assigned_at=factory.LazyFunction(timezone.now),
        )
        in_progress = factory.Trait(
            status=Task.Status.IN_PROGRESS,
            agreed_price_cents=factory.SelfAttribute("budget_cents"),
            assigned_at=factory.LazyFunction(timezone.now),
            started_at=factory.LazyFunction(timezone.now),
        )
        submitted = factory.Trait(
            status=Task.Status.SUBMITTED,
            agreed_price_cents=factory.SelfAttribute("budget_cents"),
            assigned_at=factory.LazyFunction(timezone.now),
            started_at=factory.LazyFunction(timezone.now),
            submitted_at=factory.LazyFunction(timezone.now),
            auto_approve_at=factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=72)),
        )

    @factory.post_generation
    def photos(self, create, extracted, **kwargs):
        """One problem photo by default; ``photos=0`` for none, ``photos=n`` for n."""
        if not create:
            return
        count = 1 if extracted is None else extracted
        for position in range(count):
            TaskPhotoFactory(task=self, position=position)


class TaskPhotoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskPhoto

    task = factory.SubFactory(TaskFactory)
    kind = TaskPhoto.Kind.PROBLEM
    uploaded_by = factory.SelfAttribute("task.customer")
    image = factory.LazyFunction(jpeg_content)
    thumbnail = factory.LazyFunction(lambda: jpeg_content(size=(32, 24)))
    width = 64
    height = 48


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    task = factory.SubFactory(TaskFactory)
    contractor = factory.SubFactory(UserFactory, is_contractor=True)
    price_cents = 11_000
    message = "I can come Thursday morning with a new cartridge."
    proposed_start = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=2))
