"""Production settings pass Django's deployment checklist.

Run in a fresh interpreter with only a production-like environment: DEBUG
unset, a random secret key, the allowed host, and the local PostgreSQL and
Redis (what docker compose gives the web service).
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def production_env(**overrides: str) -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(BASE_DIR)),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "DJANGO_SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "DJANGO_ALLOWED_HOSTS": "bittietasks.example",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
    }
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = check_deploy(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_debug_explicitly_false_passes_too():
    result = check_deploy(production_env(DJANGO_DEBUG="false"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_does_fail_when_a_safety_is_turned_off():
    # The same run with HTTPS redirects off must warn, or the test above
    # proves nothing.
    result = check_deploy(production_env(DJANGO_SECURE_SSL_REDIRECT="false"))

    assert result.returncode == 1
    assert "security.W008" in result.stderr


def test_debug_on_is_reported():
    result = check_deploy(production_env(DJANGO_DEBUG="true"))

    assert result.returncode == 1
    assert "security.W018" in result.stderr


def test_a_short_secret_key_is_reported():
    result = check_deploy(production_env(DJANGO_SECRET_KEY="too-short"))

    assert result.returncode == 1
    assert "security.W009" in result.stderr
