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

Lock order, everywhere: the wallet row, then the hold row. The statements
delete a hold `USING` the locked wallet, so a hold is only touched once its
wallet's lock is held.
"""

from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import Hold, Wallet
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

RESERVE_SQL = f"""
WITH reserved AS (
    UPDATE billing_wallet SET held = held + %(amount)s
    WHERE tenant_id = %(tenant_id)s
        AND balance - CASE WHEN {PROMO_USABLE_SQL} THEN 0 ELSE promo END
            >= held + %(amount)s
    RETURNING tenant_id
)
INSERT INTO billing_hold
    (request_id, tenant_id, amount, created_at, expires_at, owner)
SELECT %(request_id)s, tenant_id, %(amount)s, %(now)s, %(expires_at)s, %(owner)s
FROM reserved
RETURNING amount
"""  # noqa: S608 (constants)


def _reserve_params(
    *, tenant_id: int, request_id: str, amount: int, promo_ok: bool, owner: str
) -> dict:
    now = timezone.now()
    return {
        "tenant_id": tenant_id,
        "request_id": request_id,
        "amount": amount,
        "promo_ok": promo_ok,
        "now": now,
        "expires_at": now + timedelta(seconds=settings.SWITCHBOARD_HOLD_TTL_SECONDS),
        "owner": owner,
    }


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
) -> bool:
    """
    Hold `amount` nano-USD for a request if the spendable balance covers it;
    return whether it did. `promo_ok`: the request's model may be paid for
    with promotional credit. `owner`: the worker serving the request
    (billing.workers), whose death releases the hold.

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
    )

    async def reserve_once() -> bool:
        try:
            if on_postgres():
                row = await pg_fetchone_grouped(RESERVE_SQL, params, key=by_wallet)
                return row is not None
            return await run_db(wallet_reserve, params=params)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            # A hold for this request exists: an earlier attempt placed it,
            # and its answer was lost with the connection.
            return True

    return await retrying(
        reserve_once, what=f"the hold of {request_id}", on_retry=SETTLEMENT_RETRIES.inc
    )


@transaction.atomic
def wallet_reserve(*, params: dict) -> bool:
    """RESERVE_SQL in the ORM, for wallet_reserve_async off PostgreSQL."""
    amount, tenant_id = params["amount"], params["tenant_id"]
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
    return bool(reserved)


# --- release -----------------------------------------------------------------

RELEASE_SQL = """
WITH wallet AS (
    SELECT tenant_id FROM billing_wallet WHERE tenant_id = %(tenant_id)s FOR UPDATE
), released AS (
    DELETE FROM billing_hold h USING wallet w
    WHERE h.request_id = %(request_id)s AND h.tenant_id = w.tenant_id
    RETURNING h.amount
)
UPDATE billing_wallet SET held = held - r.amount
FROM released r WHERE tenant_id = %(tenant_id)s
RETURNING r.amount
"""


async def hold_release_async(*, tenant_id: int, request_id: str) -> bool:
    """hold_release for the relay's event loop."""
    if on_postgres():
        params = {"tenant_id": tenant_id, "request_id": request_id}
        return await pg_fetchone_async(RELEASE_SQL, params) is not None
    return await run_db(hold_release, tenant_id=tenant_id, request_id=request_id)


def hold_release(*, tenant_id: int, request_id: str) -> bool:
    """
    Release a hold without charging. Return False if it was already gone.

    Sync for the expiry sweep, a Celery task; the relay calls
    hold_release_async.
    """
    if on_postgres():
        params = {"tenant_id": tenant_id, "request_id": request_id}
        return pg_fetchone(RELEASE_SQL, params) is not None
    with transaction.atomic():
        amount = hold_remove(tenant_id=tenant_id, request_id=request_id)
        if amount:
            Wallet.objects.filter(tenant_id=tenant_id).update(held=F("held") - amount)
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


def holds_release_expired(*, now=None) -> int:
    """Release holds left behind by requests that never settled."""
    now = now or timezone.now()
    released = 0
    for hold in Hold.objects.filter(expires_at__lte=now).order_by("expires_at")[:1000]:
        released += hold_release(tenant_id=hold.tenant_id, request_id=hold.request_id)
    return released
