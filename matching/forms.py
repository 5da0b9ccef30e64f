"""Forms for the matching pages: they parse input; the rules (caps, quiet
hours, time-off bounds, what an .ics may hold) live in ``matching.services``
and come back as ``ApplicationError.fields`` next to the right field."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from core.forms import add_service_errors  # noqa: F401 - re-exported for the views

from .services import MAX_DAILY_CAP, SUMMARY_MAX

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
# The zones most of our users live in first, then every other one.
COMMON_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
]


def time_zone_choices() -> list[tuple[str, str]]:
    others = sorted(
        z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")) and z not in COMMON_ZONES
    )
    return [(z, z.replace("_", " ")) for z in [*COMMON_ZONES, "UTC", *others]]


class AlertSettingsForm(forms.Form):
    enabled = forms.BooleanField(label=_("Tell me about new jobs that match me"), required=False)
    daily_cap = forms.IntegerField(
        label=_("At most this many alerts a day"),
        min_value=1,
        max_value=MAX_DAILY_CAP,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "max": MAX_DAILY_CAP}),
    )
    quiet_start = forms.TimeField(
        label=_("Quiet from"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    quiet_end = forms.TimeField(
        label=_("Quiet until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_("No alerts between these times (your time zone). Leave both empty for none."),
    )
    time_zone = forms.ChoiceField(label=_("Your time zone"), choices=())

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = time_zone_choices()


def _datetime_local(**attrs) -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local", **attrs}, format=DATETIME_LOCAL)


class TimeOffForm(forms.Form):
    """Times are read in the contractor's time zone (the view activates it)."""

    starts_at = forms.DateTimeField(label=_("From"), widget=_datetime_local(), input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"])
    ends_at = forms.DateTimeField(label=_("Until"), widget=_datetime_local(), input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M"])
    summary = forms.CharField(
        label=_("Note (only you see it)"),
        required=False,
        max_length=SUMMARY_MAX,
        widget=forms.TextInput(attrs={"placeholder": _("Holiday, another job…"), "autocomplete": "off"}),
    )


class IcsImportForm(forms.Form):
    file = forms.FileField(
        label=_("Calendar file (.ics, up to 1 MB)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".ics,text/calendar"}),
        help_text=_("Export it from Google Calendar, Outlook or Apple Calendar. It replaces your last import."),
    )


class InviteForm(forms.Form):
    contractor = forms.UUIDField(widget=forms.HiddenInput)
