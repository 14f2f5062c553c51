"""Money operations staff perform by hand, each written to the audit log."""

from django.db import transaction

from accounts.models import Tenant
from audit.services import audit_record, reason_required
from billing.models import LedgerEntry, Plan, Wallet
from billing.money import format_usd_text
from billing.services import wallet_credit


@transaction.atomic
def wallet_adjust(
    *, tenant: Tenant, amount: int, reason: str, actor, reference: str
) -> LedgerEntry | None:
    """
    Credit (or, negative, debit) a wallet by hand. `reference` makes the form
    submission idempotent: a double click adjusts once. Return the ledger row,
    or None if `reference` was already used.
    """
    reason = reason_required(reason)
    if amount == 0:
        raise ValueError("An adjustment must change the balance.")
    entry = wallet_credit(
        tenant_id=tenant.pk,
        amount=amount,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        reference=f"adjustment:{reference}",
        description=reason,
    )
    if entry is not None:
        verb = "credited" if amount > 0 else "debited"
        audit_record(
            actor=actor,
            action="wallet.adjust",
            tenant=tenant,
            target=f"ledgerentry:{entry.pk}",
            summary=f"{verb} {format_usd_text(abs(amount))} to {tenant}",
            reason=reason,
            data={"amount_nano": amount},
        )
    return entry


@transaction.atomic
def plan_assign(*, tenant: Tenant, plan: Plan | None, actor, reason: str) -> None:
    """Put `tenant` on `plan` (None: catalog prices) from its next request."""
    reason = reason_required(reason)
    wallet = Wallet.objects.select_for_update().get(tenant=tenant)
    before = wallet.plan
    if before == plan:
        return
    wallet.plan = plan
    wallet.save(update_fields=["plan"])
    audit_record(
        actor=actor,
        action="tenant.plan",
        tenant=tenant,
        target=f"tenant:{tenant.pk}",
        summary=f"plan of {tenant}: {before or 'catalog'} → {plan or 'catalog'}",
        reason=reason,
    )
