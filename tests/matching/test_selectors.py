"""Recommendations both ways, and Find work's "Best match" default."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import NotFound
from matching import ranking, selectors
from matching.models import RankingModel
from tasks.models import Task
from tests.factories import ContractorProfileFactory
from tests.tasks.factories import TaskFactory

from .features_support import done_task, electrical, make_contractor, plumbing, simulated_history

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_ranker_cache():
    ranking.reset_cache()
    yield
    ranking.reset_cache()


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_best_tasks_for_ranks_trade_and_distance_with_reasons():
    bob = make_contractor(radius=25)
    near_trade = TaskFactory(title="Near plumbing", latitude=37.7599, longitude=-122.4153, category=plumbing(), photos=0)
    far_trade = TaskFactory(title="Far plumbing", latitude=37.7509 + 0.15, longitude=-122.4153, category=plumbing(), photos=0)
    near_other = TaskFactory(title="Near wiring", latitude=37.7599, longitude=-122.4153, category=electrical(), photos=0)
    TaskFactory(title="Out of range", latitude=37.7509 + 0.5, longitude=-122.4153, photos=0)
    TaskFactory(title="Bob's own", customer=bob, photos=0)
    TaskFactory(title="Taken", status=Task.Status.ASSIGNED, contractor=make_contractor(), agreed_price_cents=100, assigned_at=near_trade.published_at, photos=0)
    done_task(bob)  # one similar job

    results = selectors.best_tasks_for(bob, limit=10)
    assert [task.title for task, _s, _r in results] == ["Near plumbing", "Far plumbing", "Near wiring"]
    scores = [score for _t, score, _r in results]
    assert scores == sorted(scores, reverse=True)
    task, score, reasons = results[0]
    assert task.pk == near_trade.pk
    assert task.distance_km == pytest.approx(1.0, abs=0.01)  # the queryset's annotation is kept
    assert reasons[:2] == ["1 km away", "did 1 similar job"]
    assert "free on" in " ".join(reasons)
    assert selectors.best_tasks_for(bob, limit=1)[0][0].pk == near_trade.pk
    assert far_trade.pk in {t.pk for t, _s, _r in results} and near_other.pk in {t.pk for t, _s, _r in results}


def test_best_tasks_for_someone_without_a_base_or_profile_is_empty(customer):
    nowhere = ContractorProfileFactory(latitude=None, longitude=None).user
    TaskFactory(photos=0)
    assert selectors.best_tasks_for(nowhere) == []
    assert selectors.best_tasks_for(customer) == []


def test_ranked_tasks_page_like_a_queryset_with_a_fixed_number_of_queries():
    bob = make_contractor()
    for i in range(30):
        TaskFactory(title=f"Task {i}", latitude=37.7509 + i * 0.001, longitude=-122.4153)
    ranked = selectors.ranked_tasks_for(bob)
    assert ranked.count() == len(ranked) == 30
    page = list(ranked[10:20])
    assert len(page) == 10
    assert all(hasattr(t, "match_reasons") and t.problem_photos for t in page)
    with CaptureQueriesContext(connection) as small:
        list(selectors.ranked_tasks_for(bob)[:5])
    for i in range(30):
        TaskFactory(title=f"More {i}", latitude=37.76 + i * 0.001, longitude=-122.4153)
    with CaptureQueriesContext(connection) as big:
        assert len(list(selectors.ranked_tasks_for(bob)[:50])) == 50
    assert len(big) == len(small)


def test_ranked_task_taken_after_scoring_is_left_out_of_the_page():
    bob = make_contractor(radius=25)
    first = TaskFactory(title="Near plumbing", latitude=37.7599, longitude=-122.4153, category=plumbing(), photos=0)
    TaskFactory(title="Far plumbing", latitude=37.7509 + 0.1, longitude=-122.4153, category=plumbing(), photos=0)
    ranked = selectors.ranked_tasks_for(bob)
    assert ranked.count() == 2
    Task.objects.filter(pk=first.pk).update(  # someone else was hired meanwhile
        status=Task.Status.ASSIGNED, contractor=make_contractor(), agreed_price_cents=100, assigned_at=first.published_at
    )
    page = list(ranked[:20])
    assert [task.title for task in page] == ["Far plumbing"]
    assert page[0].distance_km == pytest.approx(11.1, abs=0.1)  # still the queryset's row (0.1 degree north)


def test_best_contractors_for_trade_range_onboarding_and_reasons(customer):
    task = TaskFactory(customer=customer, latitude=37.7599, longitude=-122.4153, category=plumbing(), photos=0)
    near = make_contractor(lat=37.7609, lon=-122.4153)
    far = make_contractor(lat=37.7599 + 0.18, lon=-122.4153, radius=25)
    done_task(far, customer=customer)
    make_contractor(lat=37.7599 + 0.3, lon=-122.4153, radius=25)  # out of their own range
    make_contractor(trades=[electrical()])  # another trade
    ContractorProfileFactory(onboarded_at=None)  # not onboarded
    gone = make_contractor()
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    customer.is_contractor = True
    customer.save(update_fields=["is_contractor"])
    ContractorProfileFactory(user=customer)  # the customer themselves

    results = selectors.best_contractors_for(task, limit=10)
    assert [user.pk for user, _s, _r in results] == [near.pk, far.pk]
    assert results[0][2][0] == "under 1 km away"
    assert "worked for you 1 time" in results[1][2]
    assert selectors.best_contractors_for(task, limit=1)[0][0].pk == near.pk


def test_candidate_rows_sql_reads_what_the_orm_query_reads(customer):
    # best_contractors_for reads its candidates with plain SQL on PostgreSQL;
    # the ORM query is the same read on SQLite. Every condition is exercised:
    # the trade (also as one of several), the box on both axes, onboarding,
    # active, is_contractor, and the task's own customer.
    task = TaskFactory(customer=customer, latitude=37.7599, longitude=-122.4153, category=plumbing(), photos=0)
    box = (37.70, 37.82, -122.50, -122.35)
    inside = [
        make_contractor(lat=37.7609, lon=-122.4153),
        make_contractor(lat=37.7000, lon=-122.5000, radius=40),  # on the box's corner
        make_contractor(lat=37.8000, lon=-122.3600, trades=[electrical(), plumbing()]),
    ]
    make_contractor(lat=37.9000, lon=-122.4153)  # north of the box
    make_contractor(lat=37.7599, lon=-122.3000)  # east of the box
    make_contractor(trades=[electrical()])  # another trade
    ContractorProfileFactory(onboarded_at=None, latitude=37.76, longitude=-122.41, trades=[plumbing()])
    gone = make_contractor()
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    retired = make_contractor()
    retired.is_contractor = False
    retired.save(update_fields=["is_contractor"])
    customer.is_contractor = True
    customer.save(update_fields=["is_contractor"])
    ContractorProfileFactory(user=customer, latitude=37.76, longitude=-122.41, trades=[plumbing()])

    orm = sorted(selectors._candidate_rows_orm(task, *box))
    assert [row[0] for row in orm] == sorted(user.pk for user in inside)
    assert sorted(selectors._candidate_rows_sql(task, *box)) == orm
    assert sorted(selectors._candidate_rows(task, *box)) == orm


def test_pros_to_invite_only_for_the_tasks_customer(customer, outsider, contractor, staff):
    task = TaskFactory(customer=customer, photos=0)
    make_contractor()
    assert len(selectors.pros_to_invite(task, customer)) == 2
    for someone in (outsider, contractor, staff, None):
        with pytest.raises(NotFound):
            selectors.pros_to_invite(task, someone)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.CANCELLED)
    task.refresh_from_db()
    assert selectors.pros_to_invite(task, customer) == []


def test_model_ranks_when_active():
    pros, tasks = simulated_history(tasks=40, contractors=6)
    record = ranking.train(min_rows=50, force=True)
    assert record is not None and record.is_active
    task = TaskFactory(category=plumbing(), photos=0)
    results = selectors.best_contractors_for(task, limit=6)
    ranker = ranking.get_ranker()
    from matching.features import pair_matrix

    X, pairs = pair_matrix([task], [u for u, _s, _r in results])
    assert ranker.is_model
    assert [s for _u, s, _r in results] == pytest.approx(list(ranker.score(X)))
    assert np.all(np.diff([s for _u, s, _r in results]) <= 0)


# --- Find work ---------------------------------------------------------------------


def test_find_work_defaults_to_best_match_and_says_rules_are_ranking(client):
    bob = make_contractor()
    TaskFactory(title="Wiring nearby", latitude=37.7519, longitude=-122.4153, category=electrical())
    TaskFactory(title="Plumbing a bit further", latitude=37.7609, longitude=-122.4153, category=plumbing())
    client.force_login(bob)
    page = text(client.get("/tasks/find"))
    assert "Ranked by simple rules: distance, trade, rating, availability." in page
    assert page.index("Plumbing a bit further") < page.index("Wiring nearby")
    assert "Why: 1 km away" in page
    # Nearest first when asked, and a search keeps relevance: no ranking note, no reasons.
    page = text(client.get("/tasks/find?sort=distance"))
    assert page.index("Wiring nearby") < page.index("Plumbing a bit further")
    assert "Ranked by" not in page and "Why:" not in page
    assert "Ranked by" not in text(client.get("/tasks/find?q=wiring"))


def test_find_work_names_the_model_version(client):
    simulated_history(tasks=30, contractors=5)
    ranking.train(min_rows=50, force=True)
    bob = make_contractor()
    TaskFactory(title="Leak", category=plumbing())
    client.force_login(bob)
    page = text(client.get("/tasks/find"))
    assert f"Ranked by our matching model {RankingModel.objects.get(is_active=True).version}." in page


def test_api_sorts_by_best_match_by_default(api_as):
    bob = make_contractor()
    wiring = TaskFactory(latitude=37.7519, longitude=-122.4153, category=electrical())
    plumbing_task = TaskFactory(latitude=37.7609, longitude=-122.4153, category=plumbing())
    client = api_as(bob)
    ids = lambda r: [row["id"] for row in r.json()["results"]]  # noqa: E731
    assert ids(client.get("/api/v1/tasks/nearby")) == [str(plumbing_task.public_id), str(wiring.public_id)]
    assert ids(client.get("/api/v1/tasks/nearby", {"sort": "best_match"})) == [str(plumbing_task.public_id), str(wiring.public_id)]
    assert ids(client.get("/api/v1/tasks/nearby", {"sort": "distance"})) == [str(wiring.public_id), str(plumbing_task.public_id)]
    bad = client.get("/api/v1/tasks/nearby", {"sort": "best"})
    assert bad.status_code == 400 and "sort" in bad.json()["error"]["fields"]


def test_api_best_match_results_say_why(api_as):
    bob = make_contractor()
    plumbing_task = TaskFactory(latitude=37.7609, longitude=-122.4153, category=plumbing())
    client = api_as(bob)
    first = client.get("/api/v1/tasks/nearby").json()["results"][0]
    assert first["id"] == str(plumbing_task.public_id)
    assert "1 km away" in first["match_reasons"]
    assert "in your trades" in first["match_reasons"]
    assert isinstance(first["match_score"], float)
    # Other orders are not ranked by match: no score, no reasons.
    by_distance = client.get("/api/v1/tasks/nearby", {"sort": "distance"}).json()["results"][0]
    assert by_distance["match_score"] is None and by_distance["match_reasons"] == []


def test_a_customer_gets_no_find_work_ranking(client, customer):
    TaskFactory(photos=0)
    client.force_login(customer)
    page = text(client.get("/tasks/find"))
    assert "Ranked by" not in page
