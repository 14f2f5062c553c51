"""Exact cost arithmetic: one function turns token counts into nano-USD."""

from dataclasses import dataclass

from billing.money import nano_per_token


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """nano-USD per token for each bucket a model is billed by."""

    input: int
    cached_input: int
    output: int
    cache_write: int

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
        )


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """
    Token counts in OpenAI's sense: `prompt` counts every input token,
    including those read from the provider's prompt cache (`cached`) and
    those written to it (`cache_write`, Anthropic's cache creation).
    """

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    cache_write: int = 0


def usage_cost(usage: TokenUsage, prices: UnitPrices) -> int:
    """Return the exact cost of `usage` in nano-USD."""
    # Cache reads and writes are parts of the prompt, never more than all of it.
    cached = min(usage.cached, usage.prompt)
    written = min(usage.cache_write, usage.prompt - cached)
    return (
        (usage.prompt - cached - written) * prices.input
        + cached * prices.cached_input
        + written * prices.cache_write
        + usage.completion * prices.output
    )
