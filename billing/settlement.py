"""
Settlement: what ends the money side of a request. In one transaction it

1. locks the wallet and deletes the request's hold, if it is still there;
2. charges the cost with a ledger row `usage:<request id>`, promotional
   credit first where it is usable, capped so the balance never goes below
   minus the overdraft limit (what the cap leaves out is uncollected);
3. moves the wallet's balance, promo and held by exactly what 1 and 2 did;
4. writes the caller's usage record with the amount charged.

Settling a request again changes nothing. The ledger row decides: its unique
reference tells a first settlement from a replay, even a concurrent one, and
a request with a cost always gets one, even when the cap collects nothing.
A request that cost nothing has no ledger row; its usage record's unique
`request_id` recognises the replay instead.

Both forms are here and follow the steps in the same order: on PostgreSQL
one statement (_SETTLE_MONEY, then the record's INSERT: _settle_sql), which
the relay runs on its event loop's connection pool; elsewhere the ORM form,
usage_settle, on a database thread.

The usage record is the relay's model, and the relay depends on billing,
never the other way: the caller hands over its unsaved record (see
UsageRow) and billing writes it as it is, adding only what it charged.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import orjson
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.db.models import F, Model
from django.utils import timezone

from billing import budgets, journal, workers
from billing.holds import (
    BUDGET_PERIOD_SQL,
    budget_holds_remove,
    by_wallet,
    hold_remove,
    settled_in_budgets,
)
from billing.models import LedgerEntry, Wallet
from billing.money import usd_to_nano
from billing.spendable import PROMO_USABLE_SQL, promo_set_aside
from config.db import on_postgres, pg_fetchone_grouped, retrying, run_db
from ops.metrics import SETTLEMENT_JOURNALED, SETTLEMENT_RETRIES

logger = logging.getLogger(__name__)


class UsageRow(Protocol):
    """
    What a settlement needs of the caller's usage record: an unsaved model
    instance whose table has a unique `request_id` column and a `charged`
    column, which the settlement fills in.
    """

    tenant_id: int
    # The key the request came with: its budgets, and its tenant's, count
    # the charge (billing.budgets).
    api_key_id: int | None
    request_id: str
    cost: int
    charged: int

    def save(self, *, force_insert: bool) -> None: ...


@dataclass(frozen=True)
class Settlement:
    charged: int
    uncollected: int
    already_settled: bool = False
    # Written to the journal, to be settled when the database is back.
    journaled: bool = False
    # The wallet's balance after it, in nano-USD (None: not known).
    balance: int | None = None


ALREADY_SETTLED = Settlement(charged=0, uncollected=0, already_settled=True)
JOURNALED = Settlement(charged=0, uncollected=0, journaled=True)


def overdraft_limit() -> int:
    """Return how far below zero a balance may go, in nano-USD."""
    return usd_to_nano(settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD)


# Steps 1 to 3; step 4 (_settle_sql) reads the outcome from `charge`: the
# amount charged and whether the request was already settled. A replay waits
# for the wallet lock, and by then the first settlement's ledger row is
# committed, so its INSERT ... ON CONFLICT DO NOTHING returns nothing.
_SETTLE_MONEY = f"""
WITH wallet AS (
    SELECT tenant_id, balance, promo, {PROMO_USABLE_SQL} AS promo_usable
    FROM billing_wallet
    WHERE tenant_id = %(tenant_id)s FOR UPDATE
), released AS (
    DELETE FROM billing_hold h USING wallet w
    WHERE h.request_id = %(request_id)s AND h.tenant_id = w.tenant_id
    RETURNING h.amount
), priced AS (
    SELECT tenant_id, promo, promo_usable,
        GREATEST(0, LEAST(%(cost)s, balance + %(overdraft)s
            - CASE WHEN promo_usable THEN 0 ELSE promo END)) AS amount
    FROM wallet WHERE %(cost)s > 0
), ledger AS (
    INSERT INTO billing_ledgerentry
        (tenant_id, kind, amount, promo_amount, reference, description, created_at)
    SELECT tenant_id, 'usage', -amount,
        CASE WHEN promo_usable THEN -LEAST(GREATEST(promo, 0), amount) ELSE 0 END,
        %(reference)s, %(description)s, %(now)s
    FROM priced
    ON CONFLICT (reference) DO NOTHING
    RETURNING -amount AS amount, -promo_amount AS promo
), charge AS (
    SELECT
        COALESCE((SELECT amount FROM ledger), 0) AS amount,
        COALESCE((SELECT promo FROM ledger), 0) AS promo,
        (%(cost)s > 0 AND NOT EXISTS (SELECT 1 FROM ledger)) AS already,
        COALESCE((SELECT sum(amount) FROM released), 0) AS freed
), wallet_update AS (
    UPDATE billing_wallet w
    SET balance = w.balance - c.amount, promo = w.promo - c.promo,
        held = w.held - c.freed, updated_at = %(now)s
    FROM charge c
    WHERE w.tenant_id = %(tenant_id)s AND (c.amount > 0 OR c.freed > 0)
    RETURNING w.balance
)
"""  # noqa: S608 (constants)


# With budgets (billing.budgets), after steps 1 to 3: the request's hold
# leaves the budgets it was counted in, and what was charged counts in every
# budget of the key and tenant (those it was counted in included, should the
# key have lost them since), in the period the settlement falls in. A
# replay charges nothing and finds no hold: it changes no budget.
_SETTLE_BUDGETS = f"""
, unlinked AS (
    DELETE FROM billing_budgethold l USING billing_budget b, wallet w
    WHERE l.request_id = %(request_id)s AND l.budget_id = b.id
        AND b.tenant_id = w.tenant_id
    RETURNING l.budget_id, l.amount
), budget_targets AS (
    SELECT b.id, COALESCE(u.amount, 0) AS freed, {BUDGET_PERIOD_SQL} AS current
    FROM billing_budget b JOIN wallet w ON b.tenant_id = w.tenant_id
    LEFT JOIN unlinked u ON u.budget_id = b.id
    WHERE b.api_key_id IS NULL OR b.api_key_id = %(key_id)s
        OR u.budget_id IS NOT NULL
), budget_update AS (
    UPDATE billing_budget b
    SET spent = CASE WHEN b.period_start < t.current THEN 0 ELSE b.spent END
            + c.amount,
        period_start = GREATEST(b.period_start, t.current),
        held = b.held - t.freed
    FROM budget_targets t, charge c
    WHERE b.id = t.id AND (c.amount > 0 OR t.freed > 0)
    RETURNING 1
)
"""  # noqa: S608 (constants)


# What the statement returns: the amount charged, and the wallet's balance
# after the charge (unchanged when nothing moved, so no UPDATE returned it).
_BALANCE_AFTER = """
SELECT r.charged,
    COALESCE((SELECT balance FROM wallet_update), (SELECT balance FROM wallet))
FROM recorded r
"""


def _row_fields(model: type[Model]) -> list:
    """The usage record's columns the settlement inserts: all but its key."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@cache
def _settle_sql(model: type[Model], with_budgets: bool = False) -> str:
    """
    Return the one statement that settles a request and inserts its `model`
    row: no row back if the request was already settled, else `charged` and
    the wallet's balance after it (_BALANCE_AFTER).
    `with_budgets`: the request's key or tenant has budgets.
    """
    fields = _row_fields(model)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Typed, because a parameter in a SELECT list is otherwise taken as text.
    values = ", ".join(
        "c.amount"
        if f.name == "charged"
        else f"CAST(%(u_{f.column})s AS {f.cast_db_type(connection)})"
        for f in fields
    )
    # Only model metadata is interpolated; every value is a parameter.
    return (
        f"{_SETTLE_MONEY}{_SETTLE_BUDGETS if with_budgets else ''} "  # noqa: S608
        f", recorded AS (INSERT INTO {model._meta.db_table} ({columns}) "
        f"SELECT {values} FROM charge c WHERE NOT c.already "
        "ON CONFLICT (request_id) DO NOTHING RETURNING charged) "
        f"{_BALANCE_AFTER}"
    )


# Values of these field types go to psycopg as they are (the statement casts
# each to its column's type); JSON goes as its text, which the statement
# casts to jsonb.
_PLAIN_TYPES = frozenset(
    {
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "DateTimeField",
        "DecimalField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "TextField",
    }
)


def _json_text(value):
    return None if value is None else orjson.dumps(value).decode()


def _converter(field) -> Callable | None:
    """How a column's value is passed: as it is (None), or converted."""
    kind = field.get_internal_type()
    if kind in _PLAIN_TYPES:
        return None
    if kind == "JSONField" and field.encoder is None:
        # Django's own conversion needs the connection handler, a
        # context-local lookup that builds a connection object in every
        # request's context.
        return _json_text
    return lambda value: field.get_db_prep_save(value, connections[DEFAULT_DB_ALIAS])


@cache
def _row_params(model: type[Model]) -> tuple[tuple[str, str, Callable | None], ...]:
    """(parameter, attribute, converter or None) per column."""
    return tuple(
        (f"u_{field.column}", field.attname, _converter(field))
        for field in _row_fields(model)
        if field.name != "charged"
    )


def _params(
    record: UsageRow, description: str, promo_ok: bool, with_budgets: bool
) -> dict:
    params = {
        "tenant_id": record.tenant_id,
        "request_id": record.request_id,
        "reference": f"usage:{record.request_id}",
        "cost": record.cost,
        "promo_ok": promo_ok,
        "overdraft": overdraft_limit(),
        "description": description[:300],
        "now": timezone.now(),
    }
    if with_budgets:
        params["key_id"] = record.api_key_id
        params.update(budgets.period_params())
    for name, attname, convert in _row_params(type(record)):
        value = getattr(record, attname)
        params[name] = value if convert is None else convert(value)
    return params


async def usage_settle_async(
    *,
    record: UsageRow,
    description: str,
    promo_ok: bool = True,
    with_budgets: bool = False,
) -> Settlement:
    """
    Settle one request: charge `record.cost` to `record.tenant_id`, release
    the request's hold and write `record` with what was charged, in one
    transaction; `description` is the ledger row's. `promo_ok`: promotional
    credit may pay for the request's model. `with_budgets`: the request's key
    or tenant has budgets (KeyIdentity.has_budgets), which count the charge.
    Settling twice is a no-op.

    Never raises: a broken connection is retried on a fresh one (settling
    again is safe), and a settlement the database still refuses goes to the
    journal (billing.journal), to be settled when it is back.
    """
    try:
        return await retrying(
            lambda: _settle_once(record, description, promo_ok, with_budgets),
            what=f"the settlement of {record.request_id}",
            on_retry=SETTLEMENT_RETRIES.inc,
        )
    except Exception:
        logger.exception("settlement of %s journaled", record.request_id)
    line = journal.entry_of(record, description, promo_ok)
    await asyncio.to_thread(journal.append, line, owner=workers.name())
    SETTLEMENT_JOURNALED.inc()
    return JOURNALED


async def _settle_once(
    record: UsageRow, description: str, promo_ok: bool, with_budgets: bool
):
    if on_postgres():
        params = _params(record, description, promo_ok, with_budgets)
        sql = _settle_sql(type(record), with_budgets)
        row = await pg_fetchone_grouped(sql, params, key=by_wallet)
        if row is None:
            return ALREADY_SETTLED
        record.charged = row[0]
        return Settlement(
            charged=row[0], uncollected=record.cost - row[0], balance=row[1]
        )
    return await run_db(
        usage_settle,
        record=record,
        description=description,
        promo_ok=promo_ok,
        with_budgets=with_budgets,
    )


@transaction.atomic
def usage_settle(
    *,
    record: UsageRow,
    description: str,
    promo_ok: bool = True,
    with_budgets: bool = True,
) -> Settlement:
    """The settlement statement in the ORM, for usage_settle_async off
    PostgreSQL, and for the journal's replays (billing.journal), which cannot
    tell a request with budgets from one without."""
    tenant_id, cost = record.tenant_id, record.cost
    reference, now = f"usage:{record.request_id}", timezone.now()
    # 1. The wallet lock, then the hold.
    freed = hold_remove(tenant_id=tenant_id, request_id=record.request_id)
    # 2. The charge, unless the ledger already has it.
    balance, promo, set_aside = (
        Wallet.objects.filter(tenant_id=tenant_id)
        .annotate(set_aside=promo_set_aside(promo_ok, now))
        .values_list("balance", "promo", "set_aside")
        .get()
    )
    already = bool(cost) and LedgerEntry.objects.filter(reference=reference).exists()
    charge = from_promo = 0
    if cost and not already:
        charge = max(0, min(cost, balance + overdraft_limit() - set_aside))
        # Set aside means not usable: none of the charge comes from promo.
        from_promo = 0 if set_aside else min(max(promo, 0), charge)
        LedgerEntry.objects.create(
            tenant_id=tenant_id,
            kind=LedgerEntry.Kind.USAGE,
            amount=-charge,
            promo_amount=-from_promo,
            reference=reference,
            description=description[:300],
            created_at=now,
        )
    # 3. The wallet, by exactly that.
    if charge or freed:
        Wallet.objects.filter(tenant_id=tenant_id).update(
            balance=F("balance") - charge,
            promo=F("promo") - from_promo,
            held=F("held") - freed,
            updated_at=now,
        )
    if with_budgets:
        unlinked = budget_holds_remove(
            tenant_id=tenant_id, request_id=record.request_id
        )
        settled_in_budgets(
            tenant_id=tenant_id,
            key_id=record.api_key_id,
            charge=charge,
            unlinked=unlinked,
            params=budgets.period_params(),
        )
    if already:
        return ALREADY_SETTLED
    # 4. The usage record.
    record.charged = charge
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        # A replayed settlement of a request that cost nothing: no money
        # moved, and its record is already written.
        return ALREADY_SETTLED
    return Settlement(
        charged=charge, uncollected=cost - charge, balance=balance - charge
    )
