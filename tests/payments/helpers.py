"""Funding bookings the way the product does, for tests outside payments.

Since issue 4 nothing is assigned without a held escrow (``tasks.payment_hooks
.on_assigned`` refuses with ``payment_required``). These helpers go through
the real path: ``payments.services.checkout_start`` (or
``instant_book_start``), then the simulated gateway's confirmation with a test
card, whose signed ``payment_intent.succeeded`` webhook is received, stored and
handled (``escrow_funded`` -> ``tasks.services.offer_accept``). The webhook is
queued with ``transaction.on_commit``; inside a test's transaction the
callbacks are captured and run here, as a commit would.

    fund(offer)                    # customer accepts and pays: task assigned
    fund(offer, card=DECLINED)     # raises CardDeclined, nothing assigned
    save_card(customer)            # a saved card, for instant booking
    instant_book(task, contractor) # the contractor books; the card is charged
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

from payments import accounts, services
from payments.gateway import get_gateway
from payments.models import Escrow, SavedPaymentMethod

logger = logging.getLogger(__name__)

SUCCESS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"


@contextmanager
def _run_commits(using: str = DEFAULT_DB_ALIAS):
    """Run the on_commit callbacks registered inside the block, as a commit
    would, and take them off the connection's list so an enclosing
    ``django_capture_on_commit_callbacks(execute=True)`` does not run them a
    second time. Outside a transaction (``transaction=True`` tests) Django runs
    them at once and this has nothing to do."""
    connection = connections[using]
    start = len(connection.run_on_commit)
    yield
    while len(connection.run_on_commit) > start:
        pending = connection.run_on_commit[start:]
        del connection.run_on_commit[start:]
        for _savepoints, callback, robust in pending:
            if robust:
                try:
                    callback()
                except Exception:  # noqa: BLE001 - robust callbacks only log, as on a real commit
                    logger.exception("on_commit callback %s failed", callback)
            else:
                callback()


def start_checkout(offer, *, by=None) -> Escrow:
    """The customer presses Accept: an unfunded escrow, the task still open."""
    with _run_commits():
        return services.checkout_start(offer, by=by or offer.task.customer)


def pay(escrow: Escrow, *, card: str = SUCCESS) -> Escrow:
    """Confirm the escrow's PaymentIntent with a test card, as the checkout
    page does; the webhook funds the escrow and books the task."""
    with _run_commits():
        get_gateway().confirm(escrow.payment_intent_id, card)
    escrow.refresh_from_db()
    return escrow


def fund(offer, *, by=None, card: str = SUCCESS) -> Escrow:
    """Accept ``offer`` and pay for it: afterwards the task is assigned to the
    offer's contractor (or, if it could not be booked, the payment refunded)."""
    escrow = start_checkout(offer, by=by)
    return pay(escrow, card=card)


def save_card(user, *, card: str = SUCCESS) -> SavedPaymentMethod:
    with _run_commits():
        return accounts.payment_method_save(user, card_number=card)


def instant_book(task, contractor, *, proposed_start=None, card: str = SUCCESS) -> Escrow:
    """The contractor books an instant-book task; the customer's saved card
    (saved here if missing) is charged and the task assigned."""
    if not SavedPaymentMethod.objects.filter(user_id=task.customer_id).exists():
        save_card(task.customer, card=card)
    with _run_commits():
        escrow = services.instant_book_start(task, by=contractor, proposed_start=proposed_start)
    escrow.refresh_from_db()
    return escrow
