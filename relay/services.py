from datetime import timedelta
from functools import cache

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey
from billing import pg
from billing.services import Settlement, hold_settle, settle_params
from config.db import on_postgres, pg_fetchone, pg_fetchone_async, run_db
from relay.models import UpstreamKey, UsageRecord

# last_used_at is for people: a minute's precision spares a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def _description(record: UsageRecord) -> str:
    images = ""
    if record.images:
        images = f", {record.images} image{'s' if record.images > 1 else ''}"
    return (
        f"{record.model} ({record.prompt_tokens} in, "
        f"{record.completion_tokens} out{images})"
    )


@cache
def _settle_and_record_sql() -> str:
    """Return the one PostgreSQL statement that settles and records a request."""
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Typed, because a parameter in a SELECT list is otherwise taken as text.
    values = ", ".join(
        "c.amount"
        if f.name == "charged"
        else f"CAST(%(u_{f.column})s AS {f.cast_db_type(connection)})"
        for f in fields
    )
    # Only model metadata is interpolated; every value is a parameter.
    insert = (
        f"INSERT INTO {UsageRecord._meta.db_table} ({columns}) SELECT {values} "  # noqa: S608
        "FROM charge c WHERE NOT c.already "
        "ON CONFLICT (request_id) DO NOTHING RETURNING charged"
    )
    return pg.SETTLE_HEAD + insert


# Values of these field types go to psycopg as they are; only the others
# (dates, decimals) need Django's conversion.
_PLAIN_TYPES = frozenset(
    {
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "TextField",
    }
)


@cache
def _record_params() -> tuple[tuple[str, str, object], ...]:
    """(parameter, attribute, field to convert with or None) per column."""
    return tuple(
        (
            f"u_{field.column}",
            field.attname,
            None if field.get_internal_type() in _PLAIN_TYPES else field,
        )
        for field in UsageRecord._meta.concrete_fields
        if not field.primary_key
    )


def _params(record: UsageRecord, promo_ok: bool) -> dict:
    params = settle_params(
        tenant_id=record.tenant_id,
        request_id=record.request_id,
        cost=record.cost,
        description=_description(record),
        promo_ok=promo_ok,
    )
    # The connection proxy costs a context-local lookup per use: once here.
    db = connections[DEFAULT_DB_ALIAS]
    for name, attname, field in _record_params():
        value = getattr(record, attname)
        params[name] = value if field is None else field.get_db_prep_save(value, db)
    return params


def _recorded(record: UsageRecord, row: tuple | None) -> Settlement:
    if row is None:
        return Settlement(charged=0, uncollected=0, already_settled=True)
    record.charged = row[0]
    return Settlement(charged=row[0], uncollected=record.cost - row[0])


async def usage_record_settle_async(
    *, record: UsageRecord, promo_ok: bool = True
) -> Settlement:
    """usage_record_settle for the relay's event loop."""
    if on_postgres():
        row = await pg_fetchone_async(
            _settle_and_record_sql(), _params(record, promo_ok)
        )
        return _recorded(record, row)
    return await run_db(usage_record_settle, record=record, promo_ok=promo_ok)


def usage_record_settle(*, record: UsageRecord, promo_ok: bool = True) -> Settlement:
    """
    Settle one request: charge its cost, release its hold and write its usage
    record, all in one transaction. Settling the same request twice is a no-op.
    `promo_ok`: promotional credit may pay for the request's model.
    """
    if on_postgres():
        params = _params(record, promo_ok)
        return _recorded(record, pg_fetchone(_settle_and_record_sql(), params))
    with transaction.atomic():
        settlement = hold_settle(
            tenant_id=record.tenant_id,
            request_id=record.request_id,
            cost=record.cost,
            description=_description(record),
            promo_ok=promo_ok,
        )
        if settlement.already_settled:
            return settlement
        record.charged = settlement.charged
        try:
            with transaction.atomic():
                record.save(force_insert=True)
        except IntegrityError:
            # A replayed settlement of a request that cost nothing: no money
            # moved, and its record is already written.
            return Settlement(charged=0, uncollected=0, already_settled=True)
    return settlement


def api_key_touch(*, key_id: int) -> None:
    """Record that a key was used, at most once per LAST_USED_PRECISION."""
    now = timezone.now()
    ApiKey.objects.filter(pk=key_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ).update(last_used_at=now)


def upstream_key_disable(*, key_id: int, reason: str) -> bool:
    """Take a key out of rotation after the upstream refused it."""
    updated = UpstreamKey.objects.filter(pk=key_id, is_enabled=True).update(
        is_enabled=False,
        auto_disabled=True,
        disabled_reason=reason[:300],
        disabled_at=timezone.now(),
    )
    return bool(updated)
