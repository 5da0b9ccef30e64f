"""Turn a US ZIP code (or an address containing one) into coordinates, offline.

Uses the ``zipcodes`` package, which ships the US ZIP centroids: no network,
no API key. Precision is the ZIP's centroid (a few km), which is what a
service area or an approximate task location needs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import zipcodes

_ZIP_RE = re.compile(r"\b(\d{5})(?:-\d{4})?\b")
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Place:
    postal_code: str
    city: str
    state: str
    latitude: float
    longitude: float
    timezone: str


class GeocodeError(ValueError):
    pass


def find_zip(text: str) -> str | None:
    """The last five-digit ZIP in a ZIP code or a street address."""
    matches = _ZIP_RE.findall(text or "")
    return matches[-1] if matches else None


def geocode(text: str) -> Place:
    """A ZIP code or an address with a ZIP code, as a place. Raises GeocodeError."""
    code = find_zip(text)
    if code is None:
        raise GeocodeError("Enter a 5-digit US ZIP code, or an address that ends with one.")
    try:
        found = zipcodes.matching(code)
    except (TypeError, ValueError) as exc:
        raise GeocodeError("Enter a 5-digit US ZIP code.") from exc
    found = [z for z in found if z.get("lat") and z.get("long")]
    if not found:
        raise GeocodeError(f"We don't know the ZIP code {code}. Check it and try again.")
    z = found[0]
    return Place(
        postal_code=code,
        city=z["city"].title(),
        state=z["state"],
        latitude=float(z["lat"]),
        longitude=float(z["long"]),
        timezone=z.get("timezone") or "",
    )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))
