"""Perceptual hashes of photos, for finding a photo used again (resized,
re-compressed, lightly edited) anywhere on the platform.

The hash is the classic DCT "pHash" (the algorithm of the ``imagehash``
library's ``phash``), written with Pillow alone so no numeric stack is
needed: the image as 32x32 grey pixels, the 8x8 lowest frequencies of its
2-D DCT-II, each bit set when its coefficient is above their median. Scaling
and JPEG re-compression move a few coefficients a little, so copies land a
few bits apart; different scenes land about 32 bits apart.

Finding near copies among every earlier photo without comparing against all
of them: the 64 bits are stored as four 16-bit *bands* (indexed columns).
If two hashes are at most 7 bits apart, by the pigeonhole principle one of
the four bands differs in at most one bit. So the candidates are the photos
whose band i equals our band i or one of its 16 one-bit neighbours, for some
i: four indexed ``IN`` lookups of 17 values each (multi-index hashing with a
probe radius of 1). That finds *every* photo within ``DUPLICATE_MAX_DISTANCE``
(6 <= 7), and only the candidates are compared bit by bit. With hash bits
spread evenly a photo has about 4 x 17 / 65,536 of the table as candidates:
about a thousand at a million photos.
"""

from __future__ import annotations

import io
import math
from functools import cache

from PIL import Image

HASH_BITS = 64
BAND_BITS = 16
BANDS = HASH_BITS // BAND_BITS
# Photos this many bits apart or fewer are "the same photo". Measured on the
# test images (tests/tasks/test_verification_duplicates.py): a copy scaled to
# half size and saved at JPEG quality 60 is 0-2 bits away; different photos of
# the same kind of subject are 20+ bits apart. 6 leaves room for crops of a few
# per cent and colour tweaks while staying far from unrelated photos. Keep it
# at most 7: the band lookup above only guarantees finding copies up to 7 bits.
DUPLICATE_MAX_DISTANCE = 6
_SIDE = 32
_LOW = 8


@cache
def _cosines() -> tuple[tuple[float, ...], ...]:
    return tuple(
        tuple(math.cos(math.pi * (2 * x + 1) * u / (2 * _SIDE)) for x in range(_SIDE)) for u in range(_LOW)
    )


def phash_image(image: Image.Image) -> str:
    """The 64-bit perceptual hash of ``image`` as 16 lower-case hex digits."""
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = list(grey.get_flattened_data())
    rows = [pixels[y * _SIDE : (y + 1) * _SIDE] for y in range(_SIDE)]
    cos = _cosines()
    # DCT along each row, keeping the 8 lowest frequencies...
    row_dct = [[sum(c * p for c, p in zip(cos[u], row, strict=True)) for u in range(_LOW)] for row in rows]
    # ...then down each of those 8 columns.
    low = [
        sum(cos[v][y] * row_dct[y][u] for y in range(_SIDE)) for v in range(_LOW) for u in range(_LOW)
    ]
    ordered = sorted(low)
    median = (ordered[31] + ordered[32]) / 2
    value = 0
    for coefficient in low:
        value = (value << 1) | (coefficient > median)
    return f"{value:016x}"


def phash_bytes(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return phash_image(image)


def bands(phash: str) -> tuple[int, ...]:
    """The hash's four 16-bit bands, most significant first."""
    value = int(phash, 16)
    mask = (1 << BAND_BITS) - 1
    return tuple((value >> (BAND_BITS * (BANDS - 1 - i))) & mask for i in range(BANDS))


def band_probes(band: int) -> list[int]:
    """The band itself and its 16 one-bit neighbours."""
    return [band] + [band ^ (1 << bit) for bit in range(BAND_BITS)]


def distance(a: str, b: str) -> int:
    """Hamming distance between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def phash_fields(image_bytes: bytes) -> dict[str, object]:
    """The TaskPhoto columns for an image: the hash and its four bands."""
    value = phash_bytes(image_bytes)
    return {"phash": value, **{f"phash_band{i}": band for i, band in enumerate(bands(value))}}
