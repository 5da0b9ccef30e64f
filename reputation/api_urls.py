"""/api/v1/ routes of the reputation app (included by marketplace/api_urls.py)."""

from django.urls import path

from . import api

urlpatterns = [
    path("tasks/<uuid:task_id>/reviews", api.TaskReviewsView.as_view(), name="api-task-reviews"),
    path("tasks/<uuid:task_id>/reviews/<str:role>/reply", api.ReviewReplyView.as_view(), name="api-review-reply"),
    path("tasks/<uuid:task_id>/reviews/<str:role>/report", api.ReviewReportView.as_view(), name="api-review-report"),
    path("reviews/mine", api.MyReviewsView.as_view(), name="api-my-reviews"),
    path("me/trust", api.MyTrustView.as_view(), name="api-my-trust"),
    path("contractors/<slug:slug>/reviews", api.ContractorReviewsView.as_view(), name="api-contractor-reviews"),
    path(
        "contractors/<slug:slug>/reputation", api.ContractorReputationView.as_view(), name="api-contractor-reputation"
    ),
]
