"""API shapes for reviews, ratings and trust (reputation/api.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ErrorResponseSerializer  # noqa: F401

from .models import ALL_SUB_RATINGS, Review, ReviewReport

MAX_TEXT_IN_REQUEST = 10_000  # above the model limits: huge bodies are refused before any work


class PersonSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField(source="public_name")


class ReplySerializer(serializers.Serializer):
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReviewSerializer(serializers.Serializer):
    task = serializers.UUIDField(source="task.public_id")
    task_title = serializers.CharField(source="task.title")
    role = serializers.ChoiceField(choices=Review.Role.choices)
    reviewer = PersonSerializer()
    reviewee = PersonSerializer()
    stars = serializers.IntegerField(min_value=1, max_value=5)
    quality = serializers.IntegerField(allow_null=True)
    punctuality = serializers.IntegerField(allow_null=True)
    communication = serializers.IntegerField(allow_null=True)
    value = serializers.IntegerField(allow_null=True)
    clarity = serializers.IntegerField(allow_null=True)
    payment_promptness = serializers.IntegerField(allow_null=True)
    text = serializers.CharField(allow_blank=True)
    submitted_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True, help_text="Null while the review is hidden (double-blind).")
    window_closes_at = serializers.DateTimeField()
    hidden = serializers.SerializerMethodField()
    reply = serializers.SerializerMethodField()

    def get_hidden(self, review: Review) -> bool:
        return review.hidden_at is not None

    @extend_schema_field(ReplySerializer(allow_null=True))
    def get_reply(self, review: Review):
        reply = getattr(review, "reply", None) if hasattr(review, "reply") else None
        return ReplySerializer(reply).data if reply is not None else None


class ReviewInputSerializer(serializers.Serializer):
    """Overall stars (1-5), the sub-ratings of the caller's side (1-5 or null),
    and text (up to 2,000 characters). Customers rate quality, punctuality,
    communication and value; contractors rate clarity, communication and
    payment_promptness; the other side's fields are refused."""

    stars = serializers.IntegerField()
    quality = serializers.IntegerField(required=False, allow_null=True)
    punctuality = serializers.IntegerField(required=False, allow_null=True)
    communication = serializers.IntegerField(required=False, allow_null=True)
    value = serializers.IntegerField(required=False, allow_null=True)
    clarity = serializers.IntegerField(required=False, allow_null=True)
    payment_promptness = serializers.IntegerField(required=False, allow_null=True)
    text = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_TEXT_IN_REQUEST, trim_whitespace=False)

    def sub_ratings(self) -> dict:
        return {name: self.validated_data[name] for name in ALL_SUB_RATINGS if name in self.validated_data}


class ReplyInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=MAX_TEXT_IN_REQUEST, allow_blank=True)


class ReportInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ReviewReport.Reason.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_TEXT_IN_REQUEST)


class ReportSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ReviewReport.Reason.choices)
    note = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ReviewReport.Status.choices)
    created_at = serializers.DateTimeField()


class PendingReviewSerializer(serializers.Serializer):
    task = serializers.UUIDField(source="task.public_id")
    task_title = serializers.CharField(source="task.title")
    role = serializers.ChoiceField(choices=Review.Role.choices)
    other = PersonSerializer()
    closes_at = serializers.DateTimeField()
    has_draft = serializers.SerializerMethodField()

    def get_has_draft(self, pending) -> bool:
        return pending.draft is not None


class MyReviewsSerializer(serializers.Serializer):
    to_write = PendingReviewSerializer(many=True)
    written = ReviewSerializer(many=True)
    received = ReviewSerializer(many=True)
    waiting_about_me = serializers.IntegerField(help_text="Reviews about me still hidden until I review back or the window closes.")


class RatingSerializer(serializers.Serializer):
    bayesian = serializers.FloatField(help_text="(C*m + sum) / (C + n): pulled toward the platform mean m with few reviews.")
    raw = serializers.FloatField(allow_null=True, help_text="The plain mean of the stars, null without reviews.")
    count = serializers.IntegerField()


class FactorSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    value = serializers.FloatField(help_text="0 to 1.")
    weight = serializers.IntegerField()
    contribution = serializers.FloatField(help_text="value x weight: points out of the weight.")
    detail = serializers.CharField()
    hint = serializers.CharField(allow_blank=True, help_text="What would raise it; empty at full marks.")


class AchievementSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    earned_at = serializers.DateTimeField()


class TrustBreakdownSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=0, max_value=100)
    factors = FactorSerializer(many=True)
    customer_score = serializers.IntegerField(min_value=0, max_value=100)
    customer_factors = FactorSerializer(many=True)
    computed_at = serializers.DateTimeField(allow_null=True, help_text="Null when estimated now (not stored yet).")
    rating = RatingSerializer()
    customer_rating = RatingSerializer()
    achievements = AchievementSerializer(many=True)


class ContractorReputationSerializer(serializers.Serializer):
    trust_score = serializers.IntegerField(min_value=0, max_value=100)
    rating = RatingSerializer()
    jobs_completed = serializers.IntegerField()
    achievements = AchievementSerializer(many=True)
