"""Fixtures for tests of the real ``stripe`` library against local fakes.

One localstripe process for the whole test run (started on first use, stopped
at exit) behind one ``FakeStripe`` (Connect, idempotency, faults). Import the
fixtures into a test module: ``from tests.payments.stripe_fixtures import fake_stripe_fixture,
stripe_gateway_fixture`` (registered as ``fake_stripe`` and ``stripe_gateway``).
"""

from __future__ import annotations

import atexit
import threading

import pytest
import stripe

from payments.gateway.stripe_gateway import StripeGateway

from .fake_stripe import FakeStripe, LocalStripe

API_KEY = "sk_test_bittietasks_fake"

_lock = threading.Lock()
_servers: dict[str, object] = {}


def _shared_fake() -> FakeStripe:
    with _lock:
        if "fake" not in _servers:
            local = LocalStripe().start()
            atexit.register(local.stop)
            fake = FakeStripe(upstream=local.url).start()
            atexit.register(fake.stop)
            _servers.update(local=local, fake=fake)
        return _servers["fake"]  # type: ignore[return-value]


@pytest.fixture(name="fake_stripe")
def fake_stripe_fixture() -> FakeStripe:
    fake = _shared_fake()
    fake.reset()
    yield fake
    fake.reset()


def make_gateway(fake: FakeStripe, **kwargs) -> StripeGateway:
    return StripeGateway(api_key=API_KEY, api_base=fake.url, **kwargs)


@pytest.fixture(name="stripe_gateway")
def stripe_gateway_fixture(fake_stripe: FakeStripe) -> StripeGateway:
    # Short backoff between the library's own retries keeps fault tests quick.
    return make_gateway(fake_stripe, timeout=(2.0, 5.0))


def saved_card(gateway: StripeGateway, number: str = "4242424242424242", email: str = "dana@example.com"):
    """A customer with a card attached (localstripe takes raw test numbers)."""
    customer_id = gateway.create_customer(email, idempotency_key=f"customer:{email}:{number}:{id(gateway)}")
    pm = gateway.client.v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    gateway.client.v1.payment_methods.attach(pm.id, {"customer": customer_id})
    return customer_id, pm.id


__all__ = ["API_KEY", "fake_stripe_fixture", "make_gateway", "saved_card", "stripe", "stripe_gateway_fixture"]
