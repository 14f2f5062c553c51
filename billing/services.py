"""
Wallet writes. Every change of a balance happens in the transaction that
writes the ledger row explaining it; holds move `held`, never `balance`.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Case, F, Q, Value, When
from django.utils import timezone

from billing import pg
from billing.models import Hold, LedgerEntry, Wallet
from billing.money import usd_to_nano
from config.db import on_postgres, pg_fetchone, pg_fetchone_async, run_db


def overdraft_limit() -> int:
    """Return how far below zero a balance may go, in nano-USD."""
    return usd_to_nano(settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD)


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


def _reserve_params(
    *, tenant_id: int, request_id: str, amount: int, promo_ok: bool
) -> dict:
    now = timezone.now()
    return {
        "tenant_id": tenant_id,
        "request_id": request_id,
        "amount": amount,
        "promo_ok": promo_ok,
        "now": now,
        "expires_at": now + timedelta(seconds=settings.SWITCHBOARD_HOLD_TTL_SECONDS),
    }


def _promo_set_aside(promo_ok: bool, now) -> Case:
    """The promotional credit a request may not spend: all of it, unless the
    model accepts promotional credit and it has not expired."""
    usable = Q(promo_expires_at__isnull=True) | Q(promo_expires_at__gt=now)
    if not promo_ok:
        return F("promo")
    return Case(
        When(usable, then=Value(0)), default=F("promo"), output_field=BigIntegerField()
    )


def wallet_reserve(
    *, tenant_id: int, request_id: str, amount: int, promo_ok: bool = True
) -> bool:
    """
    Hold `amount` nano-USD for a request if the spendable balance covers it.
    `promo_ok`: the request's model may be paid for with promotional credit.

    The check and the hold are one conditional UPDATE, so concurrent requests
    can never reserve the same credit twice.
    """
    params = _reserve_params(
        tenant_id=tenant_id, request_id=request_id, amount=amount, promo_ok=promo_ok
    )
    if on_postgres():
        return pg_fetchone(pg.RESERVE, params) is not None
    now, expires_at = params["now"], params["expires_at"]
    with transaction.atomic():
        reserved = (
            Wallet.objects.filter(tenant_id=tenant_id)
            .alias(spendable=F("balance") - _promo_set_aside(promo_ok, now))
            .filter(spendable__gte=F("held") + amount)
            .update(held=F("held") + amount)
        )
        if reserved:
            Hold.objects.create(
                request_id=request_id,
                tenant_id=tenant_id,
                amount=amount,
                created_at=now,
                expires_at=expires_at,
            )
    return bool(reserved)


async def wallet_reserve_async(
    *, tenant_id: int, request_id: str, amount: int, promo_ok: bool = True
) -> bool:
    """wallet_reserve for the relay's event loop."""
    if on_postgres():
        params = _reserve_params(
            tenant_id=tenant_id, request_id=request_id, amount=amount, promo_ok=promo_ok
        )
        return await pg_fetchone_async(pg.RESERVE, params) is not None
    return await run_db(
        wallet_reserve,
        tenant_id=tenant_id,
        request_id=request_id,
        amount=amount,
        promo_ok=promo_ok,
    )


def _hold_delete(*, tenant_id: int, request_id: str) -> int:
    """Delete a hold; return the amount it held, or 0 if it was already gone."""
    Wallet.objects.select_for_update().filter(tenant_id=tenant_id).exists()
    hold = Hold.objects.filter(request_id=request_id, tenant_id=tenant_id).first()
    if hold is None:
        return 0
    hold.delete()
    return hold.amount


def hold_release(*, tenant_id: int, request_id: str) -> bool:
    """Release a hold without charging. Return False if it was already gone."""
    params = {"tenant_id": tenant_id, "request_id": request_id}
    if on_postgres():
        return pg_fetchone(pg.RELEASE, params) is not None
    with transaction.atomic():
        amount = _hold_delete(**params)
        if amount:
            Wallet.objects.filter(tenant_id=tenant_id).update(held=F("held") - amount)
    return bool(amount)


async def hold_release_async(*, tenant_id: int, request_id: str) -> bool:
    """hold_release for the relay's event loop."""
    if on_postgres():
        params = {"tenant_id": tenant_id, "request_id": request_id}
        return await pg_fetchone_async(pg.RELEASE, params) is not None
    return await run_db(hold_release, tenant_id=tenant_id, request_id=request_id)


@dataclass(frozen=True)
class Settlement:
    charged: int
    uncollected: int
    already_settled: bool = False


def settle_params(
    *, tenant_id: int, request_id: str, cost: int, description: str, promo_ok: bool
) -> dict:
    return {
        "tenant_id": tenant_id,
        "request_id": request_id,
        "reference": f"usage:{request_id}",
        "cost": cost,
        "promo_ok": promo_ok,
        "overdraft": overdraft_limit(),
        "description": description[:300],
        "now": timezone.now(),
    }


def hold_settle(
    *,
    tenant_id: int,
    request_id: str,
    cost: int,
    description: str,
    promo_ok: bool = True,
) -> Settlement:
    """
    Charge `cost` for a request and release its hold. Promotional credit pays
    first when `promo_ok` (the model accepts it) and it has not expired.

    The charge is capped so the balance never goes below minus the overdraft
    limit; what the cap leaves out is reported as uncollected. A request with
    a cost always gets its ledger row, even when the cap collects nothing, so
    settling it again is recognised and never charges.
    """
    params = settle_params(
        tenant_id=tenant_id,
        request_id=request_id,
        cost=cost,
        description=description,
        promo_ok=promo_ok,
    )
    if on_postgres():
        charged, already = pg_fetchone(pg.SETTLE, params)
    else:
        charged, already = _settle_orm(params)
    if already:
        return Settlement(charged=0, uncollected=0, already_settled=True)
    return Settlement(charged=charged, uncollected=cost - charged)


@transaction.atomic
def _settle_orm(params: dict) -> tuple[int, bool]:
    tenant_id, cost = params["tenant_id"], params["cost"]
    held = _hold_delete(tenant_id=tenant_id, request_id=params["request_id"])
    now = params["now"]
    balance, promo, set_aside = (
        Wallet.objects.filter(tenant_id=tenant_id)
        .annotate(set_aside=_promo_set_aside(params["promo_ok"], now))
        .values_list("balance", "promo", "set_aside")
        .get()
    )
    if cost and LedgerEntry.objects.filter(reference=params["reference"]).exists():
        return 0, True
    charge = max(0, min(cost, balance + params["overdraft"] - set_aside))
    from_promo = 0 if set_aside else min(max(promo, 0), charge)
    if cost:
        LedgerEntry.objects.create(
            tenant_id=tenant_id,
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            promo_amount=-from_promo,
            reference=params["reference"],
            description=params["description"],
            created_at=now,
        )
    if charge or held:
        Wallet.objects.filter(tenant_id=tenant_id).update(
            balance=F("balance") - charge,
            promo=F("promo") - from_promo,
            held=F("held") - held,
            updated_at=now,
        )
    return charge, False


def holds_release_expired(*, now=None) -> int:
    """Release holds left behind by requests that never settled."""
    now = now or timezone.now()
    released = 0
    for hold in Hold.objects.filter(expires_at__lte=now).order_by("expires_at")[:1000]:
        released += hold_release(tenant_id=hold.tenant_id, request_id=hold.request_id)
    return released
