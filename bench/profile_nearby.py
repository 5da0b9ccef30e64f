"""One Find work API request at a time, in process: where its time goes.

Runs GET /api/v1/tasks/nearby through Django's test client (no server)
against the database bench_nearby.py filled, as its token-authenticated
contractor, for the same random positions; prints the request p50/p95, each
SQL statement's p50/p95 (by its first 60 characters), the CPU time this
process spent per request (robust to other processes' load) and, with --profile,
cProfile's top functions. Production settings (marketplace.settings, DEBUG
off, psycopg pool). Figures go to docs/PERFORMANCE.md with the load average.

    .venv/bin/python bench/profile_nearby.py --db-url postgres://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/profile_nearby.py --params "q=leak&sort=relevance" --profile
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--params", default="sort=distance", help="extra query string")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--radius-km", type=float, default=25)
    parser.add_argument("--profile", action="store_true", help="also cProfile 100 more requests")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.db_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "profile-only-" + "x" * 40)
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
    import django

    django.setup()
    import bench_nearby
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__email="bench-api@example.com").key
    where = bench_nearby.positions(random.Random(args.seed + 1), args.requests + 130)
    paths = [
        "/api/v1/tasks/nearby?" + urlencode({"lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "radius_km": args.radius_km})
        + "&" + args.params
        for lat, lon in where
    ]
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT="application/json")
    for path in paths[:30]:  # warm up
        response = client.get(path)
        assert response.status_code == 200, response.content[:300]

    statements: dict[str, list[float]] = collections.defaultdict(list)

    def timed_sql(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements[sql[:60]].append((time.perf_counter() - t0) * 1000)

    requests, cpu = [], []
    with connection.execute_wrapper(timed_sql):
        for path in paths[30 : 30 + args.requests]:
            t0, c0 = time.perf_counter(), time.process_time()
            client.get(path)
            cpu.append((time.process_time() - c0) * 1000)
            requests.append((time.perf_counter() - t0) * 1000)

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    print(f"load average {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"request p50 {pct(requests, 50):.1f} ms, p95 {pct(requests, 95):.1f} ms ({len(requests)} requests)")
    # CPU time of this process alone: what the request costs in Python, hardly
    # moved by other processes' load (wall times on a busy machine are).
    print(f"this process's CPU per request: p50 {pct(cpu, 50):.2f} ms, mean {sum(cpu) / len(cpu):.2f} ms")
    for sql, values in statements.items():
        print(f"  {len(values):5d} x  p50 {pct(values, 50):6.2f}  p95 {pct(values, 95):6.2f} ms  {sql}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for path in paths[30 + args.requests :][:100]:
            client.get(path)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(50)
        print(out.getvalue())


if __name__ == "__main__":
    main()
