"""
Wallet writes. Every change of a balance happens in the transaction that
writes the ledger row explaining it. A request's own writes (hold, release,
settlement) are in billing.holds and billing.settlement.
"""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import LedgerEntry, Wallet


def wallet_create(*, tenant_id: int) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(tenant_id=tenant_id)
    return wallet


@transaction.atomic
def wallet_credit(
    *,
    tenant_id: int,
    amount: int,
    kind: str,
    reference: str,
    description: str = "",
    promo_amount: int = 0,
    **wallet_changes,
) -> LedgerEntry | None:
    """
    Add `amount` nano-USD (negative to debit) with its ledger row. Return the
    row, or None when `reference` was already applied.

    `promo_amount` is the part of `amount` that is promotional credit;
    `wallet_changes` are further wallet fields to set in the same UPDATE.
    """
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                tenant_id=tenant_id,
                kind=kind,
                amount=amount,
                promo_amount=promo_amount,
                reference=reference,
                description=description[:300],
            )
    except IntegrityError:
        if LedgerEntry.objects.filter(reference=reference).exists():
            return None
        raise
    updated = Wallet.objects.filter(tenant_id=tenant_id).update(
        balance=F("balance") + amount,
        promo=F("promo") + promo_amount,
        updated_at=timezone.now(),
        **wallet_changes,
    )
    if updated != 1:
        raise Wallet.DoesNotExist(f"tenant {tenant_id} has no wallet")
    return entry
