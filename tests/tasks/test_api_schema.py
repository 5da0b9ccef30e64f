"""The tasks API is in the OpenAPI schema: every path and method, validated
with no warnings, lists paginated, uploads as multipart, errors in the
shared shape."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats
from drf_spectacular.management.commands.spectacular import SchemaGenerationError, SchemaValidationError

TASK = "/api/v1/tasks/{task_id}"
TASKS_PATHS = {
    "/api/v1/tasks": {"get", "post"},
    "/api/v1/tasks/nearby": {"get"},
    TASK: {"get", "patch"},
    f"{TASK}/publish": {"post"},
    f"{TASK}/cancel": {"post"},
    f"{TASK}/photos": {"post"},
    f"{TASK}/photos/{{photo_id}}": {"delete"},
    f"{TASK}/offers": {"get", "post"},
    f"{TASK}/instant-book": {"post"},
    f"{TASK}/check-in": {"post"},
    f"{TASK}/proof": {"post"},
    f"{TASK}/approve": {"post"},
    f"{TASK}/request-changes": {"post"},
    f"{TASK}/events": {"get"},
    "/api/v1/offers/{offer_id}/withdraw": {"post"},
    "/api/v1/offers/{offer_id}/decline": {"post"},
    "/api/v1/offers/{offer_id}/accept": {"post"},
    "/api/v1/jobs": {"get"},
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    reset_generator_stats()  # warnings from an earlier schema build in this process must not count
    out = tmp_path_factory.mktemp("schema") / "schema.yaml"
    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    except (SchemaGenerationError, SchemaValidationError) as exc:
        pytest.fail(f"schema generation failed (warnings are printed above): {exc}")
    return yaml.safe_load(out.read_text())


def test_every_tasks_endpoint_is_documented(schema):
    for path, methods in TASKS_PATHS.items():
        assert path in schema["paths"], path
        assert methods == set(schema["paths"][path]) - {"parameters"}, path
        for method in methods:
            operation = schema["paths"][path][method]
            assert operation["operationId"], (path, method)
            assert "401" in operation["responses"], (path, method)


def test_lists_are_paginated_and_filters_documented(schema):
    nearby = schema["paths"]["/api/v1/tasks/nearby"]["get"]
    params = {p["name"] for p in nearby["parameters"]}
    assert {"lat", "lon", "radius_km", "category", "min_budget_cents", "max_budget_cents", "date_from", "date_to",
            "q", "sort", "page", "page_size"} <= params
    ok = nearby["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page = schema["components"]["schemas"][ok.rsplit("/", 1)[-1]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    for path in ("/api/v1/tasks", "/api/v1/jobs"):
        params = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"status_group", "page", "page_size"} <= params, path


def test_uploads_are_multipart_and_errors_share_one_shape(schema):
    create = schema["paths"]["/api/v1/tasks"]["post"]
    assert {"multipart/form-data", "application/json"} <= set(create["requestBody"]["content"])
    proof = schema["paths"][f"{TASK}/proof"]["post"]
    assert set(proof["requestBody"]["content"]) == {"multipart/form-data"}
    accept = schema["paths"]["/api/v1/offers/{offer_id}/accept"]["post"]["responses"]
    assert accept["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    detail = schema["components"]["schemas"]["TaskDetail"]["properties"]
    assert {"location", "actions", "photos", "proofs", "budget_cents", "currency"} <= set(detail)
