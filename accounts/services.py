from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Membership, Tenant, User
from billing.services import wallet_create


@transaction.atomic
def tenant_create(*, name: str, owner: User | None = None) -> Tenant:
    """Create a tenant with its empty wallet and, if given, its owner."""
    tenant = Tenant.objects.create(name=name)
    wallet_create(tenant_id=tenant.pk)
    if owner is not None:
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    created_by: User | None = None,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; return it with its secret, which is never stored."""
    secret = keys.generate_secret()
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=keys.display_prefix(secret),
        digest=keys.digest(secret),
        created_by=created_by,
        expires_at=expires_at,
        allowed_models=list(allowed_models or []),
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    """Revoke a key. Processes that cached it stop accepting it within seconds."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
