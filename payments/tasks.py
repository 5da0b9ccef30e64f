"""Celery tasks for escrow money: thin, idempotent wrappers around services.

Deadlines (the payout hold, the checkout timeout) live in the database and are
swept by beat every minute, never in countdowns."""

from __future__ import annotations

from celery import shared_task

from .tasks_webhooks import process_webhook_event  # noqa: F401  (registers the webhook task with the worker)


@shared_task(name="payments.sweep_payouts", ignore_result=True, soft_time_limit=50, time_limit=55)
def sweep_payouts() -> dict[str, int]:
    """Transfer payouts whose hold is over (or mark them waiting for the
    contractor's payout account); retry gateway refunds still pending."""
    from .services import payout_sweep

    return payout_sweep()


@shared_task(name="payments.sweep_checkouts", ignore_result=True, soft_time_limit=50, time_limit=55)
def sweep_checkouts() -> dict[str, int]:
    """Expire checkouts unpaid after PAYMENTS_CHECKOUT_TIMEOUT_MINUTES."""
    from .services import checkout_expire_sweep

    return checkout_expire_sweep()


@shared_task(name="payments.execute_refund", ignore_result=True, soft_time_limit=50, time_limit=55)
def execute_refund(refund_id: int) -> str:
    """Make the gateway refund a service decided (after its commit). Safe to
    run twice: the refund's stored key makes one refund at the gateway, and a
    refund no longer pending is left alone. A retryable failure stays pending
    for ``sweep_payouts``."""
    from .models import Refund
    from .services import refund_attempt

    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None:
        return "gone"
    return refund_attempt(refund).status
