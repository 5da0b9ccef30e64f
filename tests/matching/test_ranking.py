"""The ranking model: trains on logged outcomes, is stored and versioned, is
loaded once per process; the rules serve when there is too little data."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from matching import ranking
from matching.features import FEATURE_NAMES, INDEX, MODEL_FEATURES, pair_matrix
from matching.models import MatchEvent, RankingModel
from tests.tasks.factories import TaskFactory

from .features_support import make_contractor, simulated_history

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_ranker_cache():
    ranking.reset_cache()
    yield
    ranking.reset_cache()


def row(**values):
    out = np.zeros(len(FEATURE_NAMES))
    out[INDEX["first_free_weekday"]] = -1
    out[INDEX["price_rate_ratio"]] = 0.5
    for name, value in values.items():
        out[INDEX[name]] = value
    return out


def test_rule_scores_are_the_weighted_sum_in_one_dict():
    X = np.vstack([
        row(distance_ratio=0.2, inside_radius=1, category_match=1, rating=5, schedule_fit=1, trust=0.8),
        row(distance_ratio=1.5, inside_radius=0, category_match=0, rating=1, schedule_fit=0, trust=0),
        row(distance_ratio=0.5, inside_radius=1, category_match=1, rating=3, schedule_fit=0.5, trust=0.5),
    ])
    w = ranking.RULE_WEIGHTS
    assert ranking.rule_scores(X) == pytest.approx([
        w["distance"] * 0.8 + w["trade"] + w["rating"] + w["availability"] + w["trust"] * 0.8,
        0.0,
        w["distance"] * 0.5 + w["trade"] + w["rating"] * 0.5 + w["availability"] * 0.5 + w["trust"] * 0.5,
    ])
    assert ranking.rule_scores(X)[0] == pytest.approx(0.24 + 0.3 + 0.15 + 0.15 + 0.08)


def test_no_model_serves_the_rules():
    ranker = ranking.get_ranker()
    assert ranker.name == "rules"
    assert ranker.is_model is False
    X = np.vstack([row(distance_ratio=0.1, inside_radius=1, category_match=1), row(distance_ratio=0.9, inside_radius=1)])
    assert list(ranker.score(X)) == list(ranking.rule_scores(X))


def test_too_little_data_trains_nothing():
    bob = make_contractor()
    task = TaskFactory(photos=0)
    MatchEvent.objects.create(task=task, contractor=bob, kind=MatchEvent.Kind.ACCEPTED)
    assert ranking.train(min_rows=200) is None
    assert RankingModel.objects.count() == 0
    assert ranking.get_ranker().name == "rules"


def test_one_class_data_trains_nothing_and_rules_serve():
    pros, tasks = simulated_history(tasks=30, contractors=5)
    MatchEvent.objects.exclude(kind=MatchEvent.Kind.SHOWN).delete()
    assert MatchEvent.objects.count() == 150
    assert ranking.train(min_rows=10) is None
    assert RankingModel.objects.count() == 0
    assert ranking.get_ranker().name == "rules"


def test_labels_from_outcomes():
    pros, tasks = simulated_history(tasks=4, contractors=4)
    labels = ranking.labelled_pairs()
    for task in tasks:
        hired = MatchEvent.objects.get(task=task, kind=MatchEvent.Kind.ACCEPTED).contractor_id
        offered = set(MatchEvent.objects.filter(task=task, kind="offered").values_list("contractor_id", flat=True))
        for pro in pros:
            expected = (1, 1.0) if pro.pk == hired else (1, ranking.WEAK_POSITIVE_WEIGHT) if pro.pk in offered else (0, 1.0)
            assert labels[(task.pk, pro.pk)] == expected


def test_model_trains_is_stored_and_serves_better_than_chance():
    pros, tasks = simulated_history(tasks=80, contractors=8)
    split = tasks[60].published_at
    record = ranking.train(until=split, min_rows=100, force=True)
    assert record is not None
    record.refresh_from_db()
    assert record.version == "v1"
    assert record.is_active is True
    assert record.algorithm == "ChoiceModel"
    assert record.feature_names == MODEL_FEATURES
    assert record.training_rows == 60 * 8
    assert record.trained_from == tasks[0].published_at
    assert record.trained_to == tasks[59].published_at
    holdout = record.evaluation["training_holdout"]
    assert set(holdout) >= {"model_top1", "rules_top1", "model_ndcg10", "rules_ndcg10", "beats_rules"}
    assert holdout["tasks"] == 12  # the latest fifth of the 60 training tasks
    assert set(record.evaluation["terms"]) == set(ranking.BASIS_NAMES)
    assert len(bytes(record.blob)) > 500

    ranker = ranking.get_ranker()
    assert ranker.is_model and ranker.name == "model:v1"
    # On the later tasks, the hired pro is ranked first far more often than by chance (1 in 8).
    hits = 0
    for task in tasks[60:]:
        X, pairs = pair_matrix([task], pros, now=task.published_at)
        best = pairs[int(np.argmax(ranker.score(X)))][1]
        hits += best == MatchEvent.objects.get(task=task, kind=MatchEvent.Kind.ACCEPTED).contractor_id
    assert hits / 20 >= 0.4


@pytest.mark.parametrize("beats", [True, False])
def test_a_new_model_serves_only_if_it_beats_the_rules_on_its_holdout(monkeypatch, beats):
    simulated_history(tasks=40, contractors=6)
    real = ranking._holdout_figures

    def holdout(data, columns):
        return real(data, columns) | {"beats_rules": beats}

    monkeypatch.setattr(ranking, "_holdout_figures", holdout)
    record = ranking.train(min_rows=50)
    assert record is not None and record.is_active is beats
    assert ranking.get_ranker().name == ("model:v1" if beats else "rules")
    # A later model that loses leaves the current one serving.
    monkeypatch.setattr(ranking, "_holdout_figures", lambda data, columns: real(data, columns) | {"beats_rules": False})
    second = ranking.train(min_rows=50)
    assert second.version == "v2" and second.is_active is False
    assert ranking.get_ranker().name == ("model:v1" if beats else "rules")
    # --force serves it whatever its holdout says.
    third = ranking.train(min_rows=50, force=True)
    assert third.is_active and ranking.get_ranker().name == "model:v3"


def test_the_choice_model_learns_what_the_customer_weighs():
    # Hand-made choices: the cheaper, nearer candidate is hired; the model's
    # utility must prefer lower distance and better pay, and put the out-of-
    # trade candidate last whatever it learned (nothing in the log teaches that).
    rng = np.random.default_rng(0)
    rows, groups, chosen = [], [], []
    for g in range(300):
        for _k in range(4):
            rows.append(row(distance_km=rng.uniform(0, 20), inside_radius=1, category_match=1,
                            price_rate_ratio=float(np.exp(rng.normal(0, 0.3))), rating=4.5, trust=0.5))
            groups.append(g)
        block = np.array(rows[-4:])
        u = -0.3 * block[:, INDEX["distance_km"]] + 3 * np.log(block[:, INDEX["price_rate_ratio"]]) + rng.gumbel(size=4)
        chosen.extend(np.arange(4) == np.argmax(u))
    cols = [INDEX[n] for n in MODEL_FEATURES]
    model = ranking.ChoiceModel(MODEL_FEATURES).fit(np.array(rows)[:, cols], np.array(groups), np.array(chosen))
    near_well_paid = row(distance_km=2, inside_radius=1, category_match=1, price_rate_ratio=1.3, rating=4.5, trust=0.5)
    far = row(distance_km=15, inside_radius=1, category_match=1, price_rate_ratio=1.3, rating=4.5, trust=0.5)
    cheap = row(distance_km=2, inside_radius=1, category_match=1, price_rate_ratio=0.7, rating=4.5, trust=0.5)
    other_trade = row(distance_km=2, inside_radius=1, category_match=0, price_rate_ratio=1.3, rating=4.5, trust=0.5)
    scores = model.score_rows(np.vstack([near_well_paid, far, cheap, other_trade])[:, cols])
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert scores[3] < min(scores[:3])


def test_second_training_makes_a_new_active_version_and_the_cache_picks_it_up(monkeypatch):
    simulated_history(tasks=40, contractors=6)
    first = ranking.train(min_rows=50, force=True)
    assert ranking.get_ranker().name == "model:v1"

    # Another process trains v2: this process keeps v1 until the re-check is due, without asking the database.
    clock = [1000.0]
    monkeypatch.setattr(ranking.time, "monotonic", lambda: clock[0])
    ranking.reset_cache()
    assert ranking.get_ranker().name == "model:v1"
    RankingModel.objects.filter(pk=first.pk).update(is_active=False)
    second = RankingModel.objects.create(
        version="v2", algorithm=first.algorithm, feature_names=first.feature_names, blob=bytes(first.blob),
        training_rows=first.training_rows, is_active=True,
    )
    clock[0] += 30
    with CaptureQueriesContext(connection) as queries:
        assert ranking.get_ranker().name == "model:v1"
    assert len(queries) == 0
    clock[0] += ranking.RECHECK_SECONDS
    assert ranking.get_ranker().name == "model:v2"
    # Loaded once: the next checks only ask which version is active.
    clock[0] += ranking.RECHECK_SECONDS
    with CaptureQueriesContext(connection) as queries:
        assert ranking.get_ranker().name == "model:v2"
    assert len(queries) == 1
    # Deactivated: back to the rules.
    RankingModel.objects.filter(pk=second.pk).update(is_active=False)
    clock[0] += ranking.RECHECK_SECONDS
    assert ranking.get_ranker().name == "rules"

    third = ranking.train(min_rows=50, force=True)
    assert third.version == "v3"
    assert list(RankingModel.objects.filter(is_active=True).values_list("version", flat=True)) == ["v3"]


def test_a_broken_blob_serves_the_rules():
    RankingModel.objects.create(version="v9", algorithm="x", feature_names=MODEL_FEATURES, blob=b"not a model", is_active=True)
    assert ranking.get_ranker().name == "rules"


def test_explanations():
    reasons = ranking.explain(row(distance_km=3.2, similar_jobs=12, schedule_fit=1, first_free_weekday=5, price_rate_ratio=1.2))
    assert reasons == ["3 km away", "did 12 similar jobs", "free on Saturday", "within your rate"]
    assert ranking.explain(row(distance_km=0.4, similar_jobs=1))[:2] == ["under 1 km away", "did 1 similar job"]
    customer_side = ranking.explain(
        row(distance_km=8, customer_jobs=2, invited=1, price_rate_ratio=1.0, rating=4.8, rating_count=23), audience="customer"
    )
    assert customer_side == ["you invited them", "8 km away", "worked for you 2 times", "within your budget"]
    assert "rated 4.8 (23 reviews)" in ranking.explain(row(distance_km=8, rating=4.8, rating_count=23))
    # Not free and below their rate: nothing claimed.
    quiet = ranking.explain(row(distance_km=5, schedule_fit=0.5, first_free_weekday=2, price_rate_ratio=0.8))
    assert quiet == ["5 km away"]


def test_train_matching_command_and_celery_task(settings, capsys):
    simulated_history(tasks=45, contractors=5)  # 225 pairs: above the nightly job's 200
    call_command("train_matching", "--min-rows", "50", "--force")
    assert RankingModel.objects.get(is_active=True).version == "v1"
    assert "Trained v1 (ChoiceModel) on 225 pairs and activated it" in capsys.readouterr().out
    call_command("train_matching", "--min-rows", "5000")
    assert "Too little data" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("train_matching", "--until", "yesterday")
    assert RankingModel.objects.count() == 1
    from matching.tasks import train_nightly

    assert train_nightly.delay().get() == "v2"
    assert settings.CELERY_BEAT_SCHEDULE["matching.train_nightly"]["task"] == "matching.train_nightly"
