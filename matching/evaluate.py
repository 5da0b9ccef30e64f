"""How well the ranking model finds the contractor a customer actually hires.

``evaluate()`` (``manage.py evaluate_matching``):

1. On a database without tasks, simulates the default market first
   (``matching.simulate``).
2. Splits the history in time: ``ranking.train(until=cutoff)`` fits the model
   on the outcomes logged before the cutoff (the first ``TRAIN_SHARE`` of the
   span between the first and the last posting); the tasks posted after it are
   the test. The model measured is the one just trained, activated or not
   (``train`` activates it only if it beats the rules on its own holdout,
   which lies before the cutoff; ``activated`` says whether it did).
3. For each test task that was hired (a customer accepted and paid an
   offer), ranks its candidates and looks where the hired contractor lands.
   Candidates (``candidates="offered"``, the default): everyone who offered,
   plus as many contractors who did not offer but were in range (the task's
   trade in their trades, the task inside their service radius), drawn at
   random with the seed; ``candidates="all"``: every contractor in range.
   Features are computed as of the start of the task's posting day (as
   training does), so nothing after that is seen.
4. Scores the candidates with the model and with three baselines: nearest
   (distance, ascending), best rated (the Bayesian rating as of that day,
   the ``rating`` feature), random. Ties are broken at random (seeded), so a
   baseline gets no credit for the order rows happen to come in. Random is
   computed as its exact expectation (1/n, min(k, n)/n, mean NDCG over
   positions), not one noisy draw.
5. Reports top-1 and top-5 hit rates (the hired contractor is in the first k)
   and NDCG@10 (relevance 1 for the hired contractor, 0 for the others, so it
   is 1/log2(1 + rank) when the hire is in the top 10), averaged over the test
   tasks, and stores them on the ``RankingModel`` it trained
   (``evaluation["simulated_market"]``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from accounts.models import ContractorProfile, User
from tasks.models import Offer, Task

from . import features, ranking
from .models import RankingModel

TRAIN_SHARE = 0.75
MIN_ROWS = ranking.DEFAULT_MIN_ROWS  # labelled pairs needed to train (tests lower it for a tiny market)
KS = (1, 5)
NDCG_K = 10
CANDIDATE_MODES = ("offered", "all")
METHODS = ("model", "nearest", "best_rated", "random")


# --- metrics ------------------------------------------------------------------------------------


def hit_at_k(ranked: Sequence[Hashable], relevant: Hashable, k: int) -> float:
    """1.0 if ``relevant`` is among the first ``k`` of ``ranked``, else 0.0."""
    return 1.0 if relevant in list(ranked[:k]) else 0.0


def dcg_at_k(gains_in_order: Sequence[float], k: int) -> float:
    return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(list(gains_in_order)[:k]))


def ndcg_at_k(ranked: Sequence[Hashable], gains: Mapping[Hashable, float], k: int) -> float:
    """Normalised discounted cumulative gain of ``ranked`` at ``k``: gain
    ``2**g - 1`` at position i discounted by ``log2(i + 1)`` (1-based), over
    the same for the ideal order. 0.0 when nothing is relevant."""
    ideal = dcg_at_k(sorted(gains.values(), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg_at_k([gains.get(item, 0.0) for item in ranked], k) / ideal


def random_expectation(n: int, *, ks: Sequence[int] = KS, ndcg_k: int = NDCG_K) -> dict[str, float]:
    """The expected figures of a uniformly random order of ``n`` candidates
    with one relevant: top-k = min(k, n)/n; NDCG@k = mean of 1/log2(1 + r)
    over the positions r <= k."""
    out = {f"top{k}": min(k, n) / n for k in ks}
    out[f"ndcg{ndcg_k}"] = sum(1.0 / math.log2(r + 1) for r in range(1, min(ndcg_k, n) + 1)) / n
    return out


def rank_by(ids: Sequence[Hashable], scores: Sequence[float], rng: np.random.Generator) -> list[Hashable]:
    """``ids`` by score, highest first; ties in random (seeded) order."""
    tiebreak = rng.permutation(len(ids))
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), int(tiebreak[i])))
    return [ids[i] for i in order]


def figures_for(ranked: Sequence[Hashable], hired: Hashable) -> dict[str, float]:
    out = {f"top{k}": hit_at_k(ranked, hired, k) for k in KS}
    out[f"ndcg{NDCG_K}"] = ndcg_at_k(ranked, {hired: 1.0}, NDCG_K)
    return out


def mean_figures(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {f"top{k}": 0.0 for k in KS} | {f"ndcg{NDCG_K}": 0.0}
    return {key: round(sum(r[key] for r in rows) / len(rows), 4) for key in rows[0]}


# --- the evaluation ------------------------------------------------------------------------------


@dataclass
class TestCase:
    task: Task
    hired_id: int
    candidate_ids: list[int]


@dataclass
class Evaluation:
    figures: dict[str, dict[str, float]]  # method -> top1/top5/ndcg10
    tasks: int
    mean_candidates: float
    cutoff: dt.datetime
    model_version: str
    candidates: str
    seed: int
    rules: dict[str, float]
    simulated: bool
    activated: bool = False

    def as_json(self) -> dict[str, Any]:
        f = self.figures
        return {"model": f["model"], "baselines": {name: f[name] for name in ("nearest", "best_rated", "random")}}

    def details(self) -> dict[str, Any]:
        return self.as_json() | {
            "rules": self.rules,
            "test_tasks": self.tasks,
            "mean_candidates": round(self.mean_candidates, 2),
            "candidates": self.candidates,
            "cutoff": self.cutoff.isoformat(),
            "seed": self.seed,
            "activated": self.activated,
            "evaluated_at": timezone.now().isoformat(),
        }


class EvaluationError(Exception):
    pass


def cutoff_for(share: float = TRAIN_SHARE) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(first posting, cutoff, last posting) of the tasks in the database."""
    times = (
        Task.objects.filter(published_at__isnull=False).order_by("published_at").values_list("published_at", flat=True)
    )
    first, last = times.first(), times.last()
    if first is None or first == last:
        raise EvaluationError("There is no history to evaluate on.")
    return first, first + (last - first) * share, last


def _in_range(task: Task, profiles: list[dict[str, Any]]) -> list[int]:
    out = []
    for p in profiles:
        if task.category_id not in p["trades"] or p["latitude"] is None:
            continue
        d = float(features.haversine_km(p["latitude"], p["longitude"], task.latitude, task.longitude))
        if d <= p["radius"]:
            out.append(p["user_id"])
    return out


def test_cases(cutoff: dt.datetime, *, candidates: str, rng: np.random.Generator) -> list[TestCase]:
    """The hired tasks posted after ``cutoff`` and who to rank for each."""
    if candidates not in CANDIDATE_MODES:
        raise ValueError(f"candidates must be one of {CANDIDATE_MODES}")
    tasks = list(
        Task.objects.filter(published_at__gte=cutoff, contractor__isnull=False, assigned_at__isnull=False).order_by(
            "published_at", "pk"
        )
    )
    offered: dict[int, list[int]] = defaultdict(list)
    for task_id, contractor_id in (
        Offer.objects.filter(task__in=tasks, is_instant=False)
        .order_by("created_at", "pk")
        .values_list("task_id", "contractor_id")
    ):
        if contractor_id not in offered[task_id]:
            offered[task_id].append(contractor_id)
    trades: dict[int, set[int]] = defaultdict(set)
    for profile_id, category_id in ContractorProfile.trades.through.objects.values_list(
        "contractorprofile_id", "category_id"
    ):
        trades[profile_id].add(category_id)
    profiles = [
        {"user_id": uid, "latitude": lat, "longitude": lon, "radius": radius, "trades": trades[pk]}
        for pk, uid, lat, lon, radius in ContractorProfile.objects.filter(onboarded_at__isnull=False)
        .order_by("user_id")
        .values_list("pk", "user_id", "latitude", "longitude", "service_radius_km")
    ]
    cases = []
    for task in tasks:
        offerers = offered.get(task.pk, [])
        if task.contractor_id not in offerers:
            continue  # booked instantly: there was no choice between offers
        others = [uid for uid in _in_range(task, profiles) if uid not in offerers and uid != task.customer_id]
        if candidates == "offered":
            picked = sorted(others)
            if len(picked) > len(offerers):
                picked = sorted(int(x) for x in rng.choice(picked, size=len(offerers), replace=False))
            others = picked
        ids = offerers + others
        if len(ids) >= 2:
            cases.append(TestCase(task=task, hired_id=task.contractor_id, candidate_ids=ids))
    return cases


def _features_by_case(cases: list[TestCase]) -> list[np.ndarray]:
    """Each case's feature rows (candidate order), as of the start of its
    posting day (UTC), as ``ranking.training_set`` computes them: one
    ``pairs_matrix`` call per day."""
    users = {u.pk: u for u in User.objects.filter(pk__in={c for case in cases for c in case.candidate_ids})}
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    for n, case in enumerate(cases):
        by_day[case.task.published_at.astimezone(dt.UTC).date()].append(n)
    out: list[np.ndarray] = [np.zeros((0, len(features.FEATURE_NAMES)))] * len(cases)
    for day, numbers in sorted(by_day.items()):
        pairs = [(cases[n].task, users[c]) for n in numbers for c in cases[n].candidate_ids]
        X, _pairs = features.pairs_matrix(pairs, now=dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC))
        start = 0
        for n in numbers:
            size = len(cases[n].candidate_ids)
            out[n] = X[start : start + size]
            start += size
    return out


def score_cases(
    cases: list[TestCase], matrices: list[np.ndarray], model: ranking.Ranker, *, seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    rng = np.random.default_rng(seed)
    col = features.INDEX
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for case, X in zip(cases, matrices, strict=True):
        ids = case.candidate_ids
        methods: dict[str, np.ndarray] = {
            "model": model.score(X),
            "nearest": -X[:, col["distance_km"]],
            "best_rated": X[:, col["rating"]],
            "rules": ranking.rule_scores(X),
        }
        for name, scores in methods.items():
            rows[name].append(figures_for(rank_by(ids, scores, rng), case.hired_id))
        rows["random"].append(random_expectation(len(ids)))
    figures = {name: mean_figures(rows[name]) for name in METHODS}
    return figures, mean_figures(rows["rules"])


def evaluate(
    *,
    seed: int = 1,
    candidates: str = "offered",
    train_share: float = TRAIN_SHARE,
    progress: Callable[[str], None] | None = None,
    simulate_kwargs: dict[str, Any] | None = None,
) -> Evaluation:
    """Simulate (on an empty database), train on the earlier history, test on
    the later; see the module docstring. Raises ``EvaluationError`` when
    there is too little to train or test on."""
    say = progress or (lambda message: None)
    simulated = False
    if not Task.objects.exists():
        from .simulate import simulate

        say(f"Empty database: simulating the default market (seed {seed})...")
        result = simulate(seed=seed, progress=say, **(simulate_kwargs or {}))
        say(f"Simulated: {result.counts} (signature {result.signature})")
        simulated = True
    _first, cutoff, _last = cutoff_for(train_share)
    say(f"Training on the outcomes before {cutoff:%Y-%m-%d %H:%M}...")
    record = ranking.train(until=cutoff, min_rows=MIN_ROWS)
    if record is None:
        raise EvaluationError("Too little history before the cutoff to train a model.")
    # The model just trained is the one measured, whether or not its own
    # holdout let it be activated (reported as ``activated``).
    model = ranking._load(record.pk)
    if not model.is_model or model.version != record.version:
        raise EvaluationError(f"The trained model {record.version} could not be loaded.")
    say(
        f"Trained {record.version} on {record.training_rows} pairs; holdout "
        f"{record.evaluation.get('training_holdout')}; {'activated' if record.is_active else 'NOT activated'}."
    )
    cases = test_cases(cutoff, candidates=candidates, rng=np.random.default_rng(seed))
    if not cases:
        raise EvaluationError("No hired tasks after the cutoff to test on.")
    say(f"Ranking the candidates of {len(cases)} hired tasks after the cutoff...")
    matrices = _features_by_case(cases)
    figures, rules = score_cases(cases, matrices, model, seed=seed)
    evaluation = Evaluation(
        figures=figures,
        tasks=len(cases),
        mean_candidates=sum(len(c.candidate_ids) for c in cases) / len(cases),
        cutoff=cutoff,
        model_version=record.version,
        candidates=candidates,
        seed=seed,
        rules=rules,
        simulated=simulated,
        activated=record.is_active,
    )
    stored = dict(record.evaluation or {})
    stored["simulated_market"] = evaluation.details()
    RankingModel.objects.filter(pk=record.pk).update(evaluation=stored)
    return evaluation
