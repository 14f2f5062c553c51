from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Tenant


class ManagementToken(models.Model):
    """
    A person's token for the management API (/api/), acting for one tenant
    with that person's current role in it. Like an API key, the secret is
    shown once at creation; only its SHA-256 digest and a short prefix to
    recognise it by are stored.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="management_tokens",
    )
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="management_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
