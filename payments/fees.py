"""What a booking costs and who gets what, in integer cents.

Two numbers come from settings (per category if ``PAYMENTS_CATEGORY_RATES``
names it, else the defaults):

- the **service fee**, paid by the customer on top of the price:
  ``PAYMENTS_SERVICE_FEE_BPS`` of the price, at least
  ``PAYMENTS_SERVICE_FEE_MIN_CENTS``;
- the **commission**, kept by the platform out of the price:
  ``PAYMENTS_COMMISSION_BPS`` of the price.

Rounding rule (the one place it is written): a rate in basis points (1 bps =
0.01 %) is applied to cents and rounded **half up to the cent**:

    fee = (amount_cents * bps + 5000) // 10000

so 0.5 cent and above goes up, below 0.5 down. The customer pays
``total = price + service_fee``; the contractor gets
``contractor_share = price - commission``. Every cent of the total is
accounted for: ``total == contractor_share + commission + service_fee``
exactly, so there is never a remainder cent to hand out.

A split (``commission_on``) charges commission on the part of the price the
contractor gets, in proportion to the escrow's own commission (so a later
settings change never changes the deal already paid for), same rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

BPS_DENOMINATOR = 10_000


def apply_bps(amount_cents: int, bps: int) -> int:
    """``amount_cents * bps / 10000`` rounded half up to the cent."""
    if amount_cents < 0 or bps < 0:
        raise ValueError("amount and rate must not be negative")
    return (amount_cents * bps + BPS_DENOMINATOR // 2) // BPS_DENOMINATOR


@dataclass(frozen=True)
class Quote:
    price_cents: int
    service_fee_cents: int
    commission_cents: int
    total_cents: int
    contractor_share_cents: int
    currency: str = "USD"
    service_fee_bps: int = 0
    commission_bps: int = 0

    # Short names, as the contract spells them.
    @property
    def price(self) -> int:
        return self.price_cents

    @property
    def service_fee(self) -> int:
        return self.service_fee_cents

    @property
    def commission(self) -> int:
        return self.commission_cents

    @property
    def total(self) -> int:
        return self.total_cents

    @property
    def contractor_share(self) -> int:
        return self.contractor_share_cents


def _slug(category: Any) -> str | None:
    if category is None:
        return None
    if isinstance(category, str):
        return category
    return getattr(category, "slug", None)


def rates_for(category: Any = None) -> tuple[int, int]:
    """(service_fee_bps, commission_bps) for a category (or its slug)."""
    service_fee_bps = int(settings.PAYMENTS_SERVICE_FEE_BPS)
    commission_bps = int(settings.PAYMENTS_COMMISSION_BPS)
    override = (settings.PAYMENTS_CATEGORY_RATES or {}).get(_slug(category) or "", {})
    service_fee_bps = int(override.get("service_fee_bps", service_fee_bps))
    commission_bps = int(override.get("commission_bps", commission_bps))
    return service_fee_bps, commission_bps


def quote(price_cents: int, category: Any = None, *, currency: str = "USD") -> Quote:
    """The customer's total and the contractor's share for ``price_cents``.

    Raises ``ValueError`` for a price that is not a positive whole number of
    cents (services turn that into an ``ApplicationError``)."""
    if isinstance(price_cents, bool) or not isinstance(price_cents, int) or price_cents <= 0:
        raise ValueError(f"price must be a positive whole number of cents, not {price_cents!r}")
    service_fee_bps, commission_bps = rates_for(category)
    service_fee = max(apply_bps(price_cents, service_fee_bps), int(settings.PAYMENTS_SERVICE_FEE_MIN_CENTS))
    commission = min(apply_bps(price_cents, commission_bps), price_cents)
    return Quote(
        price_cents=price_cents,
        service_fee_cents=service_fee,
        commission_cents=commission,
        total_cents=price_cents + service_fee,
        contractor_share_cents=price_cents - commission,
        currency=currency,
        service_fee_bps=service_fee_bps,
        commission_bps=commission_bps,
    )


def commission_on(gross_cents: int, *, price_cents: int, commission_cents: int) -> int:
    """Commission on ``gross_cents`` of a price whose full commission was
    ``commission_cents``: proportional, rounded half up to the cent. Equal to
    ``commission_cents`` when the gross is the whole price."""
    if gross_cents < 0 or price_cents <= 0 or commission_cents < 0:
        raise ValueError("amounts must not be negative")
    return (2 * gross_cents * commission_cents + price_cents) // (2 * price_cents)
