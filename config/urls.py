from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("v1/", include("relay.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("billing/", include("billing.urls")),
    path("console/", include("console.urls")),
    path("", include("portal.urls")),
]
