"""``manage.py simulate_market``: play a simulated market into this database."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from matching.simulate import simulate


class Command(BaseCommand):
    help = (
        "Create simulated contractors and customers with hidden skills, prices, schedules and tastes, "
        "and play months of activity through the project's services (see docs/MATCHING.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="Which world (default 1).")
        parser.add_argument("--months", type=int, default=4, help="Months of history, ending now (default 4).")
        parser.add_argument("--customers", type=int, default=300, help="Customers (default 300).")
        parser.add_argument("--contractors", type=int, default=150, help="Contractors (default 150).")
        parser.add_argument(
            "--tasks", type=int, default=None, help="Tasks posted (default 20 per customer per year: 2,000)."
        )

    def handle(self, *args, **options):
        for name in ("months", "customers", "contractors"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        if options["tasks"] is not None and options["tasks"] < 1:
            raise CommandError("--tasks must be at least 1.")
        started = time.monotonic()
        verbose = options["verbosity"] > 1
        try:
            result = simulate(
                seed=options["seed"],
                months=options["months"],
                customers=options["customers"],
                contractors=options["contractors"],
                tasks=options["tasks"],
                progress=(lambda message: self.stderr.write(message)) if verbose else None,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
        self.stdout.write(
            f"Simulated market seed {result.seed}: {result.started_at:%Y-%m-%d} to {result.ended_at:%Y-%m-%d}, "
            f"{counts} ({time.monotonic() - started:.0f} s). Signature {result.signature}."
        )
