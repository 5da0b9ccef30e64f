"""Forms of the payment pages and the admin's money actions.

Amounts are typed in dollars and leave the form as integer cents, exactly
(Decimal, never float); more than two decimal places is refused rather than
rounded, so nobody's refund is changed silently."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

_AMOUNT_RE = re.compile(r"-?\d{1,12}(?:\.\d*)?|-?\.\d+")
_CARD_RE = re.compile(r"\d{12,19}")
_EXPIRY_RE = re.compile(r"(\d{1,2})\s*/\s*(\d{2}|\d{4})")

MIN_REASON_CHARS = 5
MAX_REASON_CHARS = 300


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """'180', '180.5', '$1,180.50' -> integer cents. Refuses negatives, zero
    (unless ``allow_zero``) and more than two decimal places."""
    raw = (text or "").strip().replace("$", "").replace(",", "").replace(" ", "")
    if not raw or not _AMOUNT_RE.fullmatch(raw):
        raise forms.ValidationError(_("Enter an amount in dollars, like 180 or 180.50."), code="invalid")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the pattern refuses these
        raise forms.ValidationError(_("Enter an amount in dollars, like 180 or 180.50."), code="invalid") from exc
    if amount < 0:
        raise forms.ValidationError(_("The amount cannot be negative."), code="negative")
    if amount == 0 and not allow_zero:
        raise forms.ValidationError(_("The amount must be more than $0."), code="zero")
    if amount.as_tuple().exponent < -2:
        raise forms.ValidationError(_("Use at most two decimal places (cents)."), code="too_precise")
    return int(amount * 100)


def _money_input(placeholder: str) -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": placeholder})


class CardForm(forms.Form):
    """The simulated gateway's card form. Only the number decides the outcome
    (the test cards); expiry and CVC are checked for shape so the form behaves
    like a real one, and none of it is stored."""

    card_number = forms.CharField(
        label=gettext_lazy("Card number"),
        max_length=23,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "cc-number", "placeholder": "4242 4242 4242 4242"}
        ),
    )
    expiry = forms.CharField(
        label=gettext_lazy("Expiry (MM/YY)"),
        max_length=7,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-exp", "placeholder": "12/34"}),
    )
    cvc = forms.CharField(
        label=gettext_lazy("CVC"),
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc", "placeholder": "123"}),
    )

    def clean_card_number(self) -> str:
        number = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not _CARD_RE.fullmatch(number):
            raise forms.ValidationError(_("Enter the card number: 12 to 19 digits."), code="invalid")
        return number

    def clean_expiry(self) -> str:
        match = _EXPIRY_RE.fullmatch(self.cleaned_data["expiry"].strip())
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise forms.ValidationError(_("Enter the expiry as MM/YY, like 12/34."), code="invalid")
        return self.cleaned_data["expiry"].strip()

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise forms.ValidationError(_("Enter the 3 or 4 digits on the back of the card."), code="invalid")
        return cvc


class _ReasonMixin(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in the ledger and shown to the customer)"),
        min_length=MIN_REASON_CHARS,
        max_length=MAX_REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )

    def clean_reason(self) -> str:
        return " ".join(self.cleaned_data["reason"].split())


class RefundForm(_ReasonMixin):
    """Admin: refund part or all of what is still held."""

    amount = forms.CharField(label=gettext_lazy("Amount to refund (US dollars)"), widget=_money_input("180.00"))

    def __init__(self, *args, refundable_cents: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refundable_cents = refundable_cents

    def clean_amount(self) -> int:
        cents = parse_amount(self.cleaned_data["amount"])
        if self.refundable_cents is not None and cents > self.refundable_cents:
            raise forms.ValidationError(
                _("At most %(max)s can be refunded: that is what is still held.")
                % {"max": f"${Decimal(self.refundable_cents) / 100:,.2f}"},
                code="too_large",
            )
        return cents


class SplitForm(_ReasonMixin):
    """Admin: X to the contractor (gross, commission taken from it), the rest refunded."""

    contractor_amount = forms.CharField(
        label=gettext_lazy("To the contractor (US dollars, before commission)"), widget=_money_input("90.00")
    )

    def __init__(self, *args, price_cents: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.price_cents = price_cents

    def clean_contractor_amount(self) -> int:
        cents = parse_amount(self.cleaned_data["contractor_amount"], allow_zero=True)
        if self.price_cents is not None and cents > self.price_cents:
            raise forms.ValidationError(
                _("At most the agreed price, %(max)s, can go to the contractor.")
                % {"max": f"${Decimal(self.price_cents) / 100:,.2f}"},
                code="too_large",
            )
        return cents
