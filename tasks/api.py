"""The tasks REST API (/api/v1/): post and manage tasks, find work nearby,
offers, booking, check-in, proof and approval.

Each view checks the input's shape with a serializer, finds the task with
``selectors.task_get_for_user`` (404 for anyone who may not see it), calls one
service and answers. Services decide who may act (403), whether the task's
state allows it (409 ``illegal_transition``, ``already_booked``) and whether
values are acceptable (400 with ``fields``); core.api turns their errors into
``{"error": {"code", "message", "fields"}}``. No view writes a model.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import CappedPagination
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from matching import selectors as matching_selectors
from payments import pages as payment_pages
from payments import services as payment_services
from payments.gateway import get_gateway

from . import photos as task_photos
from . import selectors, services
from .models import Offer, Task, TaskPhoto
from .serializers import (
    CheckInInputSerializer,
    CustomerTaskSerializer,
    ErrorResponseSerializer,
    InstantBookSerializer,
    JobSerializer,
    JobsQuerySerializer,
    NearbyQuerySerializer,
    NearbyTaskSerializer,
    OfferCreateSerializer,
    OfferSerializer,
    OptionalReasonSerializer,
    PhotosUploadSerializer,
    ProofInputSerializer,
    ReasonSerializer,
    StatusGroupQuerySerializer,
    TaskCreateSerializer,
    TaskDetailSerializer,
    TaskEventSerializer,
    TaskUpdateSerializer,
    nearby_task_list,
)

TASK_INPUT_FIELDS = (
    "title",
    "description",
    "category",
    "postal_code",
    "address",
    "budget_type",
    "budget_cents",
    "estimated_hours",
    "schedule_type",
    "window_start",
    "window_end",
    "deadline",
    "urgency",
    "instant_book",
)
LOCATION_FIELDS = ("postal_code", "address", "latitude", "longitude")


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `fields` says which.",
        401: "Not logged in: send a token or a session.",
        403: "Not allowed (e.g. `permission_denied`, `email_not_verified`, `not_contractor`).",
        404: "No such task, or you may not see it.",
        409: "The task has moved on: `illegal_transition` or `already_booked`.",
        415: "Unsupported media type.",
    }
    return {code: OpenApiResponse(ErrorResponseSerializer, description=descriptions[code]) for code in codes}


TASK_ID = OpenApiParameter("task_id", type=uuid.UUID, location=OpenApiParameter.PATH, description="The task's id.")
OFFER_ID = OpenApiParameter("offer_id", type=uuid.UUID, location=OpenApiParameter.PATH, description="The offer's id.")
PHOTO_ID = OpenApiParameter("photo_id", type=uuid.UUID, location=OpenApiParameter.PATH, description="The photo's id.")
PUBLISH_PARAM = OpenApiParameter(
    "publish",
    type=bool,
    location=OpenApiParameter.QUERY,
    required=False,
    description="Post now (true, the default) or save a draft (false); the body's `publish` wins.",
)


class TasksAPIView(APIView):
    # Token first: DRF takes the WWW-Authenticate header from the first class,
    # and without one it answers 401 as 403; a client must hear 401 to log in.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class TasksListAPIView(TasksAPIView, generics.ListAPIView):
    # Query parameters are parsed by explicit serializers (documented through
    # extend_schema(parameters=...)), not by django-filter.
    filter_backends: list = []


# --- Helpers -----------------------------------------------------------------


def form_data(request: Request, list_fields: tuple[str, ...] = ()) -> Any:
    """The request body as a dict for a serializer. Multipart lists (photos)
    come as repeated ``photos`` or ``photos[]`` parts."""
    data = request.data
    if not hasattr(data, "getlist"):
        return data
    out: dict[str, Any] = {key: data.get(key) for key in data if not key.endswith("[]")}
    for field in list_fields:
        values = data.getlist(field) + data.getlist(f"{field}[]")
        if values:
            out[field] = values
        else:
            out.pop(field, None)
    return out


def get_task(request: Request, task_id: uuid.UUID) -> Task:
    return selectors.task_get_for_user(task_id, request.user)


def get_offer(request: Request, offer_id: uuid.UUID) -> Offer:
    """The offer if the caller may see it (its maker, the task's customer,
    staff); 404 otherwise, the same as for an offer that does not exist."""
    offer = Offer.objects.select_related("task").filter(public_id=offer_id).first()
    if offer is None or not selectors.offers_for(offer.task, request.user).filter(pk=offer.pk).exists():
        raise NotFound(_("There is no such offer, or you may not see it."))
    return offer


def task_detail_context(task: Task, request: Request) -> dict[str, Any]:
    """Everything the detail serializer shows that depends on who asks."""
    user = request.user
    is_party = bool(user.is_staff or user.pk in (task.customer_id, task.contractor_id))
    photos = list(task.photos.all())
    problem = [photo for photo in photos if photo.kind == TaskPhoto.Kind.PROBLEM]
    proof_photos = [photo for photo in photos if photo.kind == TaskPhoto.Kind.PROOF]
    # The rule is the same for every photo of a kind on one task: ask once.
    if problem and not task_photos.photo_can_view(problem[0], user):
        problem = []
    proofs: list = []
    if is_party and (not proof_photos or task_photos.photo_can_view(proof_photos[0], user)):
        proofs = list(task.proofs.all())
        by_proof: dict[int, list[TaskPhoto]] = {}
        for photo in proof_photos:
            by_proof.setdefault(photo.proof_id, []).append(photo)
        for proof in proofs:
            proof.visible_photos = by_proof.get(proof.pk, [])
    return {
        "request": request,
        "viewer": user,
        "is_party": is_party,
        "location": selectors.task_location_for(task, user),
        "actions": selectors.task_actions(task, user),
        "photos": problem,
        "proofs": proofs,
    }


def task_response(request: Request, task: Task, *, code: int = status.HTTP_200_OK, refetch: bool = True) -> Response:
    if refetch:
        task = get_task(request, task.public_id)
    serializer = TaskDetailSerializer(task, context=task_detail_context(task, request))
    return Response(serializer.data, status=code)


def build_task_input(values: dict[str, Any], task: Task | None = None) -> services.TaskInput:
    """A full TaskInput: the given values over the task's current ones (PATCH)."""
    fields: dict[str, Any] = {}
    for name in TASK_INPUT_FIELDS:
        if name in values:
            fields[name] = values[name]
        elif task is not None:
            fields[name] = getattr(task, name)
    if task is None or any(name in values for name in LOCATION_FIELDS):
        fields["latitude"] = values.get("latitude")
        fields["longitude"] = values.get("longitude")
    else:
        # Same place: keep the refined point rather than the ZIP's centroid.
        fields["latitude"], fields["longitude"] = task.latitude, task.longitude
    if fields.get("address") is None:
        fields["address"] = ""
    return services.TaskInput(**fields)


def require_contractor(user: Any) -> None:
    if not user.is_contractor:
        raise PermissionDenied(
            _("Only contractors can look for work. Turn on the contractor role in your profile first."),
            code="not_contractor",
        )


# --- Tasks -------------------------------------------------------------------


class TaskListCreateView(TasksListAPIView):
    """My tasks as a customer; post a new one."""

    serializer_class = CustomerTaskSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Task]:
        query = StatusGroupQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        # Category, problem photos and pending-offer counts come with it: fixed queries per page.
        return selectors.tasks_for_customer(self.request.user, query.validated_data.get("status_group"))

    @extend_schema(
        operation_id="tasks_list",
        parameters=[StatusGroupQuerySerializer],
        responses={200: CustomerTaskSerializer(many=True), **_errors(400, 401)},
        description="The tasks I posted, newest first. `status_group`: active (open to done-but-unapproved), "
        "drafts, done, cancelled.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="tasks_create",
        parameters=[PUBLISH_PARAM],
        request={"multipart/form-data": TaskCreateSerializer, "application/json": TaskCreateSerializer},
        responses={201: TaskDetailSerializer, **_errors(400, 401, 403, 415)},
        description="Post a task. Multipart with 1-10 `photos` to publish at once; JSON (no photos) with "
        "`publish: false` for a draft. Publishing needs at least one photo.",
    )
    def post(self, request: Request) -> Response:
        serializer = TaskCreateSerializer(data=form_data(request, ("photos",)))
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        publish = values.get("publish")
        if publish is None:
            param = serializers.BooleanField(required=False)
            raw = request.query_params.get("publish")
            try:
                publish = True if raw is None else param.to_internal_value(raw)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"publish": exc.detail}) from exc
        task = services.task_create(
            customer=request.user,
            data=build_task_input(values),
            photos=values.get("photos", []),
            publish=publish,
        )
        return task_response(request, task, code=status.HTTP_201_CREATED)


class NearbyTasksView(TasksListAPIView):
    """Find work: open tasks near a point, best match first by default (nearest first is ``sort=distance``)."""

    serializer_class = NearbyTaskSerializer
    pagination_class = CappedPagination

    def get_queryset(self) -> QuerySet[Task]:
        return self._find_work(pages_only=False)

    def _find_work(self, *, pages_only: bool) -> Any:
        """The list asked for. ``pages_only``: it will only be paged through,
        so for the sorts other than best match it may be just
        selectors.open_task_pages_near's page source (no ORM queryset)."""
        user = self.request.user
        require_contractor(user)
        params = self.request.query_params.copy()
        # ?category=a,b as well as ?category=a&category=b
        slugs = [slug.strip() for raw in params.getlist("category") for slug in raw.split(",") if slug.strip()]
        params.setlist("category", slugs)
        query = NearbyQuerySerializer(data=params)
        query.is_valid(raise_exception=True)
        args = query.validated_data
        latitude, longitude, radius_km = args.get("lat"), args.get("lon"), args.get("radius_km")
        if latitude is None or radius_km is None:
            profile = getattr(user, "contractor_profile", None)
            if latitude is None:
                if profile is None or profile.latitude is None:
                    raise ApplicationError(
                        _("Send lat and lon, or set your service area in your profile."),
                        code="location_required",
                        fields={"lat": [_("Where should we look? Send lat and lon.")]},
                    )
                latitude, longitude = profile.latitude, profile.longitude
            if radius_km is None:
                radius_km = profile.service_radius_km if profile is not None else 25
        self.origin = (latitude, longitude)
        best_match = args["sort"] == "best_match"
        find = selectors.open_task_pages_near if pages_only and not best_match else selectors.open_tasks_near
        tasks = find(
            latitude=latitude,
            longitude=longitude,
            radius_km=radius_km,
            categories=args.get("category") or None,
            min_budget_cents=args.get("min_budget_cents"),
            max_budget_cents=args.get("max_budget_cents"),
            date_from=args.get("date_from"),
            date_to=args.get("date_to"),
            q=args.get("q"),
            sort="distance" if best_match else args["sort"],
            exclude_customer=user,
        )
        if best_match:
            return matching_selectors.ranked_tasks_for(user, tasks)
        return tasks

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "origin": getattr(self, "origin", (0.0, 0.0))}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # NearbyTaskSerializer documents the rows; nearby_task_list builds the
        # same dicts without DRF's per-field machinery (tested to be equal).
        page = self.paginate_queryset(self._find_work(pages_only=True))
        return self.get_paginated_response(nearby_task_list(page, request=request, origin=self.origin))

    @extend_schema(
        operation_id="tasks_nearby",
        parameters=[NearbyQuerySerializer],
        responses={200: NearbyTaskSerializer(many=True), **_errors(400, 401, 403)},
        description="Open tasks within `radius_km` of a point (default: my service area), excluding my own. "
        "Locations are approximate (~1 km) and `distance_km` is measured to that approximate point. "
        "Contractors only: others get 403 `not_contractor`.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class TaskDetailView(TasksAPIView):
    """One task, as the caller may see it; edit it."""

    serializer_class = TaskDetailSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="tasks_retrieve",
        parameters=[TASK_ID],
        responses={200: TaskDetailSerializer, **_errors(401, 404)},
        description="The exact address only for the customer, the assigned contractor and staff. "
        "`actions` lists what I may do now.",
    )
    def get(self, request: Request, task_id: uuid.UUID) -> Response:
        return task_response(request, get_task(request, task_id), refetch=False)

    @extend_schema(
        operation_id="tasks_partial_update",
        parameters=[TASK_ID],
        request=TaskUpdateSerializer,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="The customer changes any subset of the fields while the task is a draft or open.",
    )
    def patch(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = TaskUpdateSerializer(data=form_data(request), partial=True)
        serializer.is_valid(raise_exception=True)
        services.task_update(task, by=request.user, data=build_task_input(serializer.validated_data, task))
        return task_response(request, task)


class TaskPublishView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_publish",
        parameters=[TASK_ID],
        request=None,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="Post a draft (it needs at least one photo).",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        services.task_publish(task, by=request.user)
        return task_response(request, task)


class TaskCancelView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_cancel",
        parameters=[TASK_ID],
        request=OptionalReasonSerializer,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="Cancel, with a reason (required for everything but a draft). Who may cancel when is "
        "tasks.policies.cancellation_rule.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = OptionalReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.task_cancel(task, by=request.user, reason=serializer.validated_data["reason"])
        return task_response(request, task)


class TaskPhotosView(TasksAPIView):
    serializer_class = TaskDetailSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="tasks_photos_create",
        parameters=[TASK_ID],
        request={"multipart/form-data": PhotosUploadSerializer},
        responses={201: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409, 415)},
        description="Add photos of the job (a task has at most 10) while it is a draft or open.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = PhotosUploadSerializer(data=form_data(request, ("photos",)))
        serializer.is_valid(raise_exception=True)
        services.task_add_photos(task, by=request.user, files=serializer.validated_data["photos"])
        return task_response(request, task, code=status.HTTP_201_CREATED)


class TaskPhotoDeleteView(TasksAPIView):
    serializer_class = None

    @extend_schema(
        operation_id="tasks_photos_destroy",
        parameters=[TASK_ID, PHOTO_ID],
        request=None,
        responses={204: OpenApiResponse(description="Photo removed."), **_errors(401, 403, 404, 409)},
        description="Remove a photo of the job; an open task keeps at least one.",
    )
    def delete(self, request: Request, task_id: uuid.UUID, photo_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        photo = task.photos.filter(public_id=photo_id, kind=TaskPhoto.Kind.PROBLEM).first()
        if photo is None:
            raise NotFound(_("This task has no such photo."))
        services.task_remove_photo(photo, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Offers ------------------------------------------------------------------


class TaskOffersView(TasksListAPIView):
    """Offers on a task: all of them for its customer, a contractor's own for
    a contractor, none for anyone else. Make one."""

    serializer_class = OfferSerializer

    def get_queryset(self) -> QuerySet[Offer]:
        task = get_task(self.request, self.kwargs["task_id"])
        return selectors.offers_for(task, self.request.user).select_related(
            "task", "contractor", "contractor__contractor_profile"
        )

    @extend_schema(
        operation_id="tasks_offers_list",
        parameters=[TASK_ID],
        responses={200: OfferSerializer(many=True), **_errors(401, 404)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="tasks_offers_create",
        parameters=[TASK_ID],
        request=OfferCreateSerializer,
        responses={201: OfferSerializer, **_errors(400, 401, 403, 404, 409)},
        description="A contractor offers a price (integer cents, the task's currency), a message and a start.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = OfferCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = services.offer_create(task, by=request.user, **serializer.validated_data)
        return Response(offer_data(offer, request), status=status.HTTP_201_CREATED)


def offer_data(offer: Offer, request: Request) -> dict:
    offer = Offer.objects.select_related("task", "contractor", "contractor__contractor_profile").get(pk=offer.pk)
    return OfferSerializer(offer, context={"request": request}).data


class OfferWithdrawView(TasksAPIView):
    serializer_class = OfferSerializer

    @extend_schema(
        operation_id="offers_withdraw",
        parameters=[OFFER_ID],
        request=None,
        responses={200: OfferSerializer, **_errors(401, 403, 404, 409)},
        description="The contractor takes back a pending offer.",
    )
    def post(self, request: Request, offer_id: uuid.UUID) -> Response:
        offer = services.offer_withdraw(get_offer(request, offer_id), by=request.user)
        return Response(offer_data(offer, request))


class OfferDeclineView(TasksAPIView):
    serializer_class = OfferSerializer

    @extend_schema(
        operation_id="offers_decline",
        parameters=[OFFER_ID],
        request=OptionalReasonSerializer,
        responses={200: OfferSerializer, **_errors(400, 401, 403, 404, 409)},
        description="The customer declines a pending offer, optionally saying why.",
    )
    def post(self, request: Request, offer_id: uuid.UUID) -> Response:
        offer = get_offer(request, offer_id)
        serializer = OptionalReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = services.offer_decline(offer, by=request.user, reason=serializer.validated_data["reason"])
        return Response(offer_data(offer, request))


class CheckoutEscrowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    currency = serializers.CharField()
    price_cents = serializers.IntegerField()
    service_fee_cents = serializers.IntegerField()
    total_cents = serializers.IntegerField()
    checkout_expires_at = serializers.DateTimeField(allow_null=True)


class CheckoutStartedSerializer(serializers.Serializer):
    checkout_url = serializers.URLField()
    escrow = CheckoutEscrowSerializer()
    client_secret = serializers.CharField()


class OfferAcceptView(TasksAPIView):
    serializer_class = CheckoutStartedSerializer

    @extend_schema(
        operation_id="offers_accept",
        parameters=[OFFER_ID],
        request=None,
        responses={202: CheckoutStartedSerializer, **_errors(401, 403, 404, 409)},
        description="The customer accepts an offer: a checkout starts (price + service fee, held until the "
        "customer approves). Pay at `checkout_url` (or confirm the PaymentIntent with `client_secret` and "
        "Stripe.js); the task is assigned when the payment succeeds. Accepting again while the checkout is "
        "open returns the same one. 409 `already_booked` if someone else got the task first.",
    )
    def post(self, request: Request, offer_id: uuid.UUID) -> Response:
        escrow = payment_services.checkout_start(get_offer(request, offer_id), by=request.user)
        body = {
            "checkout_url": request.build_absolute_uri(reverse("payments:checkout", args=[escrow.public_id])),
            "escrow": payment_pages.escrow_summary(escrow),
            "client_secret": get_gateway().retrieve_payment_intent(escrow.payment_intent_id).client_secret,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


# --- Doing the work ----------------------------------------------------------


class TaskInstantBookView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_instant_book",
        parameters=[TASK_ID],
        request=InstantBookSerializer,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="A contractor books a task that allows it, at the posted price: the customer's saved card "
        "is charged (held until they approve) and the task is assigned. 409 `already_booked` if someone else "
        "got it first, `no_saved_card` if the customer saved no card (make an offer instead), "
        "`card_declined` if the charge failed.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = InstantBookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        start = serializer.validated_data.get("proposed_start")
        # The start and every other refusal are checked before the customer's
        # card is charged (payments.services.instant_book_start).
        escrow = payment_services.instant_book_start(task, by=request.user, proposed_start=start)
        if escrow.status != escrow.Status.HELD:
            raise Conflict(_("The payment did not go through, so the job is not booked."), code="payment_failed")
        return task_response(request, task)


class TaskCheckInView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_check_in",
        parameters=[TASK_ID],
        request=CheckInInputSerializer,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="The assigned contractor has arrived; the browser's position if it gave one.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = CheckInInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.task_check_in(task, by=request.user, **serializer.validated_data)
        return task_response(request, task)


class TaskProofView(TasksAPIView):
    serializer_class = TaskDetailSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="tasks_proof_create",
        parameters=[TASK_ID],
        request={"multipart/form-data": ProofInputSerializer},
        responses={201: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409, 415)},
        description="The assigned contractor submits 1-10 photos of the finished work and a note.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = ProofInputSerializer(data=form_data(request, ("photos",)))
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        services.task_submit_proof(task, by=request.user, note=values["note"], files=values["photos"])
        return task_response(request, task, code=status.HTTP_201_CREATED)


class TaskApproveView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_approve",
        parameters=[TASK_ID],
        request=None,
        responses={200: TaskDetailSerializer, **_errors(401, 403, 404, 409)},
        description="The customer approves the submitted work.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        services.task_approve(task, by=request.user)
        return task_response(request, task)


class TaskRequestChangesView(TasksAPIView):
    serializer_class = TaskDetailSerializer

    @extend_schema(
        operation_id="tasks_request_changes",
        parameters=[TASK_ID],
        request=ReasonSerializer,
        responses={200: TaskDetailSerializer, **_errors(400, 401, 403, 404, 409)},
        description="The customer sends the work back once, with a reason; the task is in progress again.",
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.task_request_changes(task, by=request.user, reason=serializer.validated_data["reason"])
        return task_response(request, task)


class TaskEventsView(TasksAPIView):
    serializer_class = TaskEventSerializer

    @extend_schema(
        operation_id="tasks_events_list",
        parameters=[TASK_ID],
        responses={200: TaskEventSerializer(many=True), **_errors(401, 404)},
        description="The task's history, oldest first (not paginated: a task's history is short).",
    )
    def get(self, request: Request, task_id: uuid.UUID) -> Response:
        task = get_task(request, task_id)
        events = selectors.timeline(task, request.user)
        return Response(TaskEventSerializer(events, many=True, context={"request": request}).data)


class JobsView(TasksListAPIView):
    """My jobs as a contractor: tasks assigned to me and my pending offers."""

    serializer_class = JobSerializer

    def get_queryset(self) -> QuerySet[Task]:
        require_contractor(self.request.user)
        query = JobsQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.jobs_for_contractor(self.request.user, query.validated_data.get("status_group"))

    @extend_schema(
        operation_id="jobs_list",
        parameters=[JobsQuerySerializer],
        responses={200: JobSerializer(many=True), **_errors(400, 401, 403)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
