"""Run the beat schedule in this process, for ``make run``.

Production runs ``celery beat`` and workers on Redis. ``make run`` has neither
(Celery is eager, the broker is in memory), so without this the deadlines that
live in the database (approval reminders and auto-approval, payouts after the
hold, abandoned checkouts, message digests, review windows, dispute steps)
would never be swept in the demo. This command walks ``CELERY_BEAT_SCHEDULE``
and runs each due job in-process, the same task code a worker would run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from marketplace.celery import app

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the Celery beat schedule in this process (make run); never use with a real worker."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every job once, then stop")
        parser.add_argument("--tick", type=float, default=5.0, help="seconds between checks")

    def handle(self, *args, once: bool = False, tick: float = 5.0, **options):
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("Celery is not eager here: run `celery beat` and a worker instead.")
        app.loader.import_default_modules()
        jobs = {
            name: (entry["task"], maybe_schedule(entry["schedule"]))
            for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        }
        last_run: dict[str, dt.datetime] = {}
        while True:
            for name, (task_name, schedule) in jobs.items():
                previous = last_run.get(name)
                # Everything runs once at start; after that, each job on its own schedule.
                due = once or previous is None or schedule.is_due(previous)[0]
                if not due:
                    continue
                last_run[name] = schedule.now()
                self._run(name, task_name)
            if once:
                return
            close_old_connections()
            time.sleep(tick)

    def _run(self, name: str, task_name: str) -> None:
        task = app.tasks.get(task_name)
        if task is None:
            logger.warning("Scheduled job %s: no task named %s", name, task_name)
            return
        try:
            result = task.apply()
            logger.info("Scheduled job %s: %s", name, result.result)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            logger.exception("Scheduled job %s failed", name)
