"""Files shared in a conversation: photos and PDF documents, checked by content.

``attachment_prepare`` is called by ``messaging.services.message_send`` before
anything is written. The browser's file name and content type are never
trusted: the first bytes decide what a file is.

- Photos go through ``core.images.clean_image`` (Pillow decides what the bytes
  are; re-encoded as JPEG, which drops EXIF with GPS and anything appended
  after the image data) and get a 400 px thumbnail.
- PDFs must start with ``%PDF-`` and end with ``%%EOF``, and must not carry
  active content: no ``/JavaScript``, ``/JS``, ``/Launch`` or embedded files,
  looked for in the raw bytes (PDF names may hide letters as ``#xx`` escapes,
  which are decoded first) and inside Flate-compressed streams (object streams
  hide dictionaries there). Encrypted PDFs are refused: their object streams
  cannot be read, so they cannot be checked. A PDF is stored byte for byte.
- Everything else is refused with a reason fit to show next to the field.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, NoReturn

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image

from core.errors import ApplicationError
from core.images import ImageRejected, clean_image

from .models import MAX_ATTACHMENT_BYTES

KIND_IMAGE = "image"
KIND_PDF = "pdf"
THUMB_SIDE = 400
THUMB_QUALITY = 80
MAX_NAME_CHARS = 120
# The PDF spec lets %%EOF sit within the last 1024 bytes (trailing whitespace, junk from mailers).
EOF_WINDOW = 1024
# Names that make a PDF run or carry something: scripts, launching programs, files inside it.
FORBIDDEN_PDF_NAMES = {
    b"javascript": "JavaScript",
    b"js": "JavaScript",
    b"launch": "Launch",
    b"embeddedfile": "EmbeddedFile",
    b"embeddedfiles": "EmbeddedFile",
}
# Bounds on how much we inflate while looking inside compressed streams (zip-bomb guard).
MAX_INFLATED_BYTES = 64 * 1024 * 1024
MAX_STREAMS = 5000

_NAME_RE = re.compile(rb"/([^\s/<>\[\]()%{}\x00]+)")
_HEX_ESCAPE_RE = re.compile(rb"#([0-9A-Fa-f]{2})")
_STREAM_RE = re.compile(rb"stream\r?\n")
_UNSAFE_NAME_CHARS = re.compile(r'[<>:"/\\|?*]')


@dataclass(frozen=True)
class PreparedAttachment:
    """A checked attachment, ready to be saved on a ``Message``.

    Also unpacks as a tuple ``kind, content, thumbnail, safe_name, size``.
    """

    kind: str  # "image" or "pdf" (Message.AttachmentKind values)
    content: ContentFile
    thumbnail: ContentFile | None
    safe_name: str
    size: int  # bytes of ``content``, what the reader downloads

    def __iter__(self) -> Iterator[Any]:
        return iter((self.kind, self.content, self.thumbnail, self.safe_name, self.size))


def attachment_prepare(upload: IO[bytes]) -> PreparedAttachment:
    """Check an uploaded file by content and return what to store.

    Raises ``ApplicationError(code="invalid_attachment",
    fields={"attachment": [message]})`` for an empty, oversized, unknown or
    unsafe file. Writes nothing.
    """
    size = _upload_size(upload)
    if size == 0:
        _refuse(_("This file is empty."))
    if size > MAX_ATTACHMENT_BYTES:
        _refuse(
            _("This file is %(size).1f MB; the limit is %(limit)d MB.")
            % {"size": size / 1_048_576, "limit": MAX_ATTACHMENT_BYTES // 1_048_576}
        )
    upload.seek(0)
    head = upload.read(1024)
    upload.seek(0)
    original_name = getattr(upload, "name", "") or ""
    if head.startswith(b"%PDF-"):
        return _prepare_pdf(upload, original_name)
    return _prepare_image(upload, original_name)


def safe_name(original: str, kind: str) -> str:
    """The name shown to the reader and used for downloads: no folders, no
    control characters, at most 120 characters, and our extension."""
    extension = ".pdf" if kind == KIND_PDF else ".jpg"
    default = _("document") if kind == KIND_PDF else _("photo")
    name = (original or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in name)
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE_NAME_CHARS.sub("_", name)
    stem, _ext = os.path.splitext(name)
    if not _ext and stem.startswith("."):  # ".pdf" alone is an extension, not a name
        stem = ""
    stem = " ".join(stem.split()).strip(" .")
    stem = stem[: MAX_NAME_CHARS - len(extension)].rstrip(" .")
    return f"{stem or default}{extension}"


# --- photos --------------------------------------------------------------------------


def _prepare_image(upload: IO[bytes], original_name: str) -> PreparedAttachment:
    try:
        cleaned = clean_image(upload, max_bytes=MAX_ATTACHMENT_BYTES)
    except ImageRejected as exc:
        if _looks_like_image(upload):
            _refuse(str(exc))
        _refuse(_("Only photos (JPEG, PNG, WebP) and PDF documents can be shared."))
    image_bytes = cleaned.content.read()
    return PreparedAttachment(
        kind=KIND_IMAGE,
        content=ContentFile(image_bytes, name="photo.jpg"),
        thumbnail=ContentFile(_thumbnail(image_bytes), name="thumb.jpg"),
        safe_name=safe_name(original_name, KIND_IMAGE),
        size=len(image_bytes),
    )


def _looks_like_image(upload: IO[bytes]) -> bool:
    """Whether the first bytes claim to be an image (so clean_image's own reason
    fits: too small, too many pixels, broken) rather than some other file."""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    return (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head[4:8] == b"ftyp"
    )


def _thumbnail(image_bytes: bytes) -> bytes:
    with Image.open(io.BytesIO(image_bytes)) as image:
        image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return out.getvalue()


# --- PDFs ----------------------------------------------------------------------------


def _prepare_pdf(upload: IO[bytes], original_name: str) -> PreparedAttachment:
    data = upload.read(MAX_ATTACHMENT_BYTES + 1)
    if len(data) > MAX_ATTACHMENT_BYTES:  # the reported size lied
        _refuse(_("This file is over the %(limit)d MB limit.") % {"limit": MAX_ATTACHMENT_BYTES // 1_048_576})
    if b"%%EOF" not in data[-EOF_WINDOW:]:
        _refuse(_("This PDF is incomplete or damaged (it has no end marker). Save it again and retry."))
    if _has_name(data, {b"encrypt"}):
        _refuse(_("Password-protected PDFs can't be shared: we can't check what is inside. Remove the password."))
    found = _forbidden_names(data)
    if found:
        _refuse(
            _("This PDF contains %(what)s, which could run code on the reader's device. Share a plain PDF.")
            % {"what": ", ".join(sorted(found))}
        )
    return PreparedAttachment(
        kind=KIND_PDF,
        content=ContentFile(data, name="document.pdf"),
        thumbnail=None,
        safe_name=safe_name(original_name, KIND_PDF),
        size=len(data),
    )


def _names(chunk: bytes) -> Iterator[bytes]:
    for match in _NAME_RE.finditer(chunk):
        raw = match.group(1)
        if b"#" in raw:
            raw = _HEX_ESCAPE_RE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
        yield raw.lower()


def _has_name(chunk: bytes, wanted: set[bytes]) -> bool:
    return any(name in wanted for name in _names(chunk))


def _forbidden_names(data: bytes) -> set[str]:
    found = {FORBIDDEN_PDF_NAMES[name] for name in _names(data) if name in FORBIDDEN_PDF_NAMES}
    for inflated in _inflated_streams(data):
        found |= {FORBIDDEN_PDF_NAMES[name] for name in _names(inflated) if name in FORBIDDEN_PDF_NAMES}
    return found


def _inflated_streams(data: bytes) -> Iterator[bytes]:
    """The content of each zlib (FlateDecode) stream, bounded in total size.

    Streams that are not zlib (images, fonts in other filters) are skipped:
    dictionaries can only hide inside object streams, which are Flate.
    """
    budget = MAX_INFLATED_BYTES
    for count, match in enumerate(_STREAM_RE.finditer(data)):
        if count >= MAX_STREAMS or budget <= 0:
            _refuse(_("This PDF is too complex to check. Save it as a simpler PDF and retry."))
        start = match.end()
        end = data.find(b"endstream", start)
        if end < 0:
            end = len(data)
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(data[start:end], budget)
        except zlib.error:
            continue
        if inflater.unconsumed_tail:  # more than the remaining budget: a bomb, or absurdly large
            _refuse(_("This PDF is too complex to check. Save it as a simpler PDF and retry."))
        budget -= len(inflated)
        yield inflated


# --- helpers -------------------------------------------------------------------------


def _upload_size(upload: IO[bytes]) -> int:
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
        upload.seek(0)
    return int(size)


def _refuse(message: str) -> NoReturn:
    raise ApplicationError(message, code="invalid_attachment", fields={"attachment": [message]})
