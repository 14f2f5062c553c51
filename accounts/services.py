from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Tenant, User
from audit.services import audit_record, reason_required


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
    max_in_flight: int | None = None,
    cache_ttl: int | None = None,
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
        max_in_flight=max_in_flight,
        cache_ttl=cache_ttl,
    )
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor=None, reason: str = "") -> bool:
    """
    Revoke a key; return False if it already was. Processes that cached it
    stop accepting it within seconds. With an `actor` (an owner, or staff,
    who give a `reason`) the revocation is in the audit log.
    """
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    key.refresh_from_db(fields=["revoked_at"])
    if revoked and actor is not None:
        audit_record(
            actor=actor,
            action="apikey.revoke",
            tenant=key.tenant_id,
            target=f"apikey:{key.pk}",
            summary=f"revoked key {key} of {key.tenant}",
            reason=reason,
        )
    return bool(revoked)


def email_mark_verified(*, user: User) -> bool:
    """Mark `user`'s address proved; return False if it already was. The
    starter credit a proof earns is onboarding's (onboarding.tenants)."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])
    return True


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
    reason = reason_required(reason)
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
            summary=f"{'resumed' if active else 'suspended'} {tenant}",
            reason=reason,
        )
    return bool(updated)
