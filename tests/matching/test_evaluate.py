"""The evaluation: hit rates and NDCG on hand-made rankings (exact numbers),
baselines on hand-made features, and the command's one line of JSON."""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import numpy as np
import pytest
from django.core.management import call_command

from matching import evaluate
from matching.features import FEATURE_NAMES, INDEX
from matching.models import RankingModel
from matching.simulate import METROS, simulate


def test_hit_at_k():
    ranked = ["ana", "bob", "cy"]
    assert evaluate.hit_at_k(ranked, "ana", 1) == 1.0
    assert evaluate.hit_at_k(ranked, "bob", 1) == 0.0
    assert evaluate.hit_at_k(ranked, "bob", 2) == 1.0
    assert evaluate.hit_at_k(ranked, "cy", 5) == 1.0
    assert evaluate.hit_at_k(ranked, "dee", 5) == 0.0


def test_ndcg_at_k_exact():
    ranked = ["ana", "bob", "cy", "dee"]
    assert evaluate.ndcg_at_k(ranked, {"ana": 1}, 10) == 1.0
    assert evaluate.ndcg_at_k(ranked, {"bob": 1}, 10) == pytest.approx(1 / math.log2(3))  # 0.6309
    assert evaluate.ndcg_at_k(ranked, {"dee": 1}, 10) == pytest.approx(1 / math.log2(5))  # 0.4307
    assert evaluate.ndcg_at_k(ranked, {"dee": 1}, 3) == 0.0  # beyond k
    assert evaluate.ndcg_at_k(ranked, {}, 10) == 0.0
    # Graded: gains 2**g - 1. Order gives 0, 3, 1 -> DCG 3/log2(3) + 1/2; ideal 3 + 1/log2(3).
    graded = evaluate.ndcg_at_k(["ana", "bob", "cy"], {"ana": 0, "bob": 2, "cy": 1}, 10)
    assert graded == pytest.approx((3 / math.log2(3) + 0.5) / (3 + 1 / math.log2(3)))
    assert graded == pytest.approx(0.659002, abs=1e-6)


def test_random_expectation_exact():
    four = evaluate.random_expectation(4)
    assert four["top1"] == 0.25
    assert four["top5"] == 1.0
    assert four["ndcg10"] == pytest.approx((1 + 1 / math.log2(3) + 0.5 + 1 / math.log2(5)) / 4)
    twenty = evaluate.random_expectation(20)
    assert twenty["top5"] == 0.25
    assert twenty["ndcg10"] == pytest.approx(sum(1 / math.log2(r + 1) for r in range(1, 11)) / 20)


def test_rank_by_orders_by_score_and_breaks_ties_by_seed():
    ids = ["a", "b", "c", "d"]
    assert evaluate.rank_by(ids, [0.1, 0.9, 0.5, 0.3], np.random.default_rng(0)) == ["b", "c", "d", "a"]
    tied = [evaluate.rank_by(ids, [1, 1, 1, 0], np.random.default_rng(seed))[:3] for seed in range(20)]
    assert all(sorted(t) == ["a", "b", "c"] for t in tied)
    assert len({tuple(t) for t in tied}) > 1  # ties are not left in row order
    assert evaluate.rank_by(ids, [1, 1, 1, 0], np.random.default_rng(4)) == evaluate.rank_by(
        ids, [1, 1, 1, 0], np.random.default_rng(4)
    )


class _ColumnRanker:
    """Scores by one feature column: a stand-in for the trained model."""

    def __init__(self, name: str):
        self.column = INDEX[name]

    def score(self, X):
        return X[:, self.column]


def _rows(distance, rating, similar):
    X = np.zeros((len(distance), len(FEATURE_NAMES)))
    X[:, INDEX["distance_km"]] = distance
    X[:, INDEX["rating"]] = rating
    X[:, INDEX["similar_jobs"]] = similar
    return X


def test_score_cases_against_the_baselines_on_hand_made_features():
    # Task 1: hired 12 is nearest, rated lowest, most similar jobs.
    # Task 2: hired 22 is third nearest, rated best, most similar jobs.
    cases = [
        evaluate.TestCase(task=None, hired_id=12, candidate_ids=[11, 12, 13]),
        evaluate.TestCase(task=None, hired_id=22, candidate_ids=[21, 22, 23]),
    ]
    matrices = [
        _rows([5.0, 1.0, 9.0], [4.5, 3.9, 4.2], [0, 7, 1]),
        _rows([2.0, 8.0, 4.0], [4.0, 4.8, 4.1], [1, 9, 0]),
    ]
    figures, _rules = evaluate.score_cases(cases, matrices, _ColumnRanker("similar_jobs"), seed=1)
    assert figures["model"] == {"top1": 1.0, "top5": 1.0, "ndcg10": 1.0}
    # Nearest: rank 1 then rank 3 -> top-1 0.5, NDCG (1 + 1/log2(4)) / 2 = 0.75.
    assert figures["nearest"] == {"top1": 0.5, "top5": 1.0, "ndcg10": 0.75}
    # Best rated: rank 3 then rank 1.
    assert figures["best_rated"] == {"top1": 0.5, "top5": 1.0, "ndcg10": 0.75}
    three = (1 + 1 / math.log2(3) + 0.5) / 3
    assert figures["random"] == {"top1": round(1 / 3, 4), "top5": 1.0, "ndcg10": round(three, 4)}


@pytest.mark.django_db
def test_command_prints_one_line_of_json_and_stores_the_figures(monkeypatch):
    end = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    simulate(seed=11, months=1, customers=10, contractors=24, tasks=40, end=end, metros=METROS[:1])
    monkeypatch.setattr(evaluate, "MIN_ROWS", 10)  # a tiny market has a few dozen pairs of hired tasks
    out = io.StringIO()
    call_command("evaluate_matching", "--json", "--seed", "11", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == {"model", "baselines"}
    assert set(data["baselines"]) == {"nearest", "best_rated", "random"}
    for figures in [data["model"], *data["baselines"].values()]:
        assert set(figures) == {"top1", "top5", "ndcg10"}
        assert all(0.0 <= value <= 1.0 for value in figures.values())
    stored = RankingModel.objects.order_by("-pk").first().evaluation["simulated_market"]
    assert stored["model"] == data["model"]
    assert stored["baselines"] == data["baselines"]
    assert stored["seed"] == 11 and stored["test_tasks"] > 0


@pytest.mark.django_db
def test_features_as_of_a_past_day_do_not_read_later_choices():
    # A preference learned from a hire would otherwise tell the evaluation
    # (and training) who was hired on the very task being ranked: features
    # rebuild preferences from the outcome log before "now", never from the
    # Preference table (today's weight), and never from the task itself.
    from matching.features import pair_matrix
    from matching.models import MatchEvent, Preference
    from tests.factories import UserFactory
    from tests.tasks.factories import TaskFactory

    from .features_support import make_contractor

    bob, dana = make_contractor(), UserFactory()
    earlier = TaskFactory(customer=dana, photos=0)
    MatchEvent.objects.create(task=earlier, contractor=bob, kind=MatchEvent.Kind.ACCEPTED)
    task = TaskFactory(customer=dana, photos=0)
    MatchEvent.objects.create(task=task, contractor=bob, kind=MatchEvent.Kind.ACCEPTED)
    Preference.objects.create(user=dana, kind=Preference.Kind.CONTRACTOR, contractor=bob, weight=2.5)
    now_X, _ = pair_matrix([task], bob)
    past_X, _ = pair_matrix([task], bob, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert now_X[0, INDEX["customer_preference"]] == 1.0  # the earlier hire only, not this task's
    assert past_X[0, INDEX["customer_preference"]] == 0.0
