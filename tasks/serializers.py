"""Shapes of the tasks API. Serializers check shape and type only; what may be
stored (budget ranges, windows in the future, photo counts, who may do what)
is decided by ``tasks.services``, whose ApplicationError becomes the API's
error body in ``core.api``.

Money is integer cents with its currency. Times are ISO 8601 in UTC ("Z").
Strangers see a task's approximate location (a ~1 km cell centre) and city;
the exact address only when ``selectors.task_location_for`` says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# One error shape and one category shape for the whole API: the accounts API
# defined them first; sharing the classes keeps a single schema component.
from accounts.serializers import CategorySerializer  # noqa: F401
from core.api import ErrorResponseSerializer  # noqa: F401

from .models import MAX_PHOTOS, Category, Offer, ProofSubmission, Task, TaskEvent, TaskPhoto

MAX_TEXT_IN_REQUEST = 10_000  # above every model limit: huge bodies are refused before any work
MAX_CATEGORIES_IN_QUERY = 20
ACTIONS = [
    "edit",
    "publish",
    "cancel",
    "offer",
    "withdraw_offer",
    "instant_book",
    "accept_offer",
    "decline_offer",
    "check_in",
    "submit_proof",
    "approve",
    "request_changes",
]


class UTCDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC on the way out; a time without a zone is read as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)


def photo_urls(photo_public_id: Any, request: Any = None) -> tuple[str, str]:
    """The protected photo view's addresses (tasks.views checks who asks).

    Falls back to the documented paths while the pages' URL names are not
    registered, so the API never fails because of a missing route name.
    """
    try:
        image = reverse("tasks:photo", kwargs={"public_id": photo_public_id})
    except NoReverseMatch:
        image = f"/tasks/photos/{photo_public_id}/"
    try:
        thumb = reverse("tasks:photo_thumb", kwargs={"public_id": photo_public_id})
    except NoReverseMatch:
        thumb = f"{image}thumb"
    if request is not None:
        return request.build_absolute_uri(image), request.build_absolute_uri(thumb)
    return image, thumb


# --- Small pieces ------------------------------------------------------------


class TaskPartySerializer(serializers.Serializer):
    """Another person on a task, as the other side sees them: a first name,
    and for contractors their public profile's slug. No email, no phone."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.SerializerMethodField()
    profile_slug = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_name(self, user: Any) -> str:
        # Never get_full_name(): it falls back to the email address.
        return (user.full_name.split() or [""])[0]

    @extend_schema_field({"type": "string", "nullable": True})
    def get_profile_slug(self, user: Any) -> str | None:
        if not user.is_contractor:
            return None
        profile = getattr(user, "contractor_profile", None)
        return profile.slug if profile is not None and profile.onboarded_at else None


class TaskLocationSerializer(serializers.Serializer):
    exact = serializers.BooleanField(help_text=_("False: the point is a ~1 km cell centre and address is empty."))
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    address = serializers.CharField(allow_blank=True)
    city = serializers.CharField(allow_blank=True)
    state = serializers.CharField(allow_blank=True)
    postal_code = serializers.CharField(allow_blank=True)


class TaskApproximateLocationSerializer(serializers.Serializer):
    """Where a task is, to within about a kilometre: what lists show everyone."""

    latitude = serializers.FloatField(source="approx_latitude")
    longitude = serializers.FloatField(source="approx_longitude")
    city = serializers.CharField()
    state = serializers.CharField()


class TaskPhotoSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    taken_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = TaskPhoto
        fields = ["id", "kind", "url", "thumbnail_url", "width", "height", "taken_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, photo: TaskPhoto) -> str:
        return photo_urls(photo.public_id, self.context.get("request"))[0]

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, photo: TaskPhoto) -> str:
        return photo_urls(photo.public_id, self.context.get("request"))[1]


class ProofSubmissionSerializer(serializers.ModelSerializer):
    # Set by tasks.api.task_detail_context once it has checked who may see them.
    photos = TaskPhotoSerializer(many=True, read_only=True, source="visible_photos")
    submitted_at = UTCDateTimeField(read_only=True)
    decided_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = ProofSubmission
        fields = ["note", "decision", "decision_reason", "submitted_at", "decided_at", "photos"]
        read_only_fields = fields


# --- Tasks: output -----------------------------------------------------------

TIME_FIELDS = [
    "window_start",
    "window_end",
    "deadline",
    "published_at",
    "assigned_at",
    "started_at",
    "submitted_at",
    "completed_at",
    "cancelled_at",
    "auto_approve_at",
    "created_at",
    "updated_at",
]


class _TaskBase(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{
            model_field: UTCDateTimeField
            for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
            if field is serializers.DateTimeField
        },
    }

    id = serializers.UUIDField(source="public_id", read_only=True)
    category = CategorySerializer(read_only=True)
    budget_total_cents = serializers.IntegerField(
        read_only=True, help_text=_("The most the customer expects to pay: the fixed price, or rate x hours.")
    )


class TaskListItemSerializer(_TaskBase):
    """A task in a list (my tasks, my jobs): approximate location, first thumbnail."""

    location = TaskApproximateLocationSerializer(source="*", read_only=True)
    photo_count = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "status",
            "category",
            "budget_type",
            "budget_cents",
            "estimated_hours",
            "budget_total_cents",
            "agreed_price_cents",
            "currency",
            "schedule_type",
            "window_start",
            "window_end",
            "deadline",
            "urgency",
            "instant_book",
            "location",
            "photo_count",
            "thumbnail_url",
            "published_at",
            "created_at",
        ]
        read_only_fields = fields

    # ``problem_photos`` is prefetched for the whole page (tasks.api.with_photo_summary).
    @extend_schema_field(OpenApiTypes.INT)
    def get_photo_count(self, task: Task) -> int:
        return len(task.problem_photos)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_thumbnail_url(self, task: Task) -> str | None:
        if not task.problem_photos:
            return None
        return photo_urls(task.problem_photos[0].public_id, self.context.get("request"))[1]


class OfferSummarySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    proposed_start = UTCDateTimeField(read_only=True)
    created_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = Offer
        fields = ["id", "price_cents", "currency", "proposed_start", "status", "is_instant", "created_at"]
        read_only_fields = fields


class CustomerTaskSerializer(TaskListItemSerializer):
    """A task in the customer's own list, with how many offers wait for an answer."""

    pending_offers = serializers.IntegerField(read_only=True)

    class Meta(TaskListItemSerializer.Meta):
        fields = [*TaskListItemSerializer.Meta.fields, "pending_offers"]
        read_only_fields = fields


class JobSerializer(TaskListItemSerializer):
    """A task in the contractor's jobs: assigned to them, or carrying their offer."""

    my_offer = serializers.SerializerMethodField()

    class Meta(TaskListItemSerializer.Meta):
        fields = [*TaskListItemSerializer.Meta.fields, "my_offer"]
        read_only_fields = fields

    @extend_schema_field(OfferSummarySerializer(allow_null=True))
    def get_my_offer(self, task: Task) -> dict | None:
        # ``my_offers`` is prefetched by selectors.jobs_for_contractor, newest first.
        offers = getattr(task, "my_offers", [])
        return OfferSummarySerializer(offers[0]).data if offers else None


class NearbyTaskSerializer(TaskListItemSerializer):
    """An open task near the contractor. ``distance_km`` is measured to the
    approximate point, so no number of searches from different places can
    narrow the address down below the ~1 km cell everyone sees."""

    description = serializers.SerializerMethodField()
    distance_km = serializers.SerializerMethodField()
    match_score = serializers.SerializerMethodField()
    match_reasons = serializers.SerializerMethodField()

    class Meta(TaskListItemSerializer.Meta):
        fields = (
            TaskListItemSerializer.Meta.fields[:2]
            + ["description", "distance_km"]
            + [f for f in TaskListItemSerializer.Meta.fields[2:] if f not in ("agreed_price_cents",)]
            + ["match_score", "match_reasons"]
        )
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_match_score(self, task: Task) -> float | None:
        """How well the task suits me (higher is better; only comparable within one response); null unless sort=best_match."""
        score = getattr(task, "match_score", None)
        return round(float(score), 4) if score is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_match_reasons(self, task: Task) -> list[str]:
        """Why it suits me, in plain words ("3 km away", "did 12 similar jobs"); empty unless sort=best_match."""
        return list(getattr(task, "match_reasons", None) or [])

    @extend_schema_field(OpenApiTypes.STR)
    def get_description(self, task: Task) -> str:
        text = task.description
        return text if len(text) <= 300 else text[:299].rstrip() + "…"

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_distance_km(self, task: Task) -> float:

        origin = self.context["origin"]
        return round(task.approx_distance_km(*origin), 1)


def _utc_iso(value: dt.datetime | None) -> str | None:
    """What UTCDateTimeField writes: ISO 8601 in UTC with a "Z"."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def nearby_task_list(tasks: Any, *, request: Any, origin: tuple[float, float]) -> list[dict]:
    """Exactly what ``NearbyTaskSerializer(tasks, many=True, context=...).data``
    returns (tests/tasks/test_api_find_work.py compares the two), built with
    plain dicts: DRF builds and walks ~30 field objects per row, which was
    the largest Python cost of a Find work request (about a third of it under
    cProfile at 1M tasks). The serializer stays the documented schema.
    Needs ``category`` and ``problem_photos`` loaded, as the selector does."""

    # One reverse() for the page: photo ids go into a template address.
    marker = "00000000-0000-0000-0000-000000000000"
    thumb_template = photo_urls(marker, request)[1]
    categories: dict[int, dict] = {}
    out = []
    for task in tasks:
        category = categories.get(task.category_id)
        if category is None:
            c = task.category
            category = categories[task.category_id] = {"name": c.name, "slug": c.slug, "description": c.description}
        text = task.description
        photos = task.problem_photos
        out.append(
            {
                "id": str(task.public_id),
                "title": task.title,
                "description": text if len(text) <= 300 else text[:299].rstrip() + "…",
                "distance_km": round(task.approx_distance_km(*origin), 1),
                "status": task.status,
                "category": dict(category),
                "budget_type": task.budget_type,
                "budget_cents": task.budget_cents,
                "estimated_hours": task.estimated_hours,
                "budget_total_cents": task.budget_total_cents,
                "currency": task.currency,
                "schedule_type": task.schedule_type,
                "window_start": _utc_iso(task.window_start),
                "window_end": _utc_iso(task.window_end),
                "deadline": _utc_iso(task.deadline),
                "urgency": task.urgency,
                "instant_book": task.instant_book,
                "location": {
                    "latitude": float(task.approx_latitude),
                    "longitude": float(task.approx_longitude),
                    "city": task.city,
                    "state": task.state,
                },
                "photo_count": len(photos),
                "thumbnail_url": thumb_template.replace(marker, str(photos[0].public_id)) if photos else None,
                "published_at": _utc_iso(task.published_at),
                "created_at": _utc_iso(task.created_at),
                "match_score": round(float(score), 4) if (score := getattr(task, "match_score", None)) is not None else None,
                "match_reasons": list(getattr(task, "match_reasons", None) or []),
            }
        )
    return out


class TaskDetailSerializer(_TaskBase):
    """One task as the caller may see it. Needs ``context["viewer"]`` and the
    precomputed ``location``, ``actions``, ``photos``, ``proofs`` (see
    ``tasks.api.task_detail_context``), so the serializer itself never queries
    for who may see what."""

    customer = TaskPartySerializer(read_only=True)
    contractor = serializers.SerializerMethodField()
    location = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    photos = serializers.SerializerMethodField()
    proofs = serializers.SerializerMethodField()
    cancel_reason = serializers.SerializerMethodField()
    is_mine = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "description",
            "status",
            "category",
            "customer",
            "contractor",
            "is_mine",
            "budget_type",
            "budget_cents",
            "estimated_hours",
            "budget_total_cents",
            "agreed_price_cents",
            "currency",
            "schedule_type",
            "window_start",
            "window_end",
            "deadline",
            "urgency",
            "instant_book",
            "location",
            "photos",
            "proofs",
            "actions",
            "changes_requested_count",
            "cancel_reason",
            *TIME_FIELDS[3:],
        ]
        read_only_fields = fields

    @extend_schema_field(TaskPartySerializer(allow_null=True))
    def get_contractor(self, task: Task) -> dict | None:
        return TaskPartySerializer(task.contractor).data if task.contractor_id else None

    @extend_schema_field(TaskLocationSerializer)
    def get_location(self, task: Task) -> dict:
        return TaskLocationSerializer(self.context["location"]).data

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=ACTIONS)))
    def get_actions(self, task: Task) -> list[str]:
        return sorted(self.context["actions"])

    @extend_schema_field(TaskPhotoSerializer(many=True))
    def get_photos(self, task: Task) -> list[dict]:
        return TaskPhotoSerializer(self.context["photos"], many=True, context=self.context).data

    @extend_schema_field(ProofSubmissionSerializer(many=True))
    def get_proofs(self, task: Task) -> list[dict]:
        return ProofSubmissionSerializer(self.context["proofs"], many=True, context=self.context).data

    @extend_schema_field(OpenApiTypes.STR)
    def get_cancel_reason(self, task: Task) -> str:
        return task.cancel_reason if self.context.get("is_party") else ""

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_mine(self, task: Task) -> bool:
        viewer = self.context["viewer"]
        return task.customer_id == viewer.pk


# --- Tasks: input ------------------------------------------------------------


class TaskWriteSerializer(serializers.Serializer):
    """The fields of a task a customer writes. Ranges and rules (budget 1 cent
    to $100,000, window in the future, hours for hourly budgets...) are the
    service's: its field errors come back as 400 ``fields``."""

    title = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST)
    description = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST)
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.filter(is_active=True), help_text=_("A category slug.")
    )
    postal_code = serializers.CharField(max_length=64, help_text=_("5-digit US ZIP code."))
    address = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text=_("Street address; only the assigned contractor ever sees it."),
    )
    budget_type = serializers.ChoiceField(choices=Task.BudgetType.choices, default=Task.BudgetType.FIXED)
    budget_cents = serializers.IntegerField(help_text=_("Integer cents: the fixed total, or the hourly rate."))
    estimated_hours = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("Hourly budgets only: how many hours.")
    )
    schedule_type = serializers.ChoiceField(choices=Task.ScheduleType.choices, default=Task.ScheduleType.FLEXIBLE)
    window_start = UTCDateTimeField(required=False, allow_null=True)
    window_end = UTCDateTimeField(required=False, allow_null=True)
    deadline = UTCDateTimeField(required=False, allow_null=True, help_text=_("Flexible schedules: done by."))
    urgency = serializers.ChoiceField(choices=Task.Urgency.choices, default=Task.Urgency.FLEXIBLE)
    instant_book = serializers.BooleanField(default=False)
    latitude = serializers.FloatField(
        required=False, allow_null=True, help_text=_("Optional refinement of the ZIP's point, e.g. from the browser.")
    )
    longitude = serializers.FloatField(required=False, allow_null=True)


class TaskCreateSerializer(TaskWriteSerializer):
    publish = serializers.BooleanField(
        required=False,
        help_text=_("Post it now (needs at least one photo) or keep it as a draft. Default: true."),
    )
    photos = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=MAX_PHOTOS,
        help_text=_("1 to 10 photos of the job (multipart only); each at most 10 MB."),
    )


class TaskUpdateSerializer(TaskWriteSerializer):
    """PATCH: any subset of the task's fields; the rest keep their values."""


class PhotosUploadSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.FileField(),
        min_length=1,
        max_length=MAX_PHOTOS,
        help_text=_("Photos to add; a task has at most 10."),
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST)


class OptionalReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST, required=False, allow_blank=True, default="")


class InstantBookSerializer(serializers.Serializer):
    proposed_start = UTCDateTimeField(required=False, allow_null=True)


class CheckInInputSerializer(serializers.Serializer):
    """The browser's position, if it gave one: both coordinates or neither."""

    latitude = serializers.FloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    longitude = serializers.FloatField(required=False, allow_null=True, min_value=-180, max_value=180)
    accuracy_m = serializers.FloatField(required=False, allow_null=True, min_value=0)

    def validate(self, attrs: dict) -> dict:
        if (attrs.get("latitude") is None) != (attrs.get("longitude") is None):
            missing = "longitude" if attrs.get("longitude") is None else "latitude"
            raise serializers.ValidationError({missing: [_("Send both latitude and longitude, or neither.")]})
        return attrs


class ProofInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST, required=False, allow_blank=True, default="")
    photos = serializers.ListField(
        child=serializers.FileField(),
        min_length=1,
        max_length=MAX_PHOTOS,
        help_text=_("1 to 10 photos of the finished work."),
    )


# --- Offers ------------------------------------------------------------------


class OfferSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    task_id = serializers.UUIDField(source="task.public_id", read_only=True)
    contractor = TaskPartySerializer(read_only=True)
    contractor_hourly_rate_cents = serializers.SerializerMethodField()
    proposed_start = UTCDateTimeField(read_only=True)
    created_at = UTCDateTimeField(read_only=True)
    decided_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = Offer
        fields = [
            "id",
            "task_id",
            "contractor",
            "contractor_hourly_rate_cents",
            "price_cents",
            "currency",
            "message",
            "proposed_start",
            "status",
            "is_instant",
            "decline_reason",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_contractor_hourly_rate_cents(self, offer: Offer) -> int | None:
        profile = getattr(offer.contractor, "contractor_profile", None)
        return profile.hourly_rate_cents if profile is not None else None


class OfferCreateSerializer(serializers.Serializer):
    price_cents = serializers.IntegerField(help_text=_("Integer cents, in the task's currency."))
    message = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST, required=False, allow_blank=True, default="")
    proposed_start = UTCDateTimeField(required=False, allow_null=True)


# --- Timeline ----------------------------------------------------------------


class TaskEventSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    actor = serializers.SerializerMethodField()
    at = UTCDateTimeField(source="created_at", read_only=True)

    class Meta:
        model = TaskEvent
        fields = ["kind", "kind_label", "from_status", "to_status", "actor", "at"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_actor(self, event: TaskEvent) -> str | None:
        if event.actor_id is None:
            return None
        return (event.actor.full_name.split() or [""])[0]


# --- Query parameters --------------------------------------------------------

STATUS_GROUPS = ["active", "drafts", "done", "cancelled"]


class StatusGroupQuerySerializer(serializers.Serializer):
    status_group = serializers.ChoiceField(choices=STATUS_GROUPS, required=False)


class JobsQuerySerializer(serializers.Serializer):
    status_group = serializers.ChoiceField(choices=["active", "offers", "done", "cancelled"], required=False)


class NearbyQuerySerializer(serializers.Serializer):
    lat = serializers.FloatField(
        required=False, min_value=-90, max_value=90, help_text=_("Default: your service area's centre.")
    )
    lon = serializers.FloatField(required=False, min_value=-180, max_value=180)
    radius_km = serializers.FloatField(
        required=False, min_value=0.1, max_value=160, help_text=_("Default: your service radius. At most 160.")
    )
    category = serializers.ListField(
        child=serializers.SlugField(max_length=80),
        required=False,
        max_length=MAX_CATEGORIES_IN_QUERY,
        help_text=_("Category slug; repeat for several."),
    )
    min_budget_cents = serializers.IntegerField(required=False, min_value=0)
    max_budget_cents = serializers.IntegerField(required=False, min_value=0)
    date_from = serializers.DateField(required=False, help_text=_("Scheduled on or after this day."))
    date_to = serializers.DateField(required=False, help_text=_("Scheduled on or before this day."))
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text=_("Words in the title or description.")
    )
    sort = serializers.ChoiceField(
        choices=["best_match", "distance", "newest", "budget", "relevance"],
        required=False,
        help_text=_("Default: relevance with q, best_match (matching.selectors) without."),
    )

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, list[str]] = {}
        if ("lat" in attrs) != ("lon" in attrs):
            errors["lon" if "lat" in attrs else "lat"] = [_("Send both lat and lon, or neither.")]
        low, high = attrs.get("min_budget_cents"), attrs.get("max_budget_cents")
        if low is not None and high is not None and low > high:
            errors["max_budget_cents"] = [_("The maximum is below the minimum.")]
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            errors["date_to"] = [_("The end date is before the start date.")]
        q = (attrs.get("q") or "").strip()
        attrs["q"] = q or None
        if attrs.get("sort") == "relevance" and not q:
            errors["sort"] = [_("Sorting by relevance needs a search (q).")]
        if errors:
            raise serializers.ValidationError(errors)
        attrs.setdefault("sort", "relevance" if q else "best_match")
        return attrs
