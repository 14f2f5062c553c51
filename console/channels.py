"""
Channel health for the console: breaker states, success rate and latency
over the last hour and day, the last error, and spend against upstream cost.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, Sum
from django.utils import timezone

from config.db import on_postgres
from console.stats import latency_annotations, latency_percentiles
from relay import breakers
from relay.models import Channel, ChannelCost, UpstreamKey, UsageRecord

logger = logging.getLogger(__name__)

MONEY_DAYS = 30

OPEN = "open"
FAILING = "failing"
CLOSED = "closed"
UNKNOWN = "unknown"


def breaker_states(names: list[str]) -> dict[str, str] | None:
    """
    The state of each named breaker (relay.breakers): "open" (skipped by the
    relay until its cool-down ends), "failing" (recent failures, still used)
    or "closed". None if the state cannot be read.
    """

    async def read() -> tuple[dict[str, float], set[str]]:
        if settings.REDIS_URL:
            # The relay's own store, on a client of this call's event loop
            # (its clients are bound to the loop that made them).
            store = breakers.RedisStore(settings.REDIS_URL)
            try:
                return await store.snapshot(names)
            finally:
                await store.close()
        # Without Redis each event loop of this process keeps its own state
        # (the embedded default: one server process): merge them.
        opened: dict[str, float] = {}
        failing: set[str] = set()
        for of_loop in breakers.every_loop():
            found_open, found_failing = await of_loop.store.snapshot(names)
            opened |= found_open
            failing |= found_failing
        return opened, failing

    if not names:
        return {}
    try:
        opened, failing = asyncio.run(read())
    except Exception:  # Redis down: the page still shows everything else
        logger.warning("could not read breaker states", exc_info=True)
        return None
    return {
        name: OPEN if name in opened else FAILING if name in failing else CLOSED
        for name in names
    }


@dataclass
class Window:
    requests: int = 0
    ok: int = 0
    p50: float | None = None

    @property
    def success_rate(self) -> float | None:
        return self.ok / self.requests if self.requests else None


@dataclass
class ChannelHealth:
    channel: Channel
    state: str
    keys: list[tuple[UpstreamKey, str]]
    costs: list[ChannelCost]
    hour: Window = field(default_factory=Window)
    day: Window = field(default_factory=Window)
    spend: int = 0
    upstream_cost: int = 0
    uncosted: int = 0
    last_error: str = ""
    last_error_at: datetime | None = None

    @property
    def margin(self) -> int:
        return self.spend - self.upstream_cost


def channels_health(*, now: datetime | None = None) -> list[ChannelHealth]:
    now = now or timezone.now()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    errors = (
        UsageRecord.objects.filter(channel=OuterRef("pk"), created_at__gte=day_ago)
        .exclude(error="")
        .order_by("-created_at", "-pk")
    )
    channels = list(
        Channel.objects.annotate(
            last_error=Subquery(errors.values("error")[:1]),
            last_error_at=Subquery(errors.values("created_at")[:1]),
        ).prefetch_related(
            Prefetch("upstream_keys", queryset=UpstreamKey.objects.order_by("pk")),
            Prefetch("costs", queryset=ChannelCost.objects.order_by("model")),
        )
    )
    recent = UsageRecord.objects.filter(
        created_at__gte=day_ago, created_at__lte=now, channel__isnull=False
    )
    in_hour = Q(created_at__gte=hour_ago)
    ok = Q(status=UsageRecord.Status.OK)
    traffic = {
        row["channel_id"]: row
        for row in recent.values("channel_id").annotate(
            day_requests=Count("pk"),
            day_ok=Count("pk", filter=ok),
            hour_requests=Count("pk", filter=in_hour),
            hour_ok=Count("pk", filter=ok & in_hour),
            **latency_annotations("day_"),
            **latency_annotations("hour_", filter=in_hour),
        )
    }
    if not on_postgres() and traffic:
        day_p50 = latency_percentiles(recent, "channel_id", (0.5,))
        hour_p50 = latency_percentiles(
            recent.filter(created_at__gte=hour_ago), "channel_id", (0.5,)
        )
        for channel_id, row in traffic.items():
            row["day_p50"] = day_p50.get(channel_id, (None,))[0]
            row["hour_p50"] = hour_p50.get(channel_id, (None,))[0]
    money = {
        row["channel_id"]: row
        for row in UsageRecord.objects.filter(
            created_at__gte=now - timedelta(days=MONEY_DAYS),
            created_at__lte=now,
            channel__isnull=False,
        )
        .values("channel_id")
        .annotate(
            spend=Sum("charged", default=0),
            upstream=Sum("upstream_cost", default=0),
            uncosted=Count(
                "pk",
                filter=Q(upstream_cost__isnull=True)
                & ~Q(usage_source=UsageRecord.Source.NONE),
            ),
        )
    }
    names = []
    for channel in channels:
        names.append(breakers.channel_name(channel.pk))
        names += [breakers.key_name(key.pk) for key in channel.upstream_keys.all()]
    states = breaker_states(names)

    def state_of(name: str) -> str:
        return UNKNOWN if states is None else states.get(name, CLOSED)

    result = []
    for channel in channels:
        row = traffic.get(channel.pk, {})
        spent = money.get(channel.pk, {})
        result.append(
            ChannelHealth(
                channel=channel,
                state=state_of(breakers.channel_name(channel.pk)),
                keys=[
                    (key, state_of(breakers.key_name(key.pk)))
                    for key in channel.upstream_keys.all()
                ],
                costs=list(channel.costs.all()),
                hour=Window(
                    row.get("hour_requests", 0),
                    row.get("hour_ok", 0),
                    row.get("hour_p50"),
                ),
                day=Window(
                    row.get("day_requests", 0), row.get("day_ok", 0), row.get("day_p50")
                ),
                spend=spent.get("spend", 0),
                upstream_cost=spent.get("upstream", 0),
                uncosted=spent.get("uncosted", 0),
                last_error=channel.last_error or "",
                last_error_at=channel.last_error_at,
            )
        )
    return result
