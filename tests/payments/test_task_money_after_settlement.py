"""The task page's money box after a dispute settlement (found by the Chromium
test in tests/browser/test_review_and_dispute.py): the pro's "To you" and
platform fee follow what was released to them, not the full price, and the
hold a dispute puts on the money reads as a hold, not an "Adjustment".

$110.00 price, $5.50 service fee, 10 % commission (see
tests/reputation/test_disputes_money.py for the cents)."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from django.urls import reverse

from payments import services
from tests.payments.factories import EscrowFactory, RecordingGateway

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def gateway(monkeypatch) -> RecordingGateway:
    fake = RecordingGateway()
    monkeypatch.setattr("payments.services._gateway", lambda: fake)
    return fake


def money_box(client, user, escrow) -> str:
    client.force_login(user)
    page = client.get(reverse("tasks:detail", kwargs={"public_id": escrow.task.public_id})).content.decode()
    match = re.search(r'<section class="card money-box".*?</section>', page, re.S)
    assert match, "no money box on the task page"
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", match.group(0))).split())


def test_after_a_split_the_pro_sees_their_part_and_its_fee(client, customer, contractor):
    escrow = EscrowFactory(state="split", customer=customer, contractor=contractor, price_cents=11_000, contractor_cents=7_700)
    box = money_box(client, contractor, escrow)
    assert "$69.30 to you, pending until" in box
    assert "Price $110.00 Your part of the price $77.00 Platform fee $7.70 To you $69.30" in box
    assert "$99.00" not in box
    customer_box = money_box(client, customer, escrow)
    assert "Total paid $115.50 Refunded $38.50" in customer_box


def test_after_a_full_refund_the_pro_gets_nothing(client, customer, contractor):
    escrow = EscrowFactory(state="refunded", customer=customer, contractor=contractor, price_cents=11_000)
    box = money_box(client, contractor, escrow)
    assert "Your part of the price $0.00 Platform fee $0.00 To you $0.00" in box
    assert "$99.00" not in box


def test_held_and_released_money_still_shows_the_full_share(client, customer, contractor):
    held = EscrowFactory(state="held", customer=customer, contractor=contractor, price_cents=11_000)
    assert "Price $110.00 Platform fee $11.00 To you $99.00" in money_box(client, contractor, held)
    released = EscrowFactory(state="released", contractor=contractor, price_cents=11_000)
    box = money_box(client, contractor, released)
    assert "Price $110.00 Platform fee $11.00 To you $99.00" in box
    assert "Your part of the price" not in box


def test_a_hold_and_its_lifting_are_named_in_the_money_timeline(client, customer, contractor):
    escrow = EscrowFactory(state="held", customer=customer, contractor=contractor, price_cents=11_000)
    escrow = services.escrow_freeze(escrow, reason="dispute test")
    services.escrow_unfreeze(escrow, by=None, reason="dispute test settled")
    box = money_box(client, customer, escrow)
    assert "Put on hold · $115.50" in box
    assert "Hold lifted · $115.50" in box
    assert "Adjustment" not in box
