"""
Low-balance alerts: email a tenant's owners once each time its balance drops
below the threshold they chose.

Alerts come from a sweep (Celery beat runs `send_low_balance_alerts` every
minute), not from a check where balances change. Balances change in the
relay's hot path, one or two prepared statements per request; a check there
would add a comparison, an owner lookup and a queued task to every request
for an event that happens a few times a month per tenant. The sweep costs
requests nothing, reads the wallets once a minute, and an alert a minute late
is still early for a balance that took a while to fall.

Each crossing is claimed with a conditional UPDATE setting
`low_balance_alerted_at`, so two workers sweeping at once never both email;
the claim is cleared (re-armed) once the balance is back at or above the
threshold, ready for the next crossing.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Membership, Tenant
from billing.models import Wallet
from billing.money import format_usd_text

logger = logging.getLogger(__name__)

# Wallets alerted per sweep; the next sweep, a minute later, takes the rest.
SWEEP_LIMIT = 500


def low_balance_threshold_set(*, tenant: Tenant, threshold: int | None) -> bool:
    """
    Email `tenant`'s owners when its balance drops below `threshold` nano-USD
    (None: never). A new threshold starts a new alert: if the balance is
    already below it, the next sweep sends one. Return False if unchanged.
    """
    if threshold is not None and (
        not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0
    ):
        raise ValueError("The alert threshold must be $0 or more.")
    changed = (
        Wallet.objects.filter(tenant=tenant)
        .exclude(low_balance_threshold=threshold)
        .update(low_balance_threshold=threshold, low_balance_alerted_at=None)
    )
    return bool(changed)


def _below_threshold_unalerted():
    return Wallet.objects.filter(
        low_balance_threshold__isnull=False,
        low_balance_alerted_at__isnull=True,
        balance__lt=F("low_balance_threshold"),
    )


def low_balance_alerts_rearm() -> int:
    """Clear the alert of wallets back at or above their threshold (or with
    none any more); return how many."""
    return (
        Wallet.objects.filter(low_balance_alerted_at__isnull=False)
        .filter(
            Q(low_balance_threshold__isnull=True)
            | Q(balance__gte=F("low_balance_threshold"))
        )
        .update(low_balance_alerted_at=None)
    )


def low_balance_alerts_send() -> int:
    """Re-arm recovered wallets, then email the owners of each wallet that
    newly crossed below its threshold. Return how many emails were sent."""
    low_balance_alerts_rearm()
    due = _below_threshold_unalerted().order_by("tenant_id")
    sent = 0
    for tenant_id in due.values_list("tenant_id", flat=True)[:SWEEP_LIMIT]:
        sent += _alert(tenant_id)
    return sent


def _alert(tenant_id: int) -> int:
    claimed_at = timezone.now()
    # The claim re-checks every condition: another worker may have claimed
    # this wallet, or a top-up lifted it above the threshold, meanwhile.
    claimed = (
        _below_threshold_unalerted()
        .filter(tenant_id=tenant_id)
        .update(low_balance_alerted_at=claimed_at)
    )
    if not claimed:
        return 0
    wallet = Wallet.objects.select_related("tenant").get(tenant_id=tenant_id)
    recipients = owner_emails(wallet.tenant)
    if not recipients:
        return 0
    context = {
        "tenant": wallet.tenant,
        "balance": format_usd_text(wallet.balance),
        "threshold": format_usd_text(wallet.low_balance_threshold),
    }
    subject = render_to_string("billing/email/low_balance_subject.txt", context)
    body = render_to_string("billing/email/low_balance.txt", context)
    try:
        send_mail(
            " ".join(subject.split()),
            body,
            settings.DEFAULT_FROM_EMAIL,
            recipients,
        )
    except Exception:
        # Give the crossing back (only this claim) so the next sweep retries.
        Wallet.objects.filter(
            tenant_id=tenant_id, low_balance_alerted_at=claimed_at
        ).update(low_balance_alerted_at=None)
        logger.exception("low-balance alert for tenant %s not sent", tenant_id)
        return 0
    return 1


def owner_emails(tenant: Tenant) -> list[str]:
    return list(
        Membership.objects.filter(
            tenant=tenant, role=Membership.Role.OWNER, user__is_active=True
        )
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
