"""
Usage objects of every wire format, to and from the relay's TokenUsage.

Each format counts the prompt its own way: OpenAI's `prompt_tokens` and
`input_tokens` include cached tokens, Anthropic's `input_tokens` counts only
what was neither read from nor written to the cache. TokenUsage counts
OpenAI's way (`prompt` is all input), so each pair here is exact inverses.
Cache writes (Anthropic's cache creation) have no field in OpenAI's objects:
they appear as `cache_write_tokens` beside `cached_tokens` so that a client
can reconcile its charge from the answer alone.
"""

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
        # The Responses API's and the Images API's shape: image tokens (GPT
        # Image models) are part of the input, billed at their own price.
        details = _details(usage, "input_tokens_details")
        return TokenUsage(
            prompt=_int(usage.get("input_tokens")),
            cached=_int(details.get("cached_tokens")),
            cache_write=_int(details.get("cache_write_tokens")),
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
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def responses_usage(usage: TokenUsage) -> dict:
    """Return `usage` as a Responses API usage object."""
    return {
        "input_tokens": usage.prompt,
        # Both always present in OpenAI's answers: the SDK's type requires them.
        "input_tokens_details": {
            "cached_tokens": usage.cached,
            "cache_write_tokens": usage.cache_write,
        },
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt + usage.completion,
    }


def usage_from_anthropic(usage: dict) -> TokenUsage:
    """Return Anthropic's usage counted OpenAI's way: prompt is all input."""
    uncached = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    return TokenUsage(
        prompt=uncached + read + written,
        cached=read,
        completion=_int(usage.get("output_tokens")),
        cache_write=written,
    )


def anthropic_usage(usage: TokenUsage) -> dict:
    """Return `usage` as Anthropic's usage object (the inverse of
    usage_from_anthropic)."""
    return {
        "input_tokens": max(usage.prompt - usage.cached - usage.cache_write, 0),
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cached,
        "output_tokens": usage.completion,
    }
