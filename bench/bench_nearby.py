"""Find work at scale: open tasks near a contractor, on PostgreSQL.

Fills a SEPARATE database (default: the server of DATABASE_URL, database
"bench"; created if missing; never a test database) with N tasks, 20% of them
open, clustered around real ZIP centroids of 20 US metro areas, then measures
in the same run, for each size:

  (a) orm      tasks.selectors.open_tasks_near(..)[:20], iterated: 3 queries
               (tasks, categories, photos): the queryset, compiled by the ORM
  (a2) page    what pages and the API read: the first page of 20 through
               core.pagination.CappedPaginator (the capped count and the rows;
               on PostgreSQL through tasks.nearby_sql since issue 3's fourth
               pass, the ORM before), from selectors.open_task_pages_near and
               page(1) before the count, as the API (DRF) asks (follow-up h3c;
               before it, open_tasks_near and the count first)
  (b) sql      the bare SQL of the same task query, through psycopg
  (c) scan     the same query with index scans turned off: exact
               earth_distance for every open task, sorted (the baseline)
  (d) search   (a) with q="leak" (full-text, ranked; the nearest 200 matches
               ranked, off the two-column GiST index), beside (d0) the bare
               SQL of the query it replaced (to_tsvector on every task in the
               box, every match ranked)
  (f) sorts    (a) with sort=newest and sort=budget (the nearest 200 matches
               ordered), beside (f0) the bare SQL of the unbounded sort (every
               open task in the radius read and sorted)
  (e) api      GET /api/v1/tasks/nearby?lat=..&lon=..&radius_km=25&sort=distance through a
               real uvicorn server (2 workers) on a free port, token-authenticated
               as an onboarded contractor: once paced at --rate req/s (latency
               from the scheduled send time, so queueing counts), once
               closed-loop with --clients concurrent clients (throughput)

p50/p95/p99 over --queries random contractor positions (gaussian around the
metros), radius 25 km, 20 results. Peak memory: this process and the server.

    .venv/bin/python bench/bench_nearby.py                  # 100,000 then 1,000,000 tasks
    .venv/bin/python bench/bench_nearby.py --tasks 20000    # a quick run
    make bench                                              # every bench/bench_*.py

Re-running reuses the rows already there when the count matches (--refill to
start over); going from 100,000 to 1,000,000 appends 900,000. Figures go to
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import math
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (name, latitude, longitude, weight ~ metro population in millions)
METROS = [
    ("New York", 40.7128, -74.0060, 19.5),
    ("Los Angeles", 34.0522, -118.2437, 12.8),
    ("Chicago", 41.8781, -87.6298, 9.4),
    ("Dallas", 32.7767, -96.7970, 7.9),
    ("Houston", 29.7604, -95.3698, 7.3),
    ("Washington", 38.9072, -77.0369, 6.4),
    ("Philadelphia", 39.9526, -75.1652, 6.2),
    ("Miami", 25.7617, -80.1918, 6.1),
    ("Atlanta", 33.7490, -84.3880, 6.2),
    ("Boston", 42.3601, -71.0589, 4.9),
    ("Phoenix", 33.4484, -112.0740, 5.0),
    ("San Francisco", 37.7749, -122.4194, 4.7),
    ("Riverside", 33.9806, -117.3755, 4.6),
    ("Detroit", 42.3314, -83.0458, 4.3),
    ("Seattle", 47.6062, -122.3321, 4.0),
    ("Minneapolis", 44.9778, -93.2650, 3.7),
    ("San Diego", 32.7157, -117.1611, 3.3),
    ("Tampa", 27.9506, -82.4572, 3.2),
    ("Denver", 39.7392, -104.9903, 3.0),
    ("St. Louis", 38.6270, -90.1994, 2.8),
]
METRO_RADIUS_KM = 50  # ZIPs within this distance of the centre belong to the metro
METRO_SIGMA_KM = 15  # how tasks thin out away from downtown
ZIP_JITTER_KM = 1.2  # a street address around its ZIP centroid
CONTRACTOR_SIGMA_KM = 12

TRADES = {
    "plumbing": (
        "Plumbing",
        ["Fix leaking kitchen tap", "Unclog bathroom sink", "Replace toilet flapper", "Install water heater",
         "Repair burst pipe under sink", "Fix running toilet", "Replace shower valve"],
    ),
    "electrical": (
        "Electrical",
        ["Install ceiling fan", "Replace light switches", "Add outdoor outlet", "Fix flickering lights",
         "Install EV charger", "Replace breaker panel fuse"],
    ),
    "carpentry": (
        "Carpentry",
        ["Build garden shed shelves", "Repair squeaky stairs", "Hang interior door", "Fix broken fence gate",
         "Install crown molding"],
    ),
    "painting": (
        "Painting",
        ["Paint living room walls", "Repaint front door", "Stain wooden deck", "Paint kitchen cabinets"],
    ),
    "assembly": (
        "Furniture assembly",
        ["Assemble IKEA wardrobe", "Put together bed frame", "Assemble office desk", "Build bookshelf"],
    ),
    "cleaning": (
        "Cleaning",
        ["Deep clean two-bedroom apartment", "Move-out cleaning", "Clean gutters", "Pressure wash driveway"],
    ),
    "moving": (
        "Moving help",
        ["Help move a couch upstairs", "Load a moving truck", "Move piano across town"],
    ),
    "gardening": (
        "Gardening",
        ["Mow the lawn and edge", "Trim hedges", "Plant vegetable beds", "Remove tree stump"],
    ),
    "appliances": (
        "Appliance repair",
        ["Fix dishwasher not draining", "Repair washing machine leak", "Replace fridge water filter line"],
    ),
    "handyman": (
        "Handyman",
        ["Mount TV on wall", "Patch drywall holes", "Caulk bathtub", "Replace door lock", "Fix leaking roof gutter"],
    ),
}
DESCRIPTIONS = [
    "Needs doing this week if possible. Parking on the street.",
    "Tools on site, bring parts. Ring the bell at the side door.",
    "It started last month and is getting worse. Photos attached.",
    "Small job, should take an hour or two. Dog is friendly.",
    "Second floor, no elevator. Happy to pay for materials.",
    "Please send a quote with your earliest date. Thanks!",
]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "p50": percentile(samples_ms, 50),
        "p95": percentile(samples_ms, 95),
        "p99": percentile(samples_ms, 99),
        "mean": statistics.fmean(samples_ms),
    }


def gaussian_km(rng: random.Random, lat: float, lon: float, sigma_km: float) -> tuple[float, float]:
    dlat = rng.gauss(0, sigma_km) / 111.2
    dlon = rng.gauss(0, sigma_km) / (111.2 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def database_url(args) -> str:
    if args.db_url:
        url = args.db_url
    else:
        base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
        url = urlunsplit((base.scheme, base.netloc, "/bench", "", ""))
    name = urlsplit(url).path.lstrip("/")
    if not name or name == "test" or name.startswith("test_") or name == os.environ.get("BENCH_FORBIDDEN_DB"):
        sys.exit(f"Refusing to fill database {name!r}: the benchmark needs a database of its own.")
    return url


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"Created database {name}.")


# The environment this script was started with. The bench process itself runs
# on marketplace.settings_test, which sets test-only variables in os.environ
# (DATABASE_POOL=false among them); the uvicorn it starts must not inherit them
# and run the API unlike a deployed server (without the pool, each request's
# thread opened a connection of its own and the closed-loop runs ran PostgreSQL
# out of connections: "too many clients", HTTP 500).
LAUNCH_ENV = dict(os.environ)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- Data ------------------------------------------------------------------------


def metro_zips() -> list[tuple[list[tuple[str, str, str, float, float]], list[float]]]:
    """For each metro: its real ZIP centroids within METRO_RADIUS_KM and a
    weight for each (denser downtown)."""
    import zipcodes

    from core.geo import distance_km

    everything = [z for z in zipcodes.list_all() if z.get("lat") and z.get("long") and z["zip_code_type"] == "STANDARD"]
    out = []
    for _name, mlat, mlon, _w in METROS:
        zips, weights = [], []
        for z in everything:
            lat, lon = float(z["lat"]), float(z["long"])
            if abs(lat - mlat) > 1 or abs(lon - mlon) > 1.3:
                continue
            d = distance_km(mlat, mlon, lat, lon)
            if d <= METRO_RADIUS_KM:
                zips.append((z["zip_code"], z["city"].title()[:80], z["state"], lat, lon))
                weights.append(math.exp(-(d**2) / (2 * METRO_SIGMA_KM**2)))
        out.append((zips, weights))
    return out


def ensure_people_and_trades(rng: random.Random):
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from accounts.models import ContractorProfile, User
    from tasks.models import Category

    categories = []
    for order, (slug, (name, _titles)) in enumerate(TRADES.items()):
        category, _ = Category.objects.get_or_create(slug=slug, defaults={"name": name, "sort_order": order})
        categories.append(category)
    now = timezone.now()
    if User.objects.filter(email__startswith="bench-customer-").count() < 2000:
        User.objects.bulk_create(
            [User(email=f"bench-customer-{i}@example.com", full_name=f"Customer {i}", email_verified_at=now) for i in range(2000)],
            ignore_conflicts=True,
        )
        User.objects.bulk_create(
            [
                User(email=f"bench-contractor-{i}@example.com", full_name=f"Contractor {i}", is_customer=False,
                     is_contractor=True, email_verified_at=now)
                for i in range(500)
            ],
            ignore_conflicts=True,
        )
    customers = list(User.objects.filter(email__startswith="bench-customer-").values_list("pk", flat=True))
    contractors = list(User.objects.filter(email__startswith="bench-contractor-").values_list("pk", flat=True))
    api_user, _ = User.objects.get_or_create(
        email="bench-api@example.com",
        defaults={"full_name": "Bench Contractor", "is_customer": False, "is_contractor": True, "email_verified_at": now},
    )
    profile, _ = ContractorProfile.objects.get_or_create(
        user=api_user,
        defaults={
            "slug": "bench-api", "postal_code": "94110", "city": "San Francisco", "state": "CA",
            "latitude": 37.7509, "longitude": -122.4153, "service_radius_km": 25, "onboarded_at": now,
        },
    )
    profile.trades.set(categories)
    token, _ = Token.objects.get_or_create(user=api_user)
    return categories, customers, contractors, token.key


def fill(conn_url: str, target: int, rng: random.Random, zips_by_metro, categories, customers, contractors) -> float:
    """Bring tasks_task to `target` rows (appending, or truncating first when
    there are more). Returns seconds spent."""
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tasks_task")
        have = cursor.fetchone()[0]
    if have == target:
        print(f"  {target:,} tasks already there: reusing them.")
        return 0.0
    started = time.perf_counter()
    if have > target:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE tasks_task, tasks_offer, tasks_taskphoto, tasks_taskevent, tasks_checkin, tasks_proofsubmission")
        have = 0
    add = target - have
    print(f"  adding {add:,} tasks (have {have:,})...", flush=True)

    staging_columns = (
        "public_id uuid, customer_id bigint, contractor_id bigint, category_id bigint, title text, description text,"
        " status text, postal_code text, city text, state text, latitude float8, longitude float8,"
        " approx_latitude float8, approx_longitude float8, budget_type text, budget_cents bigint,"
        " estimated_hours int, deadline timestamptz, instant_book boolean, agreed_price_cents bigint,"
        " published_at timestamptz, created_at timestamptz"
    )
    names = [c.split()[0] for c in staging_columns.split(",")]
    with connection.cursor() as cursor:
        # Every other column copies a template row, so the bench keeps working
        # whatever columns (with valid values) the model gains.
        cursor.execute("SELECT id FROM tasks_task WHERE title = 'bench template' LIMIT 1")
        row = cursor.fetchone()
    template_id = make_template(categories[0].pk, customers[0]) if row is None else row[0]
    with psycopg.connect(conn_url) as conn:
        conn.execute(f"CREATE TEMP TABLE bench_staging ({staging_columns})")
        with conn.cursor().copy(f"COPY bench_staging ({', '.join(names)}) FROM STDIN") as copy:
            for chunk in range(have, target, 50_000):
                copy.write(task_rows(rng, chunk, min(chunk + 50_000, target), zips_by_metro, categories, customers, contractors))
        table_columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks_task' AND column_name <> 'id'"
            " AND is_generated = 'NEVER' ORDER BY ordinal_position"
        )]
        values = ", ".join(f"s.{c}" if c in names else ("s.created_at" if c == "updated_at" else f"t.{c}") for c in table_columns)
        conn.execute(
            f"INSERT INTO tasks_task ({', '.join(table_columns)}) SELECT {values}"
            f" FROM bench_staging s CROSS JOIN (SELECT * FROM tasks_task WHERE id = %s) t",
            [template_id],
        )
        conn.execute("DELETE FROM tasks_task WHERE id = %s", [template_id])
        conn.commit()
    with psycopg.connect(conn_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tasks_task")
    return time.perf_counter() - started


def task_rows(rng: random.Random, first: int, last: int, zips_by_metro, categories, customers, contractors) -> str:
    """Rows first..last-1 in COPY text format. Exactly one in five is open."""
    from tasks.models import approximate

    metro_weights = [m[3] for m in METROS]
    trade_list = list(TRADES.items())
    now = dt.datetime.now(dt.UTC)
    out = io.StringIO()
    for i in range(first, last):
        metro = rng.choices(range(len(METROS)), weights=metro_weights)[0]
        zips, weights = zips_by_metro[metro]
        code, city, state, zlat, zlon = rng.choices(zips, weights=weights)[0]
        lat, lon = gaussian_km(rng, zlat, zlon, ZIP_JITTER_KM)
        alat, alon = approximate(lat, lon)
        trade_index = rng.randrange(len(trade_list))
        _slug, (_name, titles) = trade_list[trade_index]
        if i % 5 == 0:
            status = "open"
            published = now - dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
            deadline = now + dt.timedelta(days=rng.randrange(1, 31))
        else:
            status = rng.choices(["completed", "cancelled", "draft"], weights=[60, 30, 10])[0]
            published = now - dt.timedelta(minutes=rng.randrange(60 * 24 * 365))
            deadline = published + dt.timedelta(days=rng.randrange(1, 31))
        hourly = rng.random() < 0.2
        if hourly:
            budget, hours = rng.randrange(40, 150) * 100, rng.randrange(1, 9)
        else:
            budget, hours = int(min(2_000_000, rng.lognormvariate(9.6, 0.8))) // 500 * 500 + 500, None
        contractor = rng.choice(contractors) if status == "completed" else None
        fields = [
            uuid.uuid4(), rng.choice(customers), contractor, categories[trade_index].pk, rng.choice(titles),
            rng.choice(DESCRIPTIONS), status, code, city, state, f"{lat:.6f}", f"{lon:.6f}", alat, alon,
            "hourly" if hourly else "fixed", budget, hours, deadline.isoformat(), rng.random() < 0.2,
            budget if contractor else None, None if status == "draft" else published.isoformat(), published.isoformat(),
        ]
        out.write("\t".join(r"\N" if f is None else str(f) for f in fields) + "\n")
    return out.getvalue()


def make_template(category_id: int, customer_id: int) -> int:
    from django.utils import timezone

    from tasks.models import Task

    task = Task(customer_id=customer_id, category_id=category_id, title="bench template", description="-",
                status=Task.Status.CANCELLED, postal_code="94110", budget_cents=100, deadline=timezone.now())
    task.set_location(37.75, -122.41)
    task.save()
    return task.pk


# --- Measurements ------------------------------------------------------------------


def positions(rng: random.Random, n: int) -> list[tuple[float, float]]:
    weights = [m[3] for m in METROS]
    out = []
    for _ in range(n):
        _name, lat, lon, _w = rng.choices(METROS, weights=weights)[0]
        out.append(gaussian_km(rng, lat, lon, CONTRACTOR_SIGMA_KM))
    return out


def timed(fn, items) -> tuple[list[float], list]:
    samples, results = [], []
    for item in items:
        t0 = time.perf_counter()
        results.append(fn(item))
        samples.append((time.perf_counter() - t0) * 1000)
    return samples, results


def measure_queries(url: str, where: list[tuple[float, float]], radius_km: float, scan_n: int) -> dict:
    import psycopg
    from django.db import connection, reset_queries

    from tasks.selectors import open_task_pages_near, open_tasks_near

    def orm(point, q=None, sort=None):
        return [(t.pk, t.distance_km, len(t.problem_photos)) for t in open_tasks_near(
            latitude=point[0], longitude=point[1], radius_km=radius_km, q=q, sort=sort)[:20]]

    # Warm up the connection and caches with a few queries not counted.
    for point in where[:20]:
        orm(point)
    out: dict = {}
    samples, found = timed(orm, where)
    out["orm"] = summary(samples)
    out["orm"]["rows_mean"] = statistics.fmean(len(r) for r in found)
    out["orm_found"] = found

    from core.pagination import CappedPaginator

    def page(point):
        # As the API reads it (core.api.CappedPagination, i.e. DRF): the list
        # from open_task_pages_near, its page asked for before its count.
        paginator = CappedPaginator(open_task_pages_near(latitude=point[0], longitude=point[1], radius_km=radius_km), 20)
        rows = [(t.pk, t.distance_km, t.category_id, len(t.problem_photos)) for t in paginator.page(1)]
        return paginator.count, rows

    for point in where[:20]:
        page(point)
    samples, found = timed(page, where)
    out["page"] = summary(samples)
    out["page"]["rows_mean"] = statistics.fmean(len(r[1]) for r in found)
    # The page must be (a)'s rows, with the same distances, or it measures something else.
    orm_rows = [[(pk, d) for pk, d, _ in rows] for rows in out.pop("orm_found")]
    same = sum(1 for a, b in zip(orm_rows, found, strict=True) if a == [(pk, d) for pk, d, _, _ in b[1]])
    out["page"]["same_answers"] = f"{same}/{len(found)}"

    samples, found = timed(lambda p: orm(p, q="leak"), where)
    out["search"] = summary(samples)
    out["search"]["rows_mean"] = statistics.fmean(len(r) for r in found)
    for sort in ("newest", "budget"):
        samples, found = timed(lambda p, sort=sort: orm(p, sort=sort), where)
        out[sort] = summary(samples)
        out[sort]["rows_mean"] = statistics.fmean(len(r) for r in found)

    statements = []
    for lat, lon in where:
        qs = open_tasks_near(latitude=lat, longitude=lon, radius_km=radius_km)[:20]
        statements.append(qs.query.sql_with_params())
    reset_queries()
    connection.close()
    with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn:
        for sql, params in statements[:20]:
            conn.execute(sql, params).fetchall()
        samples, found = timed(lambda s: conn.execute(s[0], s[1]).fetchall(), statements)
        out["sql"] = summary(samples)
        out["sql"]["rows_mean"] = statistics.fmean(len(r) for r in found)
        sql, params = statements[0]
        out["plan_sql"] = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params))

        # Baselines of (d) and (f): what the selector ran before (issue 3's
        # second pass), as bare SQL on the same data.
        old = {
            "search_old": (
                "SELECT t.id, ts_rank(setweight(to_tsvector('english'::regconfig, t.title), 'A')"
                " || setweight(to_tsvector('english'::regconfig, t.description), 'B'), q) AS rank"
                " FROM tasks_task t, websearch_to_tsquery('english'::regconfig, 'leak') q"
                " WHERE t.status = 'open' AND earth_box(ll_to_earth(%(lat)s, %(lon)s), %(m)s)"
                " @> ll_to_earth(t.latitude, t.longitude)"
                " AND earth_distance(ll_to_earth(%(lat)s, %(lon)s), ll_to_earth(t.latitude, t.longitude)) <= %(m)s"
                " AND to_tsvector('english'::regconfig, t.title || ' ' || t.description) @@ q"
                " ORDER BY rank DESC, ll_to_earth(t.latitude, t.longitude) <-> ll_to_earth(%(lat)s, %(lon)s), t.id"
                " LIMIT 20"
            ),
            "sorts_old": (
                "SELECT t.id FROM tasks_task t WHERE t.status = 'open'"
                " AND earth_box(ll_to_earth(%(lat)s, %(lon)s), %(m)s) @> ll_to_earth(t.latitude, t.longitude)"
                " AND earth_distance(ll_to_earth(%(lat)s, %(lon)s), ll_to_earth(t.latitude, t.longitude)) <= %(m)s"
                " ORDER BY t.published_at DESC NULLS LAST, t.id DESC LIMIT 20"
            ),
        }
        for name, old_sql in old.items():
            args = [{"lat": lat, "lon": lon, "m": radius_km * 1000} for lat, lon in where[:scan_n * 5]]
            old_samples, old_found = timed(lambda a, old_sql=old_sql: conn.execute(old_sql, a).fetchall(), args)
            out[name] = summary(old_samples)
            out[name]["rows_mean"] = statistics.fmean(len(r) for r in old_found)

        conn.execute("SET enable_indexscan = off")
        conn.execute("SET enable_bitmapscan = off")
        scan = statements[:scan_n]
        samples, scanned = timed(lambda s: conn.execute(s[0], s[1]).fetchall(), scan)
        out["scan"] = summary(samples)
        # The baseline must find the same tasks, or it measures something else.
        same = sum(1 for a, b in zip(found[:scan_n], scanned, strict=True) if [r[0] for r in a] == [r[0] for r in b])
        out["scan"]["same_answers"] = f"{same}/{len(scan)}"
        out["plan_scan"] = "\n".join(r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params))
        conn.execute("RESET enable_indexscan")
        conn.execute("RESET enable_bitmapscan")
        open_count = conn.execute("SELECT count(*) FROM tasks_task WHERE status = 'open'").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM tasks_task").fetchone()[0]
    out["open_tasks"] = open_count
    out["tasks"] = total
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process and its children, in MB."""
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


class Server:
    def __init__(self, db_url: str, workers: int):
        self.port = free_port()
        env = {
            **LAUNCH_ENV,
            "DJANGO_SETTINGS_MODULE": "marketplace.settings",
            "DATABASE_URL": db_url,
            "DATABASE_CONN_MAX_AGE": "600",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-only-" + uuid.uuid4().hex,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_HSTS_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/uvicorn"), "marketplace.asgi:application", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", str(workers), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def api_load(port: int, token: str, paths: list[str], *, clients: int, rate: float | None) -> dict:
    """Send every path once. rate=None: closed loop, each client sends its next
    request when the last one answers. rate=R: request i is due at i/R seconds
    (open loop); its latency counts from when it was due."""
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter() + 0.2

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(paths):
                break
            due = start + i / rate if rate else None
            if due is not None:
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t0 = time.perf_counter()
            try:
                conn.request("GET", paths[i], headers={"Authorization": f"Token {token}", "Accept": "application/json"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {body[:200]!r}")
                elif i == 0:
                    json.loads(body)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t1 = time.perf_counter()
            with lock:
                latencies.append((t1 - (due if due is not None else t0)) * 1000)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t_begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - max(t_begin, start if rate else t_begin)
    out = summary(latencies)
    out["throughput"] = len(latencies) / elapsed
    out["errors"] = len(errors)
    if errors:
        out["first_error"] = errors[0]
    return out


def measure_api(db_url: str, token: str, where: list[tuple[float, float]], radius_km: float, args) -> dict:
    paths = [
        # Nearest first: the query this benchmark is about (the page's default,
        # best match, scores the nearest 2,000 and is measured by bench_matching).
        "/api/v1/tasks/nearby?"
        + urlencode({"lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "radius_km": radius_km, "sort": "distance"})
        for lat, lon in where
    ]
    server = Server(db_url, args.workers)
    try:
        api_load(server.port, token, paths[:40], clients=2, rate=None)  # warm up both workers
        out = {
            "paced": api_load(server.port, token, paths, clients=args.clients, rate=args.rate),
            "closed": api_load(server.port, token, paths, clients=args.clients, rate=None),
        }
        for name, extra in (("paced_search", "q=leak"), ("paced_newest", "sort=newest")):
            if name.split("_")[1] in args.api_extra:
                other = [p.replace("sort=distance", extra) for p in paths[: args.extra_queries]]
                out[name] = api_load(server.port, token, other, clients=args.clients, rate=args.rate)
        out["server_peak_rss_mb"] = peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    return out


# --- Report ----------------------------------------------------------------------------


def report(size: int, q: dict, api: dict | None, fill_s: float, args) -> str:
    lines = [
        f"### {q['tasks']:,} tasks ({q['open_tasks']:,} open), radius {args.radius_km:g} km, 20 results",
        "",
        f"Filled in {fill_s:.0f} s (0 = reused)." if fill_s else "Rows reused from an earlier run.",
        "",
        "| measurement | n | p50 ms | p95 ms | p99 ms | mean ms | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def row(name, s, notes=""):
        lines.append(f"| {name} | {s['n']} | {s['p50']:.2f} | {s['p95']:.2f} | {s['p99']:.2f} | {s['mean']:.2f} | {notes} |")

    row("(a) ORM open_tasks_near, 20 rows (3 queries: tasks, categories, photos)", q["orm"], f"{q['orm']['rows_mean']:.1f} rows on average")
    if "page" in q:
        row("(a2) first page through CappedPaginator (capped count + 20 rows), as the API reads it", q["page"],
            f"{q['page']['rows_mean']:.1f} rows on average; same rows and distances as (a): {q['page']['same_answers']}")
    row("(b) bare SQL of (a)'s task query (psycopg)", q["sql"], "GiST KNN")
    row("(c) full scan: exact distance for every open task", q["scan"], f"index scans off; same answers {q['scan']['same_answers']}")
    row("(d) ORM with q=\"leak\" (full-text, ranked among the nearest 200 matches)", q["search"],
        f"{q['search']['rows_mean']:.1f} rows on average")
    row("(d0) bare SQL of the search it replaced (to_tsvector per task in the box, all matches ranked)",
        q["search_old"], f"{q['search_old']['rows_mean']:.1f} rows on average")
    row("(f) ORM sort=newest (the nearest 200 ordered)", q["newest"], f"{q['newest']['rows_mean']:.1f} rows")
    row("(f) ORM sort=budget (the nearest 200 ordered)", q["budget"], f"{q['budget']['rows_mean']:.1f} rows")
    row("(f0) bare SQL of the unbounded newest sort (every match in the radius sorted)", q["sorts_old"],
        f"{q['sorts_old']['rows_mean']:.1f} rows")
    if api:
        p, c = api["paced"], api["closed"]
        row(f"(e) API GET /api/v1/tasks/nearby, paced {args.rate:g} req/s", p,
            f"{p['throughput']:.1f} req/s achieved, {args.clients} clients, {p['errors']} errors")
        row(f"(e) API, closed loop, {args.clients} clients", c, f"{c['throughput']:.1f} req/s, {c['errors']} errors")
        for name, label in (("paced_search", "q=leak (relevance)"), ("paced_newest", "sort=newest")):
            if name in api:
                e = api[name]
                row(f"(e) API {label}, paced {args.rate:g} req/s", e,
                    f"{e['throughput']:.1f} req/s achieved, {e['errors']} errors")
    lines.append("")
    mem = f"Peak RSS: benchmark process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    if api:
        mem += f", uvicorn ({args.workers} workers + master) {api['server_peak_rss_mb']:.0f} MB"
    lines.append(mem + ".")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="100000,1000000", help="sizes to measure, comma-separated")
    parser.add_argument("--queries", type=int, default=500, help="positions per measurement")
    parser.add_argument("--scan-queries", type=int, default=50, help="positions for the slow full-scan baseline")
    parser.add_argument("--radius-km", type=float, default=25)
    parser.add_argument("--rate", type=float, default=10, help="paced API request rate, req/s")
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--api-extra", default="search,newest",
                        help="also pace the API with q=leak (search) and sort=newest; '' for neither")
    parser.add_argument("--extra-queries", type=int, default=200, help="requests for each --api-extra run")
    parser.add_argument("--refill", action="store_true", help="drop the bench rows and fill again")
    parser.add_argument("--db-url", help="default: DATABASE_URL's server, database 'bench'")
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.tasks.split(","))

    os.environ["BENCH_FORBIDDEN_DB"] = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/") or "-"
    url = database_url(args)
    ensure_database(url)
    setup_django(url)
    print(f"Benchmark database: {url}  ({os.cpu_count()} CPUs, {dt.datetime.now():%Y-%m-%d %H:%M})", flush=True)

    rng = random.Random(args.seed)
    categories, customers, contractors, token = ensure_people_and_trades(rng)
    if args.refill:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE tasks_task, tasks_offer, tasks_taskphoto, tasks_taskevent, tasks_checkin, tasks_proofsubmission")
    zips_by_metro = metro_zips()
    where = positions(random.Random(args.seed + 1), args.queries)
    reports, raw = [], {}
    for size in sizes:
        print(f"== {size:,} tasks", flush=True)
        fill_s = fill(url, size, random.Random(args.seed + size), zips_by_metro, categories, customers, contractors)
        q = measure_queries(url, where, args.radius_km, min(args.scan_queries, len(where)))
        api = None if args.no_api else measure_api(url, token, where, args.radius_km, args)
        text = report(size, q, api, fill_s, args)
        print(text, flush=True)
        print("\nPlan of (b), first position:\n" + q["plan_sql"] + "\n\nPlan of (c):\n" + q["plan_scan"] + "\n", flush=True)
        reports.append(text)
        raw[size] = {"queries": q, "api": api, "fill_seconds": fill_s}
    print("\n\n".join(reports))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
