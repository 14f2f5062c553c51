"""
Exact cost arithmetic: one function turns usage into nano-USD.

A model may have long-context prices: a prompt of more than their
`threshold` tokens (the whole prompt, cache reads and writes included, as
Anthropic and Google count it) is charged at them for every token bucket of
the request, output included. The usage decides, so the charge is exact;
a hold, placed before the usage is known, decides from the prompt's
estimate with a margin, and prices the cache writes a request may make at
the dearest rate they may be charged (hold_cost).
"""

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from billing.money import nano_per_token, usd_to_nano

# Image models price each image by "quality:WIDTHxHEIGHT", e.g. "hd:1024x1792".
IMAGE_KEY = re.compile(r"[a-z]+:[1-9][0-9]*x[1-9][0-9]*")

# A hold takes the long-context prices once the prompt's estimate is above
# this share of the threshold. The estimate over-counts long texts (three
# bytes a token) but counts short ones with OpenAI's tokenizer, which
# Anthropic's and Google's exceed by up to about a quarter on the same text:
# a prompt estimated within that margin under the threshold may be charged
# above it, so its hold must be.
HOLD_TIER_SHARE = Decimal("0.8")


@dataclass(frozen=True, slots=True)
class LongContext:
    """
    nano-USD per token of the token buckets for prompts of more than
    `threshold` tokens. Image, per-image and per-request prices have no
    long-context tier: they stay the model's.
    """

    threshold: int
    input: int
    cached_input: int
    output: int
    cache_write: int
    cache_write_1h: int


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """
    nano-USD per token for each bucket a model is billed by, and per image
    for models billed by the image (chosen per request by quality and size).
    `cache_write` is Anthropic's 5-minute cache write, `cache_write_1h` its
    1-hour one (None: as `cache_write`); `cached_image_input` the image
    tokens read from the cache (None: as `cached_input`, how they were
    billed before they had a price of their own).
    """

    input: int
    cached_input: int
    output: int
    cache_write: int
    image_input: int
    per_image: int = 0
    per_request: int = 0
    cache_write_1h: int | None = None
    cached_image_input: int | None = None
    long_context: LongContext | None = None
    # A request answered from the response cache (relay.response_cache):
    # charged this instead of everything above.
    cache_hit: int = 0

    def __post_init__(self):
        if self.cache_write_1h is None:
            object.__setattr__(self, "cache_write_1h", self.cache_write)
        if self.cached_image_input is None:
            object.__setattr__(self, "cached_image_input", self.cached_input)

    @classmethod
    def from_model_price(cls, price) -> "UnitPrices":
        """The prices of a catalog row (billing.models.Prices), an empty
        price standing for the one it falls back to."""
        input_nano = nano_per_token(price.input_per_mtok)

        def or_else(usd_per_mtok, fallback: int) -> int:
            return fallback if usd_per_mtok is None else nano_per_token(usd_per_mtok)

        cache_write = or_else(price.cache_write_per_mtok, input_nano)
        cached_input = or_else(price.cached_input_per_mtok, input_nano)
        long_context = None
        if price.long_context_threshold is not None:
            long_input = nano_per_token(price.long_input_per_mtok)
            long_write = or_else(price.long_cache_write_per_mtok, long_input)
            long_context = LongContext(
                threshold=price.long_context_threshold,
                input=long_input,
                cached_input=or_else(price.long_cached_input_per_mtok, long_input),
                output=nano_per_token(price.long_output_per_mtok),
                cache_write=long_write,
                cache_write_1h=or_else(price.long_cache_write_1h_per_mtok, long_write),
            )
        return cls(
            input=input_nano,
            cached_input=cached_input,
            output=nano_per_token(price.output_per_mtok),
            cache_write=cache_write,
            cache_write_1h=or_else(price.cache_write_1h_per_mtok, cache_write),
            image_input=or_else(price.image_input_per_mtok, input_nano),
            cached_image_input=or_else(price.cached_image_input_per_mtok, cached_input),
            per_request=usd_to_nano(price.per_request_usd or 0),
            long_context=long_context,
            cache_hit=usd_to_nano(price.cache_hit_usd or 0),
        )

    def is_long(self, prompt: int) -> bool:
        """Whether a prompt of `prompt` tokens is charged the long-context
        prices."""
        return self.long_context is not None and prompt > self.long_context.threshold

    def at(self, prompt: int) -> "UnitPrices":
        """The one tier of prices a prompt of `prompt` tokens is charged at
        (no long-context prices left in it): what a usage record keeps."""
        long = self.long_context
        if long is None:
            return self
        if prompt <= long.threshold:
            return replace(self, long_context=None)
        return self.long()

    def long(self) -> "UnitPrices":
        """The long-context tier alone (the model's own if it has none)."""
        long = self.long_context
        if long is None:
            return self
        return replace(
            self,
            input=long.input,
            cached_input=long.cached_input,
            output=long.output,
            cache_write=long.cache_write,
            cache_write_1h=long.cache_write_1h,
            long_context=None,
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """
    Token counts in OpenAI's sense: `prompt` counts every input token,
    including those read from the provider's prompt cache (`cached`), those
    written to it (`cache_write`, Anthropic's cache creation, of which
    `cache_write_1h` with the 1-hour lifetime) and image tokens
    (`image_input`, GPT Image models, of which `cached_image_input` read
    from the cache and so also part of `cached`). `reasoning` is the part
    of `completion` the model spent thinking: billed as output, shown
    apart. `images` counts the images billed per image, `requests` the
    requests billed a flat fee (one for any request that produced
    something).
    """

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    cache_write: int = 0
    image_input: int = 0
    images: int = 0
    requests: int = 0
    reasoning: int = 0
    cache_write_1h: int = 0
    cached_image_input: int = 0


@dataclass(frozen=True, slots=True)
class PromptBuckets:
    """A prompt's tokens by the bucket each is billed in: together exactly
    the prompt."""

    input: int = 0
    cached_input: int = 0
    cache_write: int = 0  # 5-minute writes
    cache_write_1h: int = 0
    image_input: int = 0
    cached_image_input: int = 0


def prompt_buckets(usage: TokenUsage) -> PromptBuckets:
    """
    Return the prompt's tokens by bucket. Cache reads, cache writes and
    image tokens are parts of the prompt, together never more than all of
    it (a provider that reports more is billed for the prompt once). Image
    tokens read from the cache are those reported, and at least those the
    counts force: more cache reads and image tokens than the rest of the
    prompt holds can only overlap.
    """
    prompt = usage.prompt
    cached = min(usage.cached, prompt)
    written = min(usage.cache_write, prompt - cached)
    written_1h = min(usage.cache_write_1h, written)
    image = min(usage.image_input, prompt - written)
    forced = cached + image - (prompt - written)
    cached_image = min(max(usage.cached_image_input, forced), cached, image)
    fresh_image = min(image - cached_image, prompt - cached - written)
    return PromptBuckets(
        input=prompt - cached - written - fresh_image,
        cached_input=cached - cached_image,
        cache_write=written - written_1h,
        cache_write_1h=written_1h,
        image_input=fresh_image,
        cached_image_input=cached_image,
    )


def _tier_cost(usage: TokenUsage, prices: UnitPrices) -> int:
    split = prompt_buckets(usage)
    return (
        split.input * prices.input
        + split.cached_input * prices.cached_input
        + split.cache_write * prices.cache_write
        + split.cache_write_1h * prices.cache_write_1h
        + split.image_input * prices.image_input
        + split.cached_image_input * prices.cached_image_input
        + usage.completion * prices.output
        + usage.images * prices.per_image
        + usage.requests * prices.per_request
    )


def usage_cost(usage: TokenUsage, prices: UnitPrices) -> int:
    """Return the exact cost of `usage` in nano-USD, at the tier its prompt
    falls in."""
    return _tier_cost(usage, prices.at(usage.prompt))


def _dearest_cost(worst: TokenUsage, prices: UnitPrices) -> int:
    """
    The cost of `worst` at one tier, its cache writes being writes it *may*
    make: each written token may as well be plain input, and a 1-hour write
    a 5-minute one. The cost is linear in how the prompt splits between
    these buckets, so the dearest split is one of the extremes: all of them
    input, all 5-minute writes, or all 1-hour writes.
    """
    cost = _tier_cost(worst, prices)
    if worst.cache_write:
        cost = max(cost, _tier_cost(replace(worst, cache_write=0), prices))
        if worst.cache_write_1h:
            cost = max(cost, _tier_cost(replace(worst, cache_write_1h=0), prices))
    return cost


def hold_cost(worst: TokenUsage, prices: UnitPrices) -> int:
    """
    Return what to hold for a request that may use up to `worst`, whose
    prompt is an estimate and whose cache writes are what it may write
    (relay.endpoints counts the whole prompt as written when the request
    asks for caching). Past HOLD_TIER_SHARE of a long-context threshold the
    real prompt may be above it: the hold is then the dearer of the two
    tiers, so that it never falls short of a charge at either.
    """
    long = prices.long_context
    if long is None or worst.prompt <= long.threshold * HOLD_TIER_SHARE:
        return _dearest_cost(worst, prices.at(worst.prompt))
    return max(_dearest_cost(worst, prices.at(0)), _dearest_cost(worst, prices.long()))


def plan_cost(cost: int, multiplier: Decimal) -> int:
    """Return `cost` at a plan's price multiplier, to the nearest nano-USD."""
    if multiplier == 1:
        return cost
    numerator, denominator = multiplier.as_integer_ratio()
    return (cost * numerator + denominator // 2) // denominator
