"""Staff screens for tasks, offers and their history.

Everything a task goes through (status, assignment, prices, photos, events) is
written by ``tasks.services``, so these screens are read-only: staff change a
task's state only with actions that call the services, which lock the row,
check the transition table, write the event and notify people. Task events are
append-only and can't be added, edited or deleted here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.selectors import money_display
from core.errors import ApplicationError

from . import services
from .models import Category, CheckIn, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto
from .policies import MAX_REASON_CHARS, MIN_REASON_CHARS


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "sort_order"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


def photo_thumb_url(photo: TaskPhoto) -> str:
    # Served by the pages' photo view, which checks photo_can_view (staff may).
    return f"/tasks/photos/{photo.public_id}/thumb"


class ReadOnlyInline(admin.TabularInline):
    """History shown on the task: never added, changed or deleted from here."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields

    # Each get_queryset selects "task" too: the tabular inline prints every
    # row's str(), which names its task (one query per row otherwise).

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class TaskPhotoInline(ReadOnlyInline):
    model = TaskPhoto
    fields = ["thumb", "kind", "uploaded_by", "size", "taken_at", "taken_place", "content_hash", "created_at"]
    verbose_name_plural = _("photos")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskPhoto]:
        return super().get_queryset(request).select_related("task", "uploaded_by")

    @admin.display(description=_("photo"))
    def thumb(self, photo: TaskPhoto) -> str:
        url = photo_thumb_url(photo)
        return format_html('<a href="{}"><img src="{}" alt="" height="80" loading="lazy"></a>', url, url)

    @admin.display(description=_("size"))
    def size(self, photo: TaskPhoto) -> str:
        return f"{photo.width} × {photo.height}"

    @admin.display(description=_("taken at (camera)"))
    def taken_place(self, photo: TaskPhoto) -> str:
        if photo.taken_latitude is None:
            return "—"
        return f"{photo.taken_latitude:.5f}, {photo.taken_longitude:.5f}"


class OfferInline(ReadOnlyInline):
    model = Offer
    fields = ["contractor", "price", "status", "is_instant", "proposed_start", "message", "created_at", "decided_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Offer]:
        return super().get_queryset(request).select_related("task", "contractor")

    @admin.display(description=_("price"))
    def price(self, offer: Offer) -> str:
        return money_display(offer.price_cents, offer.currency)


class TaskEventInline(ReadOnlyInline):
    model = TaskEvent
    fields = ["created_at", "kind", "actor", "from_status", "to_status", "data"]
    verbose_name_plural = _("timeline")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskEvent]:
        return super().get_queryset(request).select_related("task", "actor")


class CheckInInline(ReadOnlyInline):
    model = CheckIn
    fields = ["at", "contractor", "latitude", "longitude", "accuracy_m", "distance_m"]
    verbose_name_plural = _("check-ins")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CheckIn]:
        return super().get_queryset(request).select_related("task", "contractor")


class ProofInline(ReadOnlyInline):
    model = ProofSubmission
    fields = ["submitted_at", "contractor", "note", "decision", "decision_reason", "decided_at"]
    verbose_name_plural = _("proof of work")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProofSubmission]:
        return super().get_queryset(request).select_related("task", "contractor")


class CancelTasksForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (the customer and contractor see it)"),
        min_length=MIN_REASON_CHARS,
        max_length=MAX_REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "customer", "contractor", "category", "city", "budget", "created_at"]
    list_filter = ["status", "category", "urgency", "budget_type", "instant_book"]
    search_fields = ["title", "description", "customer__email", "contractor__email", "postal_code"]
    list_select_related = ["customer", "contractor", "category"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    show_full_result_count = False  # one COUNT fewer on big tables
    fieldsets = [
        (None, {"fields": ["public_id", "title", "description", "category", "status"]}),
        (_("People"), {"fields": ["customer", "contractor", "agreed_price"]}),
        (
            _("Place"),
            {"fields": ["address", "postal_code", "city", "state", "latitude", "longitude", "approx_latitude", "approx_longitude"]},
        ),
        (_("Budget"), {"fields": ["budget_type", "budget", "estimated_hours", "instant_book"]}),
        (_("Schedule"), {"fields": ["schedule_type", "window_start", "window_end", "deadline", "urgency"]}),
        (
            _("Lifecycle"),
            {
                "fields": [
                    "published_at",
                    "assigned_at",
                    "started_at",
                    "submitted_at",
                    "completed_at",
                    "auto_approve_at",
                    "reminder_24h_sent_at",
                    "reminder_48h_sent_at",
                    "changes_requested_count",
                    "cancelled_at",
                    "cancelled_by",
                    "cancel_reason",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = ["public_id", "budget", "agreed_price", "created_at", "updated_at"]
    inlines = [TaskPhotoInline, OfferInline, CheckInInline, ProofInline, TaskEventInline]
    actions = ["cancel_tasks"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return super().get_queryset(request).select_related("customer", "contractor", "category", "cancelled_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers post tasks (task_create checks photos, geocodes, validates).
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Read-only: every field is owned by a service. State changes are actions.
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # A task has money and history attached: cancel it, never delete it.
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.change_task")

    @admin.action(description=_("Cancel selected tasks (asks for a reason)"), permissions=["cancel"])
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]):
        """Ask for one reason, then cancel each task through services.task_cancel.

        Each task is cancelled in its own transaction (the service's), so one
        that has moved on (completed, already cancelled) is reported and the
        others still go through.
        """
        form = CancelTasksForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/tasks/task/cancel_tasks.html",
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Cancel tasks"),
                    "opts": self.model._meta,
                    "tasks": queryset,
                    "form": form,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        reason = form.cleaned_data["reason"]
        cancelled = 0
        for task in queryset.order_by("pk"):
            try:
                services.task_cancel(task, by=request.user, reason=reason)
            except ApplicationError as exc:
                self.message_user(request, f"{task.title}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, task, gettext("Cancelled: %(reason)s") % {"reason": reason})
            cancelled += 1
        if cancelled:
            self.message_user(
                request, gettext("Cancelled %(count)d task(s).") % {"count": cancelled}, messages.SUCCESS
            )
        return None

    @admin.display(description=_("budget"), ordering="budget_cents")
    def budget(self, task: Task) -> str:
        amount = money_display(task.budget_cents, task.currency)
        if task.budget_type == Task.BudgetType.HOURLY:
            return gettext("%(amount)s/h × %(hours)s h") % {"amount": amount, "hours": task.estimated_hours}
        return amount

    @admin.display(description=_("agreed price"))
    def agreed_price(self, task: Task) -> str:
        if task.agreed_price_cents is None:
            return "—"
        return money_display(task.agreed_price_cents, task.currency)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = ["task", "contractor", "price", "status", "is_instant", "proposed_start", "created_at"]
    list_filter = ["status", "is_instant"]
    search_fields = ["task__title", "contractor__email", "task__customer__email"]
    list_select_related = ["task", "contractor"]
    ordering = ["-created_at"]
    show_full_result_count = False

    @admin.display(description=_("price"), ordering="price_cents")
    def price(self, offer: Offer) -> str:
        return money_display(offer.price_cents, offer.currency)


@admin.register(TaskEvent)
class TaskEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "task", "kind", "actor", "from_status", "to_status"]
    list_filter = ["kind"]
    search_fields = ["task__title", "actor__email"]
    list_select_related = ["task", "actor"]
    ordering = ["-created_at", "-id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
