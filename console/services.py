"""
Staff actions the console performs beyond those billing.staff and
accounts.services already offer. Each writes the audit log in the
transaction of its change.
"""

from django.db import transaction

from accounts.models import ApiKey, User
from accounts.services import api_key_revoke
from audit.services import audit_record
from onboarding.registration import verification_send
from relay.models import Channel


class ReasonRequired(ValueError):
    pass


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("A reason is required.")
    return reason


@transaction.atomic
def staff_key_revoke(*, key: ApiKey, actor, reason: str) -> bool:
    """Revoke a customer's API key; return False if it already was."""
    reason = _reason(reason)
    key = ApiKey.objects.select_for_update().select_related("tenant").get(pk=key.pk)
    if key.revoked_at is not None:
        return False
    api_key_revoke(key=key)
    audit_record(
        actor=actor,
        action="apikey.revoke",
        tenant=key.tenant,
        target=f"apikey:{key.pk}",
        summary=f"revoked key {key} of {key.tenant}",
        reason=reason,
    )
    return True


def verification_resend(*, user: User, actor, site_url: str) -> bool:
    """
    Email `user` a new verification link (as the portal's resend does) and
    log who asked. Return whether the email went; False without sending if
    the address is already verified.
    """
    if user.email_verified_at is not None:
        return False
    sent = verification_send(user=user, site_url=site_url)
    membership = user.memberships.order_by("created_at").first()
    audit_record(
        actor=actor,
        action="user.verification_resend",
        tenant=membership.tenant_id if membership else None,
        target=f"user:{user.pk}",
        summary=f"{'sent' if sent else 'failed to send'} a verification email "
        f"to {user.email}",
    )
    return sent


@transaction.atomic
def channel_enable(*, channel: Channel, enabled: bool, actor, reason: str) -> bool:
    """Enable or disable a channel; return False if it already was so."""
    reason = _reason(reason)
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
