"""The reputation REST API (/api/v1/): reviews for a task (submit and edit),
my reviews, a contractor's published reviews and reputation, my trust
breakdown; reply to and report a review.

Views check the input's shape, find the object through a selector (404 for
anyone who may not see it), call one service and answer; services decide the
rest and core.api turns their errors into the shared error body.
"""

from __future__ import annotations

import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import contractor_profiles_public
from core.errors import NotFound
from tasks import selectors as task_selectors

from . import selectors, services
from .models import Review
from .serializers import (
    ContractorReputationSerializer,
    ErrorResponseSerializer,
    MyReviewsSerializer,
    ReplyInputSerializer,
    ReplySerializer,
    ReportInputSerializer,
    ReportSerializer,
    ReviewInputSerializer,
    ReviewSerializer,
    TrustBreakdownSerializer,
)

TASK_ID = OpenApiParameter("task_id", type=uuid.UUID, location=OpenApiParameter.PATH, description="The task's id.")
ROLE = OpenApiParameter(
    "role",
    type=str,
    location=OpenApiParameter.PATH,
    enum=list(Review.Role.values),
    description="Which side's review of the task.",
)
SLUG = OpenApiParameter("slug", type=str, location=OpenApiParameter.PATH, description="The contractor's profile slug.")


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input; `fields` says which (e.g. stars outside 1-5, the other side's sub-ratings).",
        401: "Not logged in: send a token or a session.",
        403: "Not allowed (e.g. `not_task_party`, `not_reviewee`, `own_review`).",
        404: "No such task, review or contractor, or you may not see it.",
        409: "Refused by state: `task_not_completed`, `review_window_closed`, `review_frozen`, "
        "`already_replied`, `already_reported`, `review_not_published`.",
    }
    return {code: OpenApiResponse(ErrorResponseSerializer, description=descriptions[code]) for code in codes}


class ReputationAPIView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


def _review_for(request: Request, task_id: uuid.UUID, role: str) -> Review:
    review = (
        Review.objects.select_related("task", "reviewer", "reviewee", "reply")
        .filter(task__public_id=task_id, role=role)
        .first()
        if role in Review.Role.values
        else None
    )
    if review is None or not selectors.review_visible_to(review, request.user):
        raise NotFound("No such review.")
    return review


class TaskReviewsView(ReputationAPIView):
    @extend_schema(
        operation_id="task_reviews_list",
        summary="Reviews on a task I may read",
        description="The task's parties see their own review (even hidden) and the other side's once published; "
        "staff see all. Anyone else: 404.",
        parameters=[TASK_ID],
        responses={200: ReviewSerializer(many=True), **_errors(401, 404)},
        tags=["reviews"],
    )
    def get(self, request: Request, task_id: uuid.UUID) -> Response:
        task = task_selectors.task_get_for_user(task_id, request.user)
        if services.review_role_for(task, request.user) is None and not request.user.is_staff:
            raise NotFound("No such task.")
        return Response(ReviewSerializer(selectors.reviews_on_task(task, request.user), many=True).data)

    @extend_schema(
        operation_id="task_reviews_submit",
        summary="Write or edit my review of the other side",
        description="Only the task's customer or contractor, after completion and within 14 days. Hidden until the "
        "other side reviews too (then both are published and frozen) or the window closes. 201 when created, "
        "200 when an unpublished review was edited.",
        parameters=[TASK_ID],
        request=ReviewInputSerializer,
        responses={200: ReviewSerializer, 201: ReviewSerializer, **_errors(400, 401, 403, 404, 409)},
        tags=["reviews"],
    )
    def post(self, request: Request, task_id: uuid.UUID) -> Response:
        task = task_selectors.task_get_for_user(task_id, request.user)
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        existed = Review.objects.filter(task=task, reviewer=request.user).exists()
        review = services.review_submit(
            task=task,
            by=request.user,
            stars=data.validated_data["stars"],
            text=data.validated_data.get("text", ""),
            sub_ratings=data.sub_ratings(),
        )
        review = Review.objects.select_related("task", "reviewer", "reviewee").get(pk=review.pk)
        return Response(ReviewSerializer(review).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class ReviewReplyView(ReputationAPIView):
    @extend_schema(
        operation_id="review_reply",
        summary="Reply publicly to a review about me (once)",
        parameters=[TASK_ID, ROLE],
        request=ReplyInputSerializer,
        responses={201: ReplySerializer, **_errors(400, 401, 403, 404, 409)},
        tags=["reviews"],
    )
    def post(self, request: Request, task_id: uuid.UUID, role: str) -> Response:
        review = _review_for(request, task_id, role)
        data = ReplyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reply = services.review_reply(review=review, by=request.user, text=data.validated_data["text"])
        return Response(ReplySerializer(reply).data, status=status.HTTP_201_CREATED)


class ReviewReportView(ReputationAPIView):
    @extend_schema(
        operation_id="review_report",
        summary="Report a published review to staff",
        parameters=[TASK_ID, ROLE],
        request=ReportInputSerializer,
        responses={201: ReportSerializer, **_errors(400, 401, 403, 404, 409)},
        tags=["reviews"],
    )
    def post(self, request: Request, task_id: uuid.UUID, role: str) -> Response:
        review = _review_for(request, task_id, role)
        data = ReportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.review_report(
            review=review, by=request.user, reason=data.validated_data["reason"], note=data.validated_data["note"]
        )
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


class MyReviewsView(ReputationAPIView):
    @extend_schema(
        operation_id="my_reviews",
        summary="My reviews: to write, written, received",
        responses={200: MyReviewsSerializer, **_errors(401)},
        tags=["reviews"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        body = {
            "to_write": selectors.reviews_to_write(user),
            "written": list(selectors.reviews_written(user)[:100]),
            "received": list(selectors.reviews_received(user)[:100]),
            "waiting_about_me": selectors.reviews_waiting_on_me(user),
        }
        return Response(MyReviewsSerializer(body).data)


def _contractor(slug: str):
    return get_object_or_404(contractor_profiles_public(), slug=slug).user


def _rating(triple: tuple[float, float | None, int]) -> dict:
    bayesian, raw, count = triple
    return {"bayesian": bayesian, "raw": raw, "count": count}


def _achievements(user) -> list[dict]:
    return [
        {"code": a.code, "title": a.title, "description": a.description, "earned_at": a.earned_at}
        for a in selectors.achievements_for(user)
    ]


class ContractorReviewsView(generics.ListAPIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]
    serializer_class = ReviewSerializer
    filter_backends: list = []

    @extend_schema(
        operation_id="contractor_reviews",
        summary="A contractor's published reviews from customers, newest first",
        parameters=[SLUG],
        responses={200: ReviewSerializer(many=True), **_errors(404)},
        tags=["reviews"],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.public_reviews_for(_contractor(self.kwargs["slug"]))


class ContractorReputationView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="contractor_reputation",
        summary="A contractor's trust score, rating with count, jobs completed and achievements",
        parameters=[SLUG],
        responses={200: ContractorReputationSerializer, **_errors(404)},
        tags=["reviews"],
    )
    def get(self, request: Request, slug: str) -> Response:
        user = _contractor(slug)
        body = {
            "trust_score": selectors.trust_view(user)["score"],
            "rating": _rating(selectors.contractor_rating(user)),
            "jobs_completed": selectors.jobs_completed(user),
            "achievements": _achievements(user),
        }
        return Response(ContractorReputationSerializer(body).data)


class MyTrustView(ReputationAPIView):
    @extend_schema(
        operation_id="my_trust",
        summary="My trust score: each factor's weight, contribution and what would raise it",
        responses={200: TrustBreakdownSerializer, **_errors(401)},
        tags=["reviews"],
    )
    def get(self, request: Request) -> Response:
        user = request.user
        trust = selectors.trust_view(user)
        body = {
            **trust,
            "rating": _rating(selectors.contractor_rating(user)),
            "customer_rating": _rating(selectors.customer_rating(user)),
            "achievements": _achievements(user),
        }
        return Response(TrustBreakdownSerializer(body).data)
