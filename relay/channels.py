"""Staff switching a channel on or off, in the audit log with their reason."""

from django.db import transaction

from audit.services import audit_record, reason_required
from relay.models import Channel


@transaction.atomic
def channel_enable(*, channel: Channel, enabled: bool, actor, reason: str) -> bool:
    """Enable or disable a channel; return False if it already was so."""
    reason = reason_required(reason)
    updated = (
        Channel.objects.filter(pk=channel.pk)
        .exclude(is_enabled=enabled)
        .update(is_enabled=enabled)
    )
    if updated:
        channel.is_enabled = enabled
        audit_record(
            actor=actor,
            action="channel.enable" if enabled else "channel.disable",
            target=f"channel:{channel.pk}",
            summary=f"{'enabled' if enabled else 'disabled'} channel {channel}",
            reason=reason,
        )
    return bool(updated)
