from django.urls import path

from console.views import (
    audit,
    auto,
    channels,
    dashboard,
    payments,
    prices,
    tenants,
    usage,
)

app_name = "console"

urlpatterns = [
    path("", dashboard.dashboard_view, name="dashboard"),
    path("tenants/", tenants.tenant_list, name="tenants"),
    path("tenants/<int:pk>/", tenants.tenant_detail, name="tenant"),
    path(
        "tenants/<int:pk>/suspend/", tenants.tenant_suspend_view, name="tenant_suspend"
    ),
    path("tenants/<int:pk>/resume/", tenants.tenant_resume_view, name="tenant_resume"),
    path("tenants/<int:pk>/adjust/", tenants.tenant_adjust, name="tenant_adjust"),
    path("tenants/<int:pk>/plan/", tenants.tenant_plan, name="tenant_plan"),
    path(
        "tenants/<int:pk>/keys/<int:key_id>/revoke/",
        tenants.tenant_key_revoke,
        name="tenant_key_revoke",
    ),
    path(
        "tenants/<int:pk>/members/<int:user_id>/verify/",
        tenants.tenant_verification_resend,
        name="tenant_verification_resend",
    ),
    path("channels/", channels.channel_list, name="channels"),
    path("channels/<int:pk>/test/", channels.channel_test, name="channel_test"),
    path("channels/<int:pk>/toggle/", channels.channel_toggle, name="channel_toggle"),
    path("prices/", prices.price_list, name="prices"),
    path("prices/export.csv", prices.price_export, name="price_export"),
    path("prices/import/", prices.price_import, name="price_import"),
    path("prices/<int:pk>/change/", prices.price_change, name="price_change"),
    path(
        "prices/changes/<int:pk>/cancel/",
        prices.price_change_cancel_view,
        name="price_change_cancel",
    ),
    path("auto/", auto.auto_tiers, name="auto_tiers"),
    path("usage/", usage.usage_list, name="usage"),
    path("usage/export.csv", usage.usage_export, name="usage_export"),
    path("usage/<str:request_id>/", usage.usage_detail, name="usage_detail"),
    path("payments/", payments.payment_list, name="payments"),
    path("audit/", audit.audit_list, name="audit"),
]
