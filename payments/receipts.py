"""Payment receipts by email: one when a booking is paid (the money is held),
one for each refund. Transactional: sent to every customer whatever their
notification settings, because they record money.

Called by ``payments.services`` inside the transaction that moves the money;
the message is rendered there (a template error fails loudly in tests) and
sent after the commit, so a rolled-back payment never sends a receipt. A
failing mail server is logged, never raised: the money already moved.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Escrow, Refund
from .pages import money_with_code

logger = logging.getLogger(__name__)


def _send_later(to: str, subject: str, body: str) -> None:
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])

    def send() -> None:
        try:
            message.send()
        except Exception:  # noqa: BLE001 - see the module docstring
            logger.exception("Receipt email to %s failed", to)

    transaction.on_commit(send)


def _context(escrow: Escrow) -> dict:
    return {
        "escrow": escrow,
        "task": escrow.task,
        "customer_name": escrow.customer.get_full_name() or escrow.customer.email,
        "contractor_name": escrow.contractor.get_full_name() or escrow.contractor.email,
        "price": money_with_code(escrow.price_cents, escrow.currency),
        "service_fee": money_with_code(escrow.service_fee_cents, escrow.currency),
        "total": money_with_code(escrow.total_cents, escrow.currency),
        "paid_on": timezone.localtime(escrow.funded_at or timezone.now()).strftime("%b %d, %Y %H:%M %Z"),
        "receipt_url": settings.SITE_URL + reverse("payments:receipt", args=[escrow.public_id]),
        "task_url": settings.SITE_URL + reverse("tasks:detail", args=[escrow.task.public_id]),
        "site_name": settings.SITE_NAME,
    }


def send_funded(escrow: Escrow) -> None:
    """The customer paid for a booking; the money is held until they approve."""
    context = _context(escrow)
    subject = render_to_string("payments/email/funded_subject.txt", context).strip()
    _send_later(escrow.customer.email, subject, render_to_string("payments/email/funded.txt", context))


def send_refunded(refund: Refund) -> None:
    """Money goes back to the customer (in full, or the customer's part of a split)."""
    escrow = refund.escrow
    context = {
        **_context(escrow),
        "refund": refund,
        "refund_amount": money_with_code(refund.amount_cents, refund.currency),
        "kept": money_with_code(escrow.total_cents - refund.amount_cents, escrow.currency),
        "partial": refund.amount_cents < escrow.total_cents,
    }
    subject = render_to_string("payments/email/refunded_subject.txt", context).strip()
    _send_later(escrow.customer.email, subject, render_to_string("payments/email/refunded.txt", context))
