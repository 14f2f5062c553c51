from accounts.models import Tenant
from audit.models import AuditEvent


def audit_record(
    *,
    actor,
    action: str,
    summary: str,
    tenant: Tenant | int | None = None,
    target: str = "",
    reason: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Record a staff (or system, with actor None) action. Call it inside the
    transaction that makes the change, so neither exists without the other."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        tenant_id=tenant.pk if isinstance(tenant, Tenant) else tenant,
        target=target,
        summary=summary[:300],
        reason=reason,
        data=data or {},
    )
