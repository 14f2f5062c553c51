"""
Reads behind the signed-in portal pages. Each function answers one page's
question in a fixed number of queries, whatever the number of rows.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiKey, Tenant
from billing import selectors as billing_selectors
from billing.models import LedgerEntry, ModelPrice, Payment
from billing.selectors import Balance
from relay.models import Channel, UsageRecord

CHART_DAYS = 30
RECENT_ERRORS = 10


@dataclass(frozen=True)
class Period:
    """Spend and traffic over one period ending now."""

    label: str
    spend: int
    requests: int
    tokens: int


@dataclass(frozen=True)
class DailySpend:
    """Spend (nano-USD) per day and per series (a model, or a key)."""

    days: list[date]
    # series label -> {day: nano-USD}
    series: dict[str, dict[date, int]]


def wallet_balance(*, tenant: Tenant) -> Balance:
    """The wallet's figures; zeros for a tenant without one."""
    return billing_selectors.wallet_balance(tenant_id=tenant.pk) or Balance()


def day_start(day: date) -> datetime:
    """Return the first instant of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def chart_days(*, today: date | None = None, days: int = CHART_DAYS) -> list[date]:
    """Return the last `days` calendar days, oldest first, ending today."""
    today = today or timezone.localdate()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def spend_windows(*, tenant: Tenant, today: date | None = None) -> list[Period]:
    """
    Return spend, requests and tokens for today, the last 7 and the last 30
    calendar days (today included), in one query.
    """
    today = today or timezone.localdate()
    starts = {
        _("Today"): day_start(today),
        _("Last 7 days"): day_start(today - timedelta(days=6)),
        _("Last 30 days"): day_start(today - timedelta(days=CHART_DAYS - 1)),
    }
    tokens = F("prompt_tokens") + F("completion_tokens")
    aggregates = {}
    for n, start in enumerate(starts.values()):
        since = Q(created_at__gte=start)
        aggregates[f"spend{n}"] = Coalesce(Sum("charged", filter=since), 0)
        aggregates[f"requests{n}"] = Count("pk", filter=since)
        aggregates[f"tokens{n}"] = Coalesce(Sum(tokens, filter=since), 0)
    row = UsageRecord.objects.filter(
        tenant=tenant, created_at__gte=min(starts.values())
    ).aggregate(**aggregates)
    return [
        Period(
            label=label,
            spend=row[f"spend{n}"],
            requests=row[f"requests{n}"],
            tokens=row[f"tokens{n}"],
        )
        for n, label in enumerate(starts)
    ]


@dataclass(frozen=True)
class CacheUse:
    """What the response cache did for a tenant over a period: its hits
    among all requests, what they were charged and would have cost without
    the cache (nano-USD)."""

    requests: int
    hits: int
    charged: int
    uncached: int

    @property
    def hit_rate(self) -> float:
        """Percent of the requests answered from the cache."""
        return round(100 * self.hits / self.requests, 1) if self.requests else 0.0

    @property
    def saved(self) -> int:
        return self.uncached - self.charged


def cache_use(*, tenant: Tenant, today: date | None = None) -> CacheUse:
    """The response cache over the last 30 days (today included): one query."""
    today = today or timezone.localdate()
    start = day_start(today - timedelta(days=CHART_DAYS - 1))
    hit = Q(usage_source=UsageRecord.Source.CACHE)
    row = UsageRecord.objects.filter(tenant=tenant, created_at__gte=start).aggregate(
        requests=Count("pk"),
        hits=Count("pk", filter=hit),
        charged=Coalesce(Sum("charged", filter=hit), 0),
        uncached=Coalesce(Sum("uncached_cost", filter=hit), 0),
    )
    return CacheUse(**row)


def _daily(tenant: Tenant, days: list[date], group: list[str]):
    return (
        UsageRecord.objects.filter(tenant=tenant, created_at__gte=day_start(days[0]))
        .exclude(charged=0)
        .annotate(day=TruncDate("created_at"))
        .values("day", *group)
        .annotate(spend=Sum("charged"))
        .order_by()
    )


def daily_spend_by_model(*, tenant: Tenant, days: list[date]) -> DailySpend:
    """Return spend per day and model over `days` (consecutive, oldest first)."""
    series: dict[str, dict[date, int]] = {}
    for row in _daily(tenant, days, ["model"]):
        series.setdefault(row["model"], {})[row["day"]] = row["spend"]
    return DailySpend(days=days, series=series)


def key_label(name: str | None, prefix: str | None) -> str:
    """Name a key the way the keys page shows it; None is a deleted key."""
    if name is None:
        return _("(deleted key)")
    return f"{name} ({prefix}…)"


def daily_spend_by_key(*, tenant: Tenant, days: list[date]) -> DailySpend:
    """Return spend per day and API key over `days` (consecutive, oldest first)."""
    series: dict[str, dict[date, int]] = {}
    rows = _daily(tenant, days, ["api_key_id", "api_key__name", "api_key__prefix"])
    for row in rows:
        label = key_label(row["api_key__name"], row["api_key__prefix"])
        per_day = series.setdefault(label, {})
        # Two keys may share a name and prefix only if deleted: add them up.
        per_day[row["day"]] = per_day.get(row["day"], 0) + row["spend"]
    return DailySpend(days=days, series=series)


def recent_errors(*, tenant: Tenant, limit: int = RECENT_ERRORS) -> list[UsageRecord]:
    """Return the newest requests that did not end well, newest first."""
    return list(
        UsageRecord.objects.filter(tenant=tenant)
        .exclude(status=UsageRecord.Status.OK)
        .select_related("api_key")
        .order_by("-created_at", "-pk")[:limit]
    )


def api_keys(*, tenant: Tenant):
    """Return the tenant's keys, live ones first, newest first."""
    return ApiKey.objects.filter(tenant=tenant).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-pk"
    )


def served_models() -> list[str]:
    """
    Return the models the relay serves now: an active price and an enabled
    channel (demo channels only where the demo provider is on). Two queries.
    """
    channels = Channel.objects.filter(is_enabled=True)
    if not settings.SWITCHBOARD_DEMO_PROVIDER:
        channels = channels.exclude(kind=Channel.Kind.DEMO)
    routed = {
        name
        for names in channels.values_list("model_names", flat=True)
        for name in names or ()
    }
    priced = ModelPrice.objects.filter(is_active=True, model__in=routed)
    return sorted(priced.values_list("model", flat=True))


def ledger_with_running_balance(*, tenant: Tenant):
    """
    Return the tenant's ledger newest first, each row annotated with
    `running`: the balance right after it. The window sums every earlier
    row in the database, so any slice of the result (a page) is exact.
    """
    running = Window(
        Sum("amount"),
        order_by=[F("created_at").asc(), F("pk").asc()],
    )
    return (
        LedgerEntry.objects.filter(tenant=tenant)
        .annotate(running=running)
        .order_by("-created_at", "-pk")
    )


def payments(*, tenant: Tenant):
    return Payment.objects.filter(tenant=tenant).order_by("-created_at", "-pk")
