from django.urls import path, re_path

from relay import views

urlpatterns = [
    path("chat/completions", views.chat_completions),
    path("completions", views.completions),
    path("embeddings", views.embeddings),
    path("images/generations", views.images_generations),
    path("messages", views.messages),
    path("models", views.models),
    re_path(r"", views.unknown_endpoint),
]
