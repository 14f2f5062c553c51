"""
What a wallet may spend on one request, in both forms the wallet writes take:
a fragment of their PostgreSQL statements and an ORM expression.

Promotional credit counts as spendable only for models it may pay for and
until it expires; otherwise it is set aside.
"""

from datetime import datetime

from django.db.models import BigIntegerField, Case, F, Q, Value, When

# Reads the statement's %(promo_ok)s and %(now)s parameters.
PROMO_USABLE_SQL = """(%(promo_ok)s AND (promo_expires_at IS NULL
    OR promo_expires_at > %(now)s))"""


def promo_set_aside(promo_ok: bool, now: datetime) -> F | Case:
    """The promotional credit a request may not spend: all of it, unless the
    model accepts promotional credit and it has not expired."""
    if not promo_ok:
        return F("promo")
    usable = Q(promo_expires_at__isnull=True) | Q(promo_expires_at__gt=now)
    return Case(
        When(usable, then=Value(0)), default=F("promo"), output_field=BigIntegerField()
    )
