from django.urls import path

from . import views_notifications as views

app_name = "notifications"

urlpatterns = [
    path("", views.centre, name="centre"),
    path("read", views.mark_read, name="mark_read"),
    path("<uuid:public_id>/open", views.open_notification, name="open"),
    path("preferences", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
