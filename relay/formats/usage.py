"""
Usage objects of every wire format, to and from the relay's TokenUsage.

Each format counts the prompt its own way: OpenAI's `prompt_tokens` and
`input_tokens` include cached tokens, Anthropic's `input_tokens` counts only
what was neither read from nor written to the cache. TokenUsage counts
OpenAI's way (`prompt` is all input), so each pair here is exact inverses.
Cache writes (Anthropic's cache creation) have no field in OpenAI's objects:
they appear as `cache_write_tokens` beside `cached_tokens`, and the part of
them written for an hour (Anthropic's `cache_creation.ephemeral_1h_input_
tokens`) as `cache_write_1h_tokens`, so that a client can reconcile its
charge from the answer alone and a translated answer keeps both.

What the request cost is added to every format's usage object as `cost`
(bill_fields), in USD: a JSON number written with all nine decimals of the
nano-USD amount, so that it is exact for a client that reads it as a decimal.
A stream replayed for another request (a response cache hit) has its final
usage told again with that request's bill (relay.recording.rebilled).
"""

from dataclasses import dataclass

import orjson

from billing.money import usd_string
from billing.pricing import TokenUsage


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _details(usage: dict, name: str) -> dict:
    details = usage.get(name)
    return details if isinstance(details, dict) else {}


def usage_from_openai(usage: dict) -> TokenUsage:
    """Return an OpenAI usage object (chat, completions, embeddings, images or
    Responses) as TokenUsage."""
    if "input_tokens" in usage:
        # The Responses API's and the Images API's shape. The Images API
        # (GPT Image models) splits the input into `text_tokens` and
        # `image_tokens`, billed at their own prices, and reports nothing
        # read from the cache (OpenAI's OpenAPI spec, ImageGenUsage; the
        # Realtime API's cached_tokens_details is not in it): its image
        # input is charged as fresh, never less than OpenAI charges.
        # cached_image_input comes only from what the counts force
        # (billing.pricing.prompt_buckets).
        details = _details(usage, "input_tokens_details")
        return TokenUsage(
            prompt=_int(usage.get("input_tokens")),
            cached=_int(details.get("cached_tokens")),
            cache_write=_int(details.get("cache_write_tokens")),
            cache_write_1h=_int(details.get("cache_write_1h_tokens")),
            image_input=_int(details.get("image_tokens")),
            completion=_int(usage.get("output_tokens")),
            reasoning=_int(
                _details(usage, "output_tokens_details").get("reasoning_tokens")
            ),
        )
    details = _details(usage, "prompt_tokens_details")
    return TokenUsage(
        prompt=_int(usage.get("prompt_tokens")),
        cached=_int(details.get("cached_tokens")),
        cache_write=_int(details.get("cache_write_tokens")),
        cache_write_1h=_int(details.get("cache_write_1h_tokens")),
        completion=_int(usage.get("completion_tokens")),
        reasoning=_int(
            _details(usage, "completion_tokens_details").get("reasoning_tokens")
        ),
    )


def openai_usage(usage: TokenUsage) -> dict:
    """Return `usage` as a chat completion's usage object."""
    prompt_details = {"cached_tokens": usage.cached}
    if usage.cache_write:
        prompt_details["cache_write_tokens"] = usage.cache_write
    if usage.cache_write_1h:
        prompt_details["cache_write_1h_tokens"] = usage.cache_write_1h
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def responses_usage(usage: TokenUsage) -> dict:
    """Return `usage` as a Responses API usage object."""
    input_details = {
        # Both always present in OpenAI's answers: the SDK's type requires them.
        "cached_tokens": usage.cached,
        "cache_write_tokens": usage.cache_write,
    }
    if usage.cache_write_1h:
        input_details["cache_write_1h_tokens"] = usage.cache_write_1h
    return {
        "input_tokens": usage.prompt,
        "input_tokens_details": input_details,
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt + usage.completion,
    }


def usage_from_anthropic(usage: dict) -> TokenUsage:
    """Return Anthropic's usage counted OpenAI's way: prompt is all input.
    Cache writes are told apart by lifetime when the answer says (its
    `cache_creation` object); otherwise they are 5-minute writes, the
    default lifetime."""
    uncached = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    lifetimes = _details(usage, "cache_creation")
    hour = _int(lifetimes.get("ephemeral_1h_input_tokens"))
    written = usage.get("cache_creation_input_tokens")
    if written is None:
        written = _int(lifetimes.get("ephemeral_5m_input_tokens")) + hour
    written = _int(written)
    return TokenUsage(
        prompt=uncached + read + written,
        cached=read,
        completion=_int(usage.get("output_tokens")),
        cache_write=written,
        cache_write_1h=min(hour, written),
    )


def anthropic_usage(usage: TokenUsage) -> dict:
    """Return `usage` as Anthropic's usage object (the inverse of
    usage_from_anthropic)."""
    answer = {
        "input_tokens": max(usage.prompt - usage.cached - usage.cache_write, 0),
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": usage.completion,
    }
    hour = min(usage.cache_write_1h, usage.cache_write)
    if hour:
        # Without it, every write is a 5-minute one (the default lifetime).
        answer["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write - hour,
            "ephemeral_1h_input_tokens": hour,
        }
    return answer


@dataclass(frozen=True, slots=True)
class Bill:
    """
    What one settled request tells its client, in nano-USD: its `cost` at
    the tenant's plan; what was `charged` (less when the balance capped the
    charge; None when not known, the settlement being journaled); and the
    wallet's `balance` after the charge (None when not known).
    """

    cost: int
    charged: int | None = None
    balance: int | None = None

    @property
    def capped(self) -> bool:
        """Whether the balance left some of the cost uncollected."""
        return self.charged is not None and self.charged < self.cost


def usd_number(nano: int) -> orjson.Fragment:
    """Return `nano` as a JSON number in USD, exactly ("0.000012300")."""
    return orjson.Fragment(usd_string(nano))


def bill_fields(bill: "Bill | None", *, stream: bool = False) -> dict:
    """
    Return what a usage object adds for `bill`: `cost`; `charged` when the
    balance capped the charge; and, in a stream's final usage (whose headers
    went out before the charge), the `balance` after it.
    """
    if bill is None:
        return {}
    fields = {"cost": usd_number(bill.cost)}
    if bill.capped:
        fields["charged"] = usd_number(bill.charged)
    if stream and bill.balance is not None:
        fields["balance"] = usd_number(bill.balance)
    return fields


def with_bill(usage, bill: "Bill | None", *, stream: bool = False):
    """Return the usage object `usage` (a dict, or None when the answer has
    none) with `bill`'s fields added; `usage` itself is not changed."""
    fields = bill_fields(bill, stream=stream)
    if not fields:
        return usage
    return {**(usage if isinstance(usage, dict) else {}), **fields}
