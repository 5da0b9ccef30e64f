"""Images made in the test, so uploads exercise real decoding."""

from __future__ import annotations

import io
import os

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_IFD = 0x8825


def jpeg_bytes_with_gps(size: tuple[int, int] = (64, 64)) -> bytes:
    """A JPEG whose EXIF says where it was taken (the Mission, SF)."""
    image = Image.new("RGB", size, (200, 50, 50))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (37.0, 45.0, 3.0), 3: "W", 4: (122.0, 25.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (80, 80), colour: tuple[int, int, int] = (30, 90, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def noisy_png_bytes(side: int = 700) -> bytes:
    """Incompressible pixels: about 1.4 MB for 700 x 700."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)
