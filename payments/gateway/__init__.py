"""The payment gateway: ``get_gateway()`` returns the configured one.

``PAYMENTS_GATEWAY`` picks it: "stripe" (``StripeGateway``, the official
``stripe`` library with STRIPE_SECRET_KEY) or "simulated" (offline, test
cards, same webhook events). The default is "stripe" when STRIPE_SECRET_KEY is
set. One instance per combination of the settings it depends on, so
``override_settings`` in tests gets a fresh one.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import (
    AccountStatus,
    CardDeclined,
    GatewayError,
    GatewayRecord,
    PaymentGateway,
    PaymentIntentResult,
    RefundResult,
    SetupIntentResult,
    TransferResult,
)

__all__ = [
    "AccountStatus",
    "CardDeclined",
    "GatewayError",
    "GatewayRecord",
    "PaymentGateway",
    "PaymentIntentResult",
    "RefundResult",
    "SetupIntentResult",
    "TransferResult",
    "gateway_name",
    "get_gateway",
]

_lock = threading.Lock()
_instances: dict[tuple, PaymentGateway] = {}


def gateway_name() -> str:
    name = getattr(settings, "PAYMENTS_GATEWAY", "") or ("stripe" if settings.STRIPE_SECRET_KEY else "simulated")
    if name not in ("stripe", "simulated"):
        raise ImproperlyConfigured(f"PAYMENTS_GATEWAY must be stripe or simulated, not {name!r}")
    return name


def get_gateway() -> PaymentGateway:
    name = gateway_name()
    key = (name, settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)
    with _lock:
        gateway = _instances.get(key)
        if gateway is None:
            if name == "stripe":
                from .stripe_gateway import StripeGateway

                if not settings.STRIPE_SECRET_KEY:
                    raise ImproperlyConfigured("PAYMENTS_GATEWAY=stripe needs STRIPE_SECRET_KEY")
                gateway = StripeGateway(api_key=settings.STRIPE_SECRET_KEY, api_base=settings.STRIPE_API_BASE or None)
            else:
                from .simulated import SimulatedGateway

                gateway = SimulatedGateway()
            _instances[key] = gateway
        return gateway
