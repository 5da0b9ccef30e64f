"""Shapes of the accounts API. Serializers parse and present; the rules about
what may be stored live in ``accounts.services`` (see ``accounts.api``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ErrorBodySerializer, ErrorResponseSerializer  # noqa: F401  (re-exported)
from tasks.models import Category

from . import selectors, services
from .models import AvailabilitySlot, ContractorProfile, User

# Caps on list lengths, well above the services' own limits (10 trades,
# 28 windows), so a huge body is refused before any query is made for it.
MAX_TRADES_IN_REQUEST = 50
MAX_WINDOWS_IN_REQUEST = 100


# --- Tokens ----------------------------------------------------------------


class TokenCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(source="key")


# --- Categories ------------------------------------------------------------


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["name", "slug", "description"]


# --- Availability ----------------------------------------------------------


class AvailabilityWindowSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(
        min_value=0, max_value=6, help_text=_("0 is Monday, 6 is Sunday.")
    )
    start = serializers.TimeField(format="%H:%M", help_text=_("Local time, HH:MM."))
    end = serializers.TimeField(format="%H:%M", help_text=_("Local time, HH:MM; after start."))

    def to_representation(self, instance: AvailabilitySlot) -> dict:
        return {
            "weekday": instance.weekday,
            "start": instance.start_time.strftime("%H:%M"),
            "end": instance.end_time.strftime("%H:%M"),
        }

    def to_internal_value(self, data) -> services.AvailabilityWindow:
        values = super().to_internal_value(data)
        return services.AvailabilityWindow(
            weekday=values["weekday"], start_time=values["start"], end_time=values["end"]
        )


# --- My profile ------------------------------------------------------------


class TradeSlugsField(serializers.ListField):
    """Trades as category slugs on the wire; resolved to ids in one query."""

    child = serializers.SlugField(max_length=80)

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", MAX_TRADES_IN_REQUEST)
        super().__init__(**kwargs)

    def to_representation(self, data) -> list[str]:
        return [category.slug for category in data.all()]

    def to_internal_value(self, data) -> list[int]:
        slugs = list(dict.fromkeys(super().to_internal_value(data)))
        found = dict(Category.objects.filter(slug__in=slugs, is_active=True).values_list("slug", "pk"))
        unknown = [slug for slug in slugs if slug not in found]
        if unknown:
            raise serializers.ValidationError(
                _("There is no trade called %(slugs)s.") % {"slugs": ", ".join(unknown)}
            )
        return [found[slug] for slug in slugs]


class AvailabilityListField(serializers.ListField):
    """Windows in, AvailabilityWindow values; the profile's slots out."""

    def to_representation(self, data) -> list[dict]:
        return [self.child.to_representation(slot) for slot in data.all()]


class MyContractorProfileSerializer(serializers.ModelSerializer):
    """The contractor side of my profile. ``address`` or ``postal_code`` set
    the service area (an address must contain its ZIP, or come with one);
    the coordinates follow from them and are read-only."""

    trades = TradeSlugsField(required=False, help_text=_("Category slugs, at most 10."))
    availability = AvailabilityListField(
        child=AvailabilityWindowSerializer(),
        max_length=MAX_WINDOWS_IN_REQUEST,
        required=False,
        help_text=_("Weekly windows; replaces the whole list. At most 28, none overlapping."),
    )
    bio = serializers.CharField(required=False, allow_blank=True, max_length=5000, trim_whitespace=False)
    hourly_rate_cents = serializers.IntegerField(
        required=False, help_text=_("Integer cents in the profile's currency, 1 to 100000.")
    )
    service_radius_km = serializers.IntegerField(required=False, help_text=_("1 to 160 km."))
    postal_code = serializers.CharField(required=False, max_length=10)
    address = serializers.CharField(required=False, allow_blank=True, max_length=200)
    onboarded = serializers.SerializerMethodField()
    missing = serializers.SerializerMethodField()

    class Meta:
        model = ContractorProfile
        fields = [
            "slug",
            "bio",
            "trades",
            "hourly_rate_cents",
            "currency",
            "postal_code",
            "address",
            "city",
            "state",
            "service_radius_km",
            "latitude",
            "longitude",
            "availability",
            "onboarded",
            "missing",
        ]
        read_only_fields = ["slug", "currency", "city", "state", "latitude", "longitude"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_onboarded(self, profile: ContractorProfile) -> bool:
        return profile.is_onboarded

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_missing(self, profile: ContractorProfile) -> list[str]:
        return services.contractor_profile_missing(profile)


class MeSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(required=False, max_length=500, trim_whitespace=False)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    postal_code = serializers.CharField(required=False, allow_blank=True, max_length=64)
    is_customer = serializers.BooleanField(required=False)
    is_contractor = serializers.BooleanField(required=False)
    photo_url = serializers.SerializerMethodField()
    email_verified = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()
    contractor_profile = MyContractorProfileSerializer(
        required=False, allow_null=True, help_text=_("Null unless the account is a contractor.")
    )

    class Meta:
        model = User
        fields = [
            "public_id",
            "email",
            "full_name",
            "phone",
            "is_customer",
            "is_contractor",
            "postal_code",
            "city",
            "state",
            "photo_url",
            "email_verified",
            "roles",
            "contractor_profile",
        ]
        read_only_fields = ["public_id", "email", "city", "state"]

    def to_representation(self, instance: User) -> dict:
        data = super().to_representation(instance)
        if not instance.is_contractor:
            # Someone who stopped working keeps the profile row; it is not shown.
            data["contractor_profile"] = None
        return data

    @extend_schema_field(OpenApiTypes.STR)
    def get_photo_url(self, user: User) -> str:
        return selectors.user_photo_url(user)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_email_verified(self, user: User) -> bool:
        return user.is_email_verified

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=["customer", "contractor", "staff"])))
    def get_roles(self, user: User) -> list[str]:
        roles = []
        if user.is_customer:
            roles.append("customer")
        if user.is_contractor:
            roles.append("contractor")
        if user.is_staff:
            roles.append("staff")
        return roles


class PhotoUploadSerializer(serializers.Serializer):
    photo = serializers.FileField(help_text=_("A JPEG, PNG or WebP photo; re-encoded, EXIF removed."))


# --- Public contractor profile ---------------------------------------------


class PublicTradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["name", "slug"]


class PublicContractorSerializer(serializers.ModelSerializer):
    """What anyone may see: no address, no coordinates, no email or phone."""

    name = serializers.SerializerMethodField()
    photo_url = serializers.SerializerMethodField()
    trades = PublicTradeSerializer(many=True, read_only=True)
    availability = serializers.SerializerMethodField()
    verified = serializers.SerializerMethodField()
    member_since = serializers.DateTimeField(source="user.date_joined", read_only=True)

    class Meta:
        model = ContractorProfile
        fields = [
            "slug",
            "name",
            "photo_url",
            "bio",
            "trades",
            "hourly_rate_cents",
            "currency",
            "city",
            "state",
            "service_radius_km",
            "availability",
            "verified",
            "member_since",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_name(self, profile: ContractorProfile) -> str:
        # Never get_full_name(): it falls back to the email address.
        return profile.user.full_name

    @extend_schema_field(OpenApiTypes.STR)
    def get_photo_url(self, profile: ContractorProfile) -> str:
        return selectors.user_photo_url(profile.user)

    @extend_schema_field(AvailabilityWindowSerializer(many=True))
    def get_availability(self, profile: ContractorProfile) -> list[dict]:
        return [AvailabilityWindowSerializer().to_representation(slot) for slot in profile.availability.all()]

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"email": {"type": "boolean"}, "phone": {"type": "boolean"}, "id": {"type": "boolean"}},
            "required": ["email", "phone", "id"],
        }
    )
    def get_verified(self, profile: ContractorProfile) -> dict[str, bool]:
        user = profile.user
        return {
            "email": user.email_verified_at is not None,
            "phone": user.phone_verified_at is not None,
            "id": user.id_verified_at is not None,
        }
