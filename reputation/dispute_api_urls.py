"""/api/v1/ dispute routes (included by marketplace/api_urls.py)."""

from django.urls import path

from . import dispute_api as api

urlpatterns = [
    path("disputes", api.DisputeListView.as_view(), name="api-disputes"),
    path("tasks/<uuid:task_id>/disputes", api.TaskDisputeOpenView.as_view(), name="api-task-disputes"),
    path("disputes/<uuid:dispute_id>", api.DisputeDetailView.as_view(), name="api-dispute"),
    path("disputes/<uuid:dispute_id>/respond", api.DisputeRespondView.as_view(), name="api-dispute-respond"),
    path("disputes/<uuid:dispute_id>/proposals", api.DisputeProposeView.as_view(), name="api-dispute-propose"),
    path("disputes/<uuid:dispute_id>/evidence", api.DisputeEvidenceView.as_view(), name="api-dispute-evidence"),
    path("disputes/<uuid:dispute_id>/escalate", api.DisputeEscalateView.as_view(), name="api-dispute-escalate"),
    path(
        "disputes/<uuid:dispute_id>/proposals/<uuid:proposal_id>/accept",
        api.ProposalAcceptView.as_view(),
        name="api-dispute-proposal-accept",
    ),
    path(
        "disputes/<uuid:dispute_id>/proposals/<uuid:proposal_id>/reject",
        api.ProposalRejectView.as_view(),
        name="api-dispute-proposal-reject",
    ),
]
