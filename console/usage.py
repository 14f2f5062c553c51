"""
The usage explorer: every request of every tenant, filtered, totalled,
broken down by price bucket and exported as CSV.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from billing.money import usd_string
from billing.pricing import TokenUsage, plan_cost, prompt_buckets, usage_cost
from exports.csv import text_cell
from relay.filters import StaffUsageFilter
from relay.models import UsageRecord


def usage_explored(params: Mapping[str, str]) -> StaffUsageFilter:
    """Every tenant's usage records, newest first with tenant, key and
    channel joined, narrowed by the explorer's query parameters."""
    records = UsageRecord.objects.select_related("tenant", "api_key", "channel")
    return StaffUsageFilter(params, queryset=records.order_by("-created_at", "-pk"))


def usage_totals(records: QuerySet[UsageRecord]) -> dict:
    """Sums over the filtered records: one aggregate query."""
    return records.order_by().aggregate(
        requests=Count("pk"),
        errors=Count("pk", filter=~Q(status=UsageRecord.Status.OK)),
        prompt_tokens=Sum("prompt_tokens", default=0),
        completion_tokens=Sum("completion_tokens", default=0),
        cost=Sum("cost", default=0),
        charged=Sum("charged", default=0),
        uncosted=Count("pk", filter=Q(upstream_cost__isnull=True)),
        upstream=Sum("upstream_cost", default=0),
    )


@dataclass(frozen=True)
class BucketLine:
    bucket: str
    quantity: int
    unit: str
    unit_price: int  # nano-USD per unit
    amount: int  # nano-USD


@dataclass(frozen=True)
class Breakdown:
    lines: list[BucketLine]
    subtotal: int  # at catalog prices
    multiplier: object
    cost: int  # the subtotal at the plan's multiplier, as recorded
    charged: int
    upstream_cost: int | None
    consistent: bool  # the lines add up to what was recorded
    # Set when the prices are the model's long-context ones: the prompt had
    # more tokens than this.
    long_context_threshold: int | None = None
    prompt_tokens: int = 0

    @property
    def margin(self) -> int | None:
        return None if self.upstream_cost is None else self.charged - self.upstream_cost


def _usage_of(record: UsageRecord) -> TokenUsage:
    used = record.usage_source != UsageRecord.Source.NONE
    return TokenUsage(
        prompt=record.prompt_tokens,
        cached=record.cached_tokens,
        completion=record.completion_tokens,
        reasoning=record.reasoning_tokens,
        cache_write=record.cache_write_tokens,
        cache_write_1h=record.cache_write_1h_tokens,
        image_input=record.image_input_tokens,
        cached_image_input=record.cached_image_input_tokens,
        images=record.images,
        requests=1 if used else 0,
    )


def cost_breakdown(record: UsageRecord) -> Breakdown:
    """
    What each bucket of a request cost: its tokens times the prices the
    request was charged at (the record's snapshot, never today's catalog),
    then the plan's multiplier, as billing.pricing computes it.
    """
    usage = _usage_of(record)
    prices = record.unit_prices()
    split = prompt_buckets(usage)
    tokens, images, requests = _("tokens"), _("images"), _("requests")
    candidates = [
        (_("input"), split.input, tokens, prices.input),
        (_("cached input"), split.cached_input, tokens, prices.cached_input),
        (_("cache write"), split.cache_write, tokens, prices.cache_write),
        (
            _("1-hour cache write"),
            split.cache_write_1h,
            tokens,
            prices.cache_write_1h,
        ),
        (_("image input"), split.image_input, tokens, prices.image_input),
        (
            _("cached image input"),
            split.cached_image_input,
            tokens,
            prices.cached_image_input,
        ),
        (_("output"), usage.completion - usage.reasoning, tokens, prices.output),
        (_("reasoning (output)"), usage.reasoning, tokens, prices.output),
        (_("images"), usage.images, images, prices.per_image),
        # A flat fee per request shows only where the model has one.
        (
            _("request fee"),
            usage.requests if prices.per_request else 0,
            requests,
            prices.per_request,
        ),
    ]
    lines = [
        BucketLine(bucket, quantity, unit, price, quantity * price)
        for bucket, quantity, unit, price in candidates
        if quantity
    ]
    subtotal = usage_cost(usage, prices)
    return Breakdown(
        lines=lines,
        subtotal=subtotal,
        multiplier=record.price_multiplier,
        cost=record.cost,
        charged=record.charged,
        upstream_cost=record.upstream_cost,
        consistent=sum(line.amount for line in lines) == subtotal
        and plan_cost(subtotal, record.price_multiplier) == record.cost,
        long_context_threshold=record.long_context_threshold,
        prompt_tokens=record.prompt_tokens,
    )


CSV_HEADER = (
    "created_at",
    "request_id",
    "tenant_id",
    "tenant",
    "key_prefix",
    "channel",
    "endpoint",
    "model",
    "stream",
    "status",
    "http_status",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "image_input_tokens",
    "cached_image_input_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "images",
    "input_price_nano",
    "cached_input_price_nano",
    "cache_write_price_nano",
    "cache_write_1h_price_nano",
    "image_input_price_nano",
    "cached_image_input_price_nano",
    "output_price_nano",
    "per_image_price_nano",
    "per_request_price_nano",
    "long_context_threshold",
    "price_multiplier",
    "cost_usd",
    "charged_usd",
    "upstream_cost_usd",
    "latency_ms",
    "error",
)


def usage_csv_rows(records: QuerySet[UsageRecord]) -> Iterator[Iterable]:
    """The header, then one row per record, read in chunks: any size streams
    in bounded memory. Money is exact USD; prices nano-USD per unit."""
    yield CSV_HEADER
    for r in records.iterator(chunk_size=2000):
        yield (
            r.created_at.isoformat(),
            r.request_id,
            r.tenant_id,
            text_cell(r.tenant.name),
            r.api_key.prefix if r.api_key else "",
            text_cell(r.channel.name) if r.channel else "",
            r.endpoint,
            text_cell(r.model),
            "true" if r.stream else "false",
            r.status,
            r.http_status,
            r.prompt_tokens,
            r.cached_tokens,
            r.cache_write_tokens,
            r.cache_write_1h_tokens,
            r.image_input_tokens,
            r.cached_image_input_tokens,
            r.completion_tokens,
            r.reasoning_tokens,
            r.images,
            r.input_price,
            r.cached_input_price,
            r.cache_write_price,
            r.cache_write_1h_price,
            r.image_input_price,
            r.cached_image_input_price,
            r.output_price,
            r.per_image_price,
            r.per_request_price,
            "" if r.long_context_threshold is None else r.long_context_threshold,
            f"{r.price_multiplier:f}",
            usd_string(r.cost),
            usd_string(r.charged),
            "" if r.upstream_cost is None else usd_string(r.upstream_cost),
            r.latency_ms,
            text_cell(r.error),
        )
