"""
Budgets: spend caps per tenant or per key, for a UTC day, a UTC month or for
good (billing.models.Budget).

They are enforced where the wallet is: the hold that reserves a request's
worst case (billing.holds) is placed only if every budget of its key and
tenant has room for it, in the same statement, so concurrent requests can
no more overshoot a budget than overdraw a wallet. Settlement moves the
hold to `spent` by what was charged; a release gives it back.

A key or tenant without budgets runs the statements it ran before budgets
existed: the relay picks the statements by KeyIdentity.has_budgets, from the
cached key lookup. A budget set or removed takes effect on every process
within SWITCHBOARD_KEY_CACHE_SECONDS, as a revocation does.

Periods roll over lazily: each statement that touches a budget computes the
start of its current period from the time it is given (`clock`, which
tests move) and, if the row's period began before, counts it from zero.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.auth import forget_cached_keys
from accounts.models import ApiKey, Tenant
from accounts.services import api_key_create
from audit.services import audit_record
from billing.models import Budget, BudgetHold, Wallet
from billing.money import format_usd_text

# Tests move the clock.
clock = timezone.now

PERIODS = (Budget.Period.DAILY, Budget.Period.MONTHLY, Budget.Period.LIFETIME)
# Lifetime budgets all began at once: their period never rolls over.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def day_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def period_start(period: str, now: datetime) -> datetime:
    """When the `period` that `now` falls in began (UTC)."""
    if period == Budget.Period.DAILY:
        return day_start(now)
    if period == Budget.Period.MONTHLY:
        return month_start(now)
    return EPOCH


def period_end(period: str, now: datetime) -> datetime | None:
    """When the `period` that `now` falls in ends; None: never."""
    start = period_start(period, now)
    if period == Budget.Period.DAILY:
        return start + timedelta(days=1)
    if period == Budget.Period.MONTHLY:
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)
    return None


def period_params(now: datetime | None = None) -> dict:
    """The statements' parameters for the current periods."""
    now = now or clock()
    return {"day_start": day_start(now), "month_start": month_start(now)}


class BudgetExceeded(Exception):
    """A hold refused because a budget has no room left for it."""

    def __init__(self, *, scope: str, period: str, cap: int, resets_at):
        self.scope = scope  # "key" or "tenant"
        self.period = period
        self.cap = cap
        self.resets_at = resets_at
        super().__init__(f"{scope} {period} budget exceeded")


def exceeded(*, is_key: bool, period: str, cap: int) -> BudgetExceeded:
    return BudgetExceeded(
        scope="key" if is_key else "tenant",
        period=period,
        cap=cap,
        resets_at=period_end(period, clock()),
    )


@dataclass(frozen=True)
class BudgetUse:
    """A budget as people see it: its cap and its use in the current period."""

    period: str
    cap: int
    spent: int
    held: int
    resets_at: datetime | None

    @property
    def percent(self) -> int:
        """How much of the cap the period has spent, in whole percent."""
        if self.cap <= 0:
            return 100
        return min(100, self.spent * 100 // self.cap)

    @property
    def left(self) -> int:
        return max(0, self.cap - self.spent - self.held)

    def get_period_display(self) -> str:
        return Budget.Period(self.period).label


def use_of(budget: Budget, now: datetime | None = None) -> BudgetUse:
    now = now or clock()
    current = period_start(budget.period, now)
    rolled = budget.period != Budget.Period.LIFETIME and budget.period_start < current
    return BudgetUse(
        period=budget.period,
        cap=budget.cap,
        spent=0 if rolled else budget.spent,
        held=budget.held,
        resets_at=period_end(budget.period, now),
    )


def _ordered(uses: list[BudgetUse]) -> list[BudgetUse]:
    return sorted(uses, key=lambda use: PERIODS.index(use.period))


def tenant_budgets(*, tenant_id: int) -> list[BudgetUse]:
    """The tenant's own budgets (not its keys'), daily first."""
    now = clock()
    return _ordered(
        [
            use_of(b, now)
            for b in Budget.objects.filter(tenant_id=tenant_id, api_key__isnull=True)
        ]
    )


def key_budgets(
    *, key_ids=None, tenant_id: int | None = None
) -> dict[int, list[BudgetUse]]:
    """Each key's budgets, daily first, by key id (keys without: absent):
    of the keys `key_ids`, or of every key of the tenant `tenant_id`."""
    now = clock()
    found: dict[int, list[BudgetUse]] = {}
    rows = (
        Budget.objects.filter(api_key_id__in=list(key_ids))
        if key_ids is not None
        else Budget.objects.filter(tenant_id=tenant_id, api_key__isnull=False)
    )
    for budget in rows:
        found.setdefault(budget.api_key_id, []).append(use_of(budget, now))
    return {key_id: _ordered(uses) for key_id, uses in found.items()}


def budgets_of_tenant(*, tenant_id: int) -> tuple[list[BudgetUse], list]:
    """The tenant's own budgets, and each of its keys' by key name as
    [(name, budgets)], in one query."""
    now = clock()
    own: list[BudgetUse] = []
    per_key: dict[str, list[BudgetUse]] = {}
    for budget in Budget.objects.filter(tenant_id=tenant_id).select_related("api_key"):
        if budget.api_key is None:
            own.append(use_of(budget, now))
        else:
            per_key.setdefault(budget.api_key.name, []).append(use_of(budget, now))
    return _ordered(own), [
        (name, _ordered(uses)) for name, uses in sorted(per_key.items())
    ]


def budget_caps(*, tenant: Tenant, key: ApiKey | None = None) -> dict[str, int]:
    """The caps set, by period."""
    return dict(
        Budget.objects.filter(tenant=tenant, api_key=key).values_list("period", "cap")
    )


def _usd(cap: int | None) -> str:
    return "none" if cap is None else format_usd_text(cap)


@transaction.atomic
def key_create(
    *, tenant: Tenant, caps: dict[str, int | None] | None = None, **fields
) -> tuple[ApiKey, str]:
    """
    Create an API key (accounts.services.api_key_create takes `fields`) with
    its budgets (`caps`, as budgets_set takes them, set by its creator) in
    one transaction: never one without the other. Return it with its secret.
    """
    key, secret = api_key_create(tenant=tenant, **fields)
    if caps:
        budgets_set(tenant=tenant, key=key, caps=caps, actor=fields.get("created_by"))
    return key, secret


def budgets_set(
    *,
    tenant: Tenant,
    key: ApiKey | None = None,
    caps: dict[str, int | None],
    actor=None,
) -> dict[str, tuple[int | None, int | None]]:
    """
    Set the caps (nano-USD) of `key`'s budgets, or the tenant's own if `key`
    is None, by period; None removes that budget. Periods not in `caps` stay
    as they are. Return what changed: {period: (before, after)}. A change
    made by a person (`actor`, from the portal or the API) is in the audit
    log; the admin audits its own edits (audit.admin_edits).

    A new budget counts from now: what was spent before it was set does not
    count. A changed cap keeps the period's spending.
    """
    if key is not None and key.tenant_id != tenant.pk:
        raise ValueError("The key is not the tenant's.")
    for period, cap in caps.items():
        if period not in PERIODS:
            raise ValueError(f"Unknown budget period: {period}")
        if cap is not None and (
            not isinstance(cap, int) or isinstance(cap, bool) or cap < 0
        ):
            raise ValueError("A budget must be $0 or more.")
    now = clock()
    changed = {}
    with transaction.atomic():
        # The wallet's lock first, as the hold statements take it: no hold
        # can be counted in a budget while it is removed.
        Wallet.objects.select_for_update().filter(tenant=tenant).exists()
        existing = {
            b.period: b
            for b in Budget.objects.select_for_update().filter(
                tenant=tenant, api_key=key
            )
        }
        for period, cap in caps.items():
            budget = existing.get(period)
            before = budget.cap if budget else None
            if before == cap:
                continue
            changed[period] = (before, cap)
            if cap is None:
                BudgetHold.objects.filter(budget=budget).delete()
                budget.delete()
            elif budget is None:
                Budget.objects.create(
                    tenant=tenant,
                    api_key=key,
                    period=period,
                    cap=cap,
                    period_start=period_start(period, now),
                    updated_at=now,
                )
            else:
                # A new cap starts its alerts afresh, as a new threshold does.
                Budget.objects.filter(pk=budget.pk).update(
                    cap=cap, updated_at=now, alerted_percent=0, alerted_period=None
                )
        if changed and actor is not None:
            whose = f"key {key.name}" if key else f"tenant {tenant.name}"
            audit_record(
                actor=actor,
                action="budget.set",
                tenant=tenant,
                target=f"apikey:{key.pk}" if key else f"tenant:{tenant.pk}",
                summary=f"set the budgets of {whose}: "
                + ", ".join(
                    f"{period} {_usd(before)} -> {_usd(after)}"
                    for period, (before, after) in changed.items()
                ),
                data={period: list(change) for period, change in changed.items()},
            )
    if changed:
        # This process sees the change at once; the others within
        # SWITCHBOARD_KEY_CACHE_SECONDS.
        forget_cached_keys()
    return changed
