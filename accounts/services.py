from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Membership, Tenant, User
from audit.services import audit_record
from billing.services import wallet_create
from billing.starter import starter_credit_grant


@transaction.atomic
def tenant_create(
    *, name: str, owner: User | None = None, referred_by: Tenant | None = None
) -> Tenant:
    """Create a tenant with its empty wallet and, if given, its owner."""
    tenant = Tenant.objects.create(name=name, referred_by=referred_by)
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
    allowed_ips: list[str] | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
) -> tuple[ApiKey, str]:
    """
    Create a key; return it with its secret, which is never stored. Raise
    ValueError for an IP allowlist entry that is not an address or network.
    """
    networks = keys.ip_networks(list(allowed_ips or []))
    secret = keys.generate_secret()
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=keys.display_prefix(secret),
        digest=keys.digest(secret),
        created_by=created_by,
        expires_at=expires_at,
        allowed_models=list(allowed_models or []),
        allowed_ips=[str(network) for network in networks],
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> None:
    """Revoke a key. Processes that cached it stop accepting it within seconds."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


@transaction.atomic
def email_verify(*, user: User):
    """
    Mark `user`'s address verified and give the tenant it owns its starter
    credit, once per address. Return the StarterGrant, or None if none was due.
    """
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    membership = (
        Membership.objects.filter(user=user, role=Membership.Role.OWNER)
        .select_related("tenant")
        .order_by("created_at")
        .first()
    )
    if membership is None:
        return None
    return starter_credit_grant(user=user, tenant=membership.tenant)


def tenant_suspend(*, tenant: Tenant, reason: str, actor=None) -> bool:
    """Refuse every key of `tenant` (403) until resumed. Return False if it
    was already suspended. `actor` None: the system (e.g. a dispute)."""
    return _tenant_activity_set(
        tenant,
        active=False,
        reason=reason,
        actor=actor,
        changes={"suspended_at": timezone.now(), "suspended_reason": reason[:300]},
    )


def tenant_resume(*, tenant: Tenant, reason: str, actor) -> bool:
    """Accept `tenant`'s keys again. Return False if it was not suspended."""
    return _tenant_activity_set(
        tenant,
        active=True,
        reason=reason,
        actor=actor,
        changes={"suspended_at": None, "suspended_reason": ""},
    )


@transaction.atomic
def _tenant_activity_set(
    tenant: Tenant, *, active: bool, reason: str, actor, changes: dict
) -> bool:
    """Switch a tenant's keys on or off, with an audit row, unless they
    already are; return whether anything changed."""
    updated = Tenant.objects.filter(pk=tenant.pk, is_active=not active).update(
        is_active=active, **changes
    )
    if updated:
        tenant.refresh_from_db(fields=["is_active", *changes])
        verb = "resume" if active else "suspend"
        audit_record(
            actor=actor,
            action=f"tenant.{verb}",
            tenant=tenant,
            target=f"tenant:{tenant.pk}",
            summary=f"{verb}d {tenant}",
            reason=reason,
        )
    return bool(updated)
