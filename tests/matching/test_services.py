"""matching.services: the outcome log, invitations, preference learning,
time off and busy time (alerts: test_alerts.py; calendars: test_calendar.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.services import EmailNotVerified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from matching import queries, services
from matching.models import BusyBlock, Invitation, MatchEvent
from messaging.models import Notification
from reputation import services as reputation_services
from tasks import notify
from tasks import services as task_services
from tasks.models import Offer, Task
from tests.factories import ContractorProfileFactory, UserFactory
from tests.payments.helpers import fund
from tests.tasks.factories import OfferFactory

from .ma3_support import booked_task, counts, electrical, open_task, plumbing, pref, pro, window

pytestmark = pytest.mark.django_db


def kinds(task, contractor) -> list[str]:
    return list(MatchEvent.objects.filter(task=task, contractor=contractor).order_by("pk").values_list("kind", flat=True))


# --- log_event ---------------------------------------------------------------------


def test_log_event_appends_one_outcome(customer, contractor):
    task = open_task(customer)
    event = services.log_event(task, contractor, "shown", position=3, model_version="rules")
    assert MatchEvent.objects.filter(pk=event.pk, task=task, contractor=contractor, kind="shown", position=3, model_version="rules").exists()
    services.log_event(task.pk, contractor.pk, "viewed")
    assert kinds(task, contractor) == ["shown", "viewed"]


def test_log_event_refuses_unknown_kind_and_writes_nothing(customer, contractor):
    task = open_task(customer)
    with pytest.raises(ValueError):
        services.log_event(task, contractor, "liked")
    assert MatchEvent.objects.count() == 0


# --- invitations -----------------------------------------------------------------------


def test_customer_invites_a_pro_who_is_told(customer, contractor):
    task = open_task(customer)
    invitation = services.invite(task, by=customer, contractor=contractor)
    assert (invitation.task_id, invitation.contractor_id, invitation.invited_by_id, invitation.status) == (
        task.pk,
        contractor.pk,
        customer.pk,
        Invitation.Status.SENT,
    )
    assert kinds(task, contractor) == ["invited"]
    note = Notification.objects.get(user=contractor)
    assert note.title == f"Dana Lee invited you to “{task.title}”"
    assert note.url == f"/tasks/{task.public_id}"
    assert note.task_id == task.pk
    assert not Notification.objects.exclude(user=contractor).exists()


def test_a_pair_is_invited_once(customer, contractor):
    task = open_task(customer)
    services.invite(task, by=customer, contractor=contractor)
    before = counts()
    with pytest.raises(Conflict) as exc:
        services.invite(task, by=customer, contractor=contractor)
    assert exc.value.code == "already_invited"
    assert counts() == before
    assert Notification.objects.filter(user=contractor).count() == 1


def test_other_customer_cannot_invite_to_my_task(customer, contractor, outsider):
    task = open_task(customer)
    with pytest.raises(PermissionDenied) as exc:
        services.invite(task, by=outsider, contractor=contractor)
    assert exc.value.code == "not_task_customer"
    assert counts()["Invitation"] == 0 and counts()["MatchEvent"] == 0
    assert not Notification.objects.exists()


def test_contractor_cannot_invite_to_someone_elses_task(customer, contractor):
    task = open_task(customer)
    other = pro("olga@example.com")
    with pytest.raises(PermissionDenied):
        services.invite(task, by=contractor, contractor=other)
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("status", ["draft", "assigned", "cancelled"])
def test_invitations_only_while_the_task_is_open(customer, contractor, status):
    other = pro("olga@example.com")
    extra = {"contractor": other, "agreed_price_cents": 12_000} if status == "assigned" else {}
    task = open_task(customer, status=status, **extra)
    with pytest.raises(Conflict) as exc:
        services.invite(task, by=customer, contractor=contractor)
    assert exc.value.code == "task_not_open"
    assert not Invitation.objects.exists() and not Notification.objects.exists()


def test_only_live_pros_with_the_trade_can_be_invited(customer, outsider):
    task = open_task(customer)
    electrician = ContractorProfileFactory(user__email="eli@example.com", trades=[electrical()]).user
    not_live = ContractorProfileFactory(user__email="nia@example.com", onboarded_at=None, trades=[plumbing()]).user
    gone = pro("gus@example.com")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    for person in (electrician, not_live, gone, outsider):
        with pytest.raises(ApplicationError) as exc:
            services.invite(task, by=customer, contractor=person)
        assert exc.value.code == "not_eligible"
    assert not Invitation.objects.exists() and not MatchEvent.objects.exists() and not Notification.objects.exists()


def test_cannot_invite_yourself(customer):
    task = open_task(customer)
    with pytest.raises(ApplicationError) as exc:
        services.invite(task, by=customer, contractor=customer)
    assert exc.value.code == "invite_self"
    assert not Invitation.objects.exists()


def test_unverified_customer_cannot_invite(contractor):
    shy = UserFactory(email="shy@example.com", unverified=True)
    task = open_task(shy)
    with pytest.raises(EmailNotVerified):
        services.invite(task, by=shy, contractor=contractor)
    assert not Invitation.objects.exists()


def test_pro_who_already_offered_is_not_invited(customer, contractor):
    task = open_task(customer)
    OfferFactory(task=task, contractor=contractor)
    with pytest.raises(Conflict) as exc:
        services.invite(task, by=customer, contractor=contractor)
    assert exc.value.code == "already_offered"
    assert not Invitation.objects.exists()


def test_invited_pro_declines_once(customer, contractor):
    task = open_task(customer)
    invitation = services.invite(task, by=customer, contractor=contractor)
    declined = services.invitation_decline(invitation, by=contractor)
    assert declined.status == Invitation.Status.DECLINED
    with pytest.raises(Conflict):
        services.invitation_decline(invitation, by=contractor)


def test_other_contractor_cannot_decline_my_invitation(customer, contractor):
    task = open_task(customer)
    invitation = services.invite(task, by=customer, contractor=contractor)
    other = pro("olga@example.com")
    with pytest.raises(NotFound):
        services.invitation_decline(invitation, by=other)
    with pytest.raises(NotFound):
        services.invitation_decline(invitation, by=customer)
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.SENT


def test_offer_marks_the_invitation_and_logs_offered(customer, contractor, django_capture_on_commit_callbacks):
    task = open_task(customer)
    services.invite(task, by=customer, contractor=contractor)
    with django_capture_on_commit_callbacks(execute=True):
        task_services.offer_create(task, by=contractor, price_cents=11_000)
    assert Invitation.objects.get(task=task, contractor=contractor).status == Invitation.Status.OFFERED
    assert kinds(task, contractor) == ["invited", "offered"]
    assert pref(contractor, category=task.category) == 0.2


def test_offer_rolled_back_teaches_nothing(customer, contractor, django_capture_on_commit_callbacks):
    task = open_task(customer)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError):
        task_services.offer_create(task, by=contractor, price_cents=-5)
    assert not MatchEvent.objects.exists()


# --- preference learning ----------------------------------------------------------------


def test_accepting_one_offer_learns_the_customers_choice(customer, contractor, django_capture_on_commit_callbacks):
    task = open_task(customer)
    rival = pro("olga@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        task_services.offer_create(task, by=rival, price_cents=10_000)
        offer = task_services.offer_create(task, by=contractor, price_cents=11_000)
    fund(offer)
    task.refresh_from_db()
    assert task.status == Task.Status.ASSIGNED and task.contractor_id == contractor.pk
    assert kinds(task, contractor) == ["offered", "accepted"]
    assert pref(customer, contractor=contractor) == 1.0
    assert pref(customer, contractor=rival) == -0.2
    # The hired pro leans to the trade: 0.2 for offering plus 0.3 for taking it.
    assert pref(contractor, category=task.category) == 0.5
    assert pref(rival, category=task.category) == 0.2


def test_rehiring_counts_more(customer, contractor):
    earlier = booked_task(customer, contractor, status="completed")
    services.record_accepted(task=earlier, contractor=contractor)
    again = booked_task(customer, contractor)
    services.record_accepted(task=again, contractor=contractor)
    assert pref(customer, contractor=contractor) == 2.5  # 1.0 + (1.0 + 0.5)


def test_record_accepted_is_idempotent(customer, contractor):
    task = booked_task(customer, contractor)
    services.record_accepted(task=task, contractor=contractor)
    assert services.record_accepted(task=task, contractor=contractor) is None
    assert kinds(task, contractor) == ["accepted"]
    assert pref(customer, contractor=contractor) == 1.0


def test_withdrawn_offers_are_not_passed_over(customer, contractor):
    task = booked_task(customer, contractor)
    quitter = pro("quinn@example.com")
    OfferFactory(task=task, contractor=quitter, status=Offer.Status.WITHDRAWN)
    services.record_accepted(task=task, contractor=contractor)
    assert pref(customer, contractor=quitter) is None


def test_weights_stay_within_bounds(customer, contractor):
    for _n in range(8):
        task = booked_task(customer, contractor)
        services.record_accepted(task=task, contractor=contractor)
    assert pref(customer, contractor=contractor) == 5.0


def test_preferences_for_reads_both_kinds(customer, contractor):
    task = booked_task(customer, contractor)
    services.record_accepted(task=task, contractor=contractor)
    mine = queries.preferences_for(customer)
    assert mine.contractors == {contractor.pk: 1.0}
    assert mine.for_contractor(contractor.pk) == 1.0 and mine.for_contractor(999_999) == 0.0
    theirs = services.preferences_for(contractor)
    assert theirs.categories == {task.category_id: 0.3}
    assert queries.preferences_for_many([customer.pk, contractor.pk])[contractor.pk].categories == {task.category_id: 0.3}


def test_not_for_me_logs_a_skip_once(customer, contractor):
    task = open_task(customer)
    event = services.task_skip(task, by=contractor)
    assert event.kind == "skipped"
    assert services.task_skip(task, by=contractor) is None
    assert kinds(task, contractor) == ["skipped"]
    assert pref(contractor, category=task.category) == -0.3


def test_skip_refused_for_customers_own_and_closed_tasks(customer, contractor, outsider):
    task = open_task(customer)
    with pytest.raises(PermissionDenied):
        services.task_skip(task, by=outsider)
    with pytest.raises(PermissionDenied):
        services.task_skip(open_task(contractor), by=contractor)
    with pytest.raises(Conflict):
        services.task_skip(open_task(customer, status="cancelled"), by=contractor)
    assert counts()["MatchEvent"] == 0 and counts()["Preference"] == 0


def test_completion_logged_from_the_approval_notice(customer, contractor, django_capture_on_commit_callbacks):
    task = booked_task(customer, contractor, status="completed")
    with django_capture_on_commit_callbacks(execute=True):
        notify.task_approved(task)
    with django_capture_on_commit_callbacks(execute=True):
        notify.task_auto_approved(task)
    assert kinds(task, contractor) == ["completed"]


def test_good_customer_review_is_a_well_reviewed_outcome(customer, contractor, django_capture_on_commit_callbacks):
    task = booked_task(customer, contractor, status="completed")
    with django_capture_on_commit_callbacks(execute=True):
        reputation_services.review_submit(task=task, by=customer, stars=5, text="Quick and tidy.")
        reputation_services.review_submit(task=task, by=contractor, stars=5, text="Clear job.")
    assert kinds(task, contractor) == ["well_reviewed"]
    assert pref(customer, contractor=contractor) == 0.3
    # The contractor's review of the customer is not an outcome for anyone.
    assert not MatchEvent.objects.filter(contractor=customer).exists()


def test_middling_review_is_not_well_reviewed(customer, contractor):
    task = booked_task(customer, contractor, status="completed")
    assert services.record_review(task=task, contractor_id=contractor.pk, stars=3, reviewer_id=customer.pk) is None
    assert services.record_review(task=task, contractor_id=contractor.pk, stars=5, reviewer_id=contractor.pk) is None
    assert not MatchEvent.objects.exists() and counts()["Preference"] == 0


# --- time off and busy time ----------------------------------------------------------------


def at(days: float, hour: int = 9) -> dt.datetime:
    base = timezone.now().replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + dt.timedelta(days=days)


def test_time_off_create_update_delete(contractor):
    block = services.time_off_create(user=contractor, starts_at=at(2), ends_at=at(4), summary="  Family wedding ")
    assert (block.source, block.summary) == ("time_off", "Family wedding")
    services.time_off_update(block, by=contractor, starts_at=at(3), ends_at=at(5), summary="")
    block.refresh_from_db()
    assert (block.starts_at, block.ends_at, block.summary) == (at(3), at(5), "")
    services.time_off_delete(block, by=contractor)
    assert not BusyBlock.objects.exists()


@pytest.mark.parametrize(
    ("starts", "ends", "summary", "field"),
    [
        (lambda: at(3), lambda: at(2), "", "ends_at"),  # ends before it starts
        (lambda: at(2), lambda: at(2), "", "ends_at"),  # zero length
        (lambda: at(-3), lambda: at(-2), "", "ends_at"),  # already over
        (lambda: at(2), lambda: at(400), "", "ends_at"),  # more than a year
        (lambda: at(800), lambda: at(801), "", "starts_at"),  # more than two years away
        (lambda: at(2).replace(tzinfo=None), lambda: at(3), "", "starts_at"),  # naive
        (lambda: "tomorrow", lambda: at(3), "", "starts_at"),
        (lambda: at(2), lambda: at(3), "x" * 201, "summary"),
    ],
)
def test_bad_time_off_is_refused_with_nothing_written(contractor, starts, ends, summary, field):
    with pytest.raises(ApplicationError) as exc:
        services.time_off_create(user=contractor, starts_at=starts(), ends_at=ends(), summary=summary)
    assert field in exc.value.fields
    assert not BusyBlock.objects.exists()


def test_time_off_is_for_contractors(customer):
    with pytest.raises(PermissionDenied):
        services.time_off_create(user=customer, starts_at=at(2), ends_at=at(3))
    assert not BusyBlock.objects.exists()


def test_other_contractor_cannot_change_or_remove_my_time_off(contractor):
    block = services.time_off_create(user=contractor, starts_at=at(2), ends_at=at(4))
    other = pro("olga@example.com")
    with pytest.raises(NotFound):
        services.time_off_update(block, by=other, starts_at=at(5), ends_at=at(6))
    with pytest.raises(NotFound):
        services.time_off_delete(block, by=other)
    with pytest.raises(NotFound):
        queries.time_off_get(other, block.pk)
    block.refresh_from_db()
    assert (block.starts_at, block.ends_at) == (at(2), at(4))


def test_busy_intervals_merge_time_off_imports_and_booked_jobs(customer, contractor):
    other = pro("olga@example.com")
    BusyBlock.objects.create(user=contractor, source="time_off", starts_at=at(1, 9), ends_at=at(1, 12))
    BusyBlock.objects.create(user=contractor, source="imported", starts_at=at(1, 11), ends_at=at(1, 14))
    BusyBlock.objects.create(user=other, source="time_off", starts_at=at(1, 0), ends_at=at(1, 23))
    booked_task(customer, contractor, **window(at(2, 10), hours=2))
    booked_task(customer, contractor, status="in_progress", **window(at(2, 11), hours=3))
    # Flexible job: its accepted offer's start plus the estimated hours.
    flexible = booked_task(customer, contractor, budget_type="hourly", estimated_hours=4, budget_cents=5_000)
    OfferFactory(task=flexible, contractor=contractor, status=Offer.Status.ACCEPTED, proposed_start=at(3, 8))
    # Not blocking: finished work, sent-in work, someone else's job, an open task.
    booked_task(customer, contractor, status="completed", **window(at(4, 9)))
    booked_task(customer, contractor, status="submitted", **window(at(4, 9)))
    booked_task(customer, other, **window(at(5, 9)))
    open_task(customer, **window(at(5, 9)))

    assert queries.busy_intervals(contractor, at(0), at(7)) == [
        (at(1, 9), at(1, 14)),
        (at(2, 10), at(2, 14)),
        (at(3, 8), at(3, 12)),
    ]
    assert services.busy_intervals(contractor.pk, at(2, 0), at(2, 23)) == [(at(2, 10), at(2, 14))]
    assert queries.busy_intervals(contractor, at(6), at(7)) == []
