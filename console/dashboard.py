"""
The staff dashboard's figures: revenue, spend, upstream cost and margin per
day, week or month; traffic and latency per channel and per model; top
tenants; promotional credit outstanding; wallets below zero.

All money is summed by the database as integers of nano-USD: every total is
exact. A handful of grouping queries, whatever the number of rows.

- revenue: Stripe top-ups credited minus what refunds and disputes took back
  (the ledger's payment, refund and dispute rows), counted when they happened;
- spend: what customers were charged for usage (UsageRecord.charged);
- upstream cost: what the same usage cost at the channels' cost prices,
  where known; requests that used tokens on a channel without cost prices
  for their model are counted apart, as "without a cost price";
- margin: spend minus upstream cost.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext_lazy

from billing.models import LedgerEntry, Wallet
from config.db import on_postgres
from console.stats import latency_annotations, latency_percentiles
from relay.models import UsageRecord

PERIODS = {
    # period: (truncation, how many buckets, label format)
    # (Django date formats, in the language of the page.)
    "day": (TruncDay, 30, gettext_lazy("M d")),
    "week": (TruncWeek, 12, gettext_lazy(r"\w\k M d")),
    "month": (TruncMonth, 12, gettext_lazy("M Y")),
}
DEFAULT_PERIOD = "day"
REVENUE_KINDS = (
    LedgerEntry.Kind.PAYMENT,
    LedgerEntry.Kind.REFUND,
    LedgerEntry.Kind.DISPUTE,
)
# Every Stripe ledger reference starts so (billing/payments.py).
STRIPE_REFERENCE_PREFIX = "stripe:"
TOP_TENANTS = 10
BELOW_ZERO_LISTED = 20


@dataclass
class Bucket:
    start: date
    label: str
    topups: int = 0
    returned: int = 0  # refunds and disputes, negative
    spend: int = 0
    upstream_cost: int = 0
    uncosted: int = 0
    requests: int = 0
    errors: int = 0
    tokens: int = 0

    @property
    def revenue(self) -> int:
        return self.topups + self.returned

    @property
    def margin(self) -> int:
        return self.spend - self.upstream_cost


@dataclass
class Traffic:
    """Requests, tokens, errors and latency of one channel or model."""

    key: object
    label: str
    requests: int
    tokens: int
    errors: int
    spend: int
    upstream_cost: int
    p50: float | None = None
    p95: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Dashboard:
    period: str
    start: datetime
    buckets: list[Bucket]
    channels: list[Traffic]
    models: list[Traffic]
    top_tenants: list[dict]
    promo_outstanding: int
    below_zero_count: int
    below_zero_total: int
    below_zero: list[Wallet] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(bucket, name) for bucket in self.buckets)

    @property
    def revenue(self) -> int:
        return self.total("revenue")

    @property
    def spend(self) -> int:
        return self.total("spend")

    @property
    def upstream_cost(self) -> int:
        return self.total("upstream_cost")

    @property
    def margin(self) -> int:
        return self.spend - self.upstream_cost

    @property
    def requests(self) -> int:
        return self.total("requests")

    @property
    def errors(self) -> int:
        return self.total("errors")

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def bucket_starts(period: str, now: datetime) -> list[date]:
    """The first day of each bucket of `period` up to the one holding `now`."""
    _, count, _ = PERIODS[period]
    today = timezone.localtime(now).date()
    if period == "day":
        return [today - timedelta(days=count - 1 - i) for i in range(count)]
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return [monday - timedelta(weeks=count - 1 - i) for i in range(count)]
    starts, year, month = [], today.year, today.month
    for _ in range(count):
        starts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return starts[::-1]


def _day(value) -> date:
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).date()
            if timezone.is_aware(value)
            else value.date()
        )
    return value


def dashboard(
    *, period: str = DEFAULT_PERIOD, now: datetime | None = None
) -> Dashboard:
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    now = now or timezone.now()
    trunc, _, label_format = PERIODS[period]
    starts = bucket_starts(period, now)
    start = timezone.make_aware(datetime.combine(starts[0], datetime.min.time()))
    buckets = {
        day: Bucket(start=day, label=date_format(day, str(label_format)))
        for day in starts
    }

    money = (
        LedgerEntry.objects.filter(
            kind__in=REVENUE_KINDS,
            reference__startswith=STRIPE_REFERENCE_PREFIX,
            created_at__gte=start,
            created_at__lte=now,
        )
        .annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(
            topups=Sum("amount", filter=Q(kind=LedgerEntry.Kind.PAYMENT), default=0),
            returned=Sum("amount", filter=~Q(kind=LedgerEntry.Kind.PAYMENT), default=0),
        )
    )
    for row in money:
        bucket = buckets.get(_day(row["bucket"]))
        if bucket is not None:
            bucket.topups, bucket.returned = row["topups"], row["returned"]

    usage = UsageRecord.objects.filter(created_at__gte=start, created_at__lte=now)
    for row in (
        usage.annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(**_usage_sums())
    ):
        bucket = buckets.get(_day(row["bucket"]))
        if bucket is None:
            continue
        bucket.upstream_cost = row["upstream"]
        for name in ("spend", "uncosted", "requests", "errors", "tokens"):
            setattr(bucket, name, row[name])

    wallets = Wallet.objects.aggregate(
        promo=Sum("promo", default=0),
        below=Count("pk", filter=Q(balance__lt=0)),
        below_total=Sum("balance", filter=Q(balance__lt=0), default=0),
    )
    below_zero = (
        list(
            Wallet.objects.filter(balance__lt=0)
            .select_related("tenant", "plan")
            .order_by("balance")[:BELOW_ZERO_LISTED]
        )
        if wallets["below"]
        else []
    )
    top_tenants = list(
        usage.values("tenant_id", "tenant__name")
        .annotate(spend=Sum("charged"), requests=Count("pk"))
        .filter(spend__gt=0)
        .order_by("-spend", "tenant_id")[:TOP_TENANTS]
    )
    return Dashboard(
        period=period,
        start=start,
        buckets=[buckets[day] for day in starts],
        channels=traffic_by(usage, "channel_id", "channel__name", none="(no channel)"),
        models=traffic_by(usage, "model", "model"),
        top_tenants=top_tenants,
        promo_outstanding=wallets["promo"],
        below_zero_count=wallets["below"],
        below_zero_total=wallets["below_total"],
        below_zero=below_zero,
    )


def _usage_sums() -> dict:
    used = ~Q(usage_source=UsageRecord.Source.NONE)
    return {
        "requests": Count("pk"),
        "errors": Count("pk", filter=~Q(status=UsageRecord.Status.OK)),
        "tokens": Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
        "spend": Sum("charged", default=0),
        # Not named upstream_cost: that would shadow the field in "uncosted".
        "upstream": Sum("upstream_cost", default=0),
        "uncosted": Count("pk", filter=Q(upstream_cost__isnull=True) & used),
    }


def traffic_by(records, key: str, label: str, *, none: str = "") -> list[Traffic]:
    """Requests, tokens, errors, money and latency of `records` per `key`,
    busiest first."""
    rows = list(
        records.values(key, label)
        .annotate(**_usage_sums(), **latency_annotations())
        .order_by("-requests", key)
    )
    fallback = {} if on_postgres() or not rows else latency_percentiles(records, key)
    traffic = []
    for row in rows:
        if "p50" in row:
            p50, p95 = row["p50"], row["p95"]
        else:
            p50, p95 = fallback.get(row[key], (None, None))
        traffic.append(
            Traffic(
                key=row[key],
                label=row[label] if row[label] is not None else none,
                requests=row["requests"],
                tokens=row["tokens"],
                errors=row["errors"],
                spend=row["spend"],
                upstream_cost=row["upstream"],
                p50=p50,
                p95=p95,
            )
        )
    return traffic
