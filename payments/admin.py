"""Staff screens for the money: escrows with their ledger timeline, refunds,
payouts, webhook events and reconciliation runs.

Everything here is read-only: money moves only through ``payments.services``,
which lock the task and escrow, check the transition table and post balanced
ledger transactions. Staff act through actions that ask for an amount and a
reason, say what will happen before it happens, call the service, and log the
decision (Django's admin log, with the reason).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.selectors import money_display
from core.errors import ApplicationError

from . import fees, services
from .forms import RefundForm, SplitForm
from .models import (
    CardSetup,
    Chargeback,
    ConnectedAccount,
    Escrow,
    GatewayOperation,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payout,
    ReconciliationRun,
    Refund,
    WebhookEvent,
)


def _money(cents: int | None, currency: str = "USD") -> str:
    return "—" if cents is None else money_display(int(cents), currency)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    show_full_result_count = False


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields


def _entries_html(txn: LedgerTransaction) -> str:
    return format_html_join(
        "",
        "<div>{} {}</div>",
        ((f"{e.amount_cents / 100:+,.2f} {e.currency}", str(e.account)) for e in txn.entries.all()),
    )


class LedgerTransactionInline(ReadOnlyInline):
    """The escrow's money timeline: every ledger transaction with its legs."""

    model = LedgerTransaction
    fields = ["created_at", "kind", "legs", "memo", "created_by", "idempotency_key"]
    verbose_name_plural = _("money timeline (ledger)")
    ordering = ["created_at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerTransaction]:
        return (
            super()
            .get_queryset(request)
            .select_related("created_by", "escrow")
            .prefetch_related("entries__account__owner")
        )

    @admin.display(description=_("entries (+ arrives, − leaves)"))
    def legs(self, txn: LedgerTransaction) -> str:
        return _entries_html(txn)


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["created_at", "amount", "status", "reason", "gateway_refund_id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("escrow")

    @admin.display(description=_("amount"))
    def amount(self, refund: Refund) -> str:
        return _money(refund.amount_cents, refund.currency)


class PayoutInline(ReadOnlyInline):
    model = Payout
    fields = ["status", "amount", "available_at", "attempts", "last_error", "transfer_id", "paid_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payout]:
        return super().get_queryset(request).select_related("escrow", "contractor")

    @admin.display(description=_("amount"))
    def amount(self, payout: Payout) -> str:
        return _money(payout.amount_cents, payout.currency)


class ChargebackInline(ReadOnlyInline):
    """Bank disputes of this escrow's card payment and how they ended."""

    model = Chargeback
    fields = ["dispute_id", "status", "amount", "reason", "froze_escrow", "opened_at", "closed_at", "note"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Chargeback]:
        return super().get_queryset(request).select_related("escrow")

    @admin.display(description=_("amount"))
    def amount(self, chargeback: Chargeback) -> str:
        return _money(chargeback.amount_cents, chargeback.currency)


class FrozenFilter(admin.SimpleListFilter):
    title = _("chargeback")
    parameter_name = "frozen"

    def lookups(self, request, model_admin):
        return [("yes", _("Frozen (chargeback)")), ("no", _("Not frozen"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=Escrow.Status.FROZEN)
        if self.value() == "no":
            return queryset.exclude(status=Escrow.Status.FROZEN)
        return queryset


@admin.register(Escrow)
class EscrowAdmin(ReadOnlyAdmin):
    list_display = ["task", "customer", "contractor", "status", "total", "captured", "refunded", "funded_at", "created_at"]
    list_filter = ["status", FrozenFilter, "currency"]
    search_fields = ["task__title", "customer__email", "contractor__email", "=public_id", "=payment_intent_id"]
    list_select_related = ["task", "customer", "contractor"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    fieldsets = [
        (None, {"fields": ["public_id", "task", "offer", "customer", "contractor", "status", "status_before_freeze"]}),
        (_("Amounts"), {"fields": ["price", "service_fee", "commission", "total", "captured", "released", "refunded"]}),
        (_("Gateway"), {"fields": ["payment_intent_id", "charge_id", "transfer_group"]}),
        (
            _("Times"),
            {"fields": ["created_at", "checkout_expires_at", "funded_at", "released_at", "payout_due_at", "refunded_at", "frozen_at"]},
        ),
    ]
    readonly_fields = [
        "public_id", "task", "offer", "customer", "contractor", "status", "status_before_freeze",
        "price", "service_fee", "commission", "total", "captured", "released", "refunded",
        "payment_intent_id", "charge_id", "transfer_group", "created_at", "checkout_expires_at", "funded_at",
        "released_at", "payout_due_at", "refunded_at", "frozen_at",
    ]
    inlines = [LedgerTransactionInline, RefundInline, PayoutInline, ChargebackInline]
    actions = ["refund_escrow", "split_escrow"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("payments.view_escrow") or request.user.has_perm("payments.change_escrow")

    def has_move_money_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_escrow")

    # --- amounts ---------------------------------------------------------------
    @admin.display(description=_("price"), ordering="price_cents")
    def price(self, escrow: Escrow) -> str:
        return _money(escrow.price_cents, escrow.currency)

    @admin.display(description=_("service fee"))
    def service_fee(self, escrow: Escrow) -> str:
        return _money(escrow.service_fee_cents, escrow.currency)

    @admin.display(description=_("commission"))
    def commission(self, escrow: Escrow) -> str:
        return _money(escrow.commission_cents, escrow.currency)

    @admin.display(description=_("total"), ordering="total_cents")
    def total(self, escrow: Escrow) -> str:
        return _money(escrow.total_cents, escrow.currency)

    @admin.display(description=_("captured"))
    def captured(self, escrow: Escrow) -> str:
        return _money(escrow.captured_cents, escrow.currency)

    @admin.display(description=_("released (gross)"))
    def released(self, escrow: Escrow) -> str:
        return _money(escrow.released_cents, escrow.currency)

    @admin.display(description=_("refunded"))
    def refunded(self, escrow: Escrow) -> str:
        return _money(escrow.refunded_cents, escrow.currency)

    # --- money actions -------------------------------------------------------------
    def _one(self, request: HttpRequest, queryset: QuerySet[Escrow]) -> Escrow | None:
        if queryset.count() != 1:
            self.message_user(
                request, gettext("Choose exactly one escrow: each refund or split is decided on its own."), messages.ERROR
            )
            return None
        return queryset.select_related("task", "customer", "contractor").get()

    def _confirm(self, request, escrow, form, *, action: str, title: str, consequence: str, status: int = 200):
        return TemplateResponse(
            request,
            "admin/payments/escrow/money_action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "escrow": escrow,
                "form": form,
                "action": action,
                "consequence": consequence,
                "amounts": {
                    "total": _money(escrow.total_cents, escrow.currency),
                    "captured": _money(escrow.captured_cents, escrow.currency),
                    "refunded": _money(escrow.refunded_cents, escrow.currency),
                    "price": _money(escrow.price_cents, escrow.currency),
                },
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
            status=status,
        )

    @admin.action(description=_("Refund to the customer (asks amount and reason)"), permissions=["move_money"])
    def refund_escrow(self, request: HttpRequest, queryset: QuerySet[Escrow]):
        escrow = self._one(request, queryset)
        if escrow is None:
            return None
        refundable = escrow.captured_cents - escrow.refunded_cents
        bound = "apply" in request.POST
        form = RefundForm(
            request.POST if bound else None,
            refundable_cents=refundable,
            initial={"amount": f"{refundable / 100:.2f}"},
        )
        consequence = gettext("Refund %(amount)s to %(customer)s; the contractor gets nothing.") % {
            "amount": _money(refundable, escrow.currency),
            "customer": escrow.customer.get_full_name() or escrow.customer.email,
        }
        if not form.is_valid():
            return self._confirm(
                request, escrow, form, action="refund_escrow", title=gettext("Refund"), consequence=consequence,
                status=400 if bound else 200,
            )
        try:
            services.escrow_refund(
                escrow, amount_cents=form.cleaned_data["amount"], reason=form.cleaned_data["reason"], by=request.user
            )
        except ApplicationError as exc:
            form.add_error("amount" if "amount_cents" in exc.fields else None, exc.message)
            return self._confirm(
                request, escrow, form, action="refund_escrow", title=gettext("Refund"), consequence=consequence,
                status=exc.status_code,
            )
        self.log_change(
            request, escrow, gettext("Refunded %(amount)s: %(reason)s")
            % {"amount": _money(form.cleaned_data["amount"], escrow.currency), "reason": form.cleaned_data["reason"]},
        )
        self.message_user(
            request,
            gettext("Refunded %(amount)s to %(customer)s.")
            % {"amount": _money(form.cleaned_data["amount"], escrow.currency), "customer": escrow.customer.get_full_name() or escrow.customer.email},
            messages.SUCCESS,
        )
        return None

    @admin.action(description=_("Split between contractor and customer (asks amount and reason)"), permissions=["move_money"])
    def split_escrow(self, request: HttpRequest, queryset: QuerySet[Escrow]):
        escrow = self._one(request, queryset)
        if escrow is None:
            return None
        bound = "apply" in request.POST
        form = SplitForm(request.POST if bound else None, price_cents=escrow.price_cents)
        consequence = gettext(
            "%(contractor)s gets the amount you enter, less the platform's commission on it; %(customer)s gets "
            "the rest of the %(captured)s they paid back (the service fee included)."
        ) % {
            "contractor": escrow.contractor.get_full_name() or escrow.contractor.email,
            "customer": escrow.customer.get_full_name() or escrow.customer.email,
            "captured": _money(escrow.captured_cents, escrow.currency),
        }
        if form.is_valid():
            cents = form.cleaned_data["contractor_amount"]
            commission = fees.commission_on(cents, price_cents=escrow.price_cents, commission_cents=escrow.commission_cents)
            consequence = gettext("%(contractor)s gets %(net)s (%(gross)s less %(fee)s commission); %(customer)s gets %(back)s back.") % {
                "contractor": escrow.contractor.get_full_name() or escrow.contractor.email,
                "net": _money(cents - commission, escrow.currency),
                "gross": _money(cents, escrow.currency),
                "fee": _money(commission, escrow.currency),
                "customer": escrow.customer.get_full_name() or escrow.customer.email,
                "back": _money(escrow.captured_cents - cents, escrow.currency),
            }
        if not form.is_valid():
            return self._confirm(
                request, escrow, form, action="split_escrow", title=gettext("Split"), consequence=consequence,
                status=400 if bound else 200,
            )
        try:
            services.escrow_split(
                escrow, contractor_cents=cents, reason=form.cleaned_data["reason"], by=request.user
            )
        except ApplicationError as exc:
            form.add_error("contractor_amount" if "contractor_cents" in exc.fields else None, exc.message)
            return self._confirm(
                request, escrow, form, action="split_escrow", title=gettext("Split"), consequence=consequence,
                status=exc.status_code,
            )
        self.log_change(request, escrow, gettext("Split: %(what)s Reason: %(reason)s") % {
            "what": consequence, "reason": form.cleaned_data["reason"]})
        self.message_user(request, gettext("Split done. %(what)s") % {"what": consequence}, messages.SUCCESS)
        return None


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["account", "amount", "currency"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerEntry]:
        return super().get_queryset(request).select_related("account__owner", "transaction")

    @admin.display(description=_("amount"))
    def amount(self, entry: LedgerEntry) -> str:
        return f"{entry.amount_cents / 100:+,.2f}"


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "escrow", "legs", "memo", "created_by"]
    list_filter = ["kind"]
    search_fields = ["idempotency_key", "memo", "escrow__task__title", "=escrow__public_id"]
    list_select_related = ["escrow", "escrow__task", "created_by"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = "created_at"
    inlines = [LedgerEntryInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerTransaction]:
        return super().get_queryset(request).prefetch_related("entries__account__owner")

    @admin.display(description=_("entries"))
    def legs(self, txn: LedgerTransaction) -> str:
        return _entries_html(txn)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "owner", "currency"]
    list_filter = ["code", "currency"]
    search_fields = ["owner__email"]
    list_select_related = ["owner"]


class FailedPayoutFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("failed", _("Transfer failed")), ("waiting", _("Available, payouts not set up"))]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(status=Payout.Status.FAILED)
        if self.value() == "waiting":
            return queryset.filter(status=Payout.Status.AVAILABLE)
        return queryset


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ["contractor", "amount", "status", "available_at", "attempts", "last_error", "next_attempt_at", "paid_at"]
    list_filter = ["status", FailedPayoutFilter]
    search_fields = ["contractor__email", "escrow__task__title", "transfer_id"]
    list_select_related = ["contractor", "escrow"]
    ordering = ["-created_at"]
    readonly_fields = [
        "public_id", "escrow", "contractor", "amount", "status", "available_at", "transfer_id", "attempts",
        "last_error", "next_attempt_at", "paid_at", "created_at",
    ]
    fields = readonly_fields
    actions = ["retry_now"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.change_payout")

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, payout: Payout) -> str:
        return _money(payout.amount_cents, payout.currency)

    @admin.action(description=_("Retry the transfer now"), permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Payout]):
        """Failed payouts only, through ``services.payout_attempt`` (its stored
        idempotency key: a transfer the gateway already made is not made twice)."""
        done = failed = skipped = 0
        for payout in queryset.order_by("pk"):
            if payout.status != Payout.Status.FAILED:
                skipped += 1
                continue
            # Skip the backoff wait: "now" is when the next attempt was due.
            now = max(timezone.now(), payout.next_attempt_at or timezone.now())
            result = services.payout_attempt(payout, now=now)
            if result.status == Payout.Status.PAID:
                done += 1
                self.log_change(request, result, gettext("Transfer retried by staff: paid"))
            else:
                failed += 1
                self.message_user(
                    request,
                    gettext("%(who)s: still not paid (%(error)s).") % {"who": payout.contractor, "error": result.last_error or result.get_status_display()},
                    messages.ERROR,
                )
        if done:
            self.message_user(request, gettext("%(count)d payout(s) paid.") % {"count": done}, messages.SUCCESS)
        if skipped:
            self.message_user(
                request, gettext("%(count)d payout(s) skipped: only failed transfers are retried.") % {"count": skipped},
                messages.WARNING,
            )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "escrow", "amount", "status", "reason", "gateway_refund_id"]
    list_filter = ["status"]
    search_fields = ["escrow__task__title", "escrow__customer__email", "gateway_refund_id"]
    list_select_related = ["escrow", "escrow__task"]
    ordering = ["-created_at"]

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, refund: Refund) -> str:
        return _money(refund.amount_cents, refund.currency)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "status", "attempts", "short_error"]
    list_filter = ["status", "type"]
    search_fields = ["=event_id", "type"]
    ordering = ["-received_at"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "event_id", "type", "status", "attempts", "error", "gateway_created_at", "received_at", "processed_at", "payload",
    ]
    fields = readonly_fields

    @admin.display(description=_("error"))
    def short_error(self, event: WebhookEvent) -> str:
        return (event.error or "")[:120]


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "finished_at", "checked", "difference_count"]
    ordering = ["-started_at"]
    readonly_fields = ["started_at", "finished_at", "checked", "difference_list"]
    fields = readonly_fields

    @admin.display(description=_("differences"))
    def difference_count(self, run: ReconciliationRun) -> str:
        count = len(run.differences or [])
        if count == 0:
            return gettext("none")
        return format_html('<strong style="color:#b91c1c">{}</strong>', count)

    @admin.display(description=_("differences"))
    def difference_list(self, run: ReconciliationRun) -> str:
        if not run.differences:
            return gettext("None: the ledger and the gateway agree.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li><code>{}</code></li>", ((str(d),) for d in run.differences)),
        )


@admin.register(GatewayOperation)
class GatewayOperationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "operation", "idempotency_key", "status", "attempts", "response_id", "error"]
    list_filter = ["status", "operation"]
    search_fields = ["idempotency_key", "response_id"]
    ordering = ["-created_at"]


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "gateway_account_id", "details_submitted", "payouts_enabled", "updated_at"]
    list_filter = ["payouts_enabled", "details_submitted"]
    search_fields = ["user__email", "gateway_account_id"]
    list_select_related = ["user"]


@admin.register(Chargeback)
class ChargebackAdmin(ReadOnlyAdmin):
    list_display = ["opened_at", "dispute_id", "escrow", "status", "gateway_status", "amount_cents", "closed_at", "note"]
    list_filter = ["status"]
    search_fields = ["dispute_id", "escrow__public_id"]
    list_select_related = ["escrow"]
    ordering = ["-opened_at"]


@admin.register(CardSetup)
class CardSetupAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "setup_intent_id", "status", "payment_method_id", "decided_at", "error"]
    list_filter = ["status"]
    search_fields = ["user__email", "setup_intent_id", "payment_method_id"]
    list_select_related = ["user"]
    ordering = ["-created_at"]
