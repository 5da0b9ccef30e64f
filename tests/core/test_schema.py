"""The OpenAPI schema is valid with no warnings, and the docs page works
offline: every asset comes from our own /static/ (drf-spectacular-sidecar)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats
from drf_spectacular.management.commands.spectacular import SchemaGenerationError, SchemaValidationError

ACCOUNTS_PATHS = {
    "/api/v1/auth/token": {"post", "delete"},
    "/api/v1/me": {"get", "patch"},
    "/api/v1/me/photo": {"put"},
    "/api/v1/me/onboarding/complete": {"post"},
    "/api/v1/categories": {"get"},
    "/api/v1/contractors/{slug}": {"get"},
}


def test_schema_validates_without_warnings(tmp_path, capsys):
    reset_generator_stats()  # warnings from an earlier schema build in this process must not count
    out = tmp_path / "schema.yaml"
    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    except (SchemaGenerationError, SchemaValidationError) as exc:  # the command prints each warning to stderr first
        pytest.fail(f"schema generation failed: {exc}\n{capsys.readouterr().err}")
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    for path, methods in ACCOUNTS_PATHS.items():
        assert methods <= set(schema["paths"][path]), path


def test_schema_documents_the_error_shape_and_token_auth(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message", "fields"}
    patch_me = schema["paths"]["/api/v1/me"]["patch"]["responses"]
    assert patch_me["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    assert schema["components"]["securitySchemes"]["tokenAuth"]["in"] == "header"


def test_schema_is_served_to_anyone(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/me" in response.content


def test_docs_page_loads_only_local_static_assets_that_exist(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "docs page loads from another origin"
    assert "http://" not in html and "https://" not in html

    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets, "expected the page to load swagger-ui's script and stylesheet"
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among the static files"
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(b"".join(served.streaming_content) if served.streaming else served.content) > 0
