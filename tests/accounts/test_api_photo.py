"""PUT /api/v1/me/photo: checked by content, size-capped, EXIF removed;
a refused file leaves no row change and no file behind."""

from __future__ import annotations

import io
import os

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from PIL import Image

from accounts import selectors
from accounts.models import User
from tests.accounts.api_support import account_state, token_client
from tests.accounts.photos import jpeg_bytes_with_gps, noisy_png_bytes, png_bytes, upload

pytestmark = pytest.mark.django_db

PHOTO = "/api/v1/me/photo"


def stored_files(user: User) -> list[str]:
    folder = os.path.join(django_settings.MEDIA_ROOT, "profile-photos", str(user.public_id))
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_upload_stores_a_jpeg_without_exif_and_returns_its_url(customer):
    response = token_client(customer).put(PHOTO, {"photo": upload("me.jpg", jpeg_bytes_with_gps((900, 600)))}, format="multipart")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert response.json()["photo_url"] == selectors.user_photo_url(customer) != ""
    with default_storage.open(customer.photo.name, "rb") as stored:
        image = Image.open(io.BytesIO(stored.read()))
    assert image.format == "JPEG"
    assert max(image.size) == 512
    assert dict(image.getexif()) == {}
    assert stored_files(customer) == [customer.photo.name.rsplit("/", 1)[-1]]


def test_the_uploaded_photo_is_served_to_its_owner(customer, client):
    token_client(customer).put(PHOTO, {"photo": upload("me.png", png_bytes(), "image/png")}, format="multipart")
    customer.refresh_from_db()
    client.force_login(customer)
    served = client.get(selectors.user_photo_url(customer))
    assert served.status_code == 200
    assert b"".join(served.streaming_content)[:2] == b"\xff\xd8"


def test_a_new_photo_replaces_the_old_file_after_commit(customer, django_capture_on_commit_callbacks):
    client = token_client(customer)
    client.put(PHOTO, {"photo": upload("a.png", png_bytes(), "image/png")}, format="multipart")
    customer.refresh_from_db()
    old = customer.photo.name
    with django_capture_on_commit_callbacks(execute=True):
        response = client.put(PHOTO, {"photo": upload("b.png", png_bytes(colour=(1, 2, 3)), "image/png")}, format="multipart")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.photo.name != old
    assert not default_storage.exists(old)
    assert stored_files(customer) == [customer.photo.name.rsplit("/", 1)[-1]]


def test_a_fake_image_is_refused_and_nothing_is_stored(customer):
    before = account_state(customer)
    response = token_client(customer).put(
        PHOTO, {"photo": upload("me.jpg", b"%PDF-1.4 definitely not a photo")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_image",
            "message": "This file is not a valid image. Upload a JPEG, PNG or WebP photo.",
            "fields": {"photo": ["This file is not a valid image. Upload a JPEG, PNG or WebP photo."]},
        }
    }
    assert account_state(customer) == before
    assert stored_files(customer) == []


def test_an_oversized_image_is_refused_and_nothing_is_stored(customer, settings):
    settings.MAX_PROFILE_PHOTO_BYTES = 1_048_576
    big = noisy_png_bytes()
    assert len(big) > settings.MAX_PROFILE_PHOTO_BYTES
    before = account_state(customer)
    response = token_client(customer).put(PHOTO, {"photo": upload("big.png", big, "image/png")}, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_image"
    assert error["fields"]["photo"] == [f"This file is {len(big) / 1_048_576:.1f} MB; the limit is 1 MB."]
    assert account_state(customer) == before
    assert stored_files(customer) == []


def test_a_refused_photo_keeps_the_previous_one(customer):
    client = token_client(customer)
    client.put(PHOTO, {"photo": upload("a.png", png_bytes(), "image/png")}, format="multipart")
    before = account_state(customer)
    files = stored_files(customer)
    response = client.put(PHOTO, {"photo": upload("x.gif", b"GIF89a-broken")}, format="multipart")
    assert response.status_code == 400
    assert account_state(customer) == before
    assert stored_files(customer) == files


def test_no_file_is_a_field_error(customer):
    response = token_client(customer).put(PHOTO, {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"photo": ["No file was submitted."]}


def test_uploading_needs_a_login(api_client, customer):
    response = api_client.put(PHOTO, {"photo": upload("a.png", png_bytes(), "image/png")}, format="multipart")
    assert response.status_code == 401
    assert User.objects.get(pk=customer.pk).photo.name == ""


def test_my_upload_never_touches_another_users_photo(customer, outsider):
    token_client(outsider).put(PHOTO, {"photo": upload("c.png", png_bytes(), "image/png")}, format="multipart")
    theirs = account_state(outsider)
    their_files = stored_files(outsider)
    response = token_client(customer).put(PHOTO, {"photo": upload("d.png", png_bytes(), "image/png")}, format="multipart")
    assert response.status_code == 200
    assert account_state(outsider) == theirs
    assert stored_files(outsider) == their_files
