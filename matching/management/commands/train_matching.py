from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from matching import ranking


class Command(BaseCommand):
    help = "Train the matching model on logged outcomes, store it as a new version and serve it."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only outcomes logged at or after this ISO time.")
        parser.add_argument("--until", help="Only outcomes logged before this ISO time.")
        parser.add_argument("--min-rows", type=int, default=ranking.DEFAULT_MIN_ROWS)
        parser.add_argument("--no-activate", action="store_true", help="Store the model without serving it.")
        parser.add_argument(
            "--force", action="store_true", help="Serve it even if it does not beat the rules on its holdout."
        )

    def handle(
        self, *args, since=None, until=None, min_rows=ranking.DEFAULT_MIN_ROWS, no_activate=False, force=False, **options
    ):
        bounds = {}
        for name, value in (("since", since), ("until", until)):
            if value:
                parsed = parse_datetime(value)
                if parsed is None:
                    raise CommandError(f"--{name}: not an ISO date-time: {value!r}")
                bounds[name] = parsed
        record = ranking.train(min_rows=min_rows, activate=not no_activate, force=force, **bounds)
        if record is None:
            self.stdout.write("Too little data to train (or only one kind of outcome): the rules keep serving.")
            return
        holdout = record.evaluation.get("training_holdout", {})
        if record.is_active:
            verdict = " and activated it"
        elif no_activate:
            verdict = " (not activated: --no-activate)"
        else:
            verdict = " (NOT activated: it does not beat the rules on its holdout; --force to serve it anyway)"
        self.stdout.write(
            f"Trained {record.version} ({record.algorithm}) on {record.training_rows} pairs{verdict}: "
            f"holdout {holdout}"
        )
