from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Tenant


class Invitation(models.Model):
    """
    An owner's invitation for an email address to join a tenant. The link in
    the email carries a secret; only its SHA-256 digest is stored, so the
    table alone lets no one join. One pending invitation per address and
    tenant: inviting again replaces it.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=Q(accepted_at__isnull=True),
                name="unique_pending_invitation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} ({self.role})"

    @property
    def expires_at(self):
        return self.created_at + timedelta(
            seconds=settings.SWITCHBOARD_INVITATION_MAX_AGE_SECONDS
        )

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at
