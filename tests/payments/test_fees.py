"""payments.fees: the quote and its rounding rule (half up to the cent)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from payments import fees


@pytest.mark.parametrize(
    ("amount", "bps", "expected"),
    [
        (10_000, 500, 500),
        (1, 500, 0),  # 0.05 cent -> 0
        (10, 500, 1),  # 0.5 cent -> up
        (9, 500, 0),  # 0.45 cent -> down
        (1_999, 1000, 200),  # 199.9 -> 200
        (1_995, 1000, 200),  # 199.5 -> up
        (1_994, 1000, 199),  # 199.4 -> down
        (12_345, 250, 309),  # 308.625 -> 309
        (0, 1000, 0),
        (10_000, 0, 0),
        (10_000, 10_000, 10_000),
    ],
)
def test_basis_points_round_half_up_to_the_cent(amount, bps, expected):
    assert fees.apply_bps(amount, bps) == expected


@pytest.mark.parametrize(
    ("price", "fee", "commission", "total", "share"),
    [
        (12_000, 600, 1_200, 12_600, 10_800),  # $120: 5 % fee, 10 % commission
        (11_000, 550, 1_100, 11_550, 9_900),
        (2_000, 199, 200, 2_199, 1_800),  # 5 % is $1.00 -> the $1.99 minimum
        (3_980, 199, 398, 4_179, 3_582),  # 199.0 -> exactly the minimum
        (3_990, 200, 399, 4_190, 3_591),  # 199.5 -> 200 (half up)
        (12_345, 617, 1_235, 12_962, 11_110),  # 617.25 -> 617, 1234.5 -> 1235
        (1, 199, 0, 200, 1),
        (5, 199, 1, 204, 4),  # 0.5 cent commission -> 1
    ],
)
def test_quote_table(price, fee, commission, total, share):
    quote = fees.quote(price)
    assert (quote.price, quote.service_fee, quote.commission, quote.total, quote.contractor_share) == (
        price,
        fee,
        commission,
        total,
        share,
    )
    # Every cent the customer pays is accounted for; nothing is left over.
    assert quote.total == quote.contractor_share + quote.commission + quote.service_fee


@override_settings(
    PAYMENTS_CATEGORY_RATES={"electrical": {"commission_bps": 1500}, "cleaning": {"service_fee_bps": 300}},
)
def test_category_rates_override_the_defaults():
    electrical = fees.quote(10_000, "electrical")
    assert (electrical.service_fee, electrical.commission) == (500, 1_500)

    class Category:
        slug = "cleaning"

    cleaning = fees.quote(10_000, Category())
    assert (cleaning.service_fee, cleaning.commission, cleaning.service_fee_bps) == (300, 1_000, 300)
    assert fees.quote(10_000, "plumbing").commission == 1_000


@override_settings(PAYMENTS_SERVICE_FEE_BPS=0, PAYMENTS_SERVICE_FEE_MIN_CENTS=0, PAYMENTS_COMMISSION_BPS=0)
def test_zero_fees_give_the_contractor_everything():
    quote = fees.quote(7_777)
    assert (quote.total, quote.contractor_share, quote.commission, quote.service_fee) == (7_777, 7_777, 0, 0)


@pytest.mark.parametrize("bad", [0, -1, -10_000, 1.5, "100", None, True])
def test_a_price_that_is_not_positive_whole_cents_is_refused(bad):
    with pytest.raises(ValueError, match="positive whole number of cents"):
        fees.quote(bad)


@pytest.mark.parametrize(
    ("gross", "price", "commission", "expected"),
    [
        (12_000, 12_000, 1_200, 1_200),  # the whole price: the whole commission
        (4_500, 12_000, 1_200, 450),
        (4_505, 12_000, 1_200, 451),  # 450.5 -> up
        (4_504, 12_000, 1_200, 450),  # 450.4 -> down
        (1, 12_345, 1_235, 0),
        (0, 12_000, 1_200, 0),
    ],
)
def test_commission_on_part_of_the_price_is_proportional_and_rounded_half_up(gross, price, commission, expected):
    assert fees.commission_on(gross, price_cents=price, commission_cents=commission) == expected
