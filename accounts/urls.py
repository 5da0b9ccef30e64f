from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("onboarding/", views.onboarding, name="onboarding"),
    path("pros/<slug:slug>/", views.public_profile, name="public_profile"),
    path("u/<uuid:public_id>/photo", views.user_photo, name="photo"),
]
