from audit.models import AuditEvent


def audit_record(
    *,
    actor,
    action: str,
    summary: str,
    tenant=None,
    target: str = "",
    reason: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Record a staff (or system, with actor None) action on `tenant` (a
    Tenant, its id, or None). Call it inside the transaction that makes the
    change, so neither exists without the other."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        tenant_id=getattr(tenant, "pk", tenant),
        target=target,
        summary=summary[:300],
        reason=reason,
        data=data or {},
    )


class ReasonRequired(ValueError):
    """A staff action was asked for without saying why."""


def reason_required(reason: str) -> str:
    """`reason` stripped; raise ReasonRequired if nothing is left."""
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("A reason is required.")
    return reason
