"""Every write to an escrow, its ledger, payouts and refunds.

A package split by sub-domain, imported as one module (``from payments import
services``; ``services.escrow_release``...): ``checkout`` (checkout, instant
booking, funding, abandoned checkouts), ``settlement`` (release, refunds,
splits, cancellation), ``payouts`` (transfers after the hold), ``chargebacks``
(freeze, unfreeze, a bank dispute's outcome) and ``_common`` (the status table,
locks, ledger legs, gateway bookkeeping). Every name callers used from the
single module is re-exported here. Tests replace the gateway by patching
``payments.services._gateway``; the sub-modules look it up here at call time.

The flow (../notes/PAYMENTS_CONTRACT.md): ``checkout_start`` (customer accepts
an offer) or ``instant_book_start`` (a contractor books an instant-book task)
create an unfunded escrow and a PaymentIntent; ``escrow_funded`` (the
``payment_intent.succeeded`` webhook) holds the money and books the task;
approval releases it (``escrow_release``), a payout is transferred after the
hold (``payout_sweep``); cancellation refunds or splits it; a chargeback
freezes it.

How money stays right when everything runs at once:

- Every escrow service locks the task row, then the escrow row (the order
  ``tasks.services`` uses: task first), and moves the status with a
  conditional update (``filter(pk=..., status=old).update(...)``) whose row
  count is checked: a second release, a release racing a refund, a replayed
  webhook find the status moved and do nothing or refuse.
- The ledger allows one terminal event per escrow and kind (a unique
  constraint) and the escrow's check constraint keeps released + refunded
  within captured, so even a bug here cannot pay twice.
- Gateway calls are never made inside the transaction that holds the task
  lock: the intent is stored first (``GatewayOperation`` with a key derived
  from it, e.g. ``escrow:<uuid>:refund``), the call is made after commit, and
  its result recorded in a new short transaction. A retry after a crash or a
  timeout finds the stored operation and reuses its key, so the gateway does
  the thing once.

Where an escrow's money is, by account (see ``payments.ledger``):
fund: customer_funds_in -total, escrow_held +total.
release: escrow_held -total, contractor_payable +share, platform_revenue
+(commission + service fee). refund: all of it to refunds_out. split with X
cents (gross) to the contractor: contractor_payable +(X - commission on X),
platform_revenue +commission on X, refunds_out +(total - X) (the customer gets
the service fee back). payout: contractor_payable -share, payouts_out +share.
A refund or split is allowed while the money is held, and after release while
the payout has not been transferred (the payout hold): no transfer reversal is
ever needed.
"""

from __future__ import annotations


def _gateway():
    from payments.gateway import get_gateway

    return get_gateway()


from ._common import (  # noqa: E402
    ES,
    FUNDABLE,
    INSIDE,
    LIVE,
    MAX_BACKOFF,
    PAYOUT_LEASE,
    TRANSITIONS,
    Code,
    Kind,
    _gateway_errors,
    _holdings,
    _key,
    _legs_to,
    _lock,
    _move,
    _notify,
    _op_done,
    _op_started,
    _operation,
    _payout_hold,
    _require_system_or_staff,
    amount_due_cents,
    live_escrow,
)
from .chargebacks import (  # noqa: E402
    _freeze_count,
    chargeback_closed,
    chargeback_opened,
    escrow_freeze,
    escrow_unfreeze,
)
from .checkout import (  # noqa: E402
    _book,
    _create_intent,
    _new_escrow,
    _quote_for,
    checkout_expire_sweep,
    checkout_start,
    escrow_funded,
    escrow_payment_failed,
    instant_book_start,
    require_held_escrow,
)
from .payouts import _backoff, _payout_paid, _transfer_key, payout_attempt, payout_sweep  # noqa: E402
from .settlement import (  # noqa: E402
    CancelOutcome,
    _execute_refund_later,
    _refund_locked,
    _refund_row,
    _refundable,
    _validate_reason,
    escrow_refund,
    escrow_release,
    escrow_split,
    refund_attempt,
    settle_cancellation,
)

__all__ = [
    "ES", "FUNDABLE", "INSIDE", "LIVE", "MAX_BACKOFF", "PAYOUT_LEASE", "TRANSITIONS", "Code", "Kind",
    "CancelOutcome", "amount_due_cents", "chargeback_closed", "chargeback_opened", "checkout_expire_sweep", "checkout_start", "escrow_freeze",
    "escrow_funded", "escrow_payment_failed", "escrow_refund", "escrow_release", "escrow_split",
    "escrow_unfreeze", "instant_book_start", "live_escrow", "payout_attempt", "payout_sweep",
    "refund_attempt", "require_held_escrow", "settle_cancellation",
    "_backoff", "_book", "_create_intent", "_execute_refund_later", "_freeze_count", "_gateway",
    "_gateway_errors", "_holdings", "_key", "_legs_to", "_lock", "_move", "_new_escrow", "_notify",
    "_op_done", "_op_started", "_operation", "_payout_hold", "_payout_paid", "_quote_for",
    "_refund_locked", "_refund_row", "_refundable", "_require_system_or_staff", "_transfer_key",
    "_validate_reason",
]
