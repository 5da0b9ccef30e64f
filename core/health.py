"""Liveness and readiness probes for the load balancer and docker compose."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. Touches nothing else, so a database outage does
    not make the orchestrator restart healthy web processes."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    finally:
        client.close()
    return None


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """PostgreSQL and Redis answer; 503 naming the one that did not."""
    checks = {}
    failed = []
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        started = time.perf_counter()
        error = check()
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        if name == "redis" and not settings.REDIS_URL:
            checks[name] = {"status": "not configured"}
            continue
        checks[name] = {"status": "ok" if error is None else "error", "ms": elapsed_ms}
        if error is not None:
            checks[name]["error"] = error
            failed.append(name)
    body = {"status": "ok" if not failed else "unavailable", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)
