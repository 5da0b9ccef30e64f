"""Template filters for the task pages: money and distances, formatted in one place."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from accounts.selectors import money_display

register = template.Library()


@register.filter
def money(cents, currency: str = "USD") -> str:
    """12345 -> "$123.45" (currency code as the argument, USD by default)."""
    if cents is None or cents == "":
        return ""
    return money_display(int(cents), currency or "USD")


@register.filter
def km(distance) -> str:
    """2.345 -> "2.3 km"; under 1 km -> "under 1 km" (the location is only approximate)."""
    if distance is None or distance == "":
        return ""
    value = float(distance)
    if value < 1:
        return _("under 1 km")
    return _("%(km).1f km") % {"km": value}
