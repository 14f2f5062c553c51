from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Management API"

    def ready(self):
        # Registers the management token with drf-spectacular.
        from api import schema  # noqa: F401
