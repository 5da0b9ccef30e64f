"""The one-round-trip SQL reads of ``matching.features`` (PostgreSQL) against
the ORM reads they replaced, on a simulated market: the same rows, the same
feature values, for serving (now), for training (as of past moments) and for
a batch of past, completed tasks whose own history must not count.

On PostgreSQL ``_fetch_orm`` reads titles, offer_medians, category_events and
weekly through the very SQL ``_fetch_sql`` sends (one constant each, for the
plans noted in features.py), so for those four reads this test compares the
SQL with itself: it does NOT check them against an independent reference.
Their ORM form is SQLite's path, and this module is skipped there; only
test_features.py's hand-built cases reach them, and only in a suite run on
SQLite, which CI does not do."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from matching import features
from matching.features import FEATURE_NAMES, INDEX, pair_matrix, pairs_matrix
from matching.models import BusyBlock, Invitation
from matching.simulate import METROS, simulate
from reputation.models import Review, TrustScore, TrustScoreHistory
from tasks.models import Task
from tests.tasks.factories import TaskFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL path is PostgreSQL's"),
]

SMALL = {"months": 2, "customers": 12, "contractors": 24, "tasks": 70, "metros": METROS[:1]}


def _both(monkeypatch, compute):
    monkeypatch.setattr(features, "BATCH_SQL", False)
    features.reset_caches()
    old = compute()
    monkeypatch.setattr(features, "BATCH_SQL", True)
    features.reset_caches()
    new = compute()
    return old, new


def _assert_same(old, new):
    (X_old, pairs_old), (X_new, pairs_new) = old, new
    assert pairs_new == pairs_old
    for name in FEATURE_NAMES:
        column = INDEX[name]
        assert np.array_equal(X_new[:, column], X_old[:, column], equal_nan=True), name


def _fetched(fetch, user_ids, tasks, now):
    windows, origin, last = features._timeline_range(tasks, now)
    rows = fetch(user_ids, tasks, now, origin, last, now >= timezone.now() - dt.timedelta(minutes=5), True)
    return {
        name: sorted(map(tuple, getattr(rows, name)), key=repr)
        for name in features._Rows.__dataclass_fields__
        if name != "is_current"
    }


@pytest.fixture
def market():
    simulate(seed=3, **SMALL)
    contractors = list(User.objects.filter(is_contractor=True).order_by("pk"))
    past = list(Task.objects.exclude(status=Task.Status.DRAFT).order_by("pk"))
    # Open tasks like the simulated ones (its history ends with none open), then
    # what the simulation does not make: time off, invitations, a hidden review,
    # trust scores and their history.
    now = timezone.now()
    open_tasks = []
    for n, task in enumerate(past[:16]):
        window = {"schedule_type": Task.ScheduleType.FLEXIBLE, "deadline": now + dt.timedelta(days=2 + n % 9)}
        if n % 2:
            start = now + dt.timedelta(days=n % 6, hours=n)
            window = {
                "schedule_type": Task.ScheduleType.WINDOW,
                "window_start": start,
                "window_end": start + dt.timedelta(hours=3 + n % 4),
                "deadline": None,
            }
        open_tasks.append(
            TaskFactory(
                customer=task.customer,
                category=task.category,
                title=task.title,
                description=task.description,
                latitude=task.latitude,
                longitude=task.longitude,
                budget_cents=task.budget_cents,
                photos=0,
                **window,
            )
        )
    tasks = past + open_tasks
    some = contractors[:6]
    for n, user in enumerate(some):
        start = timezone.now() + dt.timedelta(days=1 + n % 3, hours=n)
        BusyBlock.objects.create(
            user=user, source=BusyBlock.Source.TIME_OFF, starts_at=start, ends_at=start + dt.timedelta(hours=5)
        )
        TrustScore.objects.update_or_create(user=user, defaults={"score": 60 + n})
        TrustScoreHistory.objects.create(
            user=user, score=40 + n, customer_score=50, computed_at=timezone.now() - dt.timedelta(days=20 + n)
        )
        for task in open_tasks[n : n + 2]:
            Invitation.objects.create(task=task, contractor=user, invited_by_id=task.customer_id)
    first = (
        Review.objects.filter(role=Review.Role.CUSTOMER_TO_CONTRACTOR, published_at__isnull=False)
        .order_by("pk")
        .first()
    )
    Review.objects.filter(pk=first.pk).update(hidden_at=timezone.now(), hidden_reason="Abusive")
    return contractors, tasks


def test_sql_reads_give_the_orm_reads_rows_and_features_in_one_round_trip(market, monkeypatch):
    contractors, tasks = market
    now = timezone.now()
    open_tasks = [t for t in tasks if t.status == Task.Status.OPEN]
    assert open_tasks and len(contractors) == SMALL["contractors"]

    # Serving: every open task against every contractor, as of now.
    old, new = _both(monkeypatch, lambda: pair_matrix(open_tasks, contractors, now=now))
    _assert_same(old, new)
    X = new[0]
    # The comparison covers real history, not empty tables.
    for name in (
        "jobs_done",
        "rating_count",
        "category_offers",
        "category_shown",
        "customer_jobs",
        "invited",
        "week_load",
    ):
        assert X[:, INDEX[name]].max() > 0, name
    assert (X[:, INDEX["schedule_fit"]] < 1).any() and (X[:, INDEX["schedule_fit"]] > 0).any()
    assert (X[:, INDEX["response_speed"]] != features.NEUTRAL).any()

    # Training: tasks posted after a past moment (the batch's own tasks never
    # count towards history, so the rest of the market is the history) against
    # every contractor, as of that moment.
    user_ids = [u.pk for u in contractors]
    for days_ago in (40, 15, 3):
        cutoff = now - dt.timedelta(days=days_ago)
        batch = [t for t in tasks if t.published_at and t.published_at >= cutoff]
        pairs = [(t, u) for t in batch for u in contractors]
        old, new = _both(monkeypatch, lambda cutoff=cutoff, pairs=pairs: pairs_matrix(pairs, now=cutoff))
        _assert_same(old, new)
        rows = _fetched(features._fetch_sql, user_ids, batch, cutoff)
        assert rows == _fetched(features._fetch_orm, user_ids, batch, cutoff)
    serving = _fetched(features._fetch_sql, user_ids, open_tasks, now)
    assert serving == _fetched(features._fetch_orm, user_ids, open_tasks, now)
    for name in (
        "jobs",
        "prices",
        "titles",
        "reviews",
        "trust",
        "offer_medians",
        "category_events",
        "customer_events",
        "busy",
        "invited",
    ):
        assert serving[name], name

    # A customer's history with the contractors is read two ways: from the
    # customers' tasks when they are fewer than the contractors (above), from
    # the contractors' events when not (a few contractors against more customers).
    customers = {t.customer_id for t in open_tasks}
    few = list(dict.fromkeys(row[1] for row in serving["customer_events"]))[:2]
    assert len(customers) < len(contractors) and len(few) < len(customers)
    few_users = [u for u in contractors if u.pk in few]
    rows = _fetched(features._fetch_sql, few, open_tasks, now)
    assert rows["customer_events"] and rows == _fetched(features._fetch_orm, few, open_tasks, now)
    old, new = _both(monkeypatch, lambda: pair_matrix(open_tasks, few_users, now=now))
    _assert_same(old, new)

    # ...in one round trip, once the platform mean is cached (at most every 5 minutes).
    pair_matrix(open_tasks, contractors)
    with CaptureQueriesContext(connection) as queries:
        pair_matrix(open_tasks, contractors)
    assert len(queries) == 1, [q["sql"][:80] for q in queries]


# The reads that leave out the batch's own tasks (training on past tasks:
# a task's outcome must not count towards its own features).
EXCLUDING = ("prices", "titles", "category_events", "customer_events", "customer_reviews", "booked")


def test_a_batch_of_done_tasks_leaves_its_own_history_out(market, monkeypatch):
    contractors, tasks = market
    user_ids = [u.pk for u in contractors]
    # Judged as of a moment after some of them were done and reviewed: their
    # offers, hires, prices, titles, reviews and bookings are all before it.
    cutoff = timezone.now() - dt.timedelta(days=10)
    done = [t for t in tasks if t.completed_at and cutoff - dt.timedelta(days=25) <= t.completed_at < cutoff]
    assert len(done) >= 5

    rows = _fetched(features._fetch_sql, user_ids, done, cutoff)
    assert rows == _fetched(features._fetch_orm, user_ids, done, cutoff)
    assert sorted(rows["own_done"]) == sorted((t.pk, t.contractor_id) for t in done)

    # The same batch under ids no task has: the same trades, customers and
    # windows, nothing left out. Every excluding read differs, so leaving out
    # the batch's tasks is what the comparison above checked.
    hidden = []
    for n, task in enumerate(done):
        task = copy.copy(task)
        task.pk = -1 - n
        hidden.append(task)
    unexcluded = _fetched(features._fetch_sql, user_ids, hidden, cutoff)
    assert unexcluded == _fetched(features._fetch_orm, user_ids, hidden, cutoff)
    assert unexcluded["own_done"] == []
    for name in EXCLUDING:
        assert rows[name] != unexcluded[name], name
    # customer_events has a second statement for more customers than
    # contractors: the batch's hired contractors, no more than its customers.
    customers = {t.customer_id for t in done}
    few = list(dict.fromkeys(t.contractor_id for t in done))[: len(customers)]
    assert len(few) <= len(customers)
    few_rows = _fetched(features._fetch_sql, few, done, cutoff)
    assert few_rows == _fetched(features._fetch_orm, few, done, cutoff)
    assert few_rows["own_done"] and few_rows["customer_events"]
    assert few_rows["customer_events"] != _fetched(features._fetch_sql, few, hidden, cutoff)["customer_events"]
    # e.g. the prices: exactly the batch's agreed prices more without the exclusion.
    batch_prices = sorted((t.contractor_id, t.category_id, t.agreed_price_cents) for t in done if t.agreed_price_cents)
    assert sorted(unexcluded["prices"]) == sorted(rows["prices"] + batch_prices)
    # ...and the reviews: the batch's 4-5 and 1-2 star reviews given before the cutoff.
    own_reviews = Review.objects.filter(
        task__in=done, role=Review.Role.CUSTOMER_TO_CONTRACTOR, submitted_at__lt=cutoff
    ).exclude(stars=3)
    assert own_reviews.exists()

    def counted(reads):
        return sum(good + bad for _customer, _contractor, good, bad in reads["customer_reviews"])

    assert counted(unexcluded) - counted(rows) == own_reviews.count()

    # Features: the same both ways, and a pair's own job is not among its
    # contractor's jobs done (nor, per pair, its trade's and customer's).
    pairs = [(t, u) for t in done for u in contractors]
    old, new = _both(monkeypatch, lambda: pairs_matrix(pairs, now=cutoff))
    _assert_same(old, new)
    X, out_pairs = new
    row_of = {pair: n for n, pair in enumerate(out_pairs)}
    for task in done:
        before = Task.objects.filter(contractor_id=task.contractor_id, assigned_at__lt=cutoff, completed_at__lt=cutoff)
        own = X[row_of[(task.pk, task.contractor_id)]]
        assert own[INDEX["jobs_done"]] == before.count() - 1
        assert own[INDEX["similar_jobs"]] == before.filter(category_id=task.category_id).count() - 1
        assert own[INDEX["customer_jobs"]] == before.filter(customer_id=task.customer_id).count() - 1


def test_a_batch_short_of_a_result_set_is_an_error_not_shifted_rows():
    # Two statements named, one sent (the second is empty): an error, also under python -O.
    with pytest.raises(RuntimeError, match="no result set for 'second'"):
        features._run_batch([("first", "SELECT 1", []), ("second", "", [])])
    with pytest.raises(RuntimeError, match="'second' returned no rows"):
        features._run_batch([("first", "SELECT 1", []), ("second", "SET LOCAL work_mem = '4MB'", [])])
    assert features._run_batch([("first", "SELECT %s", [1]), ("second", "SELECT 2, 3", [])]) == {
        "first": [(1,)],
        "second": [(2, 3)],
    }
