"""Settings come from the environment and refuse what makes no sense.

Settings are read once per process, so each mode is checked in a fresh
interpreter with exactly the environment that mode gets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings
from marketplace.celery import app
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "DEMO_MODE": settings.DEMO_MODE,
    "DB_ENGINE": settings.DATABASES["default"]["ENGINE"],
    "DB_NAME": str(settings.DATABASES["default"]["NAME"]),
    "CHANNEL_LAYER": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "CACHE": settings.CACHES["default"]["BACKEND"],
    "CELERY_EAGER": app.conf.task_always_eager,
    "CELERY_BROKER": app.conf.broker_url,
    "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
}))
"""


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the variables given: nothing leaks in from the test run's own
    # environment (which points at the test database).
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(BASE_DIR)), "LANG": "C.UTF-8"}
    clean["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


def settings_in(env: dict[str, str]) -> dict:
    result = run_python(PRINT_SETTINGS, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_run_env() -> dict[str, str]:
    """The variables `make run` sets, read from the Makefile itself."""
    match = re.search(r"^RUN_ENV := (.+)$", (BASE_DIR / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile has no RUN_ENV line"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


# --- the helpers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("BT_FLAG", raw)
    assert env_bool("BT_FLAG", not expected) is expected


def test_env_bool_uses_the_default_only_when_unset(monkeypatch):
    monkeypatch.delenv("BT_FLAG", raising=False)
    assert env_bool("BT_FLAG", True) is True
    assert env_bool("BT_FLAG", False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "ture", "y e s"])
def test_env_bool_refuses_anything_else(monkeypatch, raw):
    monkeypatch.setenv("DJANGO_DEBUG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"DJANGO_DEBUG must be one of true/false/1/0/yes/no, not '{raw}'"):
        env_bool("DJANGO_DEBUG")


def test_env_int_reads_whole_numbers_and_refuses_others(monkeypatch):
    monkeypatch.setenv("BT_NUMBER", "42")
    assert env_int("BT_NUMBER", 7) == 42
    monkeypatch.setenv("BT_NUMBER", "  ")
    assert env_int("BT_NUMBER", 7) == 7
    monkeypatch.setenv("BT_NUMBER", "4.5")
    with pytest.raises(ImproperlyConfigured, match="BT_NUMBER must be a whole number, not '4.5'"):
        env_int("BT_NUMBER", 7)
    monkeypatch.setenv("BT_NUMBER", "-1")
    with pytest.raises(ImproperlyConfigured, match="BT_NUMBER must be at least 0, not -1"):
        env_int("BT_NUMBER", 7, minimum=0)


def test_env_list_and_str(monkeypatch):
    monkeypatch.setenv("BT_HOSTS", " a.example , ,b.example,")
    assert env_list("BT_HOSTS") == ["a.example", "b.example"]
    monkeypatch.delenv("BT_HOSTS")
    assert env_list("BT_HOSTS", "x,y") == ["x", "y"]
    assert env_str("BT_HOSTS", "fallback") == "fallback"


# --- the process refuses to start -------------------------------------------


def test_a_bad_debug_value_stops_the_process():
    result = run_python("import django; django.setup()", {"DJANGO_DEBUG": "maybe", "DJANGO_SECRET_KEY": "x" * 50})

    assert result.returncode == 1
    assert "ImproperlyConfigured: DJANGO_DEBUG must be one of true/false/1/0/yes/no, not 'maybe'" in result.stderr


def test_a_missing_secret_key_with_debug_off_stops_the_process():
    result = run_python("import django; django.setup()", {})

    assert result.returncode == 1
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_manage_py_refuses_too_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={"PATH": os.environ.get("PATH", ""), "DJANGO_DEBUG": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_manage_py_in_an_empty_shell_runs_in_development_mode_and_says_so():
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=BASE_DIR,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    assert "DJANGO_SECRET_KEY is not set, so this runs in local development mode" in result.stderr


def test_a_bad_number_stops_the_process():
    result = run_python(
        "import django; django.setup()", {"DJANGO_SECRET_KEY": "x" * 50, "DATABASE_CONN_MAX_AGE": "forever"}
    )

    assert result.returncode == 1
    assert "DATABASE_CONN_MAX_AGE must be a whole number, not 'forever'" in result.stderr


# --- the three modes ----------------------------------------------------------


def test_make_run_mode_needs_nothing_but_python():
    env = make_run_env()
    assert env["DJANGO_DEBUG"] == "true"
    assert "DATABASE_URL" not in env and "REDIS_URL" not in env

    found = settings_in(env)

    assert found == {
        "DEBUG": True,
        "DEMO_MODE": True,
        "DB_ENGINE": "django.db.backends.sqlite3",
        "DB_NAME": str(BASE_DIR / "var" / "db.sqlite3"),
        "CHANNEL_LAYER": "channels.layers.InMemoryChannelLayer",
        "CACHE": "django.core.cache.backends.locmem.LocMemCache",
        "CELERY_EAGER": True,
        "CELERY_BROKER": "memory://",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
    }


def test_production_mode_uses_postgres_redis_and_a_real_worker():
    found = settings_in(
        {
            "DJANGO_SECRET_KEY": "p" * 50,
            "DJANGO_ALLOWED_HOSTS": "bittietasks.example",
            "DATABASE_URL": "postgres://app:pw@db:5432/bittietasks",
            "REDIS_URL": "redis://redis:6379/0",
        }
    )

    assert found == {
        "DEBUG": False,
        "DEMO_MODE": False,
        "DB_ENGINE": "django.db.backends.postgresql",
        "DB_NAME": "bittietasks",
        "CHANNEL_LAYER": "core.channel_layer.PipelinedPubSubChannelLayer",
        "CACHE": "django.core.cache.backends.redis.RedisCache",
        "CELERY_EAGER": False,
        "CELERY_BROKER": "redis://redis:6379/0",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "ALLOWED_HOSTS": ["bittietasks.example"],
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
    }


def test_a_sendgrid_key_switches_email_to_sendgrid():
    found = settings_in({"DJANGO_SECRET_KEY": "p" * 50, "SENDGRID_API_KEY": "SG.x"})

    assert found["EMAIL_BACKEND"] == "core.email.SendGridEmailBackend"


def test_test_mode_uses_postgres_redis_and_locmem_email(settings):
    # This very process runs on marketplace.settings_test.
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "core.channel_layer.PipelinedPubSubChannelLayer"
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"
    assert settings.CELERY_TASK_ALWAYS_EAGER is True


PRINT_TEST_ISOLATION = """
import json
from django.conf import settings
print(json.dumps({
    "REDIS_URL": settings.REDIS_URL,
    "CACHE_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
    "MEDIA_ROOT": str(settings.MEDIA_ROOT),
}))
"""


def test_parallel_test_processes_each_get_their_own_redis_db_cache_keys_and_uploads(tmp_path):
    # make test runs pytest-xdist workers gw0, gw1 with the controller's
    # environment: one worker's FLUSHDB or upload must not reach the other's.
    shared = {
        "DJANGO_SETTINGS_MODULE": "marketplace.settings_test",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "MEDIA_ROOT": str(tmp_path),
        "CACHE_KEY_PREFIX": "bt-test-1",
    }
    seen = {}
    for worker in ("", "gw0", "gw1"):
        env = shared | ({"PYTEST_XDIST_WORKER": worker} if worker else {})
        result = run_python(PRINT_TEST_ISOLATION, env)
        assert result.returncode == 0, result.stderr
        seen[worker] = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen[""] == {"REDIS_URL": "redis://127.0.0.1:6379/14", "CACHE_PREFIX": "bt-test-1", "MEDIA_ROOT": str(tmp_path)}
    assert seen["gw0"]["REDIS_URL"] == "redis://127.0.0.1:6379/14"
    assert seen["gw1"]["REDIS_URL"] == "redis://127.0.0.1:6379/15"
    assert seen["gw0"]["MEDIA_ROOT"] == str(tmp_path / "gw0")
    assert seen["gw1"]["MEDIA_ROOT"] == str(tmp_path / "gw1")
    assert len({s["CACHE_PREFIX"] for s in seen.values()}) == 3


def test_a_test_process_past_redis_database_15_is_refused_not_wrapped_onto_db_0():
    env = {"DJANGO_SETTINGS_MODULE": "marketplace.settings_test", "REDIS_URL": "redis://127.0.0.1:6379/15"}
    result = run_python(PRINT_TEST_ISOLATION, env | {"PYTEST_XDIST_WORKER": "gw1"})
    assert result.returncode != 0
    assert "would use Redis database 16" in result.stderr
    assert "TEST_WORKERS" in result.stderr


def test_env_example_lists_every_variable_the_settings_read():
    source = (BASE_DIR / "marketplace" / "settings.py").read_text()
    read = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z0-9_]+)\"", source))
    example = (BASE_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z0-9_]+)=", example, re.MULTILINE))

    assert len(read) >= 20
    assert sorted(read - listed) == []


def _check_services(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "DJANGO_SETTINGS_MODULE": "marketplace.settings_test",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check_services"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_test_accepts_a_fresh_server_without_the_named_database():
    # `make test` on a fresh machine: the server answers, the `test` database
    # does not exist yet (pytest-django creates test_test itself).
    result = _check_services("postgres://postgres@127.0.0.1:5432/no_such_db_h3_check")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "PostgreSQL and Redis answer."


def test_make_test_stops_with_how_to_start_postgres_when_no_server_answers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    result = _check_services(f"postgres://postgres@127.0.0.1:{port}/test")

    assert result.returncode == 1
    assert f"PostgreSQL at 127.0.0.1:{port} does not answer (OperationalError)." in result.stderr
    assert "Start it with: pg_ctlcluster" in result.stderr


def test_production_postgres_uses_a_working_connection_pool():
    """The pool is on for PostgreSQL and really serves connections."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "from django.conf import settings\n"
        "pool = settings.DATABASES['default']['OPTIONS']['pool']\n"
        "with connection.cursor() as c: c.execute('select 1'); one = c.fetchone()[0]\n"
        "print(pool['max_size'], settings.DATABASES['default']['CONN_MAX_AGE'], one, type(connection.pool).__name__)\n"
    )
    result = run_python(
        code,
        {
            "DJANGO_SECRET_KEY": "p" * 50,
            "DJANGO_ALLOWED_HOSTS": "bittietasks.example",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
            "DATABASE_POOL_MAX": "7",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "0", "1", "ConnectionPool"]
