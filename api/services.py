"""Writes of the management API's own objects: management tokens."""

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from accounts.models import Membership, Tenant, User
from api import tokens
from api.models import ManagementToken


def token_create(
    *, user: User, tenant: Tenant, name: str
) -> tuple[ManagementToken, str]:
    """
    Create a management token for `user` acting for `tenant`; return it with
    its secret, which is never stored. Only owners of `tenant` get tokens.
    """
    if not Membership.objects.filter(
        user=user, tenant=tenant, role=Membership.Role.OWNER
    ).exists():
        raise PermissionDenied("Only owners of the tenant can create tokens.")
    secret = tokens.generate_secret()
    token = ManagementToken.objects.create(
        user=user,
        tenant=tenant,
        name=name,
        prefix=tokens.display_prefix(secret),
        digest=tokens.digest(secret),
    )
    return token, secret


def token_revoke(*, token: ManagementToken) -> None:
    """Revoke a token: the next request that sends it is refused."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
