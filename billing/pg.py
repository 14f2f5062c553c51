"""
PostgreSQL forms of the wallet writes the relay makes on every request.

Each is one statement: it runs as its own transaction inside the server, so a
wallet row is locked only while PostgreSQL executes it, never while a Python
thread waits for its turn. The ORM forms in billing.services do the same work
on other databases; the test suite runs the same behaviour tests on both.

Lock order, everywhere: the wallet row, then the hold row. The settle and
release statements delete the hold `USING` the locked wallet, so the hold can
only be touched once the wallet lock is held.
"""

# Promotional credit counts as spendable only for models it may pay for and
# until it expires; otherwise it is set aside.
_PROMO_USABLE = """(%(promo_ok)s AND (promo_expires_at IS NULL
    OR promo_expires_at > %(now)s))"""

RESERVE = f"""
WITH reserved AS (
    UPDATE billing_wallet SET held = held + %(amount)s
    WHERE tenant_id = %(tenant_id)s
        AND balance - CASE WHEN {_PROMO_USABLE} THEN 0 ELSE promo END
            >= held + %(amount)s
    RETURNING tenant_id
)
INSERT INTO billing_hold (request_id, tenant_id, amount, created_at, expires_at)
SELECT %(request_id)s, tenant_id, %(amount)s, %(now)s, %(expires_at)s FROM reserved
RETURNING amount
"""  # noqa: S608 (constants)

RELEASE = """
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

# The common head of every settlement; the statement's main part follows it
# and reads the CTE `charge` (amount charged, whether already settled).
#
# The ledger row decides: its INSERT ... ON CONFLICT DO NOTHING is what tells
# a first settlement from a replay, even a concurrent one (the replay waits
# for the wallet lock, and by then the first row is committed), and the
# balance moves by exactly what that INSERT returned. The charge is capped at
# what the wallet may spend on this model; promotional credit pays first.
SETTLE_HEAD = f"""
WITH wallet AS (
    SELECT tenant_id, balance, promo, {_PROMO_USABLE} AS promo_usable
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
    RETURNING 1
)
"""  # noqa: S608 (constants)

SETTLE = SETTLE_HEAD + "SELECT amount, already FROM charge"  # noqa: S608 (constants)
