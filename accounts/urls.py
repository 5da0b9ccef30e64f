from django.urls import path

from . import views, views_verification

app_name = "accounts"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("onboarding/", views.onboarding, name="onboarding"),
    path("pros/<slug:slug>/", views.public_profile, name="public_profile"),
    path("u/<uuid:public_id>/photo", views.user_photo, name="photo"),
    path("verify/phone", views_verification.verify_phone, name="verify_phone"),
    path("verify/id", views_verification.verify_id, name="verify_id"),
    path("verify/id/<uuid:public_id>/<str:which>", views_verification.id_file, name="id_file"),
]
