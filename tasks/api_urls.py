"""/api/v1/ routes of the tasks app (included by marketplace/api_urls.py)."""

from django.urls import path

from . import api

urlpatterns = [
    path("tasks", api.TaskListCreateView.as_view(), name="api-tasks"),
    path("tasks/nearby", api.NearbyTasksView.as_view(), name="api-tasks-nearby"),
    path("tasks/<uuid:task_id>", api.TaskDetailView.as_view(), name="api-task"),
    path("tasks/<uuid:task_id>/publish", api.TaskPublishView.as_view(), name="api-task-publish"),
    path("tasks/<uuid:task_id>/cancel", api.TaskCancelView.as_view(), name="api-task-cancel"),
    path("tasks/<uuid:task_id>/photos", api.TaskPhotosView.as_view(), name="api-task-photos"),
    path(
        "tasks/<uuid:task_id>/photos/<uuid:photo_id>",
        api.TaskPhotoDeleteView.as_view(),
        name="api-task-photo",
    ),
    path("tasks/<uuid:task_id>/offers", api.TaskOffersView.as_view(), name="api-task-offers"),
    path("tasks/<uuid:task_id>/instant-book", api.TaskInstantBookView.as_view(), name="api-task-instant-book"),
    path("tasks/<uuid:task_id>/check-in", api.TaskCheckInView.as_view(), name="api-task-check-in"),
    path("tasks/<uuid:task_id>/proof", api.TaskProofView.as_view(), name="api-task-proof"),
    path("tasks/<uuid:task_id>/approve", api.TaskApproveView.as_view(), name="api-task-approve"),
    path(
        "tasks/<uuid:task_id>/request-changes",
        api.TaskRequestChangesView.as_view(),
        name="api-task-request-changes",
    ),
    path("tasks/<uuid:task_id>/events", api.TaskEventsView.as_view(), name="api-task-events"),
    path("offers/<uuid:offer_id>/withdraw", api.OfferWithdrawView.as_view(), name="api-offer-withdraw"),
    path("offers/<uuid:offer_id>/decline", api.OfferDeclineView.as_view(), name="api-offer-decline"),
    path("offers/<uuid:offer_id>/accept", api.OfferAcceptView.as_view(), name="api-offer-accept"),
    path("jobs", api.JobsView.as_view(), name="api-jobs"),
]
