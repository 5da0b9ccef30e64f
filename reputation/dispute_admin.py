"""The mediation screen in the Django admin.

One page per dispute with everything a mediator needs side by side: the
claim, all evidence (photos through the checked view), the chat between the
parties about the task, the proposals, the timeline and the money; and the
decision form (outcome, cents, written reasons), confirmed in a second step
that says what will happen, then made by ``reputation.disputes.dispute_decide``.
Nothing here writes a model: dispute rows are read-only in the admin.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError

from . import disputes
from . import disputes_selectors as selectors
from .dispute_models import MAX_TEXT_CHARS, Dispute


class DecideForm(forms.Form):
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), choices=Dispute.Outcome.choices)
    contractor_cents = forms.IntegerField(
        label=gettext_lazy("Contractor's part of the price, in cents (split only)"), required=False
    )
    reason = forms.CharField(
        label=gettext_lazy("Written reasons (both sides read them)"),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=MAX_TEXT_CHARS,
    )


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = ("task", "status", "reason", "opened_by", "against", "opened_at", "age", "next_deadline", "outcome")
    list_filter = ("status", "reason", "outcome")
    search_fields = ("task__title", "opened_by__email", "against__email", "public_id")
    ordering = ("status", "opened_at")
    change_form_template = "admin/reputation/dispute/mediation.html"
    change_list_template = "admin/reputation/dispute/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("task", "opened_by", "against")

    @admin.display(description=gettext_lazy("Age"))
    def age(self, obj: Dispute) -> str:
        delta = timezone.now() - obj.opened_at
        return _("%(d)dd %(h)dh") % {"d": delta.days, "h": delta.seconds // 3600}

    @admin.display(description=gettext_lazy("Next deadline"))
    def next_deadline(self, obj: Dispute):
        if obj.status == Dispute.Status.AWAITING_RESPONSE:
            return obj.response_due_at
        if obj.status == Dispute.Status.NEGOTIATING:
            return obj.mediation_due_at
        return None

    # Read-only: every change is a service call.
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return selectors.staff_may_view(request.user)

    def has_module_permission(self, request) -> bool:
        return selectors.staff_may_view(request.user)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "platform": selectors.platform_dispute_rate()}
        return super().changelist_view(request, extra_context=extra_context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="reputation_dispute_decide",
            ),
            *super().get_urls(),
        ]

    def _mediation_context(self, request: HttpRequest, dispute: Dispute) -> dict:
        return {
            "dispute": dispute,
            "task": dispute.task,
            "evidence": selectors.evidence(dispute),
            "proposals": selectors.proposals(dispute),
            "timeline": selectors.timeline(dispute),
            "chat": selectors.chat_history(dispute),
            "price_cents": disputes._price_cents(dispute),
            "total_cents": disputes._total_cents(dispute),
            "can_decide": disputes.can_decide(request.user) and dispute.status == Dispute.Status.MEDIATION,
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dispute = self.get_object(request, object_id)
        if dispute is None or not selectors.staff_may_view(request.user):
            raise Http404
        context = {**self._mediation_context(request, dispute), "form": DecideForm(), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _summary(self, dispute: Dispute, outcome: str, cents: int | None) -> str:
        price, total = disputes._price_cents(dispute), disputes._total_cents(dispute)
        customer = dispute.task.customer
        contractor = dispute.task.contractor
        if outcome == "refund":
            return _("Refund %(refund)s to %(customer)s; the contractor gets nothing.") % {
                "refund": disputes.money(total, dispute.currency),
                "customer": customer.get_full_name(),
            }
        if outcome == "release":
            return _("Pay %(contractor)s the full price, %(price)s (before the platform fee); no refund.") % {
                "contractor": contractor.get_full_name(),
                "price": disputes.money(price, dispute.currency),
            }
        return _("Pay %(contractor)s %(amount)s of the price (before the platform fee) and refund %(refund)s to %(customer)s.") % {
            "contractor": contractor.get_full_name(),
            "amount": disputes.money(cents or 0, dispute.currency),
            "refund": disputes.money(total - (cents or 0), dispute.currency),
            "customer": customer.get_full_name(),
        }

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        dispute = self.get_object(request, object_id)
        if dispute is None or not selectors.staff_may_view(request.user):
            raise Http404
        if not disputes.can_decide(request.user):
            raise DjangoPermissionDenied
        change_url = reverse("admin:reputation_dispute_change", args=[dispute.pk])
        if request.method != "POST":
            return redirect(change_url)
        form = DecideForm(request.POST)
        context = {
            **self.admin_site.each_context(request),
            **self._mediation_context(request, dispute),
            "opts": self.model._meta,
            "original": dispute,
            "title": _("Mediate: %(task)s") % {"task": dispute.task.title},
            "form": form,
        }
        if not form.is_valid():
            return TemplateResponse(request, self.change_form_template, context, status=400)
        data = form.cleaned_data
        if request.POST.get("confirm") != "yes":
            context["confirm_summary"] = self._summary(dispute, data["outcome"], data["contractor_cents"])
            return TemplateResponse(request, self.change_form_template, context)
        try:
            disputes.dispute_decide(
                dispute,
                by=request.user,
                outcome=data["outcome"],
                contractor_cents=data["contractor_cents"],
                reason=data["reason"],
            )
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
            return TemplateResponse(request, self.change_form_template, context, status=exc.status_code)
        messages.success(request, _("Decided. Both sides have been told and the money has moved."))
        return redirect(change_url)
