"""Feature values for hand-built (task, contractor) pairs, exact where arithmetic allows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.geo import distance_km
from matching.features import FEATURE_NAMES, INDEX, pair_matrix, pairs_matrix
from matching.models import BusyBlock, Invitation, MatchEvent, Preference
from reputation.models import TrustScore
from reputation.selectors import contractor_rating, score_for_matching
from tasks.models import Task
from tests.factories import UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

from .features_support import cancelled_task, done_task, electrical, local, make_contractor, plumbing, review

pytestmark = pytest.mark.django_db

# A Monday; the tasks below are later that week.
NOW = local(2031, 3, 3, 9)


def feature(X, row, name):
    return X[row, INDEX[name]]


def window_task(start, end, **kw):
    return TaskFactory(
        schedule_type=Task.ScheduleType.WINDOW, window_start=start, window_end=end, deadline=None, photos=0, **kw
    )


def test_feature_names_are_the_columns():
    X, pairs = pair_matrix([], [])
    assert X.shape == (0, len(FEATURE_NAMES))
    assert pairs == []


def test_distance_radius_and_trade():
    bob = make_contractor(radius=25)
    near = TaskFactory(latitude=37.7509 + 0.09, longitude=-122.4153, category=plumbing(), photos=0)
    far = TaskFactory(latitude=37.7509 + 0.27, longitude=-122.4153, category=electrical(), photos=0)
    X, pairs = pair_matrix([near, far], bob, now=NOW)
    assert pairs == [(near.pk, bob.pk), (far.pk, bob.pk)]
    d_near = distance_km(37.7509, -122.4153, 37.7509 + 0.09, -122.4153)
    d_far = distance_km(37.7509, -122.4153, 37.7509 + 0.27, -122.4153)
    assert feature(X, 0, "distance_km") == pytest.approx(d_near, abs=1e-6)
    assert feature(X, 0, "distance_km") == pytest.approx(10.008, abs=0.001)
    assert feature(X, 0, "distance_ratio") == pytest.approx(d_near / 25, abs=1e-9)
    assert feature(X, 0, "inside_radius") == 1.0
    assert feature(X, 1, "distance_ratio") == pytest.approx(d_far / 25, abs=1e-9)
    assert feature(X, 1, "inside_radius") == 0.0
    assert feature(X, 0, "category_match") == 1.0
    assert feature(X, 1, "category_match") == 0.0


def test_schedule_fit_counts_weekly_hours_minus_time_off_and_booked_jobs():
    bob = make_contractor()  # Monday-Friday 8:00-17:00
    tuesday = window_task(local(2031, 3, 4, 10), local(2031, 3, 4, 12))
    saturday = window_task(local(2031, 3, 8, 10), local(2031, 3, 8, 12))
    evening = window_task(local(2031, 3, 5, 16), local(2031, 3, 5, 20), budget_type=Task.BudgetType.HOURLY, estimated_hours=4, budget_cents=9000)
    X, _ = pair_matrix([tuesday, saturday, evening], bob, now=NOW)
    assert feature(X, 0, "schedule_fit") == 1.0
    assert feature(X, 0, "first_free_weekday") == 1  # Tuesday
    assert feature(X, 1, "schedule_fit") == 0.0
    assert feature(X, 1, "first_free_weekday") == -1
    # Needs 4 hours, free 16:00-17:00 only.
    assert feature(X, 2, "schedule_fit") == 0.25
    assert feature(X, 2, "first_free_weekday") == 2

    BusyBlock.objects.create(user=bob, source=BusyBlock.Source.TIME_OFF, starts_at=local(2031, 3, 4, 10), ends_at=local(2031, 3, 4, 11))
    X, _ = pair_matrix([tuesday], bob, now=NOW)
    assert feature(X, 0, "schedule_fit") == 0.5

    # Another job of Bob's booked 11:00-12:00 takes the rest.
    window_task(local(2031, 3, 4, 11), local(2031, 3, 4, 12), contractor=bob, status=Task.Status.ASSIGNED,
                agreed_price_cents=5000, assigned_at=NOW - dt.timedelta(days=1))
    X, _ = pair_matrix([tuesday], bob, now=NOW)
    assert feature(X, 0, "schedule_fit") == 0.0
    assert feature(X, 0, "first_free_weekday") == -1


def test_flexible_task_uses_the_week_before_its_deadline():
    bob = make_contractor()
    # Deadline Sunday night: the week before holds Monday-Friday hours.
    task = TaskFactory(deadline=local(2031, 3, 9, 23), photos=0)
    X, _ = pair_matrix([task], bob, now=NOW)
    assert feature(X, 0, "schedule_fit") == 1.0
    assert feature(X, 0, "first_free_weekday") == 0  # Monday, from 9:00 (now)


def test_price_fit_against_rate_and_past_prices():
    bob = make_contractor(rate=8500)
    fixed = TaskFactory(budget_cents=12_000, photos=0)
    hourly = TaskFactory(budget_type=Task.BudgetType.HOURLY, budget_cents=9_000, estimated_hours=2, photos=0)
    X, _ = pair_matrix([fixed, hourly], bob, now=NOW)
    assert feature(X, 0, "price_rate_ratio") == pytest.approx(12_000 / 3 / 8500)
    assert feature(X, 1, "price_rate_ratio") == pytest.approx(9_000 / 8500)
    assert feature(X, 0, "price_past_ratio") == 1.0  # no past jobs: neutral
    assert feature(X, 1, "budget_dollars") == 180.0

    done_task(bob, price=10_000)
    done_task(bob, price=14_000)
    done_task(bob, price=50_000, category=electrical())  # another trade: not compared
    X, _ = pair_matrix([fixed, hourly], bob, now=NOW)
    assert feature(X, 0, "price_past_ratio") == 1.0  # 120 against a median of 120
    assert feature(X, 1, "price_past_ratio") == pytest.approx(18_000 / 12_000)

    no_rate = make_contractor(rate=None)
    X, _ = pair_matrix([fixed], no_rate, now=NOW)
    assert feature(X, 0, "price_rate_ratio") == 1.0


def test_rating_and_trust_match_reputation_selectors():
    bob = make_contractor()
    other = make_contractor()
    newcomer = make_contractor()
    review(done_task(bob), 5)
    review(done_task(bob), 5)
    review(done_task(other), 1)
    TrustScore.objects.create(user=bob, score=80)
    task = TaskFactory(photos=0)
    X, pairs = pair_matrix([task], [bob, newcomer], now=None)
    # Platform mean 11/3, prior weight 5: (5 * 11/3 + 10) / 7 = 85/21.
    assert feature(X, 0, "rating") == pytest.approx(85 / 21)
    assert round(feature(X, 0, "rating"), 2) == contractor_rating(bob)[0]
    assert feature(X, 0, "rating_count") == 2
    assert feature(X, 1, "rating") == pytest.approx(11 / 3)  # no reviews: the platform mean
    assert feature(X, 1, "rating_count") == 0
    assert feature(X, 0, "trust") == 0.8 == score_for_matching(bob)
    assert feature(X, 1, "trust") == 0.5 == score_for_matching(newcomer)


def test_completion_cancellation_customer_and_similar_jobs():
    bob = make_contractor()
    dana = UserFactory()
    done_task(bob, customer=dana)
    done_task(bob)
    done_task(bob, category=electrical())
    cancelled_task(bob)
    task = TaskFactory(customer=dana, category=plumbing(), photos=0)
    stranger_task = TaskFactory(category=electrical(), photos=0)
    X, _ = pair_matrix([task, stranger_task], bob, now=None)
    assert feature(X, 0, "jobs_done") == 3
    assert feature(X, 0, "completion_rate") == 0.75
    assert feature(X, 0, "cancel_rate") == 0.25
    assert feature(X, 0, "customer_jobs") == 1
    assert feature(X, 0, "similar_jobs") == 2
    assert feature(X, 1, "customer_jobs") == 0
    assert feature(X, 1, "similar_jobs") == 1

    newcomer = make_contractor()
    X, _ = pair_matrix([task], newcomer, now=None)
    assert feature(X, 0, "jobs_done") == 0
    assert feature(X, 0, "completion_rate") == 0.5
    assert feature(X, 0, "cancel_rate") == 0.0


def test_history_counts_only_what_happened_before_now_and_never_the_pair_itself():
    bob = make_contractor()
    early = done_task(bob, completed_at=local(2030, 1, 10, 12))
    late = done_task(bob, completed_at=local(2030, 6, 10, 12))
    task = TaskFactory(photos=0)
    X, _ = pair_matrix([task], bob, now=local(2030, 3, 1))
    assert feature(X, 0, "jobs_done") == 1
    assert feature(X, 0, "similar_jobs") == 1
    # The completed job itself, scored as of later: its own completion does not count.
    X, _ = pairs_matrix([(late, bob), (early, bob)], now=local(2030, 7, 1))
    assert feature(X, 0, "similar_jobs") == 1
    assert feature(X, 0, "jobs_done") == 1
    assert feature(X, 1, "similar_jobs") == 1


def test_offer_speed_median():
    bob = make_contractor()
    posted = timezone.now() - dt.timedelta(days=30)
    for hours in (1, 13):
        task = TaskFactory(published_at=posted, photos=0)
        offer = OfferFactory(task=task, contractor=bob)
        type(offer).objects.filter(pk=offer.pk).update(created_at=posted + dt.timedelta(hours=hours))
    X, _ = pair_matrix([TaskFactory(photos=0)], [bob, make_contractor()], now=None)
    # Median 7 hours: 1 - (7 - 1) / (24 - 1).
    assert feature(X, 0, "response_speed") == pytest.approx(1 - 6 / 23)
    assert feature(X, 1, "response_speed") == 0.5


def test_similar_task_answers_preferences_and_invitation():
    bob = make_contractor()
    carol = make_contractor()
    dana = UserFactory()
    K = MatchEvent.Kind
    for _ in range(3):
        MatchEvent.objects.create(task=TaskFactory(category=plumbing(), photos=0), contractor=bob, kind=K.OFFERED)
    MatchEvent.objects.create(task=TaskFactory(category=plumbing(), photos=0), contractor=bob, kind=K.SKIPPED)
    MatchEvent.objects.create(task=TaskFactory(category=electrical(), photos=0), contractor=bob, kind=K.SKIPPED)
    for _ in range(4):
        MatchEvent.objects.create(task=TaskFactory(category=plumbing(), photos=0), contractor=bob, kind=K.SHOWN)
    # Dana hired bob once (and rated him well), and once hired carol over him.
    hired = TaskFactory(customer=dana, category=electrical(), photos=0)
    MatchEvent.objects.create(task=hired, contractor=bob, kind=K.ACCEPTED)
    MatchEvent.objects.create(task=hired, contractor=bob, kind=K.WELL_REVIEWED)
    passed = TaskFactory(customer=dana, category=electrical(), photos=0)
    MatchEvent.objects.create(task=passed, contractor=bob, kind=K.OFFERED)
    MatchEvent.objects.create(task=passed, contractor=carol, kind=K.ACCEPTED)
    task = TaskFactory(customer=dana, category=plumbing(), photos=0)
    other = TaskFactory(category=electrical(), photos=0)
    Invitation.objects.create(task=task, contractor=bob, invited_by=dana)
    # The Preference table is today's state only: features rebuild it from the log.
    Preference.objects.create(user=dana, kind=Preference.Kind.CONTRACTOR, contractor=bob, weight=4.0)
    X, _ = pair_matrix([task, other], bob, now=None)
    assert feature(X, 0, "category_offers") == 3
    assert feature(X, 0, "category_skips") == 1
    assert feature(X, 0, "category_shown") == 4
    assert feature(X, 0, "category_offer_rate") == pytest.approx(4 / 6)
    assert feature(X, 0, "shown_offer_rate") == pytest.approx(4 / 6)
    assert feature(X, 1, "category_offers") == 1  # the electrical task dana hired carol for
    assert feature(X, 1, "category_skips") == 1
    assert feature(X, 1, "category_hires") == 1
    assert feature(X, 1, "category_offer_rate") == pytest.approx(2 / 4)
    # +1 hired, +0.3 well reviewed, -0.2 passed over
    assert feature(X, 0, "customer_preference") == pytest.approx(1.1)
    assert feature(X, 0, "customer_passed_over") == 1
    assert feature(X, 0, "category_preference") == pytest.approx(0.2 * 3 - 0.3)
    assert feature(X, 1, "category_preference") == pytest.approx(0.2 + 0.3 - 0.3)
    assert feature(X, 1, "customer_preference") == 0.0
    assert feature(X, 0, "invited") == 1.0
    assert feature(X, 1, "invited") == 0.0
    # As of before dana's choices, none of them counts.
    early = MatchEvent.objects.order_by("created_at").first().created_at
    X, _ = pair_matrix([task], bob, now=early)
    assert feature(X, 0, "customer_preference") == 0.0


def test_customer_reviews_and_week_load():
    bob = make_contractor()
    dana = UserFactory()
    review(done_task(bob, customer=dana, completed_at=NOW - dt.timedelta(days=20)), 5)
    review(done_task(bob, customer=dana, completed_at=NOW - dt.timedelta(days=10)), 2)
    start = local(2031, 3, 5, 9)
    # Two jobs booked that week, one a fortnight later.
    for when in (local(2031, 3, 4, 9), local(2031, 3, 7, 13), local(2031, 3, 20, 9)):
        TaskFactory(
            contractor=bob, status=Task.Status.ASSIGNED, agreed_price_cents=9_000, assigned_at=NOW - dt.timedelta(days=1), photos=0,
            schedule_type=Task.ScheduleType.WINDOW, window_start=when, window_end=when + dt.timedelta(hours=3), deadline=None,
        )
    task = window_task(start, start + dt.timedelta(hours=4), customer=dana)
    X, _ = pair_matrix([task], bob, now=NOW)
    assert feature(X, 0, "customer_good_reviews") == 1
    assert feature(X, 0, "customer_bad_reviews") == 1
    assert feature(X, 0, "week_load") == 2


def test_text_similarity_bio_and_past_titles():
    same = make_contractor(bio="Fix leaking kitchen tap washer cartridge")
    painter = make_contractor(bio="Interior painting and wallpaper")
    task = TaskFactory(title="Fix leaking kitchen tap", description="washer cartridge", photos=0)
    X, _ = pair_matrix([task], [same, painter], now=None)
    assert feature(X, 0, "text_similarity") == pytest.approx(1.0, abs=1e-6)
    assert feature(X, 1, "text_similarity") == 0.0
    # Past job titles count: a painter who fixed taps before.
    done_task(painter, title="Replaced a leaking bathroom tap")
    X, _ = pair_matrix([task], [same, painter], now=None)
    assert 0.1 < feature(X, 1, "text_similarity") < 1.0


def test_a_fixed_number_of_queries_whatever_the_batch_size():
    pros = [make_contractor() for _ in range(3)]
    small = [TaskFactory(photos=0) for _ in range(2)]
    big = small + [TaskFactory(photos=0) for _ in range(20)]
    for pro in pros:
        done_task(pro)
    from matching.features import reset_caches

    reset_caches()  # the platform mean is computed at most every 5 minutes per process
    with CaptureQueriesContext(connection) as one:
        pair_matrix(small, pros[0], now=None)
    reset_caches()
    with CaptureQueriesContext(connection) as many:
        X, pairs = pair_matrix(big, pros, now=None)
    assert len(many) == len(one) <= 18
    assert X.shape == (66, len(FEATURE_NAMES))
    assert np.isfinite(X).all()
