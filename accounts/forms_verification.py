"""Forms for the phone and ID verification pages. They shape input; the
rules (format, limits, image checks) are the services'."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=_("Mobile number"),
        max_length=32,
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "autocomplete": "tel", "placeholder": "(415) 555-0100"}),
        help_text=_("We text a 6-digit code to it. US numbers need no country code; others start with +."),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*", "maxlength": "7"}
        ),
        help_text=_("From the text we sent. It works for 10 minutes."),
    )


class IdentityForm(forms.Form):
    document = forms.FileField(
        label=_("Photo of your ID"),
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
        help_text=_("Driver's licence, state ID or passport: the side with your photo, all corners visible, no glare."),
        error_messages={"required": _("Choose a photo of your ID.")},
    )
    selfie = forms.FileField(
        label=_("A selfie"),
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "user"}),
        help_text=_("Your face, well lit, so staff can compare it with the ID."),
        error_messages={"required": _("Take or choose a selfie.")},
    )
