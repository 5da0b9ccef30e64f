from django.urls import path

from . import views

app_name = "matching"

urlpatterns = [
    path("calendar/<str:secret>.ics", views.calendar_feed, name="calendar_feed"),
    path("matching/invitations", views.invitations, name="invitations"),
    path("matching/invitations/<uuid:public_id>/decline", views.invitation_decline, name="invitation_decline"),
    path("matching/alerts", views.alert_settings, name="alert_settings"),
    path("matching/availability", views.availability, name="availability"),
    path("matching/availability/time-off/<int:pk>", views.time_off_edit, name="time_off_edit"),
    path("matching/availability/time-off/<int:pk>/delete", views.time_off_delete, name="time_off_delete"),
    path("matching/calendar/reset", views.calendar_reset, name="calendar_reset"),
    path("matching/calendar/import", views.calendar_import, name="calendar_import"),
    path("matching/calendar/import/clear", views.calendar_import_clear, name="calendar_import_clear"),
    path("matching/tasks/<uuid:public_id>/invite", views.invite, name="invite"),
    path("matching/tasks/<uuid:public_id>/skip", views.task_skip, name="task_skip"),
]
