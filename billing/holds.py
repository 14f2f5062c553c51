"""
Holds: credit reserved for a request in flight, from before its upstream
call until billing.settlement charges it or a release gives it back. Holds
move a wallet's `held`, never its `balance`.

Each write is here in both its forms. On PostgreSQL it is one statement: it
runs inside the server, so the wallet row is locked only while PostgreSQL
executes it (or its group commit: config.db.GroupCommit), never while a
Python thread waits for its turn; the relay runs it on its event loop's
connection pool. On other databases the ORM form does the same work on a
database thread. The test suite runs the same behaviour tests through both.

Lock order, everywhere: the wallet row, then the hold row, then budget
rows (billing.budgets). The statements delete a hold `USING` the locked
wallet, and reach budgets through it, so neither is touched before its
wallet's lock is held.

Budgets: a request whose key and tenant have budgets reserves with
RESERVE_BUDGETS_SQL, which counts the hold in every one of them (a
BudgetHold row each) only if all have room, and the wallet too; one without
runs RESERVE_SQL, untouched by budgets. Releases by the relay follow the
same choice; the sweeps always give budgets back (RELEASE_BUDGETS_SQL), as
they cannot tell.
"""

from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing import budgets
from billing.models import Budget, BudgetHold, Hold, Wallet
from billing.spendable import PROMO_USABLE_SQL, promo_set_aside
from config.db import (
    on_postgres,
    pg_fetchone,
    pg_fetchone_async,
    pg_fetchone_grouped,
    retrying,
    run_db,
)
from ops.metrics import SETTLEMENT_RETRIES

# --- reserve -----------------------------------------------------------------

# A hold's transaction commits without waiting for its WAL to reach the disk
# (synchronous_commit off for that transaction alone): that wait is the
# largest part of a round trip on most disks. A crash of PostgreSQL can then
# lose the last holds placed, their rows and the wallets' `held` together,
# which is what an early release does; a settlement charges a request whose
# hold is gone as it charges one whose hold expired. Settlements and
# releases wait for the disk.
NO_FLUSH_WAIT = "SELECT set_config('synchronous_commit', 'off', true)"

RESERVE_SQL = f"""
WITH unflushed AS ({NO_FLUSH_WAIT}), reserved AS (
    UPDATE billing_wallet SET held = held + %(amount)s
    WHERE tenant_id = %(tenant_id)s
        AND balance - CASE WHEN {PROMO_USABLE_SQL} THEN 0 ELSE promo END
            >= held + %(amount)s
    RETURNING tenant_id
)
INSERT INTO billing_hold
    (request_id, tenant_id, amount, created_at, expires_at, owner)
SELECT %(request_id)s, tenant_id, %(amount)s, %(now)s, %(expires_at)s, %(owner)s
FROM reserved, unflushed
RETURNING amount
"""  # noqa: S608 (constants)


# The start of a budget's current period (`b`, a billing_budget row), from
# the period starts the statement is given (billing.budgets.period_params):
# a lifetime budget's period never rolls over.
BUDGET_PERIOD_SQL = """CASE b.period
    WHEN 'daily' THEN CAST(%(day_start)s AS timestamptz)
    WHEN 'monthly' THEN CAST(%(month_start)s AS timestamptz)
    ELSE b.period_start END"""

# RESERVE_SQL for a key or tenant with budgets: the wallet's lock, then every
# budget of the key and of the tenant, each counted from zero if its period
# rolled over. The hold is placed, in the wallet and in every budget, only if
# none would go over its cap and the wallet covers it. One row back: the
# amount held (NULL if refused) and, if a budget refused, the one that did
# (the longest to reset first).
RESERVE_BUDGETS_SQL = f"""
WITH wallet AS (
    SELECT tenant_id FROM billing_wallet
    WHERE tenant_id = %(tenant_id)s FOR UPDATE
), budgets AS (
    SELECT b.id, b.period, b.cap, b.held, b.api_key_id,
        CASE WHEN b.period_start < {BUDGET_PERIOD_SQL} THEN 0 ELSE b.spent END
            AS spent,
        GREATEST(b.period_start, {BUDGET_PERIOD_SQL}) AS period_start
    FROM billing_budget b JOIN wallet w ON b.tenant_id = w.tenant_id
    WHERE b.api_key_id IS NULL OR b.api_key_id = %(key_id)s
    FOR UPDATE OF b
), over AS (
    SELECT period, cap, api_key_id IS NOT NULL AS is_key FROM budgets
    WHERE spent + held + %(amount)s > cap
    ORDER BY CASE period WHEN 'lifetime' THEN 0 WHEN 'monthly' THEN 1 ELSE 2 END,
        api_key_id IS NULL
    LIMIT 1
), reserved AS (
    UPDATE billing_wallet SET held = held + %(amount)s
    WHERE tenant_id = %(tenant_id)s
        AND NOT EXISTS (SELECT 1 FROM over)
        AND balance - CASE WHEN {PROMO_USABLE_SQL} THEN 0 ELSE promo END
            >= held + %(amount)s
    RETURNING tenant_id
), counted AS (
    UPDATE billing_budget b
    SET held = b.held + %(amount)s, spent = s.spent, period_start = s.period_start
    FROM budgets s, reserved r WHERE b.id = s.id
    RETURNING b.id
), linked AS (
    INSERT INTO billing_budgethold (request_id, budget_id, amount)
    SELECT %(request_id)s, id, %(amount)s FROM counted
), hold AS (
    INSERT INTO billing_hold
        (request_id, tenant_id, amount, created_at, expires_at, owner)
    SELECT %(request_id)s, tenant_id, %(amount)s, %(now)s, %(expires_at)s, %(owner)s
    FROM reserved
    RETURNING amount
)
SELECT (SELECT amount FROM hold), o.period, o.cap, o.is_key
FROM ({NO_FLUSH_WAIT}) unflushed LEFT JOIN over o ON true
"""  # noqa: S608 (constants)


def _reserve_params(
    *,
    tenant_id: int,
    request_id: str,
    amount: int,
    promo_ok: bool,
    owner: str,
    key_id: int | None = None,
    with_budgets: bool = False,
) -> dict:
    now = timezone.now()
    params = {
        "tenant_id": tenant_id,
        "request_id": request_id,
        "amount": amount,
        "promo_ok": promo_ok,
        "now": now,
        "expires_at": now + timedelta(seconds=settings.SWITCHBOARD_HOLD_TTL_SECONDS),
        "owner": owner,
    }
    if with_budgets:
        params["key_id"] = key_id
        params.update(budgets.period_params())
    return params


def by_wallet(params: dict) -> int:
    """The order of a group commit's statements (config.db.GroupCommit)."""
    return params["tenant_id"]


async def wallet_reserve_async(
    *,
    tenant_id: int,
    request_id: str,
    amount: int,
    promo_ok: bool = True,
    owner: str = "",
    key_id: int | None = None,
    with_budgets: bool = False,
) -> bool:
    """
    Hold `amount` nano-USD for a request if the spendable balance covers it;
    return whether it did. `promo_ok`: the request's model may be paid for
    with promotional credit. `owner`: the worker serving the request
    (billing.workers), whose death releases the hold. `with_budgets`: the
    key `key_id` or its tenant has budgets (KeyIdentity.has_budgets), which
    must all have room for the hold too; raise billing.budgets.BudgetExceeded
    when one has not.

    The check and the hold are one conditional UPDATE, so concurrent requests
    can never reserve the same credit twice. A broken connection is retried
    on a fresh one; the request id keeps a retry from holding twice. Raise
    config.db.CONNECTION_ERRORS when the database stays unreachable.
    """
    params = _reserve_params(
        tenant_id=tenant_id,
        request_id=request_id,
        amount=amount,
        promo_ok=promo_ok,
        owner=owner,
        key_id=key_id,
        with_budgets=with_budgets,
    )

    async def reserve_once() -> bool:
        try:
            if not on_postgres():
                return await run_db(wallet_reserve, params=params)
            if not with_budgets:
                row = await pg_fetchone_grouped(RESERVE_SQL, params, key=by_wallet)
                return row is not None
            row = await pg_fetchone_grouped(RESERVE_BUDGETS_SQL, params, key=by_wallet)
            held, period, cap, is_key = row
            if period is not None:
                raise budgets.exceeded(is_key=is_key, period=period, cap=cap)
            return held is not None
        except (IntegrityError, psycopg.errors.UniqueViolation):
            # A hold for this request exists: an earlier attempt placed it,
            # and its answer was lost with the connection.
            return True

    return await retrying(
        reserve_once, what=f"the hold of {request_id}", on_retry=SETTLEMENT_RETRIES.inc
    )


@transaction.atomic
def wallet_reserve(*, params: dict) -> bool:
    """RESERVE_SQL (RESERVE_BUDGETS_SQL with budgets) in the ORM, for
    wallet_reserve_async off PostgreSQL."""
    amount, tenant_id = params["amount"], params["tenant_id"]
    counted = []
    if "key_id" in params:
        # A write, not a read, takes the wallet's lock: on SQLite a read
        # would let another writer in before this one's writes.
        Wallet.objects.filter(tenant_id=tenant_id).update(held=F("held"))
        counted = _budgets_with_room(params)
    reserved = (
        Wallet.objects.filter(tenant_id=tenant_id)
        .alias(
            spendable=F("balance") - promo_set_aside(params["promo_ok"], params["now"])
        )
        .filter(spendable__gte=F("held") + amount)
        .update(held=F("held") + amount)
    )
    if reserved:
        Hold.objects.create(
            request_id=params["request_id"],
            tenant_id=tenant_id,
            amount=amount,
            created_at=params["now"],
            expires_at=params["expires_at"],
            owner=params["owner"],
        )
        for budget, spent, start in counted:
            Budget.objects.filter(pk=budget.pk).update(
                held=F("held") + amount, spent=spent, period_start=start
            )
        BudgetHold.objects.bulk_create(
            BudgetHold(request_id=params["request_id"], budget=budget, amount=amount)
            for budget, _, _ in counted
        )
    return bool(reserved)


def _budget_period(budget: Budget, params: dict) -> tuple[int, object]:
    """BUDGET_PERIOD_SQL in Python: the budget's spending in its current
    period, and when that began."""
    if budget.period == Budget.Period.DAILY:
        current = params["day_start"]
    elif budget.period == Budget.Period.MONTHLY:
        current = params["month_start"]
    else:
        current = budget.period_start
    if budget.period_start < current:
        return 0, current
    return budget.spent, budget.period_start


def _applicable_budgets(tenant_id: int, key_id: int | None):
    return Budget.objects.filter(tenant_id=tenant_id).filter(
        Q(api_key__isnull=True) | Q(api_key_id=key_id)
    )


def _budgets_with_room(params: dict) -> list[tuple[Budget, int, object]]:
    """The key's and tenant's budgets with their current period's spending
    and start, if all have room for the hold; else raise BudgetExceeded for
    the one that has not (the longest to reset first), as the statement
    does. The caller holds the wallet's lock."""
    order = {Budget.Period.LIFETIME: 0, Budget.Period.MONTHLY: 1}
    found, over = [], []
    for budget in _applicable_budgets(params["tenant_id"], params["key_id"]):
        spent, start = _budget_period(budget, params)
        found.append((budget, spent, start))
        if spent + budget.held + params["amount"] > budget.cap:
            over.append(budget)
    if over:
        worst = min(over, key=lambda b: (order.get(b.period, 2), b.api_key_id is None))
        raise budgets.exceeded(
            is_key=worst.api_key_id is not None, period=worst.period, cap=worst.cap
        )
    return found


# --- release -----------------------------------------------------------------

# The wallet locked, then the request's hold deleted: both release
# statements start so.
_RELEASED = """
WITH wallet AS (
    SELECT tenant_id FROM billing_wallet WHERE tenant_id = %(tenant_id)s FOR UPDATE
), released AS (
    DELETE FROM billing_hold h USING wallet w
    WHERE h.request_id = %(request_id)s AND h.tenant_id = w.tenant_id
    RETURNING h.amount
)"""
_WALLET_RELEASED = """
UPDATE billing_wallet SET held = held - r.amount
FROM released r WHERE tenant_id = %(tenant_id)s
RETURNING r.amount
"""
RELEASE_SQL = _RELEASED + _WALLET_RELEASED

# RELEASE_SQL that also gives the hold back to the budgets it was counted in.
RELEASE_BUDGETS_SQL = (
    _RELEASED  # noqa: S608 (constants)
    + """, unlinked AS (
    DELETE FROM billing_budgethold l USING billing_budget b, wallet w
    WHERE l.request_id = %(request_id)s AND l.budget_id = b.id
        AND b.tenant_id = w.tenant_id
    RETURNING l.budget_id, l.amount
), budgets AS (
    UPDATE billing_budget b SET held = b.held - u.amount
    FROM unlinked u WHERE b.id = u.budget_id
    RETURNING 1
)"""
    + _WALLET_RELEASED
)


async def hold_release_async(
    *, tenant_id: int, request_id: str, with_budgets: bool = False
) -> bool:
    """hold_release for the relay's event loop; `with_budgets` as the
    request's reserve had it."""
    if on_postgres():
        params = {"tenant_id": tenant_id, "request_id": request_id}
        sql = RELEASE_BUDGETS_SQL if with_budgets else RELEASE_SQL
        return await pg_fetchone_async(sql, params) is not None
    return await run_db(
        hold_release,
        tenant_id=tenant_id,
        request_id=request_id,
        with_budgets=with_budgets,
    )


def hold_release(*, tenant_id: int, request_id: str, with_budgets: bool = True) -> bool:
    """
    Release a hold without charging, giving it back to its wallet and, unless
    the caller knows it had none (`with_budgets` False), to its budgets.
    Return False if it was already gone.

    Sync for the sweeps (a Celery task, billing.workers), which cannot tell
    a hold with budgets from one without; the relay calls hold_release_async.
    """
    if on_postgres():
        params = {"tenant_id": tenant_id, "request_id": request_id}
        sql = RELEASE_BUDGETS_SQL if with_budgets else RELEASE_SQL
        return pg_fetchone(sql, params) is not None
    with transaction.atomic():
        amount = hold_remove(tenant_id=tenant_id, request_id=request_id)
        if amount:
            Wallet.objects.filter(tenant_id=tenant_id).update(held=F("held") - amount)
        if with_budgets:
            budget_holds_remove(tenant_id=tenant_id, request_id=request_id)
    return bool(amount)


def hold_remove(*, tenant_id: int, request_id: str) -> int:
    """
    Lock the wallet, then delete its hold for `request_id`; return the amount
    held, 0 if the hold was already gone. The caller lowers `held` by it in
    the same transaction.
    """
    Wallet.objects.select_for_update().filter(tenant_id=tenant_id).exists()
    hold = Hold.objects.filter(request_id=request_id, tenant_id=tenant_id).first()
    if hold is None:
        return 0
    hold.delete()
    return hold.amount


def budget_holds_remove(*, tenant_id: int, request_id: str) -> dict[int, int]:
    """
    Delete the request's BudgetHold rows and lower their budgets' `held` by
    them; return {budget id: amount}. The caller holds the wallet's lock
    (hold_remove), in the same transaction.
    """
    links = dict(
        BudgetHold.objects.filter(
            request_id=request_id, budget__tenant_id=tenant_id
        ).values_list("budget_id", "amount")
    )
    if links:
        BudgetHold.objects.filter(
            request_id=request_id, budget_id__in=list(links)
        ).delete()
        for budget_id, amount in links.items():
            Budget.objects.filter(pk=budget_id).update(held=F("held") - amount)
    return links


def settled_in_budgets(
    *,
    tenant_id: int,
    key_id: int | None,
    charge: int,
    unlinked: dict[int, int],
    params: dict,
) -> None:
    """
    _SETTLE_BUDGETS (billing.settlement) in the ORM: count `charge` in every
    budget of the key and tenant and in those the request's hold was counted
    in (`unlinked`, already given back by budget_holds_remove), in their
    current period. The caller holds the wallet's lock.
    """
    if not charge:
        return
    targets = _applicable_budgets(tenant_id, key_id) | Budget.objects.filter(
        tenant_id=tenant_id, pk__in=list(unlinked)
    )
    for budget in targets:
        _, start = _budget_period(budget, params)
        rolled_over = start != budget.period_start
        Budget.objects.filter(pk=budget.pk).update(
            spent=charge if rolled_over else F("spent") + charge, period_start=start
        )


def holds_release_expired(*, now=None) -> int:
    """Release holds left behind by requests that never settled."""
    now = now or timezone.now()
    released = 0
    for hold in Hold.objects.filter(expires_at__lte=now).order_by("expires_at")[:1000]:
        released += hold_release(tenant_id=hold.tenant_id, request_id=hold.request_id)
    return released
