"""The staff's second-factor pages (accounts/twofactor_views.py)."""

from django.urls import path

from accounts import twofactor_views

app_name = "twofactor"

urlpatterns = [
    path("", twofactor_views.verify, name="verify"),
    path("setup/", twofactor_views.enrol, name="enrol"),
]
