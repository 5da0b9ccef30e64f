from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from . import services


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
