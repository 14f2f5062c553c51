from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Registers the management token and the error shape with drf-spectacular
# (its extensions), before any schema is generated from these routes. Here
# rather than in the app's ready(): a process that never serves /api (the
# relay's) does not load drf-spectacular, DRF's test client and what they
# import (about 5 MB).
from api import schema, views  # noqa: F401
from api.exceptions import unknown_endpoint

app_name = "api"

urlpatterns = [
    path("balance/", views.BalanceView.as_view(), name="balance"),
    path("keys/", views.KeyList.as_view(), name="keys"),
    path("keys/<int:pk>/", views.KeyDetail.as_view(), name="key"),
    path("keys/<int:pk>/revoke/", views.KeyRevoke.as_view(), name="key-revoke"),
    path("keys/<int:pk>/budgets/", views.KeyBudgets.as_view(), name="key-budgets"),
    path("budgets/", views.TenantBudgets.as_view(), name="budgets"),
    path("refusals/", views.RefusalList.as_view(), name="refusals"),
    path("usage/", views.UsageList.as_view(), name="usage"),
    # Request ids are "req_" and 32 hex digits; nothing else can match.
    re_path(
        r"^usage/(?P<request_id>[A-Za-z0-9_.-]{1,64})/$",
        views.UsageDetail.as_view(),
        name="usage-record",
    ),
    path("ledger/", views.LedgerList.as_view(), name="ledger"),
    path("ledger/<int:pk>/", views.LedgerDetail.as_view(), name="ledger-entry"),
    path("payments/", views.PaymentList.as_view(), name="payments"),
    path("payments/<int:pk>/", views.PaymentDetail.as_view(), name="payment"),
    path("tokens/", views.TokenList.as_view(), name="tokens"),
    path("tokens/<int:pk>/", views.TokenDetail.as_view(), name="token"),
    path("tokens/<int:pk>/revoke/", views.TokenRevoke.as_view(), name="token-revoke"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI for people; its script is a second request (?script), so the
    # page needs no inline code under its Content-Security-Policy.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    re_path(r"", unknown_endpoint),
]
