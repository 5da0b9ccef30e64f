"""Error pages come in the site's layout, with a way back, and say nothing internal."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import include, path


def boom(request):
    raise RuntimeError("secret internal detail")


def forbidden(request):
    from django.core.exceptions import PermissionDenied

    raise PermissionDenied


urlpatterns = [
    path("boom", boom),
    path("forbidden", forbidden),
    # The layout links to the real site's pages.
    path("", include("marketplace.urls")),
]


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_unknown_page_is_a_friendly_404_in_the_layout(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "find that page" in html
    assert 'class="site-header"' in html
    assert 'href="/"' in html


@pytest.mark.django_db
@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_forbidden_page_is_friendly(client):
    response = client.get("/forbidden")
    assert response.status_code == 403
    html = response.content.decode()
    assert "do that here" in html
    assert 'class="site-header"' in html


@pytest.mark.django_db
@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_server_error_page_hides_the_exception():
    client = Client(raise_request_exception=False)
    response = client.get("/boom")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "secret internal detail" not in html
    assert "RuntimeError" not in html
