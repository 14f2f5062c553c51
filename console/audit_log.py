"""The audit log as staff search it: by actor, action, tenant and date."""

from django.db.models import QuerySet

from audit.models import AuditEvent
from console.filters import (
    FilterError,
    ids_parse,
    range_parse,
    tenant_range_filter,
    text_param,
)

SYSTEM = "system"


def audit_filters_parse(params) -> dict:
    """
    `actor`: part of an email address, or "system" for actions no person
    took; `action`: an action ("tenant.suspend") or its family ("tenant");
    `tenant`: a tenant id; `start`/`end`: ISO 8601 dates or datetimes.
    """
    errors: dict[str, str] = {}
    filters: dict = {}
    for name in ("actor", "action"):
        raw = text_param(params, name)
        if raw:
            if not raw.isprintable() or len(raw) > 254:
                errors[name] = "At most 254 printable characters."
            else:
                filters[name] = raw
    filters.update(ids_parse(params, errors, "tenant"))
    filters.update(range_parse(params, errors))
    if errors:
        raise FilterError(errors)
    return filters


def audit_events(filters: dict) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor", "tenant")
    actor = filters.get("actor")
    if actor == SYSTEM:
        events = events.filter(actor__isnull=True)
    elif actor:
        events = events.filter(actor__email__icontains=actor)
    action = filters.get("action")
    if action and "." in action:
        events = events.filter(action=action)
    elif action:
        events = events.filter(action__startswith=f"{action}.")
    return tenant_range_filter(events, filters).order_by("-created_at", "-pk")


def audit_actions() -> list[str]:
    """The actions recorded so far, for the filter's choices."""
    return list(
        AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
