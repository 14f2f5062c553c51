"""
Starter credit: promotional credit given once per verified email address.

The grant is keyed by the normalised address, so signing up again with the
same mailbox (in any letter case, with a +tag, or with Gmail's dots) never
gives a second grant; a tenant also receives at most one.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Tenant, User
from billing.models import LedgerEntry, StarterGrant, Wallet
from billing.money import format_usd_text, usd_to_nano
from billing.services import wallet_credit

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def email_key(email: str) -> str:
    """Return the mailbox an address delivers to, in one spelling."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[0]
    return f"{local}@{domain}"


@transaction.atomic
def starter_credit_grant(*, user: User, tenant: Tenant) -> StarterGrant | None:
    """
    Give `tenant` the starter credit for `user`'s verified address. Return the
    grant, or None when the address or the tenant already had one (or the
    address is unverified, or starter credit is switched off).
    """
    amount = usd_to_nano(settings.SWITCHBOARD_STARTER_CREDIT_USD)
    if amount <= 0 or user.email_verified_at is None:
        return None
    now = timezone.now()
    days = timedelta(days=settings.SWITCHBOARD_STARTER_CREDIT_DAYS)
    try:
        with transaction.atomic():
            grant = StarterGrant.objects.create(
                email_key=email_key(user.email),
                tenant=tenant,
                amount=amount,
                granted_at=now,
                expires_at=now + days,
            )
    except IntegrityError:
        return None
    wallet_credit(
        tenant_id=tenant.pk,
        amount=amount,
        promo_amount=amount,
        kind=LedgerEntry.Kind.STARTER,
        reference=f"starter:{grant.pk}",
        description=f"Starter credit, valid until {grant.expires_at:%Y-%m-%d}",
        promo_expires_at=grant.expires_at,
    )
    return grant


def promo_expire_due(*, now=None) -> int:
    """Remove what is left of expired promotional credit; return how many
    wallets had some. Each removal is one expiry ledger row."""
    now = now or timezone.now()
    expired = 0
    due = Wallet.objects.filter(promo__gt=0, promo_expires_at__lte=now)
    for tenant_id in due.values_list("tenant_id", flat=True)[:1000]:
        expired += _promo_expire(tenant_id=tenant_id, now=now)
    return expired


@transaction.atomic
def _promo_expire(*, tenant_id: int, now) -> int:
    wallet = (
        Wallet.objects.select_for_update()
        .filter(tenant_id=tenant_id, promo__gt=0, promo_expires_at__lte=now)
        .first()
    )
    if wallet is None:  # spent or expired by someone else meanwhile
        return 0
    entry = wallet_credit(
        tenant_id=tenant_id,
        amount=-wallet.promo,
        promo_amount=-wallet.promo,
        kind=LedgerEntry.Kind.EXPIRY,
        reference=f"promo-expiry:{tenant_id}:{wallet.promo_expires_at.isoformat()}",
        description=(
            f"Unused promotional credit ({format_usd_text(wallet.promo)}) expired"
        ),
        promo_expires_at=None,
    )
    return int(entry is not None)
