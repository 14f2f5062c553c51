from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is evidence, so nobody edits or deletes it here."""

    list_display = ["created_at", "actor", "action", "tenant", "summary", "reason"]
    list_filter = ["action"]
    search_fields = ["summary", "reason", "target", "actor__email", "tenant__name"]
    date_hierarchy = "created_at"
    list_select_related = ["actor", "tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
