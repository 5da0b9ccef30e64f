"""Load the demo data ``make run`` shows: trades, people, and (once the tasks
app has some) tasks. Safe to run again: it only adds what is missing.

Each app owns its part in ``<app>/demo.py`` with a ``seed(stdout)``
function; apps are seeded in dependency order.
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

# accounts first: tasks need customers and trades to exist.
DEMO_MODULES = ["accounts.demo", "tasks.demo"]


class Command(BaseCommand):
    help = "Create the demo trades, people and tasks that are missing, and print the demo logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off. The demo accounts share a published password: never in production.",
        )

    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with a published password, so it only runs with "
                "DJANGO_DEBUG=true (as `make run` sets). Use --force to run it anyway."
            )
        for name in DEMO_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                # Only a missing demo module is skipped; an import error inside
                # one is a bug and must surface.
                if exc.name != name:
                    raise
                continue
            module.seed(self.stdout)
