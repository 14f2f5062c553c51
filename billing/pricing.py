"""Exact cost arithmetic: one function turns usage into nano-USD."""

import re
from dataclasses import dataclass
from decimal import Decimal

from billing.money import nano_per_token, usd_to_nano

# Image models price each image by "quality:WIDTHxHEIGHT", e.g. "hd:1024x1792".
IMAGE_KEY = re.compile(r"[a-z]+:[1-9][0-9]*x[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """
    nano-USD per token for each bucket a model is billed by, and per image
    for models billed by the image (chosen per request by quality and size).
    """

    input: int
    cached_input: int
    output: int
    cache_write: int
    image_input: int
    per_image: int = 0
    per_request: int = 0

    @classmethod
    def from_model_price(cls, price) -> "UnitPrices":
        input_nano = nano_per_token(price.input_per_mtok)

        def or_input(usd_per_mtok) -> int:
            return input_nano if usd_per_mtok is None else nano_per_token(usd_per_mtok)

        return cls(
            input=input_nano,
            cached_input=or_input(price.cached_input_per_mtok),
            output=nano_per_token(price.output_per_mtok),
            cache_write=or_input(price.cache_write_per_mtok),
            image_input=or_input(price.image_input_per_mtok),
            per_request=usd_to_nano(price.per_request_usd or 0),
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """
    Token counts in OpenAI's sense: `prompt` counts every input token,
    including those read from the provider's prompt cache (`cached`), those
    written to it (`cache_write`, Anthropic's cache creation) and image
    tokens (`image_input`, GPT Image models). `reasoning` is the part of
    `completion` the model spent thinking: billed as output, shown apart.
    `images` counts the images billed per image, `requests` the requests
    billed a flat fee (one for any request that produced something).
    """

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    cache_write: int = 0
    image_input: int = 0
    images: int = 0
    requests: int = 0
    reasoning: int = 0


def prompt_split(usage: TokenUsage) -> tuple[int, int, int, int]:
    """
    Return the prompt's tokens by bucket: (plain input, cache reads, cache
    writes, image input). Cache reads, cache writes and image tokens are parts
    of the prompt, together never more than all of it.
    """
    cached = min(usage.cached, usage.prompt)
    written = min(usage.cache_write, usage.prompt - cached)
    image = min(usage.image_input, usage.prompt - cached - written)
    return usage.prompt - cached - written - image, cached, written, image


def usage_cost(usage: TokenUsage, prices: UnitPrices) -> int:
    """Return the exact cost of `usage` in nano-USD."""
    plain, cached, written, image = prompt_split(usage)
    return (
        plain * prices.input
        + cached * prices.cached_input
        + written * prices.cache_write
        + image * prices.image_input
        + usage.completion * prices.output
        + usage.images * prices.per_image
        + usage.requests * prices.per_request
    )


def plan_cost(cost: int, multiplier: Decimal) -> int:
    """Return `cost` at a plan's price multiplier, to the nearest nano-USD."""
    if multiplier == 1:
        return cost
    numerator, denominator = multiplier.as_integer_ratio()
    return (cost * numerator + denominator // 2) // denominator
