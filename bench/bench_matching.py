"""Best match at scale, on PostgreSQL.

Fills a SEPARATE database (default: the server of DATABASE_URL, database
"bench_matching"; created and migrated here; never a test database) with one
metro (San Francisco) holding:

- 10,000 open tasks within 30 km of one contractor (service radius 40 km),
  in 5 trades, with titles and descriptions;
- 5,000 onboarded plumbers within 30 km of one open plumbing task (radius
  40 km each), with bios, weekly hours (Mon-Fri), a trust score, two
  completed jobs, two offers and a few logged outcomes each.

Then measures, in the same run, p50/p95/p99 over --runs calls (after two
warm-up calls):

  (a) best_tasks_for(contractor, limit=20): the CANDIDATE_CAP (400) nearest in
      their trades scored, 20 loaded
  (b) baseline: open_tasks_near(...)[:20], nearest first (what Find work did)
  (c) best_contractors_for(task, limit=20): the CANDIDATE_CAP nearest candidates scored
  (d) baseline: the same candidates' 20 nearest (contractor_candidates), loaded

each with the rule-based fallback and with a trained model (a ChoiceModel
fitted on synthetic choices: scoring cost does not depend on what it
learned), plus the feature matrix alone. Repeated calls for the same
contractor or task: the per-process caches (text vectors, platform mean) are
warm after the two warm-up calls, as in a serving process.

    .venv/bin/python bench/bench_matching.py              # fill (once) and measure
    .venv/bin/python bench/bench_matching.py --refill     # start over
    .venv/bin/python bench/bench_matching.py --runs 50
    .venv/bin/python bench/bench_matching.py --as-served  # then again with the server's runtime

--as-served measures everything a second time in the same run after importing
marketplace.asgi, which gives this process what every uvicorn worker has: its
GC thresholds, GIL switch interval and gc.freeze() of what is loaded. Best
match is served from that process, so that table is the one the goal reads;
the first (CPython's defaults) includes full collections a server would not
make as often.

Figures go to docs/PERFORMANCE.md ("Matching").
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CENTER = (37.7749, -122.4194)
TASKS = 10_000
CONTRACTORS = 5_000
TRADES = ["plumbing", "electrical", "carpentry", "painting", "cleaning"]
WORDS = {
    "plumbing": "leak tap sink drain toilet pipe water heater faucet shower clog",
    "electrical": "outlet switch light wiring breaker fan fixture panel circuit socket",
    "carpentry": "shelf door cabinet deck frame trim wood fence stairs table",
    "painting": "wall ceiling paint primer room trim exterior fence colour coat",
    "cleaning": "deep clean kitchen bathroom carpet window oven move out dust",
}


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
    }


def database_url(args) -> str:
    if args.db_url:
        url = args.db_url
    else:
        base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
        url = urlunsplit((base.scheme, base.netloc, "/bench_matching", "", ""))
    name = urlsplit(url).path.lstrip("/")
    if not name or name == "test" or name.startswith("test_"):
        sys.exit(f"Refusing to fill database {name!r}: the benchmark needs a database of its own.")
    return url


def ensure_database(url: str, refill: bool) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and refill:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"Created database {name}.")


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DATABASE_POOL"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def near(rng: random.Random, km: float) -> tuple[float, float]:
    """A uniformly random point within ``km`` of the centre."""
    r = km * math.sqrt(rng.random())
    angle = rng.random() * 2 * math.pi
    lat = CENTER[0] + r * math.cos(angle) / 111.2
    lon = CENTER[1] + r * math.sin(angle) / (111.2 * math.cos(math.radians(CENTER[0])))
    return lat, lon


def fill(rng: random.Random) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import AvailabilitySlot, ContractorProfile, User
    from matching.models import MatchEvent
    from reputation.models import TrustScore
    from tasks.models import Category, Offer, Task, approximate

    if Task.objects.filter(title="BENCH subject task").exists():
        print("Reusing the rows already there (--refill to start over).")
        return
    started = time.perf_counter()
    now = timezone.now()
    password = make_password(None)
    with transaction.atomic():
        cats = {slug: Category.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0] for slug in TRADES}
        customers = User.objects.bulk_create(
            User(email=f"bench-customer-{i}@example.com", full_name=f"Customer {i}", password=password, email_verified_at=now)
            for i in range(300)
        )
        subject = User.objects.create(
            email="bench-subject@example.com", full_name="Subject Pro", is_contractor=True, password=password,
            email_verified_at=now,
        )
        users = User.objects.bulk_create(
            User(
                email=f"bench-pro-{i}@example.com", full_name=f"Pro {i}", is_contractor=True, is_customer=False,
                password=password, email_verified_at=now, date_joined=now - dt.timedelta(days=rng.randint(10, 900)),
            )
            for i in range(CONTRACTORS)
        )
        profiles = []
        for i, user in enumerate([subject, *users]):
            lat, lon = CENTER if user is subject else near(rng, 30)
            words = WORDS["plumbing"].split()
            profiles.append(
                ContractorProfile(
                    user=user, slug=f"bench-pro-{i}", bio="Plumber. " + " ".join(rng.sample(words, 5)),
                    hourly_rate_cents=rng.randint(40, 150) * 100, latitude=lat, longitude=lon,
                    service_radius_km=40, onboarded_at=now, city="San Francisco", state="CA",
                )
            )
        profiles = ContractorProfile.objects.bulk_create(profiles)
        through = ContractorProfile.trades.through
        rows = [through(contractorprofile_id=p.pk, category_id=cats["plumbing"].pk) for p in profiles]
        rows += [through(contractorprofile_id=profiles[0].pk, category_id=cats[slug].pk) for slug in TRADES[1:]]
        through.objects.bulk_create(rows)
        AvailabilitySlot.objects.bulk_create(
            AvailabilitySlot(profile=p, weekday=day, start_time=dt.time(8), end_time=dt.time(17))
            for p in profiles
            for day in range(5)
        )
        TrustScore.objects.bulk_create(TrustScore(user=u, score=rng.randint(30, 95)) for u in users)

        def task(category: str, lat: float, lon: float, **extra) -> Task:
            words = WORDS[category].split()
            approx = approximate(lat, lon)
            fields = {
                "customer": rng.choice(customers), "category": cats[category],
                "title": " ".join(rng.sample(words, 3)).capitalize(),
                "description": " ".join(rng.choices(words, k=30)),
                "status": Task.Status.OPEN, "postal_code": "94110", "city": "San Francisco", "state": "CA",
                "latitude": lat, "longitude": lon, "approx_latitude": approx[0], "approx_longitude": approx[1],
                "budget_cents": rng.randint(50, 800) * 100, "schedule_type": Task.ScheduleType.FLEXIBLE,
                "deadline": now + dt.timedelta(days=rng.randint(1, 30)), "published_at": now - dt.timedelta(hours=rng.randint(1, 200)),
            }
            fields.update(extra)
            return Task(**fields)

        open_tasks = [task(rng.choice(TRADES), *near(rng, 30)) for _ in range(TASKS - 1)]
        open_tasks.append(task("plumbing", *CENTER, title="BENCH subject task"))
        Task.objects.bulk_create(open_tasks, batch_size=2000)

        # History: two completed jobs, two offers, a few outcomes per pro.
        history = []
        for user in users:
            for _ in range(2):
                done_at = now - dt.timedelta(days=rng.randint(5, 300))
                history.append(
                    task(
                        "plumbing", *near(rng, 30), contractor=user, status=Task.Status.COMPLETED,
                        agreed_price_cents=rng.randint(80, 400) * 100, assigned_at=done_at - dt.timedelta(days=2),
                        completed_at=done_at, published_at=done_at - dt.timedelta(days=3),
                        deadline=done_at + dt.timedelta(days=1),
                    )
                )
        history = Task.objects.bulk_create(history, batch_size=2000)
        Offer.objects.bulk_create(
            (
                Offer(task=t, contractor=t.contractor, price_cents=t.agreed_price_cents, status=Offer.Status.ACCEPTED)
                for t in history
            ),
            batch_size=2000,
        )
        events = []
        for t in history:
            events.append(MatchEvent(task=t, contractor=t.contractor, kind=MatchEvent.Kind.ACCEPTED))
            events.append(MatchEvent(task=t, contractor=rng.choice(users), kind=MatchEvent.Kind.SKIPPED))
        MatchEvent.objects.bulk_create(events, batch_size=5000)
    with __import__("django.db", fromlist=["connection"]).connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"Filled in {time.perf_counter() - started:.0f} s.")


def install_model(active: bool) -> None:
    """A ChoiceModel fitted on synthetic choices, stored and served like a trained one
    (its scoring cost does not depend on what it learned)."""
    import io

    import joblib
    import numpy as np

    from matching import ranking
    from matching.features import MODEL_FEATURES
    from matching.models import RankingModel

    RankingModel.objects.filter(is_active=True).update(is_active=False)
    if active:
        rng = np.random.default_rng(0)
        X = rng.random((4000, len(MODEL_FEATURES)))
        groups = np.repeat(np.arange(1000), 4)
        chosen = np.zeros(len(X), dtype=bool)
        chosen[np.arange(1000) * 4 + np.argmax(X[:, 0].reshape(-1, 4), axis=1)] = True
        estimator = ranking.new_estimator().fit(X, groups, chosen)
        blob = io.BytesIO()
        joblib.dump(estimator, blob)
        RankingModel.objects.update_or_create(
            version="bench",
            defaults={"algorithm": "ChoiceModel", "feature_names": MODEL_FEATURES, "blob": blob.getvalue(),
                      "training_rows": len(X), "is_active": True},
        )
    ranking.reset_cache()


def timed(fn, runs: int) -> list[float]:
    fn()
    fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--refill", action="store_true")
    parser.add_argument(
        "--as-served",
        action="store_true",
        help="then measure again with the uvicorn process's runtime settings (imports marketplace.asgi)",
    )
    args = parser.parse_args()
    url = database_url(args)
    ensure_database(url, args.refill)
    setup_django(url)

    from accounts.models import User
    from matching import features, ranking, selectors
    from tasks import selectors as task_selectors

    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    from tasks.models import Task

    fill(random.Random(42))
    subject = User.objects.get(email="bench-subject@example.com")
    profile = subject.contractor_profile
    task = Task.objects.get(title="BENCH subject task")
    in_range = task_selectors.open_tasks_near(
        latitude=profile.latitude, longitude=profile.longitude, radius_km=profile.service_radius_km,
        exclude_customer=subject,
    ).count()
    from accounts.models import ContractorProfile

    pros = ContractorProfile.objects.filter(trades__slug="plumbing", onboarded_at__isnull=False).exclude(user=subject).count()
    print(
        f"{in_range} open tasks in the contractor's range; {pros} plumbers within 30 km of the task"
        f" ({len(selectors.contractor_candidates(task))} nearest scored)."
    )

    def nearest_tasks():
        qs = task_selectors.open_tasks_near(
            latitude=profile.latitude, longitude=profile.longitude, radius_km=profile.service_radius_km,
            sort="distance", exclude_customer=subject,
        )
        return list(qs[:20])

    def nearest_pros():
        ids = selectors.contractor_candidates(task)[:20]
        return list(User.objects.filter(pk__in=ids))

    candidates = [
        selectors.TaskRow(*values)
        for values in task_selectors.open_tasks_near(
            latitude=profile.latitude, longitude=profile.longitude, radius_km=profile.service_radius_km,
            sort="distance", exclude_customer=subject,
        ).prefetch_related(None).values_list(*selectors.TASK_FIELDS)[: selectors.CANDIDATE_CAP]
    ]
    pro_ids = selectors.contractor_candidates(task)

    def measure() -> dict:
        results = {}
        results["baseline: nearest 20 tasks (open_tasks_near)"] = summary(timed(nearest_tasks, args.runs))
        results["baseline: nearest 20 pros (candidates, loaded)"] = summary(timed(nearest_pros, args.runs))
        cap = f"{selectors.CANDIDATE_CAP:,}"
        results[f"features: {cap} tasks x 1 contractor"] = summary(timed(lambda: features.pair_matrix(candidates, subject), args.runs))
        results[f"features: 1 task x {cap} contractors"] = summary(timed(lambda: features.pair_matrix([task], pro_ids), args.runs))
        for label, active in (("rules", False), ("model", True)):
            install_model(active)
            assert ranking.get_ranker().is_model is active
            results[f"best_tasks_for, {label}"] = summary(timed(lambda: selectors.best_tasks_for(subject, limit=20), args.runs))
            results[f"best_contractors_for, {label}"] = summary(
                timed(lambda: selectors.best_contractors_for(task, limit=20), args.runs)
            )
        install_model(False)
        return results

    tables = [("this process's defaults", measure())]
    if args.as_served:
        # The uvicorn process's runtime, as marketplace.asgi sets it when it is
        # imported: GC thresholds (50000, 20, 100), the 1 ms GIL switch
        # interval, the URLconf and catalogs loaded, and gc.freeze() of what is
        # loaded. The bench's fill is collected first so that it is not frozen.
        import gc

        gc.collect()
        import marketplace.asgi  # noqa: F401

        tables.append(("as served: marketplace.asgi's GC thresholds, GIL interval and gc.freeze", measure()))

    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    for title, results in tables:
        print(f"\n{title}:\n\n| measured ({args.runs} runs each, ms) | p50 | p95 | p99 | mean |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, s in results.items():
            print(f"| {name} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['mean']:.1f} |")


if __name__ == "__main__":
    main()
