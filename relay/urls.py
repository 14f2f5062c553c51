from django.urls import path, re_path

from relay import views

urlpatterns = [
    path("chat/completions", views.chat_completions),
    path("completions", views.completions),
    path("embeddings", views.embeddings),
    path("images/generations", views.images_generations),
    path("messages", views.messages),
    path("messages/count_tokens", views.count_tokens),
    path("responses", views.responses),
    path("responses/<str:response_id>", views.response_resource),
    path(
        "responses/<str:response_id>/cancel",
        views.response_resource,
        {"suffix": "/cancel"},
    ),
    path(
        "responses/<str:response_id>/input_items",
        views.response_resource,
        {"suffix": "/input_items"},
    ),
    path("models", views.models),
    re_path(r"", views.unknown_endpoint),
]
