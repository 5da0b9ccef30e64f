"""manage.py reconcile_payments [--since-days N]: the ledger against the gateway.

Prints every difference, stores the run (the admin shows the latest) and exits
with status 1 when there is any, so a scheduler or CI notices."""

from __future__ import annotations

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments import reconcile
from payments.gateway import GatewayError


class Command(BaseCommand):
    help = "Compare the ledger's charges, refunds and transfers with the payment gateway's and list every difference."

    def add_arguments(self, parser):
        parser.add_argument(
            "--since-days", type=int, default=None, help="Only movements of the last N days (default: everything)."
        )

    def handle(self, *args, since_days=None, **options):
        if since_days is not None and since_days < 1:
            raise CommandError("--since-days must be at least 1")
        since = timezone.now() - dt.timedelta(days=since_days) if since_days else None
        try:
            run = reconcile.run(since=since)
        except GatewayError as exc:
            raise CommandError(f"The payment gateway could not be read: {exc.message}") from exc
        for difference in run.differences:
            self.stdout.write(reconcile.describe(difference))
        summary = f"Reconciliation {run.pk}: {run.checked} records checked, {len(run.differences)} differences."
        if run.differences:
            self.stdout.write(self.style.ERROR(summary))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(summary))
