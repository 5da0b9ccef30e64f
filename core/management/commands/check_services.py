"""Stop at once, with a way out, when PostgreSQL or Redis is not there.

``make test`` runs this first so a missing server reads as one clear line
instead of hundreds of failing tests.
"""

from __future__ import annotations

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def _database_error() -> Exception | None:
    try:
        connection.ensure_connection()
    except Exception as exc:  # noqa: BLE001
        # The named database need not exist (a fresh server has none):
        # pytest-django creates test_<name> through the server's maintenance
        # database, so the server answering there is enough.
        try:
            with connection._nodb_cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001
            return exc
    return None


class Command(BaseCommand):
    help = "Check that the database and Redis in the settings answer."

    def handle(self, *args, **options) -> None:
        problems = []
        db = settings.DATABASES["default"]
        exc = _database_error()
        if exc is not None:
            where = f"{db.get('HOST') or 'local socket'}:{db.get('PORT') or ''}"
            problems.append(
                f"PostgreSQL at {where} does not answer ({type(exc).__name__}).\n"
                f"  Start it with: {START_POSTGRES}\n  or point DATABASE_URL at another server."
            )
        if settings.REDIS_URL:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            try:
                client.ping()
            except Exception as exc:  # noqa: BLE001
                problems.append(
                    f"Redis at {settings.REDIS_URL} does not answer ({type(exc).__name__}).\n"
                    f"  Start it with: {START_REDIS}\n  or point REDIS_URL at another server."
                )
            finally:
                client.close()
        if problems:
            raise CommandError("\n".join(problems))
        self.stdout.write("PostgreSQL and Redis answer.")
