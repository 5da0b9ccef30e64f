from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health
from core.views import home

admin.site.site_header = "BittieTasks admin"
admin.site.site_title = "BittieTasks admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("tasks.urls")),
    path("", include("messaging.urls")),
    path("", include("payments.urls")),
    path("notifications/", include("messaging.urls_notifications")),
    path("", include("reputation.urls")),
    path("", include("matching.urls")),
    path("disputes/", include("reputation.dispute_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
