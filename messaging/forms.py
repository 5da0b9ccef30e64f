"""Forms for the messaging pages. They parse input; what may be stored (body
length, attachments by content) is decided by ``messaging.services`` and
``messaging.attachments``, whose refusals come back through
``add_service_errors`` next to the right field."""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.forms import add_service_errors as _add_service_errors

from .models import MAX_BODY_CHARS

SERVICE_FIELD_MAP = {"upload": "attachment", "client_id": "body"}


def add_service_errors(form: forms.Form, error: ApplicationError) -> None:
    _add_service_errors(form, error, SERVICE_FIELD_MAP)


class MessageForm(forms.Form):
    """One message: text, an optional photo or PDF, and the id that makes a
    double-submit (or a resend after a dropped connection) save once.

    ``client_id`` is generated when the form is rendered, so each rendering of
    the page sends a new message, and the same rendering posted twice sends one.
    """

    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MAX_BODY_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MAX_BODY_CHARS, "autocomplete": "off"}),
        error_messages={
            "max_length": _("A message can be at most %(limit_value)d characters (this one has %(show_value)d). "
                            "Split it in two."),
        },
    )
    attachment = forms.FileField(
        label=_("Photo or PDF (optional)"),
        required=False,
        help_text=_("Up to 10 MB. Photos are shared without their location data."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,application/pdf"}),
    )
    client_id = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_id", uuid.uuid4())

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("body") and not cleaned.get("attachment"):
            self.add_error("body", _("Write a message or attach a photo or PDF."))
        return cleaned


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search messages"),
        min_length=2,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "enterkeyhint": "search", "placeholder": _("Search messages")}
        ),
        error_messages={
            "min_length": _("Type at least %(limit_value)d characters."),
            "max_length": _("Search for at most %(limit_value)d characters."),
        },
    )
    conversation = forms.UUIDField(required=False, widget=forms.HiddenInput)
