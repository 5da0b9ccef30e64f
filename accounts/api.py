"""The accounts REST API (/api/v1/). Each view parses input with a
serializer, calls services, and answers; every write acts on the caller
(``request.user``) only: no endpoint takes another user's id for a write.
Errors come back in core.api's shape."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.errors import ApplicationError, PermissionDenied
from core.geo import find_zip
from tasks.models import Category

from . import selectors, services, tokens
from .models import AvailabilitySlot, User
from .serializers import (
    CategorySerializer,
    ErrorResponseSerializer,
    MeSerializer,
    PhotoUploadSerializer,
    PublicContractorSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)

ERROR = ErrorResponseSerializer


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `fields` says which.",
        401: "Missing or invalid token.",
        403: "Not allowed (e.g. email_not_verified).",
        404: "Not found.",
        409: "Conflict.",
        415: "Unsupported media type.",
        429: "Too many requests.",
    }
    return {code: OpenApiResponse(ERROR, description=descriptions[code]) for code in codes}


class TokenFirstMixin:
    # Token first: DRF takes the WWW-Authenticate header from the first
    # class, and without one it turns 401 into 403. A client with a bad or
    # revoked token must hear 401, so it knows to log in again.
    authentication_classes = [TokenAuthentication, SessionAuthentication]


def _me(user: User) -> User:
    """The caller with their contractor profile, trades and hours in 3 queries."""
    return (
        User.objects.select_related("contractor_profile")
        .prefetch_related(
            "contractor_profile__trades",
            Prefetch(
                "contractor_profile__availability",
                queryset=AvailabilitySlot.objects.order_by("weekday", "start_time"),
            ),
        )
        .get(pk=user.pk)
    )


def _collect(errors: dict[str, list[str]], call, prefix: str = "", rename: dict[str, str] | None = None) -> None:
    """Run one service; keep its field errors (400) to report with the
    others. Anything else (403, 404, 409) stops at once."""
    rename = rename or {}
    try:
        call()
    except ApplicationError as exc:
        if exc.status_code != 400 or not exc.fields:
            raise
        for key, messages in exc.fields.items():
            errors.setdefault(rename.get(key, prefix + key), []).extend(messages)


def _service_area(profile_data: dict[str, Any], errors: dict[str, list[str]]) -> tuple[str | None, str]:
    """``address`` and/or ``postal_code`` as the service's one ``location``
    text, and the field its errors belong to."""
    address = profile_data.get("address")
    postal_code = profile_data.get("postal_code")
    if address is None and postal_code is None:
        return None, ""
    if address and postal_code:
        in_address = find_zip(address)
        if in_address is None:
            return f"{address.strip()} {postal_code.strip()}", "contractor_profile.address"
        if in_address != postal_code.strip():
            errors.setdefault("contractor_profile.postal_code", []).append(
                _("The address has ZIP code %(found)s, not %(given)s.") % {"found": in_address, "given": postal_code}
            )
            return None, ""
        return address, "contractor_profile.address"
    if address:
        return address, "contractor_profile.address"
    if postal_code is not None:
        return postal_code, "contractor_profile.postal_code"
    return address, "contractor_profile.address"


def account_update(*, user: User, data: dict[str, Any]) -> None:
    """Apply a PATCH /me body through the services, all or nothing: each
    service validates its part; their field errors are reported together and
    the whole transaction rolls back."""
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        if "is_customer" in data or "is_contractor" in data:
            _collect(
                errors,
                lambda: services.user_set_roles(
                    user=user,
                    is_customer=data.get("is_customer", user.is_customer),
                    is_contractor=data.get("is_contractor", user.is_contractor),
                ),
                rename={"role": "roles"},
            )
        details = {key: data[key] for key in ("full_name", "phone", "postal_code") if key in data}
        if details:
            _collect(errors, lambda: services.user_update_profile(user=user, **details))

        profile_data = data.get("contractor_profile")
        if profile_data:
            location, location_field = _service_area(profile_data, errors)
            changes: dict[str, Any] = {
                "bio": profile_data.get("bio"),
                "trade_ids": profile_data.get("trades"),
                "hourly_rate_cents": profile_data.get("hourly_rate_cents"),
                "service_radius_km": profile_data.get("service_radius_km"),
                "availability": profile_data.get("availability"),
                "location": location,
            }
            _collect(
                errors,
                lambda: services.contractor_profile_update(user=user, **changes),
                prefix="contractor_profile.",
                rename={"location": location_field},
            )
        if errors:
            raise ApplicationError(next(iter(errors.values()))[0], code="validation_error", fields=errors)


# --- Tokens ----------------------------------------------------------------


class AuthTokenView(TokenFirstMixin, APIView):
    """Exchange email and password for an API token; revoke it."""

    serializer_class = TokenCreateSerializer
    throttle_scope = "token"

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        # Only guessing passwords is throttled; revoking is not.
        if self.request.method == "POST":
            return [ScopedRateThrottle()]
        return []

    @extend_schema(
        operation_id="auth_token_create",
        request=TokenCreateSerializer,
        responses={200: TokenSerializer, **_errors(400, 403, 429)},
        auth=[],
        description="Log in with email and password. Unknown email, wrong password and inactive "
        "account all get the same 400 `invalid_credentials`; an unverified email gets 403 "
        "`email_not_verified`. At most 10 attempts a minute.",
    )
    def post(self, request: Request) -> Response:
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = tokens.api_token_issue(
            request=request._request,
            email=serializer.validated_data["email"],
            password=serializer.validated_data["password"],
        )
        return Response(TokenSerializer(token).data)

    @extend_schema(
        operation_id="auth_token_destroy",
        request=None,
        responses={204: OpenApiResponse(description="Token revoked."), **_errors(401)},
    )
    def delete(self, request: Request) -> Response:
        tokens.api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Me --------------------------------------------------------------------


class MeView(TokenFirstMixin, APIView):
    """My account: personal details, roles and, for contractors, what I offer."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="me_retrieve", responses={200: MeSerializer, **_errors(401)})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(_me(request.user)).data)

    @extend_schema(
        operation_id="me_partial_update",
        request=MeSerializer,
        responses={200: MeSerializer, **_errors(400, 401, 403)},
        description="Change any subset of the writable fields. All or nothing: if one field is "
        "refused, nothing is saved and `fields` lists every refusal "
        "(nested ones as `contractor_profile.hourly_rate_cents`).",
    )
    def patch(self, request: Request) -> Response:
        serializer = MeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        account_update(user=request.user, data=serializer.validated_data)
        return Response(MeSerializer(_me(request.user)).data)


class MyPhotoView(TokenFirstMixin, APIView):
    """My profile photo: checked by content, size-capped, EXIF removed."""

    serializer_class = PhotoUploadSerializer
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="me_photo_update",
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={200: MeSerializer, **_errors(400, 401, 415)},
    )
    def put(self, request: Request) -> Response:
        serializer = PhotoUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_set_photo(user=request.user, upload=serializer.validated_data["photo"])
        return Response(MeSerializer(_me(request.user)).data)


class OnboardingCompleteView(TokenFirstMixin, APIView):
    """Go live as a contractor once the profile is complete."""

    serializer_class = MeSerializer
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_onboarding_complete",
        request=None,
        responses={200: MeSerializer, **_errors(400, 401, 403)},
        description="400 `profile_incomplete` lists what is missing in `extra.missing`; "
        "403 `email_not_verified` or `not_contractor`.",
    )
    def post(self, request: Request) -> Response:
        if selectors.contractor_profile_for_user(request.user) is None:
            raise PermissionDenied(_("Only contractors have a profile to publish."), code="not_contractor")
        services.contractor_onboarding_complete(user=request.user)
        return Response(MeSerializer(_me(request.user)).data)


# --- Public ----------------------------------------------------------------


class CategoryListView(TokenFirstMixin, generics.ListAPIView):
    """The trades a task or a contractor can have."""

    serializer_class = CategorySerializer
    permission_classes = [AllowAny]
    pagination_class = None
    queryset = Category.objects.filter(is_active=True).order_by("sort_order", "name")

    @extend_schema(operation_id="categories_list", auth=[], responses={200: CategorySerializer(many=True)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class PublicContractorView(TokenFirstMixin, generics.RetrieveAPIView):
    """A live contractor's public profile (no address, coordinates, email or phone)."""

    serializer_class = PublicContractorSerializer
    permission_classes = [AllowAny]
    lookup_field = "slug"

    def get_queryset(self):
        return selectors.contractor_profiles_public()

    @extend_schema(
        operation_id="contractors_retrieve",
        auth=[],
        responses={200: PublicContractorSerializer, **_errors(404)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
