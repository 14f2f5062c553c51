from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from accounts.language import set_language
from ops import views as ops_views

urlpatterns = [
    # /v1 is served by config.asgi without this resolver. The operator's
    # endpoints too; they are here for reverse().
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    # Browsers ask for /favicon.ico on every page, whatever the <link> says.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True),
        name="favicon",
    ),
    # The language switcher on every page posts here (Django's set_language,
    # as django.conf.urls.i18n routes it, which also keeps a signed-in
    # person's choice for their emails) without a CSRF token: a forged post
    # can only change the language of someone's pages and emails, and a token
    # would set a cookie on every first visit and make each public page
    # differ per view.
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("billing/", include("billing.urls")),
    # The staff's second factor: under /console/ for its strict headers, and
    # open to staff who have not given it yet (console/middleware.py).
    path("console/2fa/", include("accounts.twofactor_urls")),
    path("console/", include("console.urls")),
    path("", include("portal.urls")),
]
