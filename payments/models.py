"""Escrow, the double-entry ledger, gateway bookkeeping and webhooks.

Rules (see ../shared/DESIGN.md "Money"):
- Amounts are integer cents with a currency. Every movement is one
  ``LedgerTransaction`` whose ``LedgerEntry`` rows sum to zero: checked by a
  deferred constraint trigger on PostgreSQL (migration 0002), and in Python.
- An escrow moves by conditional updates / row locks in ``payments/services/`` (a package);
  at most one terminal ledger event per escrow and kind (a unique constraint);
  released + refunded never exceeds captured (a check constraint).
- Idempotency keys are derived from intent (``escrow:<id>:transfer``) and stored
  in ``GatewayOperation`` before the gateway is called, so a retry after a crash
  reuses them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class LedgerAccount(models.Model):
    """A place money can be. Platform-wide accounts have no owner; a
    contractor's payable balance has its contractor as owner."""

    class Code(models.TextChoices):
        CUSTOMER_FUNDS_IN = "customer_funds_in", _("Customer funds in")
        ESCROW_HELD = "escrow_held", _("Escrow held")
        CONTRACTOR_PAYABLE = "contractor_payable", _("Contractor payable")
        PLATFORM_REVENUE = "platform_revenue", _("Platform revenue")
        REFUNDS_OUT = "refunds_out", _("Refunds out")
        PAYOUTS_OUT = "payouts_out", _("Payouts out")
        CHARGEBACKS = "chargebacks", _("Chargebacks")
        # Money a lost chargeback returned to the cardholder through their bank.
        CHARGEBACKS_OUT = "chargebacks_out", _("Chargebacks lost (returned by the bank)")

    code = models.CharField(max_length=24, choices=Code.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_accounts"
    )
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "owner", "currency"], name="ledger_account_unique"),
            models.UniqueConstraint(
                fields=["code", "currency"], condition=Q(owner__isnull=True), name="ledger_platform_account_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_code_display()} {self.currency}" + (f" ({self.owner})" if self.owner_id else "")


class Escrow(models.Model):
    """The money for one booking of one task: captured at booking, held, then
    released to the contractor, refunded, split, or frozen by a chargeback."""

    class Status(models.TextChoices):
        UNFUNDED = "unfunded", _("Waiting for payment")
        HELD = "held", _("Payment held until you approve")
        RELEASED = "released", _("Released to the contractor")
        REFUNDED = "refunded", _("Refunded")
        SPLIT = "split", _("Split")
        FROZEN = "frozen", _("Frozen (chargeback)")
        FAILED = "failed", _("Payment failed")
        EXPIRED = "expired", _("Checkout abandoned")
        CHARGEBACK = "chargeback", _("Charged back (bank dispute lost)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey("tasks.Task", on_delete=models.PROTECT, related_name="escrows")
    offer = models.ForeignKey("tasks.Offer", on_delete=models.PROTECT, related_name="escrows")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, default="USD")
    price_cents = models.BigIntegerField(help_text=_("The agreed price (the contractor's offer)."))
    service_fee_cents = models.BigIntegerField(help_text=_("Paid by the customer on top of the price."))
    commission_cents = models.BigIntegerField(help_text=_("Kept from the price by the platform."))
    total_cents = models.BigIntegerField(help_text=_("What the customer pays: price + service fee."))
    captured_cents = models.BigIntegerField(default=0)
    released_cents = models.BigIntegerField(default=0, help_text=_("Made payable to the contractor (gross)."))
    refunded_cents = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNFUNDED)
    status_before_freeze = models.CharField(max_length=10, blank=True)
    # Gateway references
    payment_intent_id = models.CharField(max_length=120, blank=True)
    charge_id = models.CharField(max_length=120, blank=True)
    transfer_group = models.CharField(max_length=120, blank=True)
    # Times
    created_at = models.DateTimeField(auto_now_add=True)
    checkout_expires_at = models.DateTimeField(null=True, blank=True)
    funded_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    payout_due_at = models.DateTimeField(
        null=True, blank=True, help_text=_("End of the payout hold: the transfer is made after this.")
    )
    refunded_at = models.DateTimeField(null=True, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "payout_due_at"], name="escrow_status_payout_due"),
            models.Index(fields=["status", "checkout_expires_at"], name="escrow_status_checkout_exp"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_cents__gt=0, service_fee_cents__gte=0, commission_cents__gte=0)
                & Q(commission_cents__lte=F("price_cents"))
                & Q(total_cents=F("price_cents") + F("service_fee_cents")),
                name="escrow_amounts_consistent",
            ),
            models.CheckConstraint(
                condition=Q(captured_cents__gte=0, released_cents__gte=0, refunded_cents__gte=0)
                & Q(captured_cents__lte=F("total_cents"))
                & Q(released_cents__lte=F("captured_cents") - F("refunded_cents")),
                name="escrow_released_plus_refunded_within_captured",
            ),
            # One booking's money at a time per task: a second live escrow is a bug.
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=["held", "released", "split", "frozen"]),
                name="one_live_escrow_per_task",
            ),
        ]

    def __str__(self) -> str:
        return f"Escrow {self.public_id} for {self.task} ({self.status})"


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        FUND = "fund", _("Customer paid into escrow")
        RELEASE = "release", _("Released to the contractor")
        REFUND = "refund", _("Refunded to the customer")
        SPLIT = "split", _("Split between the parties")
        PAYOUT = "payout", _("Paid out to the contractor")
        PAYOUT_FAILED = "payout_failed", _("Payout failed and returned")
        CHARGEBACK = "chargeback", _("Chargeback")
        ADJUSTMENT = "adjustment", _("Adjustment")

    # At most one of each of these per escrow.
    TERMINAL_KINDS = ("fund", "release", "refund", "split", "payout", "chargeback")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="transactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    idempotency_key = models.CharField(max_length=160, unique=True)
    memo = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["escrow", "kind"],
                condition=Q(kind__in=["fund", "release", "refund", "split", "payout", "chargeback"]),
                name="one_terminal_event_per_escrow_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.idempotency_key}"


class LedgerEntry(models.Model):
    """One leg of a transaction. Positive: money arrives in the account."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount_cents=0), name="ledger_entry_nonzero")]
        indexes = [models.Index(fields=["account", "transaction"], name="ledger_entry_account")]

    def __str__(self) -> str:
        return f"{self.amount_cents:+d} {self.currency} {self.account}"


class Payout(models.Model):
    """The contractor's share of one escrow on its way to their bank:
    pending (hold running) -> available (hold over, transfer due) -> paid."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (payout hold)")
        AVAILABLE = "available", _("Available")
        PAID = "paid", _("Paid out")
        FAILED = "failed", _("Transfer failed (will retry)")
        CANCELLED = "cancelled", _("Cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    escrow = models.OneToOneField(Escrow, on_delete=models.PROTECT, related_name="payout")
    contractor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    available_at = models.DateTimeField()
    transfer_id = models.CharField(max_length=120, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "available_at"], name="payout_status_available")]
        constraints = [models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payout_positive")]

    def __str__(self) -> str:
        return f"Payout {self.amount_cents} {self.currency} to {self.contractor} ({self.status})"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="refunds")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    gateway_refund_id = models.CharField(max_length=120, blank=True)
    idempotency_key = models.CharField(max_length=160, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_positive")]

    def __str__(self) -> str:
        return f"Refund {self.amount_cents} {self.currency} on {self.escrow_id} ({self.status})"


class GatewayOperation(models.Model):
    """An intended gateway call, stored (with its idempotency key) before the
    call is made; a retry finds it and reuses the key."""

    class Status(models.TextChoices):
        STARTED = "started", _("Started")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    idempotency_key = models.CharField(max_length=160, unique=True)
    operation = models.CharField(max_length=40)  # create_payment_intent, create_transfer, create_refund ...
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, null=True, blank=True, related_name="operations")
    request = models.JSONField(default=dict)
    response_id = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED)
    error = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.operation} {self.idempotency_key} ({self.status})"


class WebhookEvent(models.Model):
    """Each gateway event, stored once by its id, processed in Celery."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored (unknown type)")
        FAILED = "failed", _("Failed (will retry)")

    event_id = models.CharField(max_length=120, unique=True)
    type = models.CharField(max_length=80)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    gateway_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"], name="webhook_status_received")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


class ConnectedAccount(models.Model):
    """A contractor's payout account at the gateway (Stripe Connect Express)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_account")
    gateway_account_id = models.CharField(max_length=120, unique=True)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} {self.gateway_account_id} (payouts {'on' if self.payouts_enabled else 'off'})"


class SavedPaymentMethod(models.Model):
    """A customer's card kept at the gateway for instant-book charges (off session)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_method")
    gateway_customer_id = models.CharField(max_length=120)
    gateway_payment_method_id = models.CharField(max_length=120)
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # The card set-up that saved it (empty for cards saved before set-ups were recorded).
    setup = models.ForeignKey("CardSetup", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4} for {self.user}"


class ReconciliationRun(models.Model):
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    checked = models.PositiveIntegerField(default=0)
    differences = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Reconciliation {self.started_at:%Y-%m-%d %H:%M}: {len(self.differences)} differences"


class GatewayCustomer(models.Model):
    """The customer object at the gateway that a user's saved cards belong to
    (Stripe Customer), created once (key ``user:<id>:customer``) and kept."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gateway_customer")
    gateway_customer_id = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.gateway_customer_id} for {self.user}"


class CardSetup(models.Model):
    """One attempt to save a card (a SetupIntent with ``usage=off_session``).

    The card page creates it; the browser confirms it with the gateway; the
    ``setup_intent.succeeded`` webhook (or the page the gateway returns to,
    whichever comes first) makes its card the user's saved card, once. A
    set-up older than the card already saved, or started before the card was
    removed, never replaces it."""

    class Status(models.TextChoices):
        STARTED = "started", _("Waiting for the card")
        SAVED = "saved", _("Card saved")
        SUPERSEDED = "superseded", _("Succeeded, but a newer card was saved")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="card_setups")
    gateway_customer_id = models.CharField(max_length=120)
    setup_intent_id = models.CharField(max_length=120, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STARTED)
    payment_method_id = models.CharField(max_length=120, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Card set-up {self.setup_intent_id} for {self.user} ({self.status})"


class Chargeback(models.Model):
    """A bank dispute of a customer's card payment (Stripe ``charge.dispute.*``),
    stored once by its gateway id. It freezes the escrow when opened; when it
    closes, lost sends the money out (``chargebacks_out``) and ends the escrow,
    won lifts the freeze. Events arrive in any order: a ``created`` that comes
    after its ``closed`` finds the chargeback closed and changes nothing."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open at the bank")
        WON = "won", _("Won: the money stays")
        LOST = "lost", _("Lost: the money went back to the cardholder")
        NEEDS_STAFF = "needs_staff", _("Closed, needs staff")

    dispute_id = models.CharField(max_length=120, unique=True)
    escrow = models.ForeignKey(Escrow, on_delete=models.PROTECT, related_name="chargebacks")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    reason = models.CharField(max_length=60, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    gateway_status = models.CharField(max_length=30, blank=True)
    froze_escrow = models.BooleanField(default=False, help_text=_("This chargeback put the escrow on hold."))
    note = models.CharField(max_length=300, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"Chargeback {self.dispute_id} ({self.status})"
