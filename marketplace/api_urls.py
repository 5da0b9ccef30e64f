"""Version 1 of the REST API: each app adds its routes here."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("tasks.api_urls")),
    path("", include("reputation.api_urls")),
    path("", include("reputation.dispute_api_urls")),
]
