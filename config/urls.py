from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from ops import views as ops_views

urlpatterns = [
    path("v1/", include("relay.urls")),
    # The operator's: health, readiness, Prometheus (served like /v1, see
    # config/asgi.py).
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on every page, whatever the <link> says.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("billing/", include("billing.urls")),
    # The staff's second factor: under /console/ for its strict headers, and
    # open to staff who have not given it yet (console/middleware.py).
    path("console/2fa/", include("accounts.twofactor_urls")),
    path("console/", include("console.urls")),
    path("", include("portal.urls")),
]
