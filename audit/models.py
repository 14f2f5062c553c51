from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """
    One staff action that changed money, keys, channels, prices or tenants:
    who, when, what and why. Written by audit.services.audit_record only;
    never changed or deleted.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: done by the system (a webhook, a scheduled task).",
    )
    action = models.CharField(max_length=64, db_index=True)
    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    target = models.CharField(
        max_length=200, blank=True, help_text='What was acted on, e.g. "apikey:12".'
    )
    summary = models.CharField(max_length=300)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action}: {self.summary}"
