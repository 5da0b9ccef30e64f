"""Forms for the accounts pages. They parse and shape input; the rules about
what may be stored live in ``accounts.services`` and come back as
``ApplicationError.fields``, which ``add_service_errors`` puts next to the
right field."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext_lazy as _

from core.forms import add_service_errors  # noqa: F401 - used by the views
from tasks.models import Category

from . import services
from .models import AvailabilitySlot, ContractorProfile, User


class SignupExtraForm(forms.Form):
    """Extra fields on allauth's sign-up form: name and which side you are on."""

    ROLE_CHOICES = [
        ("customer", _("I need things done (customer)")),
        ("contractor", _("I want to find work (contractor)")),
        ("both", _("Both")),
    ]
    full_name = forms.CharField(label=_("Full name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    role = forms.ChoiceField(label=_("I am here to"), choices=ROLE_CHOICES, widget=forms.RadioSelect, initial="customer")

    def signup(self, request, user) -> None:
        role = self.cleaned_data["role"]
        services.user_update_profile(user=user, full_name=self.cleaned_data["full_name"])
        services.user_set_roles(
            user=user, is_customer=role in ("customer", "both"), is_contractor=role in ("contractor", "both")
        )


_AMOUNT_RE = re.compile(r"-?\d{1,12}(?:\.\d*)?|-?\.\d+")


def parse_dollars_to_cents(text: str) -> int:
    """'85', '85.5', '$1,085.50' -> integer cents, exactly (Decimal, no float).

    Refuses what is not a plain amount, negatives and more than two decimal
    places rather than rounding someone's price silently. The allowed range
    is the service's rule, not checked here."""
    raw = (text or "").strip().replace("$", "").replace(",", "").replace(" ", "")
    if not raw or not _AMOUNT_RE.fullmatch(raw):
        raise forms.ValidationError(_("Enter an amount in dollars, like 85 or 85.50."), code="invalid")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above already refuses these
        raise forms.ValidationError(_("Enter an amount in dollars, like 85 or 85.50."), code="invalid") from exc
    if amount < 0:
        raise forms.ValidationError(_("The rate cannot be negative."), code="negative")
    if amount.as_tuple().exponent < -2:
        raise forms.ValidationError(_("Use at most two decimal places (cents)."), code="too_precise")
    # At most two decimals, so this product is an exact whole number of cents.
    return int(amount * 100)


def format_cents_as_dollars(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{Decimal(cents) / 100:.2f}"


class OnboardingForm(forms.Form):
    """Everything a contractor offers, on one page."""

    group_fields = ("availability",)

    trades = forms.ModelMultipleChoiceField(
        label=_("Your trades"),
        queryset=Category.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one trade.")},
        help_text=_("Pick every kind of job you take. You can change this later."),
    )
    bio = forms.CharField(
        label=_("About you"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Experience, licences, what you are good at. Customers read this before booking."),
    )
    hourly_rate = forms.CharField(
        label=_("Hourly rate (US dollars)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "85.00"}),
        help_text=_("What you charge per hour, e.g. 85 or 85.50."),
    )
    location = forms.CharField(
        label=_("Where you work from: ZIP code or address"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
        help_text=_("A 5-digit ZIP code, or a street address ending with one. Only your city is shown publicly."),
    )
    service_radius_km = forms.IntegerField(
        label=_("How far you travel (km)"),
        widget=forms.NumberInput(
            attrs={"inputmode": "numeric", "min": ContractorProfile.MIN_RADIUS_KM, "max": ContractorProfile.MAX_RADIUS_KM}
        ),
        help_text=_("Between 1 and 160 km from your ZIP code."),
    )
    latitude = forms.FloatField(required=False, widget=forms.HiddenInput)
    longitude = forms.FloatField(required=False, widget=forms.HiddenInput)
    photo = forms.FileField(
        label=_("Profile photo"),
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/*"}),
        help_text=_("A clear photo of your face. JPEG, PNG or WebP; location data is removed."),
    )

    def __init__(self, *args, profile: ContractorProfile | None = None, **kwargs) -> None:
        if profile is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = self.initial_from(profile)
        super().__init__(*args, **kwargs)
        self.fields["trades"].queryset = Category.objects.filter(is_active=True).order_by("sort_order", "name")
        for day in AvailabilitySlot.Weekday:
            self.fields[f"day_{day.value}"] = forms.BooleanField(label=day.label, required=False)
            self.fields[f"day_{day.value}_start"] = forms.TimeField(
                label=_("%(day)s from") % {"day": day.label},
                required=False,
                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            )
            self.fields[f"day_{day.value}_end"] = forms.TimeField(
                label=_("%(day)s until") % {"day": day.label},
                required=False,
                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            )

    @staticmethod
    def initial_from(profile: ContractorProfile) -> dict:
        initial: dict = {
            "trades": list(profile.trades.values_list("pk", flat=True)),
            "bio": profile.bio,
            "hourly_rate": format_cents_as_dollars(profile.hourly_rate_cents),
            "location": profile.address or profile.postal_code,
            "service_radius_km": profile.service_radius_km,
        }
        slots = {}
        for slot in profile.availability.all():
            slots.setdefault(slot.weekday, slot)
        for day in AvailabilitySlot.Weekday:
            slot = slots.get(day.value)
            initial[f"day_{day.value}"] = slot is not None
            initial[f"day_{day.value}_start"] = slot.start_time if slot else dt.time(8)
            initial[f"day_{day.value}_end"] = slot.end_time if slot else dt.time(17)
        return initial

    def add_group_error(self, name: str, messages: list[str]) -> None:
        # A fieldset-level error (availability as a whole) that has no single
        # input to sit under; it still makes the form invalid.
        self._errors.setdefault(name, self.error_class(renderer=self.renderer)).extend(messages)
        self.cleaned_data.pop(name, None)

    @property
    def days(self) -> list[dict]:
        """The weekly grid for the template: one row per weekday."""
        return [
            {
                "label": day.label,
                "on": self[f"day_{day.value}"],
                "start": self[f"day_{day.value}_start"],
                "end": self[f"day_{day.value}_end"],
            }
            for day in AvailabilitySlot.Weekday
        ]

    def clean_hourly_rate(self) -> int:
        return parse_dollars_to_cents(self.cleaned_data["hourly_rate"])

    def clean(self) -> dict:
        cleaned = super().clean()
        windows: list[services.AvailabilityWindow] = []
        for day in AvailabilitySlot.Weekday:
            if not cleaned.get(f"day_{day.value}"):
                continue
            start, end = cleaned.get(f"day_{day.value}_start"), cleaned.get(f"day_{day.value}_end")
            if start is None and f"day_{day.value}_start" not in self.errors:
                self.add_error(f"day_{day.value}_start", _("Enter the time you start."))
            if end is None and f"day_{day.value}_end" not in self.errors:
                self.add_error(f"day_{day.value}_end", _("Enter the time you finish."))
            if start is None or end is None:
                continue
            if end <= start:
                self.add_error(f"day_{day.value}_end", _("The end time must be after the start time."))
                continue
            windows.append(services.AvailabilityWindow(weekday=day.value, start_time=start, end_time=end))
        if not any(cleaned.get(f"day_{day.value}") for day in AvailabilitySlot.Weekday):
            self.add_group_error("availability", [_("Tick at least one day you work.")])
        cleaned["availability"] = windows
        lat, lon = cleaned.get("latitude"), cleaned.get("longitude")
        if (lat is None) != (lon is None):
            cleaned["latitude"] = cleaned["longitude"] = None
        return cleaned


class ProfileForm(forms.Form):
    """The personal details every user has."""

    full_name = forms.CharField(label=_("Full name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    phone = forms.CharField(
        label=_("Phone"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        help_text=_("Used for job updates by text. Changing it removes the phone badge until it is verified again."),
    )
    postal_code = forms.CharField(
        label=_("ZIP code"),
        required=False,
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
        help_text=_("Shows your city and state; never your street."),
    )
    photo = forms.FileField(
        label=_("Profile photo"),
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/*"}),
        help_text=_("JPEG, PNG or WebP; location data is removed."),
    )

    @staticmethod
    def initial_from(user: User) -> dict:
        return {"full_name": user.full_name, "phone": user.phone, "postal_code": user.postal_code}


class RolesForm(forms.Form):
    """Which sides of the marketplace the account uses."""

    is_customer = forms.BooleanField(label=_("I hire people for jobs (customer)"), required=False)
    is_contractor = forms.BooleanField(label=_("I do jobs for people (contractor)"), required=False)
