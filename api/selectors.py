"""Reads for the management API, each scoped to one tenant."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import ApiKey
from api.models import ManagementToken
from billing.models import LedgerEntry, Payment, Wallet


@dataclass(frozen=True)
class Balance:
    """A wallet's figures, in nano-USD."""

    balance: int
    promo: int
    promo_expires_at: datetime | None
    held: int
    plan_name: str | None
    price_multiplier: Decimal
    low_balance_threshold: int | None

    @property
    def paid(self) -> int:
        """The part of the balance that is not promotional credit."""
        return self.balance - self.promo

    @property
    def available(self) -> int:
        """What new requests can still reserve: the balance less open holds."""
        return self.balance - self.held


def tenant_balance(*, tenant_id: int) -> Balance:
    wallet = Wallet.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if wallet is None:
        raise Http404("This tenant has no wallet.")
    plan = wallet.plan
    return Balance(
        balance=wallet.balance,
        promo=wallet.promo,
        promo_expires_at=wallet.promo_expires_at,
        held=wallet.held,
        plan_name=plan.name if plan else None,
        price_multiplier=plan.multiplier if plan else Decimal("1.0000"),
        low_balance_threshold=wallet.low_balance_threshold,
    )


def tenant_keys(*, tenant_id: int) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant_id=tenant_id).select_related("created_by")


def tenant_ledger(*, tenant_id: int) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(tenant_id=tenant_id)


def tenant_payments(*, tenant_id: int) -> QuerySet[Payment]:
    return Payment.objects.filter(tenant_id=tenant_id)


def tenant_tokens(*, tenant_id: int) -> QuerySet[ManagementToken]:
    return ManagementToken.objects.filter(tenant_id=tenant_id).select_related("user")
