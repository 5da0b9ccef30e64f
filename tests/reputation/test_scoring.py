"""Ratings and trust scores for hand-built histories, checked against the
arithmetic written out in each test."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from accounts.models import User
from messaging.models import Conversation, Message
from reputation import scoring, selectors, services
from reputation.models import Review, TrustScore, TrustScoreHistory
from tasks.models import CheckIn, Offer, Task
from tests.factories import UserFactory
from tests.reputation.review_support import completed_task
from tests.tasks.factories import TaskFactory

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)


def published_review(task, stars, *, role=Review.Role.CUSTOMER_TO_CONTRACTOR):
    reviewer, reviewee = (task.customer, task.contractor)
    if role == Review.Role.CONTRACTOR_TO_CUSTOMER:
        reviewer, reviewee = reviewee, reviewer
    now = timezone.now()
    return Review.objects.create(
        task=task, reviewer=reviewer, reviewee=reviewee, role=role, stars=stars,
        window_closes_at=task.completed_at + dt.timedelta(days=14), published_at=now,
    )


def test_bayesian_average_numbers():
    # (C*m + sum) / (C + n)
    assert scoring.bayesian_average(0, 0, mean=4.2, weight=5) == pytest.approx(4.2)
    assert scoring.bayesian_average(5, 1, mean=4.0, weight=5) == pytest.approx((5 * 4.0 + 5) / 6)  # 4.1667
    assert scoring.bayesian_average(50, 10, mean=3.0, weight=5) == pytest.approx((15 + 50) / 15)  # 4.3333
    assert scoring.bayesian_average(500, 100, mean=3.0, weight=5) == pytest.approx((15 + 500) / 105)  # 4.9048


def test_contractor_rating_pulls_toward_the_platform_mean(customer, contractor):
    eve = UserFactory(is_contractor=True, full_name="Eve Electric")
    for stars in (5, 5, 4, 2):
        published_review(completed_task(customer, contractor), stars)
    for stars in (1, 1):
        published_review(completed_task(customer, eve), stars)
    # A hidden (unpublished) review and a staff-hidden one don't count.
    Review.objects.create(
        task=completed_task(customer, contractor), reviewer=customer, reviewee=contractor,
        role=Review.Role.CUSTOMER_TO_CONTRACTOR, stars=1, window_closes_at=timezone.now() + dt.timedelta(days=3),
    )
    gone = published_review(completed_task(customer, contractor), 1)
    Review.objects.filter(pk=gone.pk).update(hidden_at=timezone.now(), hidden_reason="abuse in text")

    # Platform mean m = (5+5+4+2+1+1) / 6 = 18/6 = 3.0; C = 5.
    # Bob: n = 4, sum = 16 -> (5*3 + 16) / (5 + 4) = 31/9 = 3.444 -> 3.44; raw 16/4 = 4.0
    assert selectors.contractor_rating(contractor) == (3.44, 4.0, 4)
    # Eve: n = 2, sum = 2 -> (15 + 2) / 7 = 2.4286 -> 2.43; raw 1.0
    assert selectors.contractor_rating(eve) == (2.43, 1.0, 2)
    # Nobody reviewed: the platform mean itself, no raw mean.
    assert selectors.contractor_rating(UserFactory(is_contractor=True)) == (3.0, None, 0)


def test_prior_weight_comes_from_settings(settings, customer, contractor):
    settings.REPUTATION_PRIOR_WEIGHT = 0
    published_review(completed_task(customer, contractor), 5)
    published_review(completed_task(customer, contractor), 3)
    assert selectors.contractor_rating(contractor) == (4.0, 4.0, 2)


def _at(obj, **fields):
    type(obj).objects.filter(pk=obj.pk).update(**fields)


def _message(conversation, sender, seq, at):
    m = Message.objects.create(conversation=conversation, seq=seq, sender=sender, client_id=uuid.uuid4(), body=f"m{seq}")
    _at(m, created_at=at)


def build_bob_history(customer, bob, now):
    """4 jobs completed (2 with a window and a check-in), 1 cancelled late by
    Bob, 4 published reviews (5, 5, 4, 2) and Eve's 2 (1, 1), one conversation,
    two offers. Bob joined 73 days ago with only his email verified."""
    User.objects.filter(pk=bob.pk).update(date_joined=now - dt.timedelta(days=73))
    eve = UserFactory(is_contractor=True, full_name="Eve Electric")
    start = now - dt.timedelta(days=5)
    windowed = []
    for _ in range(2):
        task = completed_task(
            customer, bob, schedule_type=Task.ScheduleType.WINDOW, window_start=start, window_end=start + 3 * H,
            deadline=None, completed_at=now - dt.timedelta(days=4),
        )
        windowed.append(task)
    flexible = [completed_task(customer, bob, completed_at=now - dt.timedelta(days=3)) for _ in range(2)]
    for task, stars in zip([*windowed, *flexible], (5, 5, 4, 2), strict=True):
        published_review(task, stars)
    for _ in range(2):
        published_review(completed_task(customer, eve), 1)
    # Check-ins: 10 minutes after the window opens (on time, 15 min grace), then 30 minutes (late).
    for task, late in zip(windowed, (dt.timedelta(minutes=10), dt.timedelta(minutes=30)), strict=True):
        check_in = CheckIn.objects.create(task=task, contractor=bob)
        _at(check_in, at=start + late)
    # Cancelled by Bob 12 hours before the deadline: a late cancellation.
    TaskFactory(
        customer=customer, contractor=bob, status=Task.Status.CANCELLED, agreed_price_cents=9_000,
        cancelled_by=bob, cancelled_at=now - dt.timedelta(hours=12), deadline=now, photos=0,
    )
    # Messages: Dana at t0, Bob 30 min later; Dana at t1 and t1+10 min, Bob at t1+3 h.
    conversation = Conversation.objects.create(task=windowed[0], customer=customer, contractor=bob)
    t0 = now - dt.timedelta(days=2)
    t1 = t0 + 5 * H
    _message(conversation, customer, 1, t0)
    _message(conversation, bob, 2, t0 + dt.timedelta(minutes=30))
    _message(conversation, customer, 3, t1)
    _message(conversation, customer, 4, t1 + dt.timedelta(minutes=10))
    _message(conversation, bob, 5, t1 + 3 * H)
    # Offers: 2 h and 26 h after the tasks were posted.
    for delay in (2 * H, 26 * H):
        posted = now - dt.timedelta(days=3)
        task = TaskFactory(published_at=posted, photos=0)
        offer = Offer.objects.create(task=task, contractor=bob, price_cents=10_000)
        _at(offer, created_at=posted + delay)
    return eve


def test_contractor_trust_score_matches_the_hand_computation(customer, contractor):
    now = timezone.now()
    build_bob_history(customer, contractor, now)
    contractor.refresh_from_db()
    breakdown = scoring.contractor_breakdown(contractor, now=now)
    f = breakdown.factors

    # verification: email only -> 1/3 x 15 = 5
    assert f["verification"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["verification"]["contribution"] == 5.0
    # rating: m = 18/6 = 3, Bayesian = (5*3 + 16)/9 = 31/9; value (31/9 - 1)/4 = 22/36 -> x 25 = 15.2778
    assert f["rating"]["value"] == pytest.approx(22 / 36, abs=1e-4)
    assert f["rating"]["contribution"] == pytest.approx(15.28)
    # completion: 4 completed / (4 + 1 cancelled by Bob) = 0.8 x 15 = 12
    assert (f["completion"]["value"], f["completion"]["contribution"]) == (0.8, 12.0)
    # on time: 1 of 2 check-ins within 15 min of the window start = 0.5 x 10 = 5
    assert (f["on_time"]["value"], f["on_time"]["contribution"]) == (0.5, 5.0)
    # replies: delays 0.5 h and 3 h (from Dana's first unanswered message); median 1.75 h;
    # value 1 - (1.75 - 1)/(24 - 1) = 1 - 0.75/23 = 0.967391 x 5 = 4.8370
    assert f["message_response"]["value"] == pytest.approx(1 - 0.75 / 23, abs=1e-4)
    assert f["message_response"]["contribution"] == pytest.approx(4.84)
    # offers: 2 h and 26 h after posting; median 14 h; value 1 - 13/23 = 10/23 = 0.434783 x 5 = 2.1739
    assert f["offer_response"]["value"] == pytest.approx(10 / 23, abs=1e-4)
    assert f["offer_response"]["contribution"] == pytest.approx(2.17)
    # disputes: none over 4 completed jobs = 1.0 x 10 = 10
    assert (f["disputes"]["value"], f["disputes"]["contribution"]) == (1.0, 10.0)
    # late cancellations: 1 of 5 bookings = 1 - 1/5 = 0.8 x 5 = 4
    assert (f["cancellations"]["value"], f["cancellations"]["contribution"]) == (0.8, 4.0)
    # tenure: 73/365 = 0.2 x 10 = 2
    assert (f["tenure"]["value"], f["tenure"]["contribution"]) == (0.2, 2.0)

    total = 5 + 25 * 22 / 36 + 12 + 5 + 5 * (1 - 0.75 / 23) + 5 * 10 / 23 + 10 + 4 + 2  # 60.2886
    assert total == pytest.approx(60.2886, abs=1e-4)
    assert breakdown.score == 60
    # Every factor below full marks says what would raise it; full marks say nothing.
    assert f["verification"]["hint"] == "Verify your phone number, your ID."
    assert f["disputes"]["hint"] == ""
    assert all(f[name]["hint"] for name in f if f[name]["value"] < 1)


def test_customer_score_matches_the_hand_computation_and_rounds_half_up(customer, contractor):
    now = timezone.now()
    build_bob_history(customer, contractor, now)
    customer.refresh_from_db()
    breakdown = scoring.customer_breakdown(customer, now=now)
    f = breakdown.factors
    # verification 1/3 x 30 = 10
    assert f["verification"]["contribution"] == 10.0
    # rating: no contractor reviewed a customer yet -> platform mean falls back to 4.0;
    # Bayesian (5*4 + 0)/5 = 4.0 -> (4 - 1)/4 = 0.75 x 30 = 22.5
    assert (f["rating"]["value"], f["rating"]["contribution"]) == (0.75, 22.5)
    # late cancellations by Dana: 0 of 7 booked tasks (5 Bob + 2 Eve) -> 1.0 x 20 = 20
    assert (f["cancellations"]["value"], f["cancellations"]["contribution"]) == (1.0, 20.0)
    # tenure: joined today -> 0
    assert f["tenure"]["contribution"] == 0.0
    # 10 + 22.5 + 20 + 0 = 52.5 -> 53 (half up)
    assert breakdown.score == 53


def test_newcomer_counts_neutral_where_there_is_no_history(contractor):
    now = timezone.now()
    f = scoring.contractor_breakdown(contractor, now=now).factors
    for name in ("completion", "on_time", "message_response", "offer_response", "disputes", "cancellations"):
        assert f[name]["value"] == 0.5, name
    # 5 (email) + 25 x (4.0-1)/4 (platform fallback mean 4.0) + 0.5 x (15+10+5+5+10+5) + 0 tenure
    # = 5 + 18.75 + 25 = 48.75 -> 49
    assert scoring.contractor_breakdown(contractor, now=now).score == 49


def test_unanswered_message_counts_as_24_hours_after_a_day(customer, contractor):
    now = timezone.now()
    task = completed_task(customer, contractor)
    conversation = Conversation.objects.create(task=task, customer=customer, contractor=contractor)
    _message(conversation, customer, 1, now - 30 * H)
    stats = scoring.message_response_stats(contractor, now=now)
    assert stats.delays == [dt.timedelta(hours=24)] and stats.conversations == 1
    # Younger than a day: not measured yet.
    _at(Message.objects.get(), created_at=now - 2 * H)
    assert scoring.message_response_stats(contractor, now=now).delays == []


def test_disputes_factor_arithmetic(contractor):
    # 2 disputed tasks, 1 lost, rate 0.25 -> 1 - 0.25 x (2 + 1)/(2 x 2) = 1 - 0.1875 = 0.8125
    f = scoring.disputes_factor(contractor, 6, {"disputed": 2, "lost": 1, "rate": 0.25})
    assert f.value == pytest.approx(0.8125)
    # None lost: 1 - 0.25 x 2/4 = 0.875
    assert scoring.disputes_factor(contractor, 6, {"disputed": 2, "lost": 0, "rate": 0.25}).value == pytest.approx(0.875)


def test_recompute_stores_the_score_and_appends_history(customer, contractor):
    now = timezone.now()
    build_bob_history(customer, contractor, now)
    contractor.refresh_from_db()
    trust = services.trust_recompute(user=contractor, reason="test", now=now)
    assert (trust.score, TrustScore.objects.get(user=contractor).score) == (60, 60)
    services.trust_recompute(user=contractor, reason="again", now=now + H)
    history = list(TrustScoreHistory.objects.filter(user=contractor).order_by("computed_at"))
    assert [(h.score, h.reason) for h in history] == [(60, "test"), (60, "again")]
    assert selectors.score_for_matching(contractor) == 0.6
    with pytest.raises(PermissionError):
        history[0].save()


def test_publishing_reviews_queues_a_recompute_after_commit(customer, contractor, django_capture_on_commit_callbacks):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=5)
    assert not TrustScore.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.review_submit(task=task, by=contractor, stars=4)
    assert set(TrustScoreHistory.objects.values_list("user__email", "reason")) == {
        ("bob@example.com", "review_published"),
        ("dana@example.com", "review_published"),
    }


def test_recent_activity_job_recomputes_the_people_involved(customer, contractor, outsider):
    from reputation.tasks import recompute_recent
    from tasks.models import TaskEvent

    task = completed_task(customer, contractor)
    TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.APPROVED, actor=customer)
    assert recompute_recent() == 2  # eager in tests
    assert set(TrustScore.objects.values_list("user__email", flat=True)) == {"bob@example.com", "dana@example.com"}
