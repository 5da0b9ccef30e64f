"""Who sees which task, how much of its location, whose offers, which events,
and which actions each person is offered, in every state."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from core.errors import ApplicationError, NotFound
from tasks import selectors
from tasks.models import Offer, Task, TaskEvent
from tests.factories import ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db

ALL_STATES = ["draft", "open", "assigned", "in_progress", "submitted", "completed", "cancelled", "disputed"]
HIRED_STATES = {"assigned", "in_progress", "submitted", "completed", "disputed"}


def make_task(status: str, customer, contractor) -> Task:
    """A task of `customer` in `status`, hired to `contractor` where a state needs one."""
    if status in ("draft", "open"):
        return TaskFactory(customer=customer, **{status: True} if status == "draft" else {})
    if status in ("assigned", "in_progress", "submitted"):
        return TaskFactory(customer=customer, contractor=contractor, **{status: True})
    if status == "completed":
        return TaskFactory(
            customer=customer,
            contractor=contractor,
            status=Task.Status.COMPLETED,
            agreed_price_cents=12_000,
            completed_at=timezone.now(),
        )
    if status == "disputed":
        return TaskFactory(customer=customer, contractor=contractor, status=Task.Status.DISPUTED, agreed_price_cents=12_000)
    return TaskFactory(customer=customer, status=Task.Status.CANCELLED, cancel_reason="Fixed it myself")


@pytest.fixture
def cast(customer, contractor, outsider, staff):
    """Everyone who might look at Dana's task."""
    other_contractor = ContractorProfileFactory(user__email="olga@example.com").user
    offer_maker = ContractorProfileFactory(user__email="omar@example.com").user
    return {
        "anonymous": AnonymousUser(),
        "customer": customer,
        "assigned": contractor,
        "other_contractor": other_contractor,
        "offer_maker": offer_maker,
        "outsider": outsider,
        "staff": staff,
    }


def with_offer(task: Task, offer_maker) -> Task:
    # The offer maker offered while the task was open; the offer outlives that.
    status = Offer.Status.PENDING if task.status == Task.Status.OPEN else Offer.Status.DECLINED
    OfferFactory(task=task, contractor=offer_maker, status=status)
    return task


# --- task_get_for_user ---------------------------------------------------------

EXPECTED_VIEWERS = {
    "draft": {"customer", "staff"},
    "open": {"anonymous", "customer", "assigned", "other_contractor", "offer_maker", "outsider", "staff"},
    # Hired, done, cancelled or disputed: the parties, staff and whoever offered on it.
    **{s: {"customer", "assigned", "offer_maker", "staff"} for s in HIRED_STATES},
    "cancelled": {"customer", "offer_maker", "staff"},
}


@pytest.mark.parametrize("status", ALL_STATES)
def test_who_may_see_a_task_in_each_state(status, cast):
    task = make_task(status, cast["customer"], cast["assigned"])
    if status != "draft":
        with_offer(task, cast["offer_maker"])
    for who, user in cast.items():
        if who in EXPECTED_VIEWERS[status]:
            assert selectors.task_get_for_user(task.public_id, user).pk == task.pk, who
            assert selectors.task_get_for_user(str(task.public_id), user).pk == task.pk, who
        else:
            with pytest.raises(NotFound):
                selectors.task_get_for_user(task.public_id, user)


def test_a_declined_contractor_still_sees_what_became_of_the_task_but_not_where(cast):
    task = with_offer(make_task("assigned", cast["customer"], cast["assigned"]), cast["offer_maker"])
    seen = selectors.task_get_for_user(task.public_id, cast["offer_maker"])
    assert seen.status == Task.Status.ASSIGNED
    assert selectors.task_location_for(seen, cast["offer_maker"])["address"] == ""


@pytest.mark.parametrize("bad_id", ["", "not-a-uuid", "123", None, "5f0c2a4e-9d1b-4c7e-8a3f-2b6d1e0f9a7c"])
def test_unknown_or_malformed_ids_are_not_found(bad_id, customer):
    TaskFactory(customer=customer)
    with pytest.raises(NotFound):
        selectors.task_get_for_user(bad_id, customer)


def test_a_deactivated_customer_no_longer_sees_their_draft(customer):
    task = TaskFactory(customer=customer, draft=True)
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    with pytest.raises(NotFound):
        selectors.task_get_for_user(task.public_id, customer)


# --- task_location_for ---------------------------------------------------------

EXACT_FOR = {
    "draft": {"customer", "staff"},
    "open": {"customer", "staff"},
    **{s: {"customer", "assigned", "staff"} for s in HIRED_STATES},
    "cancelled": {"customer", "staff"},
}


@pytest.mark.parametrize("status", ALL_STATES)
def test_exact_address_only_for_customer_hired_contractor_and_staff(status, cast):
    task = make_task(status, cast["customer"], cast["assigned"])
    if status == "cancelled":
        # A contractor hired and then cancelled: the address is no longer theirs to see.
        task.contractor = cast["assigned"]
        task.save(update_fields=["contractor"])
    if status != "draft":
        with_offer(task, cast["offer_maker"])
    for who, user in cast.items():
        location = selectors.task_location_for(task, user)
        if who in EXACT_FOR[status]:
            assert location == {
                "exact": True,
                "latitude": task.latitude,
                "longitude": task.longitude,
                "address": "3250 24th St",
                "city": "San Francisco",
                "state": "CA",
                "postal_code": "94110",
            }, who
        else:
            assert location == {
                "exact": False,
                "latitude": 37.755,
                "longitude": -122.415,
                "address": "",
                "city": "San Francisco",
                "state": "CA",
                "postal_code": "94110",
            }, who


def test_approximate_point_is_within_a_kilometre_but_not_the_exact_one(customer):
    task = TaskFactory(customer=customer)
    location = selectors.task_location_for(task, AnonymousUser())
    assert (location["latitude"], location["longitude"]) != (task.latitude, task.longitude)
    assert abs(location["latitude"] - task.latitude) <= 0.005
    assert abs(location["longitude"] - task.longitude) <= 0.005


# --- offers_for ------------------------------------------------------------------


def test_offers_customer_and_staff_see_all_a_contractor_only_theirs(cast):
    task = TaskFactory(customer=cast["customer"])
    mine = OfferFactory(task=task, contractor=cast["offer_maker"], price_cents=9_000)
    theirs = OfferFactory(task=task, contractor=cast["other_contractor"], price_cents=10_000)
    withdrawn = OfferFactory(task=task, contractor=cast["assigned"], status=Offer.Status.WITHDRAWN)
    everyone = [mine.pk, theirs.pk, withdrawn.pk]
    assert [o.pk for o in selectors.offers_for(task, cast["customer"])] == everyone
    assert [o.pk for o in selectors.offers_for(task, cast["staff"])] == everyone
    assert [o.pk for o in selectors.offers_for(task, cast["offer_maker"])] == [mine.pk]
    assert [o.pk for o in selectors.offers_for(task, cast["other_contractor"])] == [theirs.pk]
    assert [o.pk for o in selectors.offers_for(task, cast["assigned"])] == [withdrawn.pk]
    assert list(selectors.offers_for(task, cast["outsider"])) == []
    assert list(selectors.offers_for(task, cast["anonymous"])) == []


def test_offers_for_loads_contractor_and_profile_in_one_query(cast, django_assert_num_queries):
    task = TaskFactory(customer=cast["customer"])
    for who in ("offer_maker", "other_contractor", "assigned"):
        OfferFactory(task=task, contractor=cast[who])
    with django_assert_num_queries(1):
        names = [(o.contractor.full_name, o.contractor.contractor_profile.slug) for o in selectors.offers_for(task, cast["customer"])]
    assert len(names) == 3


# --- task_actions ------------------------------------------------------------------

# (status, who) -> actions. Anything not listed: no actions.
EXPECTED_ACTIONS = {
    ("draft", "customer"): {"edit", "publish", "cancel"},
    ("open", "customer"): {"edit", "cancel"},
    ("open", "assigned"): {"offer"},  # before being hired, Bob is just another contractor
    ("open", "other_contractor"): {"offer"},
    ("open", "offer_maker"): {"withdraw_offer"},
    ("assigned", "customer"): {"cancel"},
    ("assigned", "assigned"): {"check_in", "cancel"},
    ("in_progress", "customer"): {"cancel"},
    ("in_progress", "assigned"): {"submit_proof", "cancel"},
    ("submitted", "customer"): {"approve", "request_changes"},
    # Staff may cancel anything cancellable (tasks/policies.py), nothing else.
    ("draft", "staff"): {"cancel"},
    ("open", "staff"): {"cancel"},
    ("assigned", "staff"): {"cancel"},
    ("in_progress", "staff"): {"cancel"},
}


@pytest.mark.parametrize("status", ALL_STATES)
def test_actions_per_role_and_state(status, cast):
    task = make_task(status, cast["customer"], cast["assigned"])
    if status == "open":
        with_offer(task, cast["offer_maker"])
        # The customer may accept or decline once someone has offered.
        expected_customer = {"edit", "cancel", "accept_offer", "decline_offer"}
    else:
        expected_customer = EXPECTED_ACTIONS.get((status, "customer"), set())
    for who, user in cast.items():
        expected = expected_customer if who == "customer" else EXPECTED_ACTIONS.get((status, who), set())
        assert selectors.task_actions(task, user) == expected, who


def test_customer_without_offers_cannot_accept_or_decline(customer):
    task = TaskFactory(customer=customer)
    OfferFactory(task=task, status=Offer.Status.WITHDRAWN)
    assert selectors.task_actions(task, customer) == {"edit", "cancel"}


def test_instant_book_offered_to_ready_contractors_only_when_the_customer_allows_it(cast):
    task = TaskFactory(customer=cast["customer"], instant_book=True)
    assert selectors.task_actions(task, cast["other_contractor"]) == {"offer", "instant_book"}
    assert selectors.task_actions(task, cast["outsider"]) == set()  # a customer, not a contractor
    assert selectors.task_actions(task, cast["customer"]) == {"edit", "cancel"}


def test_changes_may_be_requested_only_once(cast):
    task = make_task("submitted", cast["customer"], cast["assigned"])
    task.changes_requested_count = 1
    assert selectors.task_actions(task, cast["customer"]) == {"approve"}


def test_unverified_or_not_onboarded_contractors_are_offered_nothing(customer):
    task = TaskFactory(customer=customer, instant_book=True)
    unverified = ContractorProfileFactory(user__unverified=True).user
    not_onboarded = ContractorProfileFactory(onboarded_at=None).user
    no_profile = UserFactory(is_contractor=True)
    for user in (unverified, not_onboarded, no_profile):
        assert selectors.task_actions(task, user) == set()


def test_unverified_customer_is_offered_nothing(db):
    owner = UserFactory(unverified=True)
    task = TaskFactory(customer=owner, draft=True)
    assert selectors.task_actions(task, owner) == set()


# --- timeline ------------------------------------------------------------------


def test_timeline_parties_see_everything_others_the_public_events_and_their_own(cast):
    task = TaskFactory(customer=cast["customer"])
    published = TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.PUBLISHED, actor=cast["customer"], to_status="open")
    bob_offer = TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.OFFER_MADE, actor=cast["assigned"])
    omar_offer = TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.OFFER_MADE, actor=cast["offer_maker"])
    updated = TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.UPDATED, actor=cast["customer"])
    every = [published.pk, bob_offer.pk, omar_offer.pk, updated.pk]
    assert [e.pk for e in selectors.timeline(task, cast["customer"])] == every
    assert [e.pk for e in selectors.timeline(task, cast["staff"])] == every
    assert [e.pk for e in selectors.timeline(task, cast["offer_maker"])] == [published.pk, omar_offer.pk, updated.pk]
    assert [e.pk for e in selectors.timeline(task, cast["anonymous"])] == [published.pk, updated.pk]
    assert [e.pk for e in selectors.timeline(task, cast["outsider"])] == [published.pk, updated.pk]


def test_timeline_the_hired_contractor_sees_everything(cast):
    task = make_task("assigned", cast["customer"], cast["assigned"])
    events = [
        TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.OFFER_MADE, actor=cast["offer_maker"]),
        TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.OFFER_ACCEPTED, actor=cast["customer"]),
    ]
    assert [e.pk for e in selectors.timeline(task, cast["assigned"])] == [e.pk for e in events]


# --- My tasks / My jobs ----------------------------------------------------------


def test_tasks_for_customer_groups_and_only_their_own(customer, contractor, outsider):
    draft = TaskFactory(customer=customer, draft=True)
    open_task = TaskFactory(customer=customer)
    assigned = TaskFactory(customer=customer, contractor=contractor, assigned=True)
    done = make_task("completed", customer, contractor)
    cancelled = make_task("cancelled", customer, contractor)
    TaskFactory(customer=outsider)

    def pks(group):
        return {t.pk for t in selectors.tasks_for_customer(customer, group)}

    assert pks(None) == {draft.pk, open_task.pk, assigned.pk, done.pk, cancelled.pk}
    assert pks("active") == {open_task.pk, assigned.pk}
    assert pks("drafts") == {draft.pk}
    assert pks("done") == {done.pk}
    assert pks("cancelled") == {cancelled.pk}
    assert list(selectors.tasks_for_customer(AnonymousUser(), None)) == []


def test_tasks_for_customer_counts_pending_offers(customer):
    task = TaskFactory(customer=customer)
    OfferFactory(task=task)
    OfferFactory(task=task)
    OfferFactory(task=task, status=Offer.Status.WITHDRAWN)
    assert selectors.tasks_for_customer(customer, "active").get().pending_offers == 2


def test_jobs_for_contractor_assigned_and_pending_offers(customer, contractor, outsider):
    assigned = TaskFactory(customer=customer, contractor=contractor, assigned=True)
    submitted = TaskFactory(customer=customer, contractor=contractor, submitted=True)
    done = make_task("completed", customer, contractor)
    offered = TaskFactory(customer=outsider)
    OfferFactory(task=offered, contractor=contractor)
    withdrawn = TaskFactory(customer=outsider)
    OfferFactory(task=withdrawn, contractor=contractor, status=Offer.Status.WITHDRAWN)
    TaskFactory(customer=customer)  # open, no offer from Bob
    someone_elses = TaskFactory(customer=customer, contractor=ContractorProfileFactory().user, assigned=True)
    OfferFactory(task=someone_elses, contractor=contractor, status=Offer.Status.DECLINED)

    def pks(group):
        return {t.pk for t in selectors.jobs_for_contractor(contractor, group)}

    assert pks(None) == {assigned.pk, submitted.pk, done.pk, offered.pk}
    assert pks("active") == {assigned.pk, submitted.pk}
    assert pks("offers") == {offered.pk}
    assert pks("done") == {done.pk}
    assert pks("cancelled") == set()
    job = selectors.jobs_for_contractor(contractor, "offers").get()
    assert [o.status for o in job.my_offers] == [Offer.Status.PENDING]


@pytest.mark.parametrize("group", ["", "everything", "ACTIVE"])
def test_unknown_groups_are_refused(group, customer, contractor):
    with pytest.raises(ApplicationError) as caught:
        selectors.tasks_for_customer(customer, group)
    assert caught.value.code == "invalid_status_group"
    assert "status_group" in caught.value.fields
    with pytest.raises(ApplicationError):
        selectors.jobs_for_contractor(contractor, group)


def test_customer_list_is_two_queries_however_long(customer, contractor, django_assert_num_queries):
    for _ in range(2):
        TaskFactory(customer=customer)

    def read():
        return [(t.category.name, t.pending_offers, len(t.problem_photos)) for t in selectors.tasks_for_customer(customer)]

    with django_assert_num_queries(2):
        assert len(read()) == 2
    for _ in range(5):
        task = TaskFactory(customer=customer, contractor=contractor, assigned=True, photos=2)
    with django_assert_num_queries(2):
        rows = read()
    assert len(rows) == 7
    assert (task.category.name, 0, 2) in rows


def test_contractor_list_is_three_queries_however_long(customer, contractor, django_assert_num_queries):
    def read():
        return [
            (t.category.name, t.customer.full_name, len(t.my_offers), len(t.problem_photos))
            for t in selectors.jobs_for_contractor(contractor)
        ]

    OfferFactory(task=TaskFactory(customer=customer), contractor=contractor)
    with django_assert_num_queries(3):
        assert len(read()) == 1
    for _ in range(4):
        OfferFactory(task=TaskFactory(customer=customer), contractor=contractor)
        TaskFactory(customer=customer, contractor=contractor, in_progress=True)
    with django_assert_num_queries(3):
        assert len(read()) == 9
