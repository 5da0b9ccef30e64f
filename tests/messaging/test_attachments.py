"""attachment_prepare: photos re-encoded without EXIF and thumbnailed; PDFs
checked by content for active parts; everything else refused with a reason."""

from __future__ import annotations

import io
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core.errors import ApplicationError
from messaging.attachments import attachment_prepare, safe_name

GPS_IFD = 0x8825


def jpeg_with_gps(size=(1200, 900)) -> bytes:
    image = Image.new("RGB", size, (180, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (37.0, 45.0, 3.0), 3: "W", 4: (122.0, 25.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def pdf_bytes(body: bytes = b"", *, eof: bool = True) -> bytes:
    parts = [
        b"%PDF-1.7\n",
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n",
        body,
        b"trailer\n<< /Root 1 0 R >>\n",
    ]
    if eof:
        parts.append(b"%%EOF\n")
    return b"".join(parts)


def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def refusal(name: str, data: bytes) -> str:
    with pytest.raises(ApplicationError) as caught:
        attachment_prepare(upload(name, data))
    error = caught.value
    assert error.code == "invalid_attachment"
    assert error.fields == {"attachment": [error.message]}
    return error.message


def test_photo_is_reencoded_without_exif_and_thumbnailed():
    prepared = attachment_prepare(upload("IMG_0001.HEIC.png", jpeg_with_gps(), "image/png"))

    assert prepared.kind == "image"
    assert prepared.safe_name == "IMG_0001.HEIC.jpg"
    data = prepared.content.read()
    assert prepared.size == len(data)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == (1200, 900)
        assert dict(image.getexif()) == {}
        assert dict(image.getexif().get_ifd(GPS_IFD)) == {}
    with Image.open(io.BytesIO(prepared.thumbnail.read())) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (400, 300)
        assert dict(thumb.getexif()) == {}


def test_prepared_attachment_unpacks_as_a_tuple():
    kind, content, thumbnail, name, size = attachment_prepare(upload("a.jpg", jpeg_with_gps((64, 48))))
    assert (kind, name, size) == ("image", "a.jpg", len(content.read()))
    assert thumbnail is not None


def test_plain_pdf_is_kept_byte_for_byte():
    data = pdf_bytes()
    prepared = attachment_prepare(upload("Quote for the sink.pdf", data, "application/pdf"))
    assert prepared.kind == "pdf"
    assert prepared.thumbnail is None
    assert prepared.safe_name == "Quote for the sink.pdf"
    assert prepared.content.read() == data
    assert prepared.size == len(data)


def test_pdf_with_trailing_bytes_after_eof_within_1024_is_accepted():
    assert attachment_prepare(upload("q.pdf", pdf_bytes() + b"\r\n" * 200)).kind == "pdf"


@pytest.mark.parametrize(
    "body, what",
    [
        (b"4 0 obj\n<< /S /JavaScript /JS (app.alert(1)) >>\nendobj\n", "JavaScript"),
        (b"4 0 obj\n<< /OpenAction << /S /J#61vaScript /J#53 (x) >> >>\nendobj\n", "JavaScript"),
        (b"4 0 obj\n<< /S /Launch /F (cmd.exe) >>\nendobj\n", "Launch"),
        (b"4 0 obj\n<< /Names << /EmbeddedFiles 5 0 R >> >>\nendobj\n", "EmbeddedFile"),
        (b"4 0 obj\n<< /Type /EmbeddedFile /Length 3 >>\nendobj\n", "EmbeddedFile"),
    ],
)
def test_pdf_with_active_content_is_refused(body, what):
    message = refusal("invoice.pdf", pdf_bytes(body))
    assert what in message
    assert "could run code" in message


def test_javascript_hidden_in_a_compressed_object_stream_is_found():
    hidden = zlib.compress(b"4 0 << /S /JavaScript /JS (app.alert(1)) >>")
    body = b"6 0 obj\n<< /Type /ObjStm /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        len(hidden),
        hidden,
    )
    assert "JavaScript" in refusal("sneaky.pdf", pdf_bytes(body))


def test_harmless_compressed_stream_is_fine():
    content = zlib.compress(b"BT /F1 12 Tf 72 712 Td (Hello) Tj ET")
    body = b"7 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n" % (len(content), content)
    assert attachment_prepare(upload("letter.pdf", pdf_bytes(body))).kind == "pdf"


def test_compression_bomb_is_refused():
    bomb = zlib.compress(b"\0" * (80 * 1024 * 1024), 9)
    body = b"8 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n" % (len(bomb), bomb)
    assert "too complex" in refusal("bomb.pdf", pdf_bytes(body))


def test_pdf_without_end_marker_is_refused():
    assert "no end marker" in refusal("cut.pdf", pdf_bytes(eof=False))


def test_encrypted_pdf_is_refused():
    message = refusal("locked.pdf", pdf_bytes(b"trailer\n<< /Encrypt 9 0 R >>\n"))
    assert "Password-protected" in message


def test_exe_renamed_pdf_is_refused():
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode."
    assert refusal("invoice.pdf", exe) == "Only photos (JPEG, PNG, WebP) and PDF documents can be shared."


def test_text_named_jpg_is_refused():
    assert "Only photos" in refusal("photo.jpg", b"hello, I am not a photo")


def test_broken_jpeg_gets_the_image_reason():
    assert refusal("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100) == (
        "This file is not a valid image. Upload a JPEG, PNG or WebP photo."
    )


def test_empty_file_is_refused():
    assert refusal("empty.pdf", b"") == "This file is empty."


def test_eleven_megabytes_is_refused_before_reading():
    big = b"%PDF-1.7\n" + b"0" * (11 * 1024 * 1024) + b"%%EOF"
    assert refusal("big.pdf", big) == "This file is 11.0 MB; the limit is 10 MB."


@pytest.mark.parametrize(
    "original, kind, expected",
    [
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("C:\\Users\\dana\\Desktop\\quote.PDF", "pdf", "quote.pdf"),
        ("evil\x00name\r\n.exe", "pdf", "evil name.pdf"),
        ('a"b<c>|d.png', "image", "a_b_c__d.jpg"),
        ("", "image", "photo.jpg"),
        (".pdf", "pdf", "document.pdf"),
        ("...", "image", "photo.jpg"),
        ("x" * 300 + ".pdf", "pdf", "x" * 116 + ".pdf"),
        ("invoice.pdf.exe", "pdf", "invoice.pdf.pdf"),
        ("Café menu.jpeg", "image", "Café menu.jpg"),
    ],
)
def test_safe_name(original, kind, expected):
    name = safe_name(original, kind)
    assert name == expected
    assert len(name) <= 120
