"""
What the relay can serve: priced models and the channels that serve them.

Every process keeps a snapshot, reloaded in the background once it is older
than SWITCHBOARD_CATALOG_CACHE_SECONDS; requests never wait for a reload
except the very first one.
"""

import asyncio
import time
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.db.models import Prefetch

from billing.models import ModelPrice, PriceChange
from billing.money import usd_to_nano
from billing.pricing import UnitPrices
from config.db import run_db
from relay import breakers
from relay.models import AutoTiers, Channel, ChannelCost, UpstreamKey

# Price changes take effect by the wall clock (tests move it).
wall_clock = time.time


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: int
    name: str
    kind: str
    base_url: str
    api_key: str = field(repr=False)  # the key of this attempt
    priority: int
    weight: int
    model_map: dict = field(default_factory=dict)
    api_version: str = ""
    # Every enabled upstream key as (id, secret), used in rotation; a keyless
    # upstream (a local vLLM, the demo) has one (None, "").
    api_keys: tuple[tuple[int | None, str], ...] = field(
        default=((None, ""),), repr=False
    )
    key_id: int | None = None  # the key of this attempt
    connect_timeout: float | None = None
    read_timeout: float | None = None
    # What the upstream charges us, by public model name (relay.ChannelCost).
    costs: dict[str, "ModelInfo"] = field(default_factory=dict, repr=False)
    # OpenAI-compatible and Azure: the upstream serves /v1/responses itself.
    responses_api: bool = True
    # This channel with each of its keys, built once per catalog snapshot.
    _attempts: dict = field(default_factory=dict, repr=False, compare=False)

    def with_key(self, key_id: int | None, secret: str) -> "ChannelInfo":
        """Return this channel as an attempt with one of its keys."""
        found = self._attempts.get(key_id)
        if found is None or found.api_key != secret:
            found = replace(self, api_key=secret, key_id=key_id, _attempts={})
            self._attempts[key_id] = found
        return found

    def upstream_model(self, model: str) -> str:
        """Return this channel's name for the public model `model`."""
        return self.model_map.get(model, model)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    prices: UnitPrices
    max_output_tokens: int
    context_window: int
    created: int
    # Reasoning settings are passed on when a request is translated.
    reasoning: bool = False
    # Image models (billing.models.ModelPrice): nano-USD per image, or output
    # tokens per image, by "quality:size".
    image_prices: dict[str, int] = field(default_factory=dict)
    image_output_tokens: dict[str, int] = field(default_factory=dict)
    # Scheduled price changes not yet applied to the catalog row, as (epoch
    # seconds it takes effect, the model at those prices), earliest first.
    changes: tuple[tuple[float, "ModelInfo"], ...] = ()
    # "auto" when relay.auto chose this model for the request at hand.
    routed_from: str = ""

    def current(self) -> "ModelInfo":
        """Return this model at the prices in effect now."""
        if not self.changes:
            return self
        now = wall_clock()
        model = self
        for effective_at, changed in self.changes:
            if effective_at > now:
                break
            model = changed
        return model

    @property
    def generates_images(self) -> bool:
        return bool(self.image_prices or self.image_output_tokens)

    @property
    def promo_ok(self) -> bool:
        """Whether promotional credit may pay for this model."""
        allowed = settings.SWITCHBOARD_PROMO_MODELS
        return not allowed or self.name in allowed


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelInfo]
    channels: dict[str, tuple[ChannelInfo, ...]]
    # Every channel's and key's breaker (relay.breakers), to keep watching.
    breaker_names: list[str] = field(default_factory=list)
    by_id: dict[int, ChannelInfo] = field(default_factory=dict)
    # What `model: "auto"` chooses from, cheapest first (relay.auto).
    auto_tiers: tuple[str, ...] = ()

    def servable(self) -> list[str]:
        """Return the models that have a price and an enabled channel."""
        return sorted(name for name in self.models if self.channels.get(name))


def _image_prices(prices) -> dict[str, int]:
    return {key: usd_to_nano(usd) for key, usd in prices.image_prices.items()}


def _model_info(prices, price: ModelPrice, **extra) -> ModelInfo:
    """Return `price`'s model at `prices` (a ModelPrice, PriceChange or
    ChannelCost row)."""
    return ModelInfo(
        name=price.model,
        prices=UnitPrices.from_model_price(prices),
        max_output_tokens=price.max_output_tokens,
        context_window=price.context_window,
        created=int(price.updated_at.timestamp()),
        image_prices=_image_prices(prices),
        image_output_tokens=dict(prices.image_output_tokens),
        reasoning=price.reasoning,
        **extra,
    )


def _cost_info(cost: ChannelCost) -> ModelInfo:
    return ModelInfo(
        name=cost.model,
        prices=UnitPrices.from_model_price(cost),
        max_output_tokens=0,
        context_window=0,
        created=0,
        image_prices=_image_prices(cost),
    )


def channel_info(channel: Channel, keys, costs=()) -> ChannelInfo:
    """Return what the relay needs of `channel` to call it with `keys`."""
    pairs = tuple((key.pk, key.secret) for key in keys) or ((None, ""),)
    return ChannelInfo(
        id=channel.pk,
        name=channel.name,
        kind=channel.kind,
        base_url=channel.base_url.rstrip("/"),
        api_key=pairs[0][1],
        key_id=pairs[0][0],
        api_keys=pairs,
        priority=channel.priority,
        weight=channel.weight,
        model_map=dict(channel.model_map or {}),
        api_version=channel.api_version,
        connect_timeout=channel.connect_timeout,
        read_timeout=channel.read_timeout,
        costs={cost.model: _cost_info(cost) for cost in costs},
        responses_api=channel.responses_api,
    )


def _load() -> Catalog:
    pending = Prefetch("changes", PriceChange.objects.filter(applied_at__isnull=True))
    models = {
        price.model: _model_info(
            price,
            price,
            changes=tuple(
                (change.effective_at.timestamp(), _model_info(change, price))
                for change in price.changes.all()
            ),
        )
        for price in ModelPrice.objects.filter(is_active=True).prefetch_related(pending)
    }
    channels: dict[str, list[ChannelInfo]] = {}
    enabled = Channel.objects.filter(is_enabled=True)
    if not settings.SWITCHBOARD_DEMO_PROVIDER:
        enabled = enabled.exclude(kind=Channel.Kind.DEMO)
    enabled = enabled.prefetch_related(
        Prefetch("upstream_keys", UpstreamKey.objects.filter(is_enabled=True)),
        "costs",
    )
    for channel in enabled:
        info = channel_info(channel, channel.upstream_keys.all(), channel.costs.all())
        for model in channel.model_names:
            channels.setdefault(model, []).append(info)
    served = {info.id: info for found in channels.values() for info in found}
    names = [breakers.channel_name(channel_id) for channel_id in served]
    names += [
        breakers.key_name(key_id)
        for info in served.values()
        for key_id, _ in info.api_keys
        if key_id is not None
    ]
    return Catalog(
        models=models,
        channels={model: tuple(found) for model, found in channels.items()},
        breaker_names=names,
        by_id=served,
        auto_tiers=AutoTiers.current(),
    )


_snapshot: Catalog | None = None
_loaded_at = 0.0
_reloading: asyncio.Task | None = None


async def _reload() -> Catalog:
    global _snapshot, _loaded_at
    started = time.monotonic()
    catalog = await run_db(_load)
    _snapshot, _loaded_at = catalog, started
    return catalog


async def current() -> Catalog:
    """Return the catalog snapshot, scheduling a reload when it is stale."""
    global _reloading
    snapshot = _snapshot
    if snapshot is None:
        return await _reload()
    age = time.monotonic() - _loaded_at
    if age > settings.SWITCHBOARD_CATALOG_CACHE_SECONDS and (
        _reloading is None or _reloading.done()
    ):
        _reloading = asyncio.create_task(_reload())
    return snapshot


def forget() -> None:
    """Drop the snapshot so the next request reloads it (tests, admin edits)."""
    global _snapshot, _reloading
    _snapshot = None
    _reloading = None
