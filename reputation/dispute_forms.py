"""Forms for the dispute pages: shape only; the services decide the rest."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .dispute_models import MAX_EVIDENCE_PHOTOS, MAX_TEXT_CHARS, Dispute, DisputeProposal


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    widget = MultiplePhotoInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)
        self.widget.attrs.update({"accept": "image/*", "multiple": True})

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        if len(files) > MAX_EVIDENCE_PHOTOS:
            raise forms.ValidationError(_("Attach at most %(n)d photos.") % {"n": MAX_EVIDENCE_PHOTOS})
        return list(files)


class _DistinctIds(forms.Form):
    """The dispute page shows several of these forms at once (respond, propose,
    evidence, reject) with fields of the same names; each form's element ids
    start with its own word so every label points at its own field."""

    id_word = ""

    def __init__(self, *args, **kwargs):
        if self.id_word:
            kwargs.setdefault("auto_id", f"{self.id_word}-%s")
        super().__init__(*args, **kwargs)


class OpenDisputeForm(forms.Form):
    reason = forms.ChoiceField(label=_("What is the dispute about?"), choices=Dispute.Reason.choices)
    text = forms.CharField(
        label=_("What happened"),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=MAX_TEXT_CHARS,
        help_text=_("Say what went wrong and what you want. Both sides and, if needed, an admin read this."),
    )
    photos = PhotosField(label=_("Photos (optional)"), help_text=_("Up to 10 photos, 10 MB each."))


class EvidenceForm(_DistinctIds):
    id_word = "evidence"

    text = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=MAX_TEXT_CHARS)
    photos = PhotosField(label=_("Photos"))


class RespondForm(_DistinctIds):
    id_word = "respond"

    text = forms.CharField(label=_("Your side"), widget=forms.Textarea(attrs={"rows": 5}), max_length=MAX_TEXT_CHARS)
    photos = PhotosField(label=_("Photos (optional)"))
    proposal_kind = forms.ChoiceField(
        label=_("Offer a settlement (optional)"),
        choices=[("", _("No offer yet")), *DisputeProposal.Kind.choices],
        required=False,
    )
    percent = forms.IntegerField(
        label=_("Refund percentage (partial refund)"), required=False, widget=forms.NumberInput(attrs={"inputmode": "numeric"})
    )


class ProposeForm(_DistinctIds):
    id_word = "propose"

    kind = forms.ChoiceField(label=_("Settlement"), choices=DisputeProposal.Kind.choices)
    percent = forms.IntegerField(
        label=_("Refund percentage (partial refund, 1-99)"),
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    message = forms.CharField(label=_("Message (optional)"), widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RejectForm(_DistinctIds):
    id_word = "reject"

    message = forms.CharField(label=_("Why not? (optional)"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
