"""Reads of wallets and ledgers."""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from billing.models import Budget, BudgetHold, Hold, LedgerEntry, Wallet
from billing.workers import orphaned_holds


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


@dataclass(frozen=True)
class InFlight:
    """Holds of requests still being served by live workers: not drift."""

    holds: int
    amount: int


def wallet_drifts() -> list[Drift]:
    """
    Return every wallet whose figures disagree with its ledger or holds,
    every hold past its expiry, and every hold a dead worker left past the
    time the sweep should have released it. Read in one snapshot, so
    requests settling meanwhile are never taken for drift.
    """
    with _snapshot():
        return _drifts(timezone.now())


def holds_in_flight() -> InFlight:
    """The holds of requests in flight now, counted and summed."""
    found = Hold.objects.aggregate(count=Count("pk"), amount=Sum("amount"))
    return InFlight(holds=found["count"], amount=found["amount"] or 0)


@contextmanager
def _snapshot():
    # Inside a caller's transaction, its isolation stands.
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _drifts(now: datetime) -> list[Drift]:
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
    for hold in Hold.objects.filter(expires_at__lte=now):
        drifts.append(
            Drift(
                hold.tenant_id,
                f"hold {hold.request_id} of {hold.amount} expired at "
                f"{hold.expires_at.isoformat()}",
            )
        )
    drifts.extend(_budget_drifts())
    for hold in _left_by_dead_workers(now):
        drifts.append(
            Drift(
                hold.tenant_id,
                f"hold {hold.request_id} of {hold.amount} left by the dead "
                f"worker {hold.owner} is not released",
            )
        )
    return drifts


def _budget_drifts() -> list[Drift]:
    """Every budget whose `held` is not the holds counted in it, and every
    count in a budget (BudgetHold) that is not its open hold's amount."""
    drifts = []
    holds = dict(
        Hold.objects.filter(
            request_id__in=BudgetHold.objects.values("request_id")
        ).values_list("request_id", "amount")
    )
    counted: dict[int, int] = {}
    for request_id, budget_id, tenant_id, amount in BudgetHold.objects.values_list(
        "request_id", "budget_id", "budget__tenant_id", "amount"
    ).order_by("budget_id", "request_id"):
        counted[budget_id] = counted.get(budget_id, 0) + amount
        if holds.get(request_id) != amount:
            found = holds.get(request_id)
            drifts.append(
                Drift(
                    tenant_id,
                    f"budget {budget_id} counts {amount} for {request_id}, whose "
                    + ("hold is gone" if found is None else f"hold is {found}"),
                )
            )
    for budget_id, tenant_id, held in Budget.objects.values_list(
        "pk", "tenant_id", "held"
    ).order_by("pk"):
        expected = counted.get(budget_id, 0)
        if held != expected:
            drifts.append(
                Drift(
                    tenant_id,
                    f"budget {budget_id} held {held} != sum of its holds {expected}",
                )
            )
    return drifts


def _left_by_dead_workers(now: datetime):
    """Holds whose worker is dead and that the sweep should have released
    by now (it runs every SWEEP seconds once a worker is DEAD seconds
    silent), yet are still there: no sweep runs."""
    dead = timedelta(seconds=settings.SWITCHBOARD_WORKER_DEAD_SECONDS)
    bound = dead + 2 * timedelta(seconds=settings.SWITCHBOARD_WORKER_SWEEP_SECONDS)
    return orphaned_holds(now=now, placed_before=now - bound).filter(expires_at__gt=now)
