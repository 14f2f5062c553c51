"""
Reads of usage records: the filtered log a tenant browses, pages through and
exports, shared by the portal's usage page and the management API.
"""

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from billing.money import usd_string
from relay.models import UsageRecord

FILTER_PARAMS = ("start", "end", "key", "model", "status")
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
)
_MODEL_MAX_LENGTH = UsageRecord._meta.get_field("model").max_length


class UsageFilterError(ValueError):
    """
    Query parameters that do not describe a usage filter. `errors` maps each
    bad parameter to a message a person can act on.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in self.errors.items())
        )


def usage_filtered(
    *,
    tenant_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    api_key_id: int | None = None,
    model: str | None = None,
    status: str | None = None,
) -> QuerySet[UsageRecord]:
    """
    Return `tenant_id`'s usage records, newest first, with their key joined.

    `start` is inclusive and `end` exclusive (created_at in [start, end)).
    """
    records = UsageRecord.objects.filter(tenant_id=tenant_id)
    if start is not None:
        records = records.filter(created_at__gte=start)
    if end is not None:
        records = records.filter(created_at__lt=end)
    if api_key_id is not None:
        records = records.filter(api_key_id=api_key_id)
    if model:
        records = records.filter(model=model)
    if status:
        records = records.filter(status=status)
    # pk breaks ties between records of the same instant, so pages are stable.
    return records.select_related("api_key").order_by("-created_at", "-pk")


def usage_filters_from(params: Mapping[str, str]) -> dict:
    """
    Parse the usage filter query parameters into keyword arguments for
    `usage_filtered`; raise UsageFilterError naming every bad one.

    `start` and `end` are ISO 8601 dates or datetimes (naive ones are in the
    site's time zone). A date as `end` includes that whole day; a datetime is
    an exclusive bound. `key` is an API key id, `model` a model name, `status`
    one of UsageRecord.Status. Absent or empty parameters do not filter.
    """
    errors: dict[str, str] = {}
    filters: dict = {
        "start": None,
        "end": None,
        "api_key_id": None,
        "model": None,
        "status": None,
    }

    def value(name: str) -> str:
        raw = params.get(name)
        return raw.strip() if isinstance(raw, str) else ""

    for name in ("start", "end"):
        raw = value(name)
        if not raw:
            continue
        try:
            filters[name] = moment_parse(raw, end=name == "end")
        except (ValueError, OverflowError):
            errors[name] = (
                f'"{raw}" is not an ISO 8601 date or datetime, e.g. "2025-01-31" '
                'or "2025-01-31T12:00:00Z".'
            )

    raw = value("key")
    if raw:
        if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
            filters["api_key_id"] = int(raw)
        else:
            errors["key"] = f'"{raw}" is not an API key id (a positive integer).'

    raw = value("model")
    if raw:
        if not raw.isprintable():
            # PostgreSQL refuses NUL in a query; no model name has controls.
            errors["model"] = "A model name has no control characters."
        elif len(raw) > _MODEL_MAX_LENGTH:
            errors["model"] = (
                f"A model name has at most {_MODEL_MAX_LENGTH} characters."
            )
        else:
            filters["model"] = raw

    raw = value("status")
    if raw:
        if raw in UsageRecord.Status.values:
            filters["status"] = raw
        else:
            errors["status"] = f'"{raw}" is not a status; use one of: ' + ", ".join(
                UsageRecord.Status.values
            )

    start, end = filters["start"], filters["end"]
    if start is not None and end is not None and start >= end:
        errors["end"] = "The end of the range must be after its start."
    if errors:
        raise UsageFilterError(errors)
    return filters


def moment_parse(raw: str, *, end: bool = False) -> datetime:
    """
    An ISO 8601 date or datetime; naive ones are in the site's time zone. A
    date as the `end` of a range means the end of that day (the start of the
    next). Raise ValueError.
    """
    if len(raw) == 10:
        day = date.fromisoformat(raw)
        if end:
            day += timedelta(days=1)
        moment = datetime.combine(day, time.min)
    else:
        moment = datetime.fromisoformat(raw)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def usage_csv_rows(records: QuerySet[UsageRecord]) -> Iterator[Iterable]:
    """
    Yield the CSV header, then one row per record of `records` (which must
    join api_key, as usage_filtered does), reading the rows in chunks so an
    export of any size streams in bounded memory.
    """
    yield CSV_HEADER
    for record in records.iterator(chunk_size=2000):
        key = record.api_key
        yield (
            record.created_at.isoformat(),
            record.request_id,
            key.name if key else "",
            key.prefix if key else "",
            record.model,
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
        )
