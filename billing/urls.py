from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("topup/success/", views.topup_success, name="topup-success"),
    path("topup/cancel/", views.topup_cancel, name="topup-cancel"),
]
