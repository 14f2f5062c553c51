from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import ApiKey
from billing.services import Settlement, hold_settle
from relay.models import UsageRecord

# last_used_at is for people: a minute's precision spares a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


@transaction.atomic
def usage_record_settle(*, record: UsageRecord) -> Settlement:
    """
    Settle one request: charge its cost, release its hold and write its usage
    record, all in one transaction. Settling the same request twice is a no-op.
    """
    settlement = hold_settle(
        tenant_id=record.tenant_id,
        request_id=record.request_id,
        cost=record.cost,
        description=f"{record.model} ({record.prompt_tokens} in, "
        f"{record.completion_tokens} out)",
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
    now = record.created_at
    if record.api_key_id is not None:
        ApiKey.objects.filter(pk=record.api_key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        ).update(last_used_at=now)
    return settlement
