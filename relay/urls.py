from django.urls import path

from relay import views

urlpatterns = [
    path("chat/completions", views.chat_completions),
    path("models", views.models),
]
