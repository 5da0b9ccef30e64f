"""Admin for reviews: the report queue (open first, with age), and hiding a
review or dismissing a report, each asking for a reason and going through
reputation.services (audited there). Nothing is edited by hand here."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError

from . import services
from .models import Review, ReviewReport, TrustScore, UserAchievement


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (shown in the audit log)"), min_length=5, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


def _with_reason(modeladmin, request, queryset, *, title: str, consequence: str, apply):
    """An action that shows what will happen and asks for a reason first."""
    if "confirm" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            done = failed = 0
            for obj in queryset:
                try:
                    apply(obj, request.user, form.cleaned_data["reason"])
                    done += 1
                except ApplicationError as exc:
                    failed += 1
                    modeladmin.message_user(request, f"{obj}: {exc.message}", messages.WARNING)
            modeladmin.message_user(request, _("%(n)d done, %(f)d refused.") % {"n": done, "f": failed})
            return None
    else:
        form = ReasonForm()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "consequence": consequence,
        "objects": list(queryset),
        "form": form,
        "action": request.POST.get("action"),
        "opts": modeladmin.model._meta,
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/reputation/confirm_with_reason.html", context)


@admin.register(ReviewReport)
class ReviewReportAdmin(admin.ModelAdmin):
    list_display = ("review_excerpt", "reason", "status", "reporter", "age", "open_reports_on_review")
    list_filter = ("status", "reason")
    search_fields = ("review__text", "note", "reporter__email")
    ordering = ("status", "created_at")
    readonly_fields = (
        "review", "review_text", "reporter", "reason", "note", "status", "created_at", "decided_by", "decided_at",
        "decision_reason",
    )
    actions = ["hide_reviews", "dismiss_reports"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("review", "reporter", "review__reviewer", "review__reviewee")
            .annotate(open_on_review=Count("review__reports", filter=Q(review__reports__status="open")))
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Review"))
    def review_excerpt(self, report):
        r = report.review
        return f"{r.stars}★ {r.reviewer.public_name} → {r.reviewee.public_name}: {r.text[:80]}"

    @admin.display(description=_("Full review"))
    def review_text(self, report):
        return report.review.text

    @admin.display(description=_("Waiting"))
    def age(self, report):
        return timesince(report.created_at, timezone.now()) if report.status == "open" else "—"

    @admin.display(description=_("Open reports on it"))
    def open_reports_on_review(self, report):
        return report.open_on_review

    @admin.action(description=_("Hide the reported reviews (asks for a reason)"), permissions=["change"])
    def hide_reviews(self, request, queryset):
        reviews = Review.objects.filter(pk__in=queryset.values("review_id"), hidden_at__isnull=True)
        return _with_reason(
            self, request, reviews,
            title=_("Hide reviews"),
            consequence=_("These reviews disappear from profiles for everyone; their open reports close as hidden."),
            apply=lambda review, user, reason: services.review_hide(review=review, by=user, reason=reason),
        )

    @admin.action(description=_("Dismiss the reports (asks for a reason)"), permissions=["change"])
    def dismiss_reports(self, request, queryset):
        return _with_reason(
            self, request, queryset.filter(status=ReviewReport.Status.OPEN),
            title=_("Dismiss reports"),
            consequence=_("The reviews stay published; the reports close as dismissed."),
            apply=lambda report, user, reason: services.review_report_dismiss(report=report, by=user, reason=reason),
        )


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("task", "role", "reviewer", "reviewee", "stars", "submitted_at", "published_at", "hidden_at")
    list_filter = ("role", "stars", ("published_at", admin.EmptyFieldListFilter), ("hidden_at", admin.EmptyFieldListFilter))
    search_fields = ("text", "reviewer__email", "reviewee__email", "task__title")
    actions = ["hide"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Hide these reviews (asks for a reason)"), permissions=["change"])
    def hide(self, request, queryset):
        return _with_reason(
            self, request, queryset.filter(hidden_at__isnull=True),
            title=_("Hide reviews"),
            consequence=_("These reviews disappear from profiles for everyone."),
            apply=lambda review, user, reason: services.review_hide(review=review, by=user, reason=reason),
        )


@admin.register(TrustScore)
class TrustScoreAdmin(admin.ModelAdmin):
    list_display = ("user", "score", "customer_score", "computed_at")
    search_fields = ("user__email",)
    ordering = ("-score",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(UserAchievement)
class UserAchievementAdmin(admin.ModelAdmin):
    list_display = ("user", "code", "earned_at")
    list_filter = ("code",)
    search_fields = ("user__email",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False
