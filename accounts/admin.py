"""Staff screens for people and contractor profiles.

Verification dates, roles and going live are decisions with consequences, so
they are read-only on the forms and change only through actions that call
the services (and are written to the admin log)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError

from . import admin_verification, selectors, services, verification
from .models import AuditEntry, AvailabilitySlot, ContractorProfile, IdentityDocument, User


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")

    def clean_email(self) -> str:
        # Emails are stored lower-case everywhere (sign-up, the manager); the
        # database refuses a case-only duplicate anyway.
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email already exists."))
        return email


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class EmailVerifiedFilter(admin.SimpleListFilter):
    title = _("email verified")
    parameter_name = "email_verified"

    def lookups(self, request, model_admin):
        return [("yes", _("Verified")), ("no", _("Not verified"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(email_verified_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(email_verified_at__isnull=True)
        return queryset


class OnboardedFilter(admin.SimpleListFilter):
    title = _("onboarded")
    parameter_name = "onboarded"

    def lookups(self, request, model_admin):
        return [("yes", _("Live")), ("no", _("Not finished"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(onboarded_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(onboarded_at__isnull=True)
        return queryset


class ContractorProfileInline(admin.StackedInline):
    model = ContractorProfile
    can_delete = False
    extra = 0
    max_num = 0  # created by the roles service, never here
    show_change_link = True
    fields = ["slug", "hourly_rate", "city", "state", "service_radius_km", "onboarded_at"]
    readonly_fields = fields

    @admin.display(description=_("hourly rate"))
    def hourly_rate(self, profile: ContractorProfile) -> str:
        if profile.hourly_rate_cents is None:
            return "—"
        return selectors.money_display(profile.hourly_rate_cents, profile.currency) + "/h"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ["-date_joined"]
    list_display = ["email", "full_name", "phone", "roles", "email_verified_at", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_customer", "is_contractor", "is_staff", "is_active", EmailVerifiedFilter, "is_superuser"]
    search_fields = ["email", "full_name", "phone"]
    readonly_fields = [
        "public_id",
        "is_customer",
        "is_contractor",
        "email_verified_at",
        "phone_verified_at",
        "id_verified_at",
        "photo_preview",
        "postal_code",
        "city",
        "state",
        "last_login",
        "date_joined",
    ]
    fieldsets = [
        (None, {"fields": ["email", "password", "public_id"]}),
        (_("Person"), {"fields": ["full_name", "phone", "photo_preview", "postal_code", "city", "state"]}),
        (_("Roles (change with the actions)"), {"fields": ["is_customer", "is_contractor"]}),
        (_("Verification (change with the actions)"), {"fields": ["email_verified_at", "phone_verified_at", "id_verified_at"]}),
        (_("Access"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]}),
    ]
    inlines = [ContractorProfileInline]
    actions = ["mark_email_verified", "mark_id_verified", "add_contractor_role"]

    def get_inlines(self, request: HttpRequest, obj=None):
        # A new account has no work profile; the roles action creates one.
        return self.inlines if obj is not None else []

    @admin.display(description=_("roles"))
    def roles(self, user: User) -> str:
        return str(user.roles_label)

    @admin.display(description=_("photo"))
    def photo_preview(self, user: User) -> str:
        url = selectors.user_photo_url(user)
        if not url:
            return "—"
        return format_html('<img src="{}" alt="" width="96" height="96" style="border-radius:50%">', url)

    def _run(self, request: HttpRequest, queryset: QuerySet[User], service, done: str, **kwargs) -> None:
        count = 0
        for user in queryset.order_by("pk"):
            try:
                service(user=user, **kwargs)
            except ApplicationError as exc:
                self.message_user(request, f"{user.email}: {exc.message}", messages.ERROR)
                continue
            self.log_change(request, user, done)
            count += 1
        self.message_user(request, _("%(done)s: %(count)d account(s).") % {"done": done, "count": count}, messages.SUCCESS)

    @admin.action(description=_("Mark email as verified (staff checked it)"))
    def mark_email_verified(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._run(request, queryset, services.user_mark_email_verified, str(_("Email marked verified")))

    @admin.action(description=_("Mark ID as verified (staff checked a document)"))
    def mark_id_verified(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._run(request, queryset, services.user_mark_id_verified, str(_("ID marked verified")))

    @admin.action(description=_("Add the contractor role (creates a work profile)"))
    def add_contractor_role(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        def add_role(*, user: User) -> User:
            return services.user_set_roles(user=user, is_customer=user.is_customer, is_contractor=True)

        self._run(request, queryset, add_role, str(_("Contractor role added")))


class AvailabilitySlotInline(admin.TabularInline):
    model = AvailabilitySlot
    extra = 0
    fields = ["weekday", "start_time", "end_time"]
    readonly_fields = fields
    can_delete = False
    max_num = 0  # weekly hours are the contractor's to set, through the service


@admin.register(ContractorProfile)
class ContractorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "slug", "city", "state", "hourly_rate", "service_radius_km", "onboarded_at"]
    list_filter = [OnboardedFilter, "trades", "state"]
    search_fields = ["user__email", "user__full_name", "slug", "city", "postal_code"]
    list_select_related = ["user"]
    readonly_fields = [
        "user",
        "slug",
        "hourly_rate",
        "address",
        "postal_code",
        "city",
        "state",
        "latitude",
        "longitude",
        "onboarded_at",
        "created_at",
        "updated_at",
    ]
    fields = [
        "user",
        "slug",
        "bio",
        "trades",
        "hourly_rate",
        "address",
        "postal_code",
        "city",
        "state",
        "latitude",
        "longitude",
        "service_radius_km",
        "onboarded_at",
        "created_at",
        "updated_at",
    ]
    filter_horizontal = ["trades"]
    inlines = [AvailabilitySlotInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A profile exists because its user became a contractor (a service).
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Read-only evidence screen: the contractor edits their own profile.
        return False

    @admin.display(description=_("hourly rate"), ordering="hourly_rate_cents")
    def hourly_rate(self, profile: ContractorProfile) -> str:
        if profile.hourly_rate_cents is None:
            return "—"
        return selectors.money_display(profile.hourly_rate_cents, profile.currency) + "/h"


# --- Verification: identity documents, the dashboard, the audit log ----------


@admin.register(IdentityDocument)
class IdentityDocumentAdmin(admin.ModelAdmin):
    """The record of ID submissions (read-only; decisions are made on the
    verification dashboard, whose URLs hang off this admin)."""

    change_list_template = "admin/accounts/identitydocument/change_list.html"
    list_display = ["user", "status", "submitted_at", "reviewed_by", "reviewed_at", "delete_after", "files_deleted_at"]
    list_filter = ["status"]
    search_fields = ["user__email", "user__full_name"]
    list_select_related = ["user", "reviewed_by"]
    fields = ["user", "status", "submitted_at", "reviewed_by", "reviewed_at", "reason", "delete_after", "files_deleted_at"]
    readonly_fields = fields

    def _reviewer(self, request: HttpRequest) -> bool:
        return verification.id_reviewer(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._reviewer(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._reviewer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        def wrap(view):
            def wrapper(request, *args, **kwargs):
                return view(request, self, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        custom = [
            path("verification/", wrap(admin_verification.dashboard), name="accounts_verification"),
            path("verification/id/<uuid:public_id>/", wrap(admin_verification.id_review), name="accounts_verification_id"),
            path("verification/photo/<int:pk>/", wrap(admin_verification.photo_review), name="accounts_verification_photo"),
        ]
        return custom + super().get_urls()


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Append-only: staff read it, nobody adds, edits or deletes here."""

    list_display = ["created_at", "actor_repr", "action", "subject_repr", "reason"]
    list_filter = ["action"]
    search_fields = ["actor_repr", "action", "subject_repr", "reason", "subject_id"]
    date_hierarchy = "created_at"
    fields = ["created_at", "actor", "actor_repr", "action", "subject_type", "subject_id", "subject_repr", "reason", "data"]
    readonly_fields = fields

    # Reviewers read the log behind the dashboard's "recent decisions".
    def has_module_permission(self, request: HttpRequest) -> bool:
        return verification.id_reviewer(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return verification.id_reviewer(request.user) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
