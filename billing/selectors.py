"""Reads of wallets and ledgers."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from billing.models import Hold, LedgerEntry, Wallet


@dataclass(frozen=True)
class Balance:
    """A wallet's figures, in nano-USD. `balance` includes `promo`."""

    balance: int = 0
    promo: int = 0
    held: int = 0
    promo_expires_at: datetime | None = None
    low_balance_threshold: int | None = None
    plan_name: str | None = None
    price_multiplier: Decimal = Decimal("1.0000")

    @property
    def paid(self) -> int:
        """The part of the balance that is not promotional credit."""
        return self.balance - self.promo

    @property
    def available(self) -> int:
        """What new requests can still reserve: the balance less open holds."""
        return self.balance - self.held


def wallet_balance(*, tenant_id: int) -> Balance | None:
    """Return the figures of a tenant's wallet, or None if it has none."""
    wallet = Wallet.objects.select_related("plan").filter(tenant_id=tenant_id).first()
    if wallet is None:
        return None
    plan = wallet.plan
    return Balance(
        balance=wallet.balance,
        promo=wallet.promo,
        held=wallet.held,
        # An expiry date matters only while there is promotional credit.
        promo_expires_at=wallet.promo_expires_at if wallet.promo else None,
        low_balance_threshold=wallet.low_balance_threshold,
        plan_name=plan.name if plan else None,
        price_multiplier=plan.multiplier if plan else Decimal("1.0000"),
    )


@dataclass(frozen=True)
class Drift:
    tenant_id: int
    problem: str


def wallet_drifts() -> list[Drift]:
    """
    Return every wallet whose figures disagree with its ledger or holds, and
    every hold past its expiry.
    """
    ledger = {
        tenant_id: (total, promo)
        for tenant_id, total, promo in LedgerEntry.objects.values_list(
            "tenant_id"
        ).annotate(total=Sum("amount"), promo=Sum("promo_amount"))
    }
    held = dict(Hold.objects.values_list("tenant_id").annotate(total=Sum("amount")))
    drifts = []
    for tenant_id, balance, promo, wallet_held in Wallet.objects.values_list(
        "tenant_id", "balance", "promo", "held"
    ).order_by("tenant_id"):
        expected, expected_promo = ledger.pop(tenant_id, (0, 0))
        if balance != expected:
            drifts.append(
                Drift(tenant_id, f"balance {balance} != sum of ledger {expected}")
            )
        if promo != expected_promo:
            drifts.append(
                Drift(
                    tenant_id,
                    f"promo {promo} != sum of ledger promo {expected_promo}",
                )
            )
        if promo < 0:
            drifts.append(Drift(tenant_id, f"promo {promo} is negative"))
        expected_held = held.get(tenant_id, 0)
        if wallet_held != expected_held:
            drifts.append(
                Drift(tenant_id, f"held {wallet_held} != sum of holds {expected_held}")
            )
    for tenant_id, (total, _) in ledger.items():
        drifts.append(Drift(tenant_id, f"ledger rows ({total}) but no wallet"))
    for hold in Hold.objects.filter(expires_at__lte=timezone.now()):
        drifts.append(
            Drift(
                hold.tenant_id,
                f"hold {hold.request_id} of {hold.amount} expired at "
                f"{hold.expires_at.isoformat()}",
            )
        )
    return drifts
