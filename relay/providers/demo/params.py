"""
Request fields that several demo endpoints read the same way: `n`, the token
limit, and the items of a legacy `prompt` or an embeddings `input` (strings
or token arrays). A value the real API would refuse raises Refused.
"""

from relay import tokens
from relay.providers.demo.errors import Refused

# The API's limit on choices per request.
MAX_CHOICES = 128


def token_limit(payload: dict, *names: str) -> int | None:
    """Return the first of the fields `names` that holds a token limit."""
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def choice_count(payload: dict) -> int:
    """Return how many choices the request asks for (`n`)."""
    n = payload.get("n", 1)
    if n is None:
        return 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHOICES:
        raise Refused(f"'n' must be an integer from 1 to {MAX_CHOICES}.", "n")
    return n


def _token_array(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    )


def input_items(value, param: str) -> list[str | list[int]]:
    """Split a `prompt` or `input` into its items: strings or token arrays."""
    if isinstance(value, str) or _token_array(value):
        return [value]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, str) or _token_array(item) for item in value)
    ):
        return value
    raise Refused(
        f"'{param}' must be a string, an array of strings, an array of tokens "
        "or an array of token arrays.",
        param,
    )


def item_tokens(item: str | list[int]) -> int:
    """Count the tokens of a `prompt` or `input` item."""
    return tokens.count(item) if isinstance(item, str) else len(item)


def item_text(item: str | list[int], param: str) -> str:
    """Return the text of a `prompt` or `input` item, decoding a token array."""
    if isinstance(item, str):
        return item
    try:
        return tokens.encoding().decode(item)
    except (KeyError, ValueError, OverflowError):
        raise Refused(f"'{param}' holds a token id out of range.", param) from None
