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
