from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("is_customer", False)
        return self._create_user(email, password, **extra)


def profile_photo_path(instance: User, filename: str) -> str:
    # The stored name is ours, never the uploader's: no path tricks, no PII.
    return f"profile-photos/{instance.public_id}/{uuid.uuid4().hex}.jpg"


class User(AbstractBaseUser, PermissionsMixin):
    """A person on the marketplace. Email is the login; roles may combine."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_customer = models.BooleanField(_("customer"), default=True, help_text=_("Posts tasks and hires."))
    is_contractor = models.BooleanField(_("contractor"), default=False, help_text=_("Offers on tasks and does the work."))
    photo = models.FileField(_("profile photo"), upload_to=profile_photo_path, blank=True, max_length=200)
    postal_code = models.CharField(_("ZIP code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=80, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)
    phone_verified_at = models.DateTimeField(_("phone verified at"), null=True, blank=True)
    id_verified_at = models.DateTimeField(_("ID verified at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff"), default=False)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    @property
    def public_name(self) -> str:
        """The name shown to other people: never the email address."""
        return self.full_name or str(_("BittieTasks member"))

    def get_short_name(self) -> str:
        return (self.full_name.split() or [self.email])[0]

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def roles_label(self) -> str:
        if self.is_customer and self.is_contractor:
            return _("Customer and contractor")
        if self.is_contractor:
            return _("Contractor")
        if self.is_customer:
            return _("Customer")
        return _("Staff") if self.is_staff else ""


class ContractorProfile(models.Model):
    """What a contractor offers: trades, rate, where and when they work."""

    MIN_RADIUS_KM = 1
    MAX_RADIUS_KM = 160
    MAX_HOURLY_RATE_CENTS = 100_000  # $1,000.00 an hour

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="contractor_profile")
    slug = models.SlugField(_("public profile address"), max_length=80, unique=True)
    bio = models.TextField(_("about you"), max_length=2000, blank=True)
    trades = models.ManyToManyField("tasks.Category", related_name="contractors", blank=True, verbose_name=_("trades"))
    hourly_rate_cents = models.BigIntegerField(_("hourly rate (cents)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    address = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("ZIP code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=80, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    latitude = models.FloatField(_("latitude"), null=True, blank=True)
    longitude = models.FloatField(_("longitude"), null=True, blank=True)
    service_radius_km = models.PositiveSmallIntegerField(_("service radius (km)"), default=25)
    onboarded_at = models.DateTimeField(_("onboarding finished at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contractor profile")
        verbose_name_plural = _("contractor profiles")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hourly_rate_cents__isnull=True)
                | models.Q(hourly_rate_cents__gt=0, hourly_rate_cents__lte=100_000),
                name="contractor_rate_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(service_radius_km__gte=1, service_radius_km__lte=160),
                name="contractor_radius_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(latitude__isnull=True, longitude__isnull=True)
                | models.Q(latitude__gte=-90, latitude__lte=90, longitude__gte=-180, longitude__lte=180),
                name="contractor_coordinates_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.slug})"

    @property
    def is_onboarded(self) -> bool:
        return self.onboarded_at is not None


class AvailabilitySlot(models.Model):
    """A weekly window in which the contractor takes work, in their local time."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    profile = models.ForeignKey(ContractorProfile, on_delete=models.CASCADE, related_name="availability")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end_time__gt=models.F("start_time")), name="availability_end_after_start"),
            models.CheckConstraint(condition=models.Q(weekday__gte=0, weekday__lte=6), name="availability_weekday_valid"),
            models.UniqueConstraint(fields=["profile", "weekday", "start_time"], name="availability_unique_start"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}-{self.end_time:%H:%M}"


# --- Verification: phone codes, identity documents, the audit log ------------


class PhoneVerification(models.Model):
    """The one open phone challenge of a user: a code sent by SMS to ``phone``.

    Only a keyed hash of the code is kept (``accounts.verification``), so a
    database dump gives nobody a usable code. A new send replaces the code,
    resets the attempts and restarts the 10-minute clock; the cooldown and
    the daily cap bound how many codes (and so guesses) anyone gets.
    """

    CODE_TTL_SECONDS = 10 * 60
    MAX_ATTEMPTS = 5
    RESEND_COOLDOWN_SECONDS = 60
    MAX_SENDS_PER_DAY = 5

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="phone_verification")
    phone = models.CharField(_("phone (E.164)"), max_length=16)
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField()
    sends_day = models.DateField()
    sends_today = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("phone verification")
        verbose_name_plural = _("phone verifications")
        constraints = [
            models.CheckConstraint(condition=models.Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"), name="phone_verification_e164"),
            models.CheckConstraint(condition=models.Q(attempts__lte=5), name="phone_verification_attempts_capped"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.phone}"


def id_document_path(instance: IdentityDocument, filename: str) -> str:
    # Our name, never the uploader's; one folder per person so the retention
    # job and a subject-access request can find everything.
    return f"id-documents/{instance.user.public_id}/{uuid.uuid4().hex}.jpg"


class IdentityDocument(models.Model):
    """An ID document and a selfie a contractor sent for staff to check.

    The files live in private storage (no public URL; only staff with
    ``accounts.review_verifications`` can open them through a view) and are
    deleted by a beat job once ``delete_after`` passes: the decision plus
    ``ID_DOCUMENT_RETENTION_DAYS``. The row stays as the record of the decision.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="identity_documents")
    document = models.FileField(_("ID document"), upload_to=id_document_path, blank=True, max_length=200)
    selfie = models.FileField(_("selfie"), upload_to=id_document_path, blank=True, max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    submitted_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("reviewed by")
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(_("reason"), max_length=1000, blank=True)
    delete_after = models.DateTimeField(null=True, blank=True)
    files_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identity document")
        verbose_name_plural = _("identity documents")
        ordering = ["submitted_at"]
        permissions = [
            ("review_verifications", _("Can review IDs and photo verdicts in the verification dashboard")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(status="pending"), name="identity_document_one_pending"
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending", reviewed_at__isnull=True, delete_after__isnull=True)
                | (
                    models.Q(status__in=["approved", "rejected"], reviewed_at__isnull=False, delete_after__isnull=False)
                    & ~models.Q(reason="")
                ),
                name="identity_document_decision_complete",
            ),
        ]
        indexes = [
            models.Index(fields=["delete_after"], condition=models.Q(files_deleted_at__isnull=True), name="id_doc_retention_due"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_status_display()})"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")


class AuditEntry(models.Model):
    """One decision staff (or the system) took: who, when, what, about what, why.

    Append-only three times over: ``save()`` refuses to update, ``delete()``
    and the queryset's bulk ``update()``/``delete()`` refuse, and a PostgreSQL
    trigger (migration 0002) refuses UPDATE and DELETE from anywhere else.
    """

    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_repr = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    subject_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    subject_id = models.CharField(max_length=64, blank=True)
    subject_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_repr or 'system'} {self.action} {self.subject_repr}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("The audit log is append-only: an entry can't be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only: an entry can't be deleted.")
