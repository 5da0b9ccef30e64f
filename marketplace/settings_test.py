"""Settings for the test suite: the real local PostgreSQL and Redis.

Each value can still be overridden from the environment (DATABASE_URL,
REDIS_URL), as CI or a developer with other ports needs.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
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
