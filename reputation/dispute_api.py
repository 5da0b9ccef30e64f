"""Disputes under /api/v1/: the same steps as the pages.

Each view checks the input's shape, finds the dispute with the selectors
(404 for anyone who is not a party or permitted staff), calls one service and
answers; core.api turns service errors into the one error body.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorResponseSerializer
from core.errors import NotFound
from tasks import selectors as task_selectors

from . import disputes
from . import disputes_selectors as selectors
from .dispute_models import MAX_EVIDENCE_PHOTOS, MAX_TEXT_CHARS, Dispute, DisputeProposal


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input; `fields` says which.",
        401: "Not logged in.",
        403: "Not allowed.",
        404: "No such dispute, or you may not see it.",
        409: "The dispute moved on (resolved, already responded, window closed...).",
    }
    return {code: OpenApiResponse(ErrorResponseSerializer, description=text[code]) for code in codes}


class DisputePersonSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    name = serializers.CharField(source="get_full_name")


class DisputeEvidenceSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    by = DisputePersonSerializer()
    text = serializers.CharField()
    photo_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_photo_url(self, obj) -> str | None:
        if not obj.photo:
            return None
        from django.urls import reverse

        return reverse("disputes:evidence-photo", args=[obj.public_id])


class DisputeProposalSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    by = DisputePersonSerializer()
    kind = serializers.CharField(help_text="full_refund, partial_refund or release")
    percent = serializers.IntegerField(allow_null=True)
    contractor_cents = serializers.IntegerField()
    refund_cents = serializers.IntegerField()
    message = serializers.CharField()
    status = serializers.CharField(help_text="open, accepted, rejected or superseded")
    created_at = serializers.DateTimeField()


class DisputeEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    actor = DisputePersonSerializer(allow_null=True)
    message = serializers.CharField()
    data = serializers.DictField()
    created_at = serializers.DateTimeField()


class DisputeSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    task = serializers.UUIDField(source="task.public_id")
    opened_by = DisputePersonSerializer()
    against = DisputePersonSerializer()
    reason = serializers.CharField(help_text=", ".join(Dispute.Reason.values))
    text = serializers.CharField()
    status = serializers.CharField(help_text="awaiting_response, negotiating, mediation or resolved")
    currency = serializers.CharField()
    opened_at = serializers.DateTimeField()
    response_due_at = serializers.DateTimeField()
    mediation_due_at = serializers.DateTimeField()
    outcome = serializers.CharField()
    contractor_cents = serializers.IntegerField(allow_null=True)
    refund_cents = serializers.IntegerField(allow_null=True)
    decision_reason = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)


class DisputeDetailSerializer(DisputeSerializer):
    evidence = DisputeEvidenceSerializer(many=True, source="_evidence")
    proposals = DisputeProposalSerializer(many=True, source="_proposals")
    timeline = DisputeEventSerializer(many=True, source="_timeline")


def _detail(dispute: Dispute) -> dict:
    dispute._evidence = selectors.evidence(dispute)
    dispute._proposals = selectors.proposals(dispute)
    dispute._timeline = selectors.timeline(dispute)
    return DisputeDetailSerializer(dispute).data


class OpenInputSerializer(serializers.Serializer):
    reason = serializers.CharField()
    text = serializers.CharField(allow_blank=True, max_length=MAX_TEXT_CHARS + 1)
    photos = serializers.ListField(child=serializers.FileField(), required=False, max_length=MAX_EVIDENCE_PHOTOS)


class RespondInputSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, max_length=MAX_TEXT_CHARS + 1)
    photos = serializers.ListField(child=serializers.FileField(), required=False, max_length=MAX_EVIDENCE_PHOTOS)
    proposal_kind = serializers.CharField(required=False, allow_blank=True)
    percent = serializers.IntegerField(required=False, allow_null=True)


class ProposeInputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    percent = serializers.IntegerField(required=False, allow_null=True)
    message = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_CHARS + 1)


class EvidenceInputSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_CHARS + 1)
    photos = serializers.ListField(child=serializers.FileField(), required=False, max_length=MAX_EVIDENCE_PHOTOS)


class MessageInputSerializer(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT_CHARS + 1)


def _photos(request: Request) -> list:
    return request.FILES.getlist("photos") if hasattr(request.FILES, "getlist") else []


def _dispute(request: Request, dispute_id) -> Dispute:
    return selectors.dispute_get_for_user(dispute_id, request.user)


class DisputeListView(APIView):
    @extend_schema(summary="My disputes", responses={200: DisputeSerializer(many=True), **_errors(401)})
    def get(self, request: Request) -> Response:
        return Response(DisputeSerializer(selectors.disputes_for_user(request.user)[:200], many=True).data)


class TaskDisputeOpenView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Open a dispute on a task",
        request={"application/json": OpenInputSerializer, "multipart/form-data": OpenInputSerializer},
        responses={201: DisputeDetailSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, task_id) -> Response:
        task = task_selectors.task_get_for_user(task_id, request.user)
        data = OpenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = disputes.dispute_open(
            task,
            by=request.user,
            reason=data.validated_data["reason"],
            text=data.validated_data["text"],
            evidence=_photos(request),
        )
        return Response(_detail(dispute), status=status.HTTP_201_CREATED)


class DisputeDetailView(APIView):
    @extend_schema(summary="One dispute with evidence, proposals and timeline", responses={200: DisputeDetailSerializer, **_errors(401, 404)})
    def get(self, request: Request, dispute_id) -> Response:
        return Response(_detail(_dispute(request, dispute_id)))


class DisputeRespondView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Respond (the other side, within 48 hours)",
        request={"application/json": RespondInputSerializer, "multipart/form-data": RespondInputSerializer},
        responses={200: DisputeDetailSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, dispute_id) -> Response:
        dispute = _dispute(request, dispute_id)
        data = RespondInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.dispute_respond(
            dispute,
            by=request.user,
            text=data.validated_data["text"],
            photos=_photos(request),
            proposal_kind=data.validated_data.get("proposal_kind") or "",
            percent=data.validated_data.get("percent"),
        )
        return Response(_detail(_dispute(request, dispute_id)))


class DisputeProposeView(APIView):
    @extend_schema(
        summary="Propose a settlement",
        request=ProposeInputSerializer,
        responses={201: DisputeProposalSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, dispute_id) -> Response:
        dispute = _dispute(request, dispute_id)
        data = ProposeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = disputes.dispute_propose(
            dispute,
            by=request.user,
            kind=data.validated_data["kind"],
            percent=data.validated_data.get("percent"),
            message=data.validated_data.get("message", ""),
        )
        return Response(DisputeProposalSerializer(proposal).data, status=status.HTTP_201_CREATED)


class DisputeEvidenceView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Add evidence (text and/or photos)",
        request={"application/json": EvidenceInputSerializer, "multipart/form-data": EvidenceInputSerializer},
        responses={201: DisputeEvidenceSerializer(many=True), **_errors(400, 401, 404, 409)},
    )
    def post(self, request: Request, dispute_id) -> Response:
        dispute = _dispute(request, dispute_id)
        data = EvidenceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rows = disputes.dispute_add_evidence(
            dispute, by=request.user, text=data.validated_data.get("text", ""), photos=_photos(request)
        )
        return Response(DisputeEvidenceSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)


class DisputeEscalateView(APIView):
    @extend_schema(summary="Ask an admin to mediate", request=None, responses={200: DisputeSerializer, **_errors(401, 404, 409)})
    def post(self, request: Request, dispute_id) -> Response:
        dispute = disputes.dispute_escalate(_dispute(request, dispute_id), by=request.user)
        return Response(DisputeSerializer(dispute).data)


def _proposal(request: Request, dispute_id, proposal_id) -> DisputeProposal:
    dispute = _dispute(request, dispute_id)
    proposal = selectors.proposal_get_for_user(proposal_id, request.user)
    if proposal.dispute_id != dispute.pk:
        raise NotFound(_("No such proposal."))
    return proposal


class ProposalAcceptView(APIView):
    @extend_schema(
        summary="Accept the other side's proposal (settles the dispute)",
        request=None,
        responses={200: DisputeSerializer, **_errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, dispute_id, proposal_id) -> Response:
        dispute = disputes.dispute_accept_proposal(_proposal(request, dispute_id, proposal_id), by=request.user)
        return Response(DisputeSerializer(dispute).data)


class ProposalRejectView(APIView):
    @extend_schema(
        summary="Reject the other side's proposal",
        request=MessageInputSerializer,
        responses={200: DisputeProposalSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, dispute_id, proposal_id) -> Response:
        proposal = _proposal(request, dispute_id, proposal_id)
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = disputes.dispute_reject_proposal(proposal, by=request.user, message=data.validated_data.get("message", ""))
        return Response(DisputeProposalSerializer(proposal).data)
