"""Forms for reviews, replies and reports: they parse; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import (
    CONTRACTOR_SUB_RATINGS,
    CUSTOMER_SUB_RATINGS,
    REPLY_TEXT_MAX,
    REPORT_NOTE_MAX,
    REVIEW_TEXT_MAX,
    Review,
    ReviewReport,
)

STAR_CHOICES = [(str(n), str(n)) for n in range(1, 6)]


class ReviewForm(forms.Form):
    """Overall stars, the sub-ratings of the reviewer's role, and text."""

    stars = forms.TypedChoiceField(
        label=_("Overall"), choices=STAR_CHOICES, coerce=int, widget=forms.RadioSelect,
        error_messages={"required": _("Choose from 1 to 5 stars.")},
    )
    text = forms.CharField(
        label=_("Your review"),
        required=False,
        max_length=REVIEW_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": REVIEW_TEXT_MAX}),
        help_text=_("What went well, what could be better. Up to 2,000 characters; no phone numbers or addresses."),
    )

    def __init__(self, *args, role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.role = role
        names = CUSTOMER_SUB_RATINGS if role == Review.Role.CUSTOMER_TO_CONTRACTOR else CONTRACTOR_SUB_RATINGS
        self.sub_rating_names = names
        for name in names:
            self.fields[name] = forms.TypedChoiceField(
                label=Review._meta.get_field(name).verbose_name,
                choices=STAR_CHOICES,
                coerce=int,
                required=False,
                empty_value=None,
                widget=forms.RadioSelect,
            )

    @classmethod
    def initial_from(cls, review: Review | None) -> dict:
        if review is None:
            return {}
        initial = {"stars": str(review.stars), "text": review.text}
        for name in (*CUSTOMER_SUB_RATINGS, *CONTRACTOR_SUB_RATINGS):
            value = getattr(review, name)
            if value is not None:
                initial[name] = str(value)
        return initial

    def star_fields(self):
        return [self["stars"], *[self[name] for name in self.sub_rating_names]]

    def sub_ratings(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.sub_rating_names}


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Your public reply"),
        max_length=REPLY_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": REPLY_TEXT_MAX}),
        help_text=_("Shown under the review for everyone. You can reply once."),
    )


class ReportForm(forms.Form):
    reason = forms.ChoiceField(label=_("What is wrong with it?"), choices=ReviewReport.Reason.choices, widget=forms.RadioSelect)
    note = forms.CharField(
        label=_("Details (optional)"),
        required=False,
        max_length=REPORT_NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": REPORT_NOTE_MAX}),
    )
