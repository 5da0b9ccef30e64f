"""Uploaded images: checked by content, size-capped, re-encoded without EXIF.

The browser's file name and content type are ignored; Pillow decides what the
bytes are. Re-encoding drops every metadata block (EXIF with GPS, XMP, ICC
comments) and any payload hidden after the image data. Callers that need the
EXIF time or place (proof-of-work photos) read it from ``CleanImage.exif``
(the main IFD), ``CleanImage.exif_ifd`` (the Exif sub-IFD: DateTimeOriginal)
and ``CleanImage.gps`` (the GPS sub-IFD), captured before the original bytes
are thrown away.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import IO

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "HEIF", "MPO"}
MAX_PIXELS = 40_000_000  # guards against decompression bombs
MIN_SIDE = 16
EXIF_IFD = 0x8769
GPS_IFD = 0x8825


class ImageRejected(ValueError):
    pass


@dataclass
class CleanImage:
    content: ContentFile
    width: int
    height: int
    original_format: str
    exif: dict = field(default_factory=dict)
    exif_ifd: dict = field(default_factory=dict)  # tag 0x8769: DateTimeOriginal (0x9003) lives here
    gps: dict = field(default_factory=dict)  # tag 0x8825: GPSLatitude (2) etc., values as Pillow gives them


def clean_image(
    upload: IO[bytes],
    *,
    max_bytes: int,
    max_side: int = 1600,
    quality: int = 85,
) -> CleanImage:
    """Validate an uploaded image and return it re-encoded as a JPEG.

    Raises ImageRejected with a message fit to show next to the field.
    """
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    if size > max_bytes:
        raise ImageRejected(f"This file is {size / 1_048_576:.1f} MB; the limit is {max_bytes / 1_048_576:.0f} MB.")
    if size == 0:
        raise ImageRejected("This file is empty.")
    upload.seek(0)
    try:
        with Image.open(upload) as probe:
            fmt = probe.format or ""
            probe.verify()
        upload.seek(0)
        image = Image.open(upload)
        if fmt not in ALLOWED_FORMATS:
            raise ImageRejected("This file is not a photo we can use. Upload a JPEG, PNG or WebP image.")
        if image.width * image.height > MAX_PIXELS:
            raise ImageRejected("This image is too large in pixels. Upload a smaller photo.")
        if min(image.width, image.height) < MIN_SIDE:
            raise ImageRejected("This image is too small to show anything.")
        raw_exif = image.getexif()
        exif = {k: v for k, v in raw_exif.items() if isinstance(v, (str, int, float, bytes, tuple))}
        exif_ifd = dict(raw_exif.get_ifd(EXIF_IFD))
        gps = dict(raw_exif.get_ifd(GPS_IFD))
        image = ImageOps.exif_transpose(image)
        image.load()
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected("This file is not a valid image. Upload a JPEG, PNG or WebP photo.") from exc

    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode == "L":
        image = image.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return CleanImage(
        content=ContentFile(out.getvalue(), name="image.jpg"),
        width=image.width,
        height=image.height,
        original_format=fmt,
        exif=exif,
        exif_ifd=exif_ifd,
        gps=gps,
    )
