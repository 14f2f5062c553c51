"""The signed-in app under /app/: dashboard, keys, tokens, usage, billing."""

from django.urls import path

from portal.views import billing, dashboard, keys, tokens, usage

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("keys/", keys.key_list, name="keys"),
    path("keys/new/", keys.key_create, name="key_create"),
    path("keys/<int:key_id>/revoke/", keys.key_revoke, name="key_revoke"),
    path("keys/<int:key_id>/budget/", keys.key_budget, name="key_budget"),
    path("keys/budget/", keys.tenant_budget, name="tenant_budget"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/new/", tokens.token_create_view, name="token_create"),
    path(
        "tokens/<int:token_id>/revoke/",
        tokens.token_revoke_view,
        name="token_revoke",
    ),
    path("usage/", usage.usage_list, name="usage"),
    path("usage/export.csv", usage.usage_csv, name="usage_csv"),
    path("usage/<str:request_id>/", usage.usage_detail, name="usage_detail"),
    path("billing/", billing.billing, name="billing"),
    path("billing/topup/", billing.topup, name="billing_topup"),
    path("billing/redeem/", billing.redeem, name="billing_redeem"),
    path("billing/alert/", billing.alert_threshold, name="billing_alert"),
    path("billing/ledger/", billing.ledger, name="billing_ledger"),
    path("billing/payments/", billing.payment_list, name="billing_payments"),
    path(
        "billing/payments/<int:payment_id>/",
        billing.payment_detail,
        name="billing_payment",
    ),
]
