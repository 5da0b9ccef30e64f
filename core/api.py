"""The API's shared pieces: one error shape for every 4xx, and pagination.

Every error body is::

    {"error": {"code": "validation_error", "message": "...", "fields": {"field": ["..."]}}}

``fields`` is present (possibly empty) on every error so clients can rely on it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError
from core.pagination import CappedPaginator


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class CappedPagination(Pagination):
    """For lists that can match a great many rows (Find work): ``count`` stops
    at the cap and ``count_capped`` says when it did (see core.pagination)."""

    django_paginator_class = CappedPaginator

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_capped"] = self.page.paginator.is_capped
        # Set when the order asked for covers only the nearest N matches.
        response.data["sorted_within_nearest"] = self.page.paginator.sorted_within if self.page.paginator.is_capped else None
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_capped"] = {
            "type": "boolean",
            "description": f"True when there are at least {CappedPaginator.cap} matches: count stops there "
            "and only the first ones can be paged through.",
        }
        schema["properties"]["sorted_within_nearest"] = {
            "type": "integer",
            "nullable": True,
            "description": "Set when count_capped and the sort is not by distance: the results are the nearest "
            "this many matches, in the order asked for (newest, budget, relevance).",
        }
        schema["required"] = [*schema.get("required", []), "count_capped", "sorted_within_nearest"]
        return schema


def error_body(code: str, message: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"code": code, "message": message, "fields": fields or {}}
    body.update(extra)
    return {"error": body}


def _flatten(detail: Any) -> dict[str, list[str]]:
    """DRF's nested ValidationError detail as {"field": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, sub_value in _flatten(value).items():
                    out[f"{key}.{sub_key}"] = sub_value
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub_key, sub_value in _flatten(item).items():
                        out[f"{key}[{index}].{sub_key}"] = sub_value
            elif isinstance(value, list):
                out[key] = [str(v) for v in value]
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(exc.code, exc.message, exc.fields, **({"extra": exc.extra} if exc.extra else {})),
            status=exc.status_code,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.values()), ["Invalid input."])[0]
        response.data = error_body("validation_error", first, fields)
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    detail = getattr(exc, "detail", str(exc))
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = error_body(str(code), str(detail))
    return response


# Schema components for the error body, shared by every app's @extend_schema.
class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    extra = serializers.DictField(required=False)


class ErrorResponseSerializer(serializers.Serializer):
    """The body of every 4xx answer (see core.api)."""

    error = ErrorBodySerializer()
