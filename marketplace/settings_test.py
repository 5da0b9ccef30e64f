"""Settings for the test suite: the real local PostgreSQL and Redis.

Each value can still be overridden from the environment (DATABASE_URL,
REDIS_URL), as CI or a developer with other ports needs.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")


def _redis_url_for_worker(url: str, worker: str) -> str:
    """pytest-xdist runs the suite in several processes (``make test``: two):
    each gets a Redis database of its own (the base number plus the worker's
    index), because tests clear the cache (FLUSHDB) and run Celery workers on
    the broker, which must not reach another process's keys or queues.
    PostgreSQL needs nothing here: pytest-django names each worker's test
    database after it (test_test_gw0...). A number past Redis's 16 databases
    is refused rather than wrapped round onto someone else's (db 0 is the
    development default)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url  # empty (no Redis) or a unix socket: left as given
    base = int(parts.path.lstrip("/") or 0)
    number = base + int(worker.removeprefix("gw"))
    if number > 15:
        raise ImproperlyConfigured(
            f"Test process {worker} would use Redis database {number} (REDIS_URL's {base} plus its index), "
            "past Redis's 16 (0-15): give REDIS_URL a lower number or run fewer processes (TEST_WORKERS)."
        )
    return urlunsplit(parts._replace(path=f"/{number}"))


_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER.startswith("gw"):
    os.environ["REDIS_URL"] = _redis_url_for_worker(os.environ["REDIS_URL"], _XDIST_WORKER)
# pytest-django creates and drops the test database; pooled connections would
# hold it open. Tests that need concurrency open their own connections.
os.environ.setdefault("DATABASE_POOL", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bittietasks-media-"))
os.environ.setdefault("CACHE_KEY_PREFIX", f"bt-test-{os.getpid()}")
os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"bt-test-{os.getpid()}")
if _XDIST_WORKER.startswith("gw"):
    # The workers inherit the controller's environment, where these three were
    # set when it loaded the settings: uploads, cache keys and channel names
    # (Redis Pub/Sub channels are not per database) must be the worker's own,
    # or one process's "nothing was written" check sees the other's files.
    os.environ["MEDIA_ROOT"] = os.path.join(os.environ["MEDIA_ROOT"], _XDIST_WORKER)
    os.environ["CACHE_KEY_PREFIX"] += f"-{_XDIST_WORKER}"
    os.environ["CHANNEL_LAYER_PREFIX"] += f"-{_XDIST_WORKER}"
# Tests never call the real OpenAI API: the photo-check tests point the client at a local fake.
os.environ["OPENAI_API_KEY"] = ""

from .settings import *  # noqa: E402,F403

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
