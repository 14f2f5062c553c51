from django.contrib import admin

from api.models import ManagementToken


@admin.register(ManagementToken)
class ManagementTokenAdmin(admin.ModelAdmin):
    """Read-only: tokens are made by their owners, never by staff."""

    list_display = ["name", "prefix", "user", "tenant", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__email", "tenant__name"]
    readonly_fields = [
        "user",
        "tenant",
        "name",
        "prefix",
        "digest",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]

    def has_add_permission(self, request):
        return False
