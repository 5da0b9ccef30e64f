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
    # The model's own labels; only the name used is translated.
    from accounts.models import AvailabilitySlot

    return str(AvailabilitySlot.Weekday(index).label)


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
        if hasattr(self.estimator, "score_rows"):  # ChoiceModel: numpy only, no thread pool
            return self.estimator.score_rows(X[:, self.columns])
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
    from .features import reset_caches

    with _cache_lock:
        _cache.update(checked_at=None, version=None, ranker=RULES)
    reset_caches()


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


# --- the choice model ------------------------------------------------------------------------

# How each feature enters the choice model's utility: (name, transform). The
# transforms put every term on a comparable, bounded scale (logs of ratios and
# counts, capped distances), so one L2 penalty suits them all.
def _log_ratio(v, lo=-1.5, hi=1.0):
    return np.clip(np.log(np.maximum(v, 1e-3)), lo, hi)


def _capped(cap):
    return lambda v: np.minimum(v, cap)


BASIS: list[tuple[str, str, Any]] = [
    ("distance_10km", "distance_km", lambda v: np.minimum(v, 100.0) / 10.0),
    ("distance_ratio", "distance_ratio", _capped(3.0)),
    ("distance_ratio_1_5", "distance_ratio", lambda v: np.minimum(v, 3.0) ** 1.5),
    ("inside_radius", "inside_radius", None),
    ("category_match", "category_match", None),
    ("text_similarity", "text_similarity", None),
    ("schedule_fit", "schedule_fit", None),
    ("log_pay", "price_rate_ratio", _log_ratio),
    ("log_pay_sq", "price_rate_ratio", lambda v: _log_ratio(v) ** 2),
    ("log_past_price", "price_past_ratio", _log_ratio),
    ("rating", "rating", lambda v: v - 4.0),
    ("log_rating_count", "rating_count", np.log1p),
    ("trust", "trust", None),
    ("completion_rate", "completion_rate", None),
    ("response_speed", "response_speed", None),
    ("cancel_rate", "cancel_rate", None),
    ("log_jobs_done", "jobs_done", lambda v: np.log1p(np.maximum(v, 0))),
    ("log_customer_jobs", "customer_jobs", lambda v: np.log1p(np.maximum(v, 0))),
    ("log_similar_jobs", "similar_jobs", lambda v: np.log1p(np.maximum(v, 0))),
    ("log_category_offers", "category_offers", np.log1p),
    ("log_category_shown", "category_shown", np.log1p),
    ("log_category_hires", "category_hires", np.log1p),
    ("category_offer_rate", "category_offer_rate", None),
    ("shown_offer_rate", "shown_offer_rate", None),
    ("customer_preference", "customer_preference", None),
    ("category_preference", "category_preference", None),
    ("customer_good_reviews", "customer_good_reviews", _capped(3.0)),
    ("customer_bad_reviews", "customer_bad_reviews", _capped(3.0)),
    ("customer_passed_over", "customer_passed_over", _capped(3.0)),
    ("week_load", "week_load", _capped(6.0)),
    ("invited", "invited", None),
]
# Products of terms: confidence-weighted rating (few reviews say little).
INTERACTIONS: list[tuple[str, str, str]] = [
    ("rating_x_count", "rating", "log_rating_count"),
    ("pay_x_offer_rate", "log_pay", "shown_offer_rate"),
    ("distance_x_offer_rate", "distance_ratio", "shown_offer_rate"),
]


def basis(X: np.ndarray, feature_names: list[str]) -> np.ndarray:
    """The choice model's terms (BASIS, INTERACTIONS) from feature columns named ``feature_names``."""
    where = {name: i for i, name in enumerate(feature_names)}
    cols: dict[str, np.ndarray] = {}
    for term, feature, fn in BASIS:
        v = X[:, where[feature]].astype(float)
        cols[term] = fn(v) if fn is not None else v
    for term, a, b in INTERACTIONS:
        cols[term] = cols[a] * cols[b]
    return np.column_stack([cols[t] for t, _f, _fn in BASIS] + [cols[t] for t, _a, _b in INTERACTIONS])


BASIS_NAMES = [t for t, _f, _fn in BASIS] + [t for t, _a, _b in INTERACTIONS]
OUT_OF_POOL_PENALTY = 10.0  # utility lost (more than the learned terms span) for another trade, and for outside the radius (see ChoiceModel.score_rows)


class ChoiceModel:
    """A conditional logit (McFadden): among a task's candidates, the one hired
    is drawn with probability softmax(utility), utility = w . basis(features).
    Fitted by L-BFGS on the log-likelihood of who was hired over everyone who
    was logged for the same task (shown, viewed, offered), with an L2 penalty.
    Learns how candidates differ, not how tasks do: it answers "whom would
    this customer pick", the evaluation's question. Scoring is one dot
    product, cheap enough for thousands of rows."""

    def __init__(self, feature_names: list[str], l2: float = 1.0):
        self.feature_names = list(feature_names)
        self.l2 = l2
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None

    def _z(self, X: np.ndarray) -> np.ndarray:
        return (basis(X, self.feature_names) - self.mean) / self.scale

    def fit(self, X: np.ndarray, groups: np.ndarray, chosen: np.ndarray) -> ChoiceModel:
        from scipy.optimize import minimize

        B = basis(X, self.feature_names)
        self.mean = B.mean(axis=0)
        self.scale = np.where(B.std(axis=0) > 1e-9, B.std(axis=0), 1.0)
        Z = (B - self.mean) / self.scale
        order = np.argsort(groups, kind="stable")
        Z, groups, chosen = Z[order], groups[order], chosen[order].astype(float)
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        sizes = np.diff(np.r_[starts, len(groups)])
        member = np.repeat(np.arange(len(starts)), sizes)
        n_groups = len(starts)

        def loss(w):
            u = Z @ w
            top = np.maximum.reduceat(u, starts)
            e = np.exp(u - top[member])
            total = np.add.reduceat(e, starts)
            p = e / total[member]
            nll = -(np.add.reduceat(chosen * u, starts) - top - np.log(total)).sum() / n_groups
            grad = Z.T @ (p - chosen) / n_groups
            return nll + 0.5 * self.l2 * w @ w / n_groups, grad + self.l2 * w / n_groups

        result = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.coef = result.x
        return self

    def score_rows(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        if len(X) == 0:
            return np.zeros(0)
        where = {name: i for i, name in enumerate(self.feature_names)}
        # The log holds only candidates in the task's trade and inside their
        # radius, so the model cannot learn what being outside costs: fixed
        # penalties (a search may rank other trades or farther tasks).
        penalty = OUT_OF_POOL_PENALTY * (
            (1.0 - X[:, where["category_match"]]) + (1.0 - X[:, where["inside_radius"]])
        )
        return self._z(X) @ self.coef - penalty

    def terms(self) -> dict[str, float]:
        """Each term's weight (per standard deviation), for the record."""
        return {name: round(float(w), 4) for name, w in zip(BASIS_NAMES, self.coef, strict=True)}


def choice_groups(data: TrainingSet) -> np.ndarray:
    """Rows of tasks where someone was hired (a full-weight positive) and
    there was more than one candidate: the choice model's training rows."""
    hired = data.task_ids[(data.y == 1) & (data.weight >= 1.0)]
    keep = np.isin(data.task_ids, np.unique(hired))
    ids, counts = np.unique(data.task_ids[keep], return_counts=True)
    return keep & np.isin(data.task_ids, ids[counts >= 2])


def new_estimator(feature_names: list[str] | None = None) -> ChoiceModel:
    return ChoiceModel(feature_names or MODEL_FEATURES)


def _fit(data: TrainingSet, rows: np.ndarray, columns: list[int]) -> ChoiceModel:
    chosen = (data.y[rows] == 1) & (data.weight[rows] >= 1.0)
    return new_estimator([FEATURE_NAMES[i] for i in columns]).fit(
        data.X[rows][:, columns], data.task_ids[rows], chosen
    )


def _column_indexes(names: list[str]) -> list[int]:
    return [INDEX[name] for name in names]


def group_figures(scores: np.ndarray, chosen: np.ndarray, task_ids: np.ndarray) -> dict[str, float]:
    """Top-1 hit rate and NDCG@10 of the chosen row per task (tasks with one chosen and 2+ rows)."""
    hits = ndcg = total = 0.0
    order = np.argsort(task_ids, kind="stable")
    ids, starts = np.unique(task_ids[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    for a, b in zip(starts, ends, strict=True):
        rows = order[a:b]
        if len(rows) < 2 or chosen[rows].sum() != 1:
            continue
        total += 1
        s = scores[rows]
        target = s[np.argmax(chosen[rows])]
        # Pessimistic on ties: a tie with the hire counts against the method.
        rank = 1 + int((s > target).sum()) + int((s == target).sum()) - 1
        hits += rank == 1
        ndcg += 1.0 / np.log2(1 + rank) if rank <= 10 else 0.0
    if not total:
        return {"tasks": 0, "top1": 0.0, "ndcg10": 0.0}
    return {"tasks": int(total), "top1": round(float(hits / total), 4), "ndcg10": round(float(ndcg / total), 4)}


def _holdout_figures(data: TrainingSet, columns: list[int]) -> dict[str, Any]:
    """Fit on the earlier tasks, compare with the rules on the latest
    HOLDOUT_SHARE: top-1 hit rate and NDCG@10 of the hired contractor among
    each hired task's logged candidates. ``beats_rules``: NDCG@10 higher and
    top-1 no lower; only such a model is activated."""
    usable = choice_groups(data)
    order = list(dict.fromkeys(data.task_ids[usable].tolist()))  # days were processed in order
    cut = int(len(order) * (1 - HOLDOUT_SHARE))
    test = usable & np.isin(data.task_ids, order[cut:])
    train = usable & ~test
    if not test.any() or not train.any():
        return {}
    estimator = _fit(data, train, columns)
    chosen = (data.y[test] == 1) & (data.weight[test] >= 1.0)
    model = group_figures(estimator.score_rows(data.X[test][:, columns]), chosen, data.task_ids[test])
    rules = group_figures(rule_scores(data.X[test]), chosen, data.task_ids[test])
    return {
        "rows": int(test.sum()),
        "tasks": model["tasks"],
        "model_top1": model["top1"],
        "rules_top1": rules["top1"],
        "model_ndcg10": model["ndcg10"],
        "rules_ndcg10": rules["ndcg10"],
        "beats_rules": bool(model["ndcg10"] > rules["ndcg10"] and model["top1"] >= rules["top1"]),
    }


def train(
    *,
    until: dt.datetime | None = None,
    since: dt.datetime | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    activate: bool = True,
    force: bool = False,
) -> RankingModel | None:
    """Fit a model on the outcomes logged in [since, until) and store it as a
    new RankingModel version. ``activate``: make it the one served if it beats
    the rules on its own holdout (``evaluation["training_holdout"]
    ["beats_rules"]``), or whatever the holdout says with ``force``; a model
    that does not is stored inactive and the current one (or the rules) keeps
    serving. None when there are fewer than ``min_rows`` labelled pairs of
    hired tasks (the rows the choice model learns from)."""
    import joblib

    data = training_set(since=since, until=until)
    rows = choice_groups(data)
    if int(rows.sum()) < min_rows:
        logger.info("Matching: %d usable labelled pairs of %d; the rules keep serving", int(rows.sum()), len(data.y))
        return None
    columns = _column_indexes(MODEL_FEATURES)
    holdout = _holdout_figures(data, columns)
    evaluation = {"training_holdout": holdout}
    activate = bool(activate and (force or holdout.get("beats_rules")))
    estimator = _fit(data, rows, columns)
    evaluation["terms"] = estimator.terms()
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
                    training_rows=int(rows.sum()),
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
