"""Ranking (task, contractor) pairs: a learned model when there is one, else rules.

- ``rule_scores(X)``: the transparent fallback, a weighted sum whose weights
  are ``RULE_WEIGHTS`` (one dict, nowhere else).
- ``train()``: fits a scikit-learn HistGradientBoostingClassifier on pairs
  labelled from MatchEvent outcomes (hired / completed / well reviewed: 1;
  offered only: 1 with a small weight; shown, viewed, skipped, alerted or
  invited without an offer: 0), with each pair's features as they were the
  day the task was posted. Stored as a versioned RankingModel (joblib blob,
  data range, row count, a time-ordered holdout's figures) and activated.
  Too little data (fewer than ``min_rows`` pairs, or one class) -> None, and
  the rules keep serving.
- ``get_ranker()``: the active model, loaded once per process and re-checked
  at most every ``RECHECK_SECONDS``; the rules when there is none or it cannot
  be loaded.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .features import FEATURE_NAMES, INDEX, MODEL_FEATURES, pairs_matrix
from .models import MatchEvent, RankingModel

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 60.0
DEFAULT_MIN_ROWS = 200

# The fallback, in one place. Each term's value is in [0, 1]:
#   distance: 1 at the door, 0 at (or past) the edge of the contractor's radius
#   trade: 1 if the task's trade is one of theirs
#   rating: Bayesian rating mapped from 1..5 stars to 0..1
#   availability: free hours in the task's window over the hours it needs
#   trust: trust score / 100
RULE_WEIGHTS: dict[str, float] = {
    "distance": 0.30,
    "trade": 0.30,
    "rating": 0.15,
    "availability": 0.15,
    "trust": 0.10,
}
assert abs(sum(RULE_WEIGHTS.values()) - 1.0) < 1e-9

# Labels from outcomes, and how much each labelled pair weighs in training.
POSITIVE_KINDS = frozenset({MatchEvent.Kind.ACCEPTED, MatchEvent.Kind.COMPLETED, MatchEvent.Kind.WELL_REVIEWED})
WEAK_POSITIVE_KINDS = frozenset({MatchEvent.Kind.OFFERED})
NEGATIVE_KINDS = frozenset(
    {MatchEvent.Kind.SHOWN, MatchEvent.Kind.VIEWED, MatchEvent.Kind.SKIPPED, MatchEvent.Kind.ALERTED, MatchEvent.Kind.INVITED}
)
WEAK_POSITIVE_WEIGHT = 0.3
HOLDOUT_SHARE = 0.2  # latest share of the tasks kept out to check the model against the rules


def rule_terms(X: np.ndarray) -> dict[str, np.ndarray]:
    """Each rule's value per row, in [0, 1]."""
    X = np.atleast_2d(X)
    return {
        "distance": np.clip(1.0 - X[:, INDEX["distance_ratio"]], 0.0, 1.0) * X[:, INDEX["inside_radius"]],
        "trade": X[:, INDEX["category_match"]],
        "rating": np.clip((X[:, INDEX["rating"]] - 1.0) / 4.0, 0.0, 1.0),
        "availability": np.clip(X[:, INDEX["schedule_fit"]], 0.0, 1.0),
        "trust": np.clip(X[:, INDEX["trust"]], 0.0, 1.0),
    }


def rule_scores(X: np.ndarray) -> np.ndarray:
    """The transparent fallback: sum of RULE_WEIGHTS[term] * term value."""
    terms = rule_terms(X)
    return sum(RULE_WEIGHTS[name] * values for name, values in terms.items())


# --- explanations ---------------------------------------------------------------------------

def _weekday_name(index: int) -> str:
    return [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")][index]


def explain(row: np.ndarray, *, audience: str = "contractor", limit: int = 4) -> list[str]:
    """Why this pair ranks where it does, in plain words, strongest first.

    ``audience``: "contractor" (Find work: "within your rate") or "customer"
    (pros to invite: "within your budget")."""
    f = {name: float(row[i]) for i, name in enumerate(FEATURE_NAMES)}
    reasons: list[str] = []
    if f["invited"] >= 1:
        reasons.append(_("invited by the customer") if audience == "contractor" else _("you invited them"))
    km = f["distance_km"]
    if km < 1:
        reasons.append(_("under 1 km away"))
    elif km < 9999:
        reasons.append(_("%(km)d km away") % {"km": round(km)})
    similar = int(round(f["similar_jobs"]))
    if similar > 0:
        reasons.append(ngettext("did %(n)d similar job", "did %(n)d similar jobs", similar) % {"n": similar})
    customer_jobs = int(round(f["customer_jobs"]))
    if customer_jobs > 0:
        if audience == "customer":
            reasons.append(
                ngettext("worked for you %(n)d time", "worked for you %(n)d times", customer_jobs) % {"n": customer_jobs}
            )
        else:
            reasons.append(
                ngettext(
                    "worked for this customer %(n)d time", "worked for this customer %(n)d times", customer_jobs
                )
                % {"n": customer_jobs}
            )
    weekday = int(f["first_free_weekday"])
    if f["schedule_fit"] >= 0.999 and weekday >= 0:
        reasons.append(_("free on %(day)s") % {"day": _weekday_name(weekday)})
    if f["price_rate_ratio"] >= 1.0:  # budget per hour at or above their rate
        reasons.append(_("within your rate") if audience == "contractor" else _("within your budget"))
    if f["rating_count"] >= 3:
        reasons.append(
            _("rated %(rating).1f (%(n)d reviews)") % {"rating": f["rating"], "n": int(f["rating_count"])}
        )
    if f["category_match"] >= 1 and similar == 0:
        reasons.append(_("in your trades") if audience == "contractor" else _("does this trade"))
    if f["text_similarity"] >= 0.2:
        reasons.append(_("like your past work"))
    return reasons[:limit]


# --- rankers ------------------------------------------------------------------------------


class Ranker:
    name = "rules"
    is_model = False
    version = ""

    def score(self, X: np.ndarray) -> np.ndarray:
        return rule_scores(X)

    def explain(self, row: np.ndarray, *, audience: str = "contractor") -> list[str]:
        return explain(row, audience=audience)


class RuleRanker(Ranker):
    pass


class ModelRanker(Ranker):
    is_model = True

    def __init__(self, version: str, estimator: Any, feature_names: list[str]):
        self.version = version
        self.name = f"model:{version}"
        self.estimator = estimator
        self.feature_names = list(feature_names)
        self.columns = [INDEX[name] for name in self.feature_names]

    def score(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        if len(X) == 0:
            return np.zeros(0)
        with _one_thread():
            return self.estimator.predict_proba(X[:, self.columns])[:, 1]


def _one_thread():
    """OpenMP threads cost more than they give on a few thousand rows, and
    fight the web and worker processes for the same cores."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


RULES = RuleRanker()

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"checked_at": None, "version": None, "ranker": RULES}


def reset_cache() -> None:
    with _cache_lock:
        _cache.update(checked_at=None, version=None, ranker=RULES)


def get_ranker() -> Ranker:
    """The active model (loaded once per process per version), else the rules."""
    now = time.monotonic()
    checked_at = _cache["checked_at"]
    if checked_at is not None and now - checked_at < RECHECK_SECONDS:
        return _cache["ranker"]
    with _cache_lock:
        active = RankingModel.objects.filter(is_active=True).values_list("pk", "version").first()
        if active is None:
            _cache.update(checked_at=now, version=None, ranker=RULES)
        elif active[1] != _cache["version"]:
            _cache.update(checked_at=now, version=active[1], ranker=_load(active[0]))
        else:
            _cache["checked_at"] = now
        return _cache["ranker"]


def _load(pk: int) -> Ranker:
    import joblib

    row = RankingModel.objects.filter(pk=pk).values_list("version", "blob", "feature_names").first()
    if row is None:
        return RULES
    version, blob, feature_names = row
    try:
        estimator = joblib.load(io.BytesIO(bytes(blob)))
        ranker = ModelRanker(version, estimator, feature_names)
        ranker.score(np.zeros((1, len(FEATURE_NAMES))))  # fails now, not on a page
        return ranker
    except Exception:  # a model from another code version: serve the rules, say so in the log
        logger.exception("Ranking model %s could not be loaded; serving the rules", version)
        return RULES


# --- training -----------------------------------------------------------------------------


@dataclass
class TrainingSet:
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    task_ids: np.ndarray
    pairs: list[tuple[int, int]]
    trained_from: dt.datetime | None
    trained_to: dt.datetime | None


def labelled_pairs(*, since: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[tuple[int, int], tuple[int, float]]:
    """(task_id, contractor_id) -> (label, weight) from the MatchEvents in [since, until)."""
    events = MatchEvent.objects.all()
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    kinds: dict[tuple[int, int], set[str]] = defaultdict(set)
    for task_id, contractor_id, kind in events.values_list("task_id", "contractor_id", "kind").iterator(chunk_size=5000):
        kinds[(task_id, contractor_id)].add(kind)
    out: dict[tuple[int, int], tuple[int, float]] = {}
    for pair, seen in kinds.items():
        if seen & POSITIVE_KINDS:
            out[pair] = (1, 1.0)
        elif seen & WEAK_POSITIVE_KINDS:
            out[pair] = (1, WEAK_POSITIVE_WEIGHT)
        elif seen & NEGATIVE_KINDS:
            out[pair] = (0, 1.0)
    return out


def training_set(*, since: dt.datetime | None = None, until: dt.datetime | None = None) -> TrainingSet:
    """Features of every labelled pair as of the day its task was posted
    (one ``pairs_matrix`` call per posting day: a fixed number of queries each)."""
    from accounts.models import User
    from tasks.models import Task

    labels = labelled_pairs(since=since, until=until)
    task_ids = {task_id for task_id, _c in labels}
    tasks = {t.pk: t for t in Task.objects.filter(pk__in=task_ids)}
    users = {u.pk: u for u in User.objects.filter(pk__in={c for _t, c in labels})}
    by_day: dict[dt.date, list[tuple[int, int]]] = defaultdict(list)
    for task_id, contractor_id in labels:
        task = tasks.get(task_id)
        if task is None or contractor_id not in users:
            continue
        posted = task.published_at or task.created_at
        by_day[posted.astimezone(dt.UTC).date()].append((task_id, contractor_id))
    blocks, ys, ws, tids, all_pairs = [], [], [], [], []
    for day in sorted(by_day):
        day_pairs = sorted(by_day[day])
        cutoff = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
        X, pairs = pairs_matrix([(tasks[t], users[c]) for t, c in day_pairs], now=cutoff)
        blocks.append(X)
        for pair in pairs:
            label, weight = labels[pair]
            ys.append(label)
            ws.append(weight)
            tids.append(pair[0])
        all_pairs.extend(pairs)
    X = np.vstack(blocks) if blocks else np.zeros((0, len(FEATURE_NAMES)))
    posted_times = [tasks[t].published_at or tasks[t].created_at for t in task_ids if t in tasks]
    return TrainingSet(
        X=X,
        y=np.array(ys, dtype=int),
        weight=np.array(ws, dtype=float),
        task_ids=np.array(tids, dtype=np.int64),
        pairs=all_pairs,
        trained_from=min(posted_times) if posted_times else None,
        trained_to=max(posted_times) if posted_times else None,
    )


def new_estimator():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.08, max_leaf_nodes=15, min_samples_leaf=20, l2_regularization=1.0, random_state=0
    )


def _column_indexes(names: list[str]) -> list[int]:
    return [INDEX[name] for name in names]


def _holdout_figures(data: TrainingSet, columns: list[int]) -> dict[str, Any]:
    """Fit on the earlier tasks, compare with the rules on the latest HOLDOUT_SHARE:
    ROC AUC and top-1 hit rate (the best positive ranked first among a task's pairs)."""
    from sklearn.metrics import roc_auc_score

    order = list(dict.fromkeys(data.task_ids.tolist()))  # days were processed in order
    cut = int(len(order) * (1 - HOLDOUT_SHARE))
    test_tasks = set(order[cut:])
    test = np.isin(data.task_ids, list(test_tasks))
    train = ~test
    if test.sum() == 0 or len(set(data.y[train])) < 2 or len(set(data.y[test])) < 2:
        return {}
    estimator = new_estimator()
    with _one_thread():
        estimator.fit(data.X[train][:, columns], data.y[train], sample_weight=data.weight[train])
        model = estimator.predict_proba(data.X[test][:, columns])[:, 1]
    rules = rule_scores(data.X[test])
    y = data.y[test]
    tids = data.task_ids[test]

    def top1(scores: np.ndarray) -> float:
        hits = total = 0
        for task_id in set(tids.tolist()):
            rows = np.nonzero(tids == task_id)[0]
            if y[rows].max() == 0 or len(rows) < 2:
                continue
            total += 1
            hits += int(y[rows[np.argmax(scores[rows])]] == 1)
        return round(hits / total, 4) if total else 0.0

    return {
        "rows": int(test.sum()),
        "model_auc": round(float(roc_auc_score(y, model)), 4),
        "rules_auc": round(float(roc_auc_score(y, rules)), 4),
        "model_top1": top1(model),
        "rules_top1": top1(rules),
    }


def train(
    *,
    until: dt.datetime | None = None,
    since: dt.datetime | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    activate: bool = True,
) -> RankingModel | None:
    """Fit a model on the outcomes logged in [since, until); store it as a new
    RankingModel version and (``activate``) make it the one served. None when
    there are fewer than ``min_rows`` labelled pairs or only one label."""
    import joblib

    data = training_set(since=since, until=until)
    if len(data.y) < min_rows or len(set(data.y.tolist())) < 2:
        logger.info("Matching: %d labelled pairs (%s); the rules keep serving", len(data.y), sorted(set(data.y.tolist())))
        return None
    columns = _column_indexes(MODEL_FEATURES)
    evaluation = {"training_holdout": _holdout_figures(data, columns)}
    estimator = new_estimator()
    with _one_thread():
        estimator.fit(data.X[:, columns], data.y, sample_weight=data.weight)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer, compress=3)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                list(RankingModel.objects.select_for_update(no_key=True).filter(is_active=True))
                number = RankingModel.objects.count() + 1
                if activate:
                    RankingModel.objects.filter(is_active=True).update(is_active=False)
                record = RankingModel.objects.create(
                    version=f"v{number}",
                    algorithm=type(estimator).__name__,
                    feature_names=list(MODEL_FEATURES),
                    trained_from=data.trained_from,
                    trained_to=data.trained_to or until or timezone.now(),
                    training_rows=len(data.y),
                    evaluation=evaluation,
                    blob=buffer.getvalue(),
                    is_active=activate,
                )
            break
        except IntegrityError:  # another training run took the number or the active slot
            continue
    else:
        raise RuntimeError("Could not store the ranking model after 3 attempts")
    reset_cache()
    logger.info("Matching: trained %s on %d pairs: %s", record.version, record.training_rows, evaluation)
    return record
