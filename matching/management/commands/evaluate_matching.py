"""``manage.py evaluate_matching``: train on the earlier history, test on the later."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from matching.evaluate import CANDIDATE_MODES, EvaluationError, evaluate


class Command(BaseCommand):
    help = (
        "Train the ranking model on the earlier part of the history and report how often it puts the "
        "contractor who was actually hired in its top 1 and top 5 (and NDCG@10), against the nearest, "
        "best rated and random baselines. On an empty database, simulates the default market first."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed", type=int, default=1, help="World to simulate on an empty database, and tie-breaks."
        )
        parser.add_argument("--json", action="store_true", help="Print exactly one line of JSON.")
        parser.add_argument(
            "--candidates",
            choices=CANDIDATE_MODES,
            default="offered",
            help="offered: those who offered plus as many in-range non-offerers (default); all: everyone in range.",
        )

    def handle(self, *args, **options):
        started = time.monotonic()
        verbose = options["verbosity"] > 1 or not options["json"]
        try:
            result = evaluate(
                seed=options["seed"],
                candidates=options["candidates"],
                progress=(lambda message: self.stderr.write(message)) if verbose else None,
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json(), separators=(",", ":")))
            return
        self.stdout.write(
            f"Model {result.model_version} ({'activated' if result.activated else 'not activated: did not beat the rules on its holdout'}), "
            f"trained before {result.cutoff:%Y-%m-%d %H:%M}; "
            f"{result.tasks} hired tasks after it, {result.mean_candidates:.1f} candidates each ({result.candidates}).\n"
        )
        self.stdout.write(f"{'':12} {'top-1':>7} {'top-5':>7} {'NDCG@10':>8}\n")
        rows = [("model", result.figures["model"])]
        rows += [(name, result.figures[name]) for name in ("nearest", "best_rated", "random")]
        rows.append(("(rules)", result.rules))
        for name, f in rows:
            self.stdout.write(f"{name:12} {f['top1']:7.3f} {f['top5']:7.3f} {f['ndcg10']:8.3f}\n")
        self.stdout.write(f"({time.monotonic() - started:.0f} s)\n")
