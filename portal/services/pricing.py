"""
The price list the public pages show: every model the relay serves, at
catalog prices or at a plan's, and what a daily volume of tokens costs.

"Served" is what relay.catalog means by it: an active price and at least one
enabled channel naming the model (demo channels only where the demo provider
is on). Amounts are exact integers of nano-USD: catalog prices are whole
nano-USD per token, and a plan's multiplier is applied with
billing.pricing.plan_cost, as the relay does when it charges.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from billing.models import ModelPrice
from billing.money import TOKENS_PER_PRICE_UNIT, usd_to_nano
from billing.pricing import TokenUsage, UnitPrices, plan_cost, usage_cost
from relay.models import Channel

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class ImagePrice:
    quality: str
    size: str
    per_image: int  # nano-USD
    # True when billed by output tokens and `per_image` is what the token
    # count for this quality and size costs (the upstream reports the usage).
    estimated: bool = False


@dataclass(frozen=True)
class PriceRow:
    model: str
    # nano-USD per 1M tokens at the plan's prices.
    input: int
    cached_input: int
    output: int
    cache_write: int | None
    per_request: int
    context_window: int
    max_output_tokens: int
    images: list[ImagePrice] = field(default_factory=list)
    unit_prices: UnitPrices | None = None
    multiplier: Decimal = Decimal(1)

    @property
    def per_image_only(self) -> bool:
        """Billed by the image alone (DALL·E): token prices do not apply."""
        return bool(self.images) and not any(i.estimated for i in self.images)

    def cost(self, *, input_tokens: int, output_tokens: int) -> int | None:
        """Return what these tokens cost in nano-USD, or None for a model not
        billed by tokens."""
        if self.per_image_only or self.unit_prices is None:
            return None
        usage = TokenUsage(prompt=input_tokens, completion=output_tokens)
        return plan_cost(usage_cost(usage, self.unit_prices), self.multiplier)


def served_models() -> list[ModelPrice]:
    """Return the active prices of the models an enabled channel serves."""
    channels = Channel.objects.filter(is_enabled=True)
    if not settings.SWITCHBOARD_DEMO_PROVIDER:
        channels = channels.exclude(kind=Channel.Kind.DEMO)
    names = channels.values_list("model_names", flat=True)
    served = {name for model_names in names for name in model_names}
    return [
        price
        for price in ModelPrice.objects.filter(is_active=True).order_by("model")
        if price.model in served
    ]


def _per_mtok(nano_per_token: int, multiplier: Decimal) -> int:
    return plan_cost(nano_per_token * TOKENS_PER_PRICE_UNIT, multiplier)


def _image_prices(price: ModelPrice, units: UnitPrices, multiplier) -> list:
    images = []
    for key, usd in sorted(price.image_prices.items()):
        quality, _, size = key.partition(":")
        images.append(
            ImagePrice(quality, size, plan_cost(usd_to_nano(usd), multiplier))
        )
    for key, tokens in sorted(price.image_output_tokens.items()):
        quality, _, size = key.partition(":")
        cost = plan_cost(int(tokens) * units.output, multiplier)
        images.append(ImagePrice(quality, size, cost, estimated=True))
    order = {"low": 0, "standard": 1, "medium": 2, "hd": 3, "high": 4}
    images.sort(key=lambda image: (order.get(image.quality, 9), _pixels(image.size)))
    return images


def _pixels(size: str) -> int:
    width, _, height = size.partition("x")
    return int(width) * int(height)


def price_rows(*, multiplier: Decimal = Decimal(1)) -> list[PriceRow]:
    """Return the served models' prices at `multiplier` times the catalog."""
    rows = []
    for price in served_models():
        units = UnitPrices.from_model_price(price)
        rows.append(
            PriceRow(
                model=price.model,
                input=_per_mtok(units.input, multiplier),
                cached_input=_per_mtok(units.cached_input, multiplier),
                output=_per_mtok(units.output, multiplier),
                cache_write=(
                    None
                    if price.cache_write_per_mtok is None
                    else _per_mtok(units.cache_write, multiplier)
                ),
                per_request=plan_cost(units.per_request, multiplier),
                context_window=price.context_window,
                max_output_tokens=price.max_output_tokens,
                images=_image_prices(price, units, multiplier),
                unit_prices=units,
                multiplier=multiplier,
            )
        )
    return rows


@dataclass(frozen=True)
class Estimate:
    row: PriceRow
    per_day: int | None
    per_month: int | None


def estimate(
    rows: list[PriceRow], *, input_tokens: int, output_tokens: int
) -> list[Estimate]:
    """Return each model's cost of a daily volume, per day and per 30-day
    month (the month's tokens priced together, as one bill would be)."""
    estimates = []
    for row in rows:
        day = row.cost(input_tokens=input_tokens, output_tokens=output_tokens)
        month = row.cost(
            input_tokens=input_tokens * DAYS_PER_MONTH,
            output_tokens=output_tokens * DAYS_PER_MONTH,
        )
        estimates.append(Estimate(row, day, month))
    return estimates
