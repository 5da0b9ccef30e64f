"""tasks.demo: the demo tasks ``seed_demo`` adds for ``make run``."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from PIL import Image

from accounts import demo as accounts_demo
from core.geo import distance_km
from tasks import demo
from tasks.models import CheckIn, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto
from tasks.photos import photo_can_view

pytestmark = pytest.mark.django_db

# Civic Center, San Francisco: every demo ZIP centroid lies within 12 km.
SF_CENTER = (37.7793, -122.4193)
S = Task.Status
E = TaskEvent.Kind


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Task, TaskPhoto, Offer, TaskEvent, CheckIn, ProofSubmission)
    }


@pytest.fixture
def seeded():
    accounts_demo.seed(io.StringIO())
    out = io.StringIO()
    demo.seed(out)
    return out.getvalue()


def test_seeding_twice_adds_and_changes_nothing(seeded):
    before = counts()
    rows = list(Task.objects.order_by("pk").values())
    files = sorted(TaskPhoto.objects.values_list("image", flat=True))

    out = io.StringIO()
    demo.seed(out)

    assert counts() == before
    assert list(Task.objects.order_by("pk").values()) == rows
    assert sorted(TaskPhoto.objects.values_list("image", flat=True)) == files
    assert out.getvalue() == f"Demo tasks: 0 created, {len(demo.TASKS)} already there.\n"
    assert seeded == f"Demo tasks: {len(demo.TASKS)} created, 0 already there.\n"


def test_every_status_is_present(seeded):
    by_status = Counter(Task.objects.values_list("status", flat=True))

    assert set(by_status) == set(S.values)
    assert by_status[S.OPEN] >= 8
    assert Task.objects.count() == len(demo.TASKS)


def test_open_tasks_are_spread_around_san_francisco_with_varied_trades_budgets_and_urgency(seeded):
    open_tasks = list(Task.objects.filter(status=S.OPEN).select_related("category"))

    for task in open_tasks:
        assert (task.city, task.state) == ("San Francisco", "CA")
        assert distance_km(*SF_CENTER, task.latitude, task.longitude) < 12
        assert distance_km(task.latitude, task.longitude, task.approx_latitude, task.approx_longitude) < 1.5
    assert len({task.postal_code for task in open_tasks}) >= 8
    assert len({task.category.slug for task in open_tasks}) >= 6
    assert len({task.budget_cents for task in open_tasks}) >= 6
    assert {task.urgency for task in open_tasks} == set(Task.Urgency.values)
    assert {task.budget_type for task in open_tasks} == set(Task.BudgetType.values)
    assert sum(task.instant_book for task in open_tasks) >= 2
    assert any(task.offers.filter(status=Offer.Status.PENDING).exists() for task in open_tasks)


def test_tasks_belong_to_demo_customers_and_offers_to_demo_contractors(seeded):
    customers = {p.email for p in accounts_demo.PEOPLE if p.is_customer}
    contractors = {p.email for p in accounts_demo.PEOPLE if p.is_contractor}

    assert set(Task.objects.values_list("customer__email", flat=True)) <= customers - {"maya@bittietasks.local"}
    assert set(Offer.objects.values_list("contractor__email", flat=True)) <= contractors
    for task in Task.objects.exclude(contractor=None):
        assert task.contractor.email in contractors
        assert task.contractor_id != task.customer_id


def test_each_step_left_its_event(seeded):
    def kinds(title: str) -> list[str]:
        return list(TaskEvent.objects.filter(task__title=title).values_list("kind", flat=True))

    assert kinds("Install a ceiling fan in the living room") == [E.CREATED]
    assert kinds("Kitchen sink drains slowly") == [E.CREATED, E.PUBLISHED, E.OFFER_MADE]
    assert kinds("Mount a TV on a brick wall") == [
        E.CREATED,
        E.PUBLISHED,
        E.OFFER_MADE,
        E.OFFER_MADE,
        E.OFFER_ACCEPTED,
    ]
    assert kinds("Assemble a bunk bed") == [E.CREATED, E.PUBLISHED, E.INSTANT_BOOKED]
    assert kinds("Patch and paint hallway scuffs") == [
        E.CREATED,
        E.PUBLISHED,
        E.OFFER_MADE,
        E.OFFER_ACCEPTED,
        E.CHECKED_IN,
        E.PROOF_SUBMITTED,
        E.CHANGES_REQUESTED,
    ]
    assert kinds("Furnace tune-up before winter") == [
        E.CREATED,
        E.PUBLISHED,
        E.OFFER_MADE,
        E.OFFER_ACCEPTED,
        E.CHECKED_IN,
        E.PROOF_SUBMITTED,
        E.APPROVED,
    ]
    assert kinds("Clean out the gutters") == [E.CREATED, E.PUBLISHED, E.OFFER_MADE, E.CANCELLED]
    assert kinds("Window cleaning, inside and out")[-1] == E.CANCELLED
    # Every task has a history that starts with its creation.
    for task in Task.objects.all():
        assert task.events.order_by("created_at", "id").first().kind == E.CREATED


def test_booked_tasks_are_consistent(seeded):
    tv = Task.objects.get(title="Mount a TV on a brick wall")
    assert (tv.status, tv.contractor.email, tv.agreed_price_cents) == (S.ASSIGNED, "tom@bittietasks.local", 14_000)
    assert dict(tv.offers.values_list("contractor__email", "status")) == {
        "tom@bittietasks.local": Offer.Status.ACCEPTED,
        "ana@bittietasks.local": Offer.Status.DECLINED,
    }
    door = Task.objects.get(title="Repair a sticking front door")
    assert door.status == S.SUBMITTED and door.auto_approve_at is not None
    assert door.proofs.get().decision == ProofSubmission.Decision.PENDING
    hallway = Task.objects.get(title="Patch and paint hallway scuffs")
    assert (hallway.status, hallway.changes_requested_count) == (S.IN_PROGRESS, 1)
    furnace = Task.objects.get(title="Furnace tune-up before winter")
    assert furnace.completed_at is not None
    assert furnace.proofs.get().decision == ProofSubmission.Decision.APPROVED
    gutters = Task.objects.get(title="Clean out the gutters")
    assert (gutters.cancelled_by.email, gutters.contractor) == ("priya@bittietasks.local", None)
    assert gutters.offers.get().status == Offer.Status.DECLINED
    windows = Task.objects.get(title="Window cleaning, inside and out")
    assert (windows.cancelled_by.email, windows.contractor.email) == ("grace@bittietasks.local",) * 2
    assert windows.cancel_reason.startswith("Sorry, I've hurt my wrist")


def test_the_disputed_task_has_an_open_dispute_by_its_customer_and_its_money_on_hold(seeded):
    from payments.models import Escrow
    from reputation.dispute_models import Dispute

    task = Task.objects.get(title="Regrout the shower tiles")
    dispute = Dispute.objects.get(task=task)
    assert (task.status, task.contractor.email) == (S.DISPUTED, "tom@bittietasks.local")
    assert (dispute.opened_by, dispute.against) == (task.customer, task.contractor)
    assert dispute.status in Dispute.OPEN_STATUSES
    assert dispute.reason == Dispute.Reason.POOR_QUALITY
    assert dispute.text.startswith("Two days after the job")
    assert dispute.escrow is not None and dispute.escrow.status == Escrow.Status.FROZEN
    assert list(task.events.values_list("kind", flat=True))[-2:] == [E.PROOF_SUBMITTED, E.DISPUTED]


def test_every_task_has_one_drawn_photo_and_finished_ones_a_proof_photo(seeded):
    for task in Task.objects.all():
        problem = list(task.photos.filter(kind=TaskPhoto.Kind.PROBLEM))
        assert len(problem) == 1
        with default_storage.open(problem[0].image.name, "rb") as stored, Image.open(stored) as image:
            assert (image.format, image.size) == ("JPEG", (800, 600))
        assert default_storage.exists(problem[0].thumbnail.name)
    proof_titles = set(TaskPhoto.objects.filter(kind=TaskPhoto.Kind.PROOF).values_list("task__title", flat=True))
    assert proof_titles == {
        "Patch and paint hallway scuffs",
        "Repair a sticking front door",
        "Furnace tune-up before winter",
        "Replace a scorched kitchen outlet",
        "Regrout the shower tiles",
    }


def test_demo_open_task_photo_is_public_and_proof_photo_private(seeded):
    from django.contrib.auth.models import AnonymousUser

    open_photo = TaskPhoto.objects.get(task__title="Kitchen sink drains slowly")
    proof_photo = TaskPhoto.objects.get(task__title="Repair a sticking front door", kind=TaskPhoto.Kind.PROOF)

    assert photo_can_view(open_photo, AnonymousUser())
    assert not photo_can_view(proof_photo, AnonymousUser())


def test_seeding_sends_no_email(seeded):
    assert mail.outbox == []


def test_without_the_demo_people_it_refuses_and_writes_nothing():
    with pytest.raises(RuntimeError, match="seed accounts.demo first"):
        demo.seed(io.StringIO())

    assert Task.objects.count() == 0


def test_demo_proof_photos_pass_the_duplicate_check(django_capture_on_commit_callbacks):
    """Every demo photo is its own picture, so no demo proof is failed as a reused photo."""
    from tasks.models import PhotoCheck

    accounts_demo.seed(io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed(io.StringIO())

    checks = list(PhotoCheck.objects.values_list("status", flat=True))
    assert checks, "the demo has submitted and completed work with proof photos"
    assert "fail" not in checks
