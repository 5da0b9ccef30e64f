from django.urls import path

from . import api

urlpatterns = [
    path("auth/token", api.AuthTokenView.as_view(), name="api-auth-token"),
    path("me", api.MeView.as_view(), name="api-me"),
    path("me/photo", api.MyPhotoView.as_view(), name="api-me-photo"),
    path("me/onboarding/complete", api.OnboardingCompleteView.as_view(), name="api-me-onboarding-complete"),
    path("categories", api.CategoryListView.as_view(), name="api-categories"),
    path("contractors/<slug:slug>", api.PublicContractorView.as_view(), name="api-contractor"),
]
