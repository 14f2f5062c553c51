"""
Reads of usage records: the log a tenant browses, pages through and exports,
shared by the portal's usage page and the management API (relay.filters
narrows it).
"""

from collections.abc import Iterable, Iterator

import orjson
from django.db.models import QuerySet

from billing.money import usd_string
from exports.csv import text_cell
from relay.models import UsageRecord

CSV_HEADER = (
    "created_at",
    "request_id",
    "key_name",
    "key_prefix",
    "model",
    "endpoint",
    "status",
    "http_status",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "images",
    "cost_usd",
    "charged_usd",
    "end_user",
    "tags",
)


def usage_records(*, tenant_id: int) -> QuerySet[UsageRecord]:
    """
    Return `tenant_id`'s usage records, newest first, with their key joined:
    the log relay.filters.UsageFilter narrows.
    """
    records = UsageRecord.objects.filter(tenant_id=tenant_id)
    # pk breaks ties between records of the same instant, so pages are stable.
    return records.select_related("api_key").order_by("-created_at", "-pk")


def usage_csv_rows(records: QuerySet[UsageRecord]) -> Iterator[Iterable]:
    """
    Yield the CSV header, then one row per record of `records` (which must
    join api_key, as usage_records does), reading the rows in chunks so an
    export of any size streams in bounded memory. The customer's own text
    (key names, model names, end users) cannot become a spreadsheet formula.
    Tags are a JSON object, empty when the request had none.
    """
    yield CSV_HEADER
    for record in records.iterator(chunk_size=2000):
        key = record.api_key
        yield (
            record.created_at.isoformat(),
            record.request_id,
            text_cell(key.name) if key else "",
            key.prefix if key else "",
            text_cell(record.model),
            record.endpoint,
            record.status,
            record.http_status,
            record.prompt_tokens,
            record.cached_tokens,
            record.completion_tokens,
            record.reasoning_tokens,
            record.images,
            usd_string(record.cost),
            usd_string(record.charged),
            text_cell(record.end_user),
            orjson.dumps(record.tags).decode() if record.tags else "",
        )
