"""
The fields each /v1 endpoint knows, and what a valid value of each is: one
table per endpoint, checked before anything is held or forwarded. A field
not in an endpoint's table passes through untouched (tools' schemas,
response_format, vision parts, provider extensions...), and a known field
sent as null counts as left out, as OpenAI's API has it.

A refusal names the field in `param` (OpenAI's "messages.[2].role" for an
item of an array) and shows at most SHOWN_CHARS of the value it got.
"""

from collections.abc import Callable
from typing import Any

import orjson

from relay import errors
from relay.catalog import ModelInfo

SHOWN_CHARS = 100

# Roles a chat completion's messages may have. Anthropic's turns are the
# user's and the assistant's (the system prompt is a field of its own); but
# Claude Code puts a system turn among them for a model it does not know,
# which the translation to chat maps.
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ANTHROPIC_ROLES = ("user", "assistant", "system")
MAX_CHOICES = 128
MAX_STOP_SEQUENCES = 4
MAX_IMAGES = 10


_WHOLE = object()


class Invalid(Exception):
    """What is wrong with a value; `at` is where in it (".[2].role") and
    `got` what is there (the whole value by default)."""

    def __init__(self, problem: str, at: str = "", got: Any = _WHOLE):
        super().__init__(problem)
        self.problem = problem
        self.at = at
        self.got = got


Check = Callable[[Any, ModelInfo], None]


def shown(value: Any) -> str:
    """Return `value` as JSON, cut to SHOWN_CHARS characters."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range(low, high) -> str:
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    return f"from {low} to {high}"


# -- checks ------------------------------------------------------------------


def integer(low: int | None = None, high: int | None = None) -> Check:
    def check(value, model):
        if not _is_int(value):
            raise Invalid("must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            raise Invalid(f"must be an integer {_range(low, high)}")

    return check


def number(low: float, high: float) -> Check:
    def check(value, model):
        if not _is_number(value) or not low <= value <= high:
            raise Invalid(f"must be a number from {low} to {high}")

    return check


def boolean(value, model):
    if not isinstance(value, bool):
        raise Invalid("must be true or false")


def string(value, model):
    if not isinstance(value, str):
        raise Invalid("must be a string")


def text(value, model):
    if not isinstance(value, str) or not value.strip():
        raise Invalid("must be a non-empty string")


def obj(value, model):
    if not isinstance(value, dict):
        raise Invalid("must be an object")


def array(
    item: Check | None = None, *, what: str = "an array", non_empty=False
) -> Check:
    """Check an array, each item by `item` (which names what it wants)."""

    def check(value, model):
        if not isinstance(value, list) or (non_empty and not value):
            raise Invalid(f"must be {'a non-empty ' if non_empty else ''}{what}")
        if item is not None:
            for index, each in enumerate(value):
                try:
                    item(each, model)
                except Invalid as invalid:
                    got = each if invalid.got is _WHOLE else invalid.got
                    raise Invalid(
                        invalid.problem, f".[{index}]{invalid.at}", got
                    ) from None

    return check


def either(*checks: Check, what: str) -> Check:
    def check(value, model):
        for one in checks:
            try:
                one(value, model)
            except Invalid:
                continue
            return
        raise Invalid(f"must be {what}")

    return check


def output_limit(*, capped: bool = False) -> Check:
    """
    A positive integer of output tokens, at most the model's limit; or any
    positive integer when `capped` (then the relay lowers it to the limit:
    Anthropic clients such as Claude Code send one figure for every model).
    """

    def check(value, model):
        if not _is_int(value) or value < 1:
            raise Invalid("must be a positive integer")
        limit = model.max_output_tokens
        if not capped and limit and value > limit:
            raise Invalid(
                f"must be at most {limit}, the most output tokens `{model.name}` "
                "may write"
            )

    return check


def turns(roles: tuple[str, ...]) -> Check:
    """A non-empty array of messages, each an object with one of `roles`."""

    def message(value, model):
        if not isinstance(value, dict):
            raise Invalid("must be an object with a 'role'")
        if value.get("role") not in roles:
            raise Invalid(
                f"must be one of {', '.join(roles)}", ".role", value.get("role")
            )

    return array(message, what="array of messages", non_empty=True)


def stop(value, model):
    if isinstance(value, str):
        return
    if (
        not isinstance(value, list)
        or len(value) > MAX_STOP_SEQUENCES
        or not all(isinstance(item, str) for item in value)
    ):
        raise Invalid(
            f"must be a string or an array of at most {MAX_STOP_SEQUENCES} strings"
        )


def _token_ids(value, model):
    if not isinstance(value, list) or not value or not all(map(_is_int, value)):
        raise Invalid("must be a string or a non-empty array of token ids")


def _embedding_item(value, model):
    if isinstance(value, str) and value:
        return
    if _is_int(value):
        return
    _token_ids(value, model)


class Required:
    """A field the request must have (not null)."""

    def __init__(self, check: Check, problem: str):
        self.check = check
        self.problem = problem


# -- the tables ----------------------------------------------------------------

SAMPLING = {
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "seed": integer(),
    "stop": stop,
    "stream": boolean,
    "stream_options": obj,
    "user": string,
}

RULES: dict[str, dict[str, Check | Required]] = {
    "chat.completions": {
        "messages": Required(turns(CHAT_ROLES), "is required"),
        "max_tokens": output_limit(),
        "max_completion_tokens": output_limit(),
        "n": integer(1, MAX_CHOICES),
        **SAMPLING,
        "logprobs": boolean,
        "top_logprobs": integer(0, 20),
        "logit_bias": obj,
        "tools": array(obj, what="an array of objects"),
        "parallel_tool_calls": boolean,
        "store": boolean,
        "metadata": obj,
        "response_format": obj,
    },
    "completions": {
        "prompt": Required(
            either(
                string,
                array(what="an array", non_empty=True),
                what="a string or a non-empty array",
            ),
            "is required",
        ),
        "max_tokens": output_limit(),
        "n": integer(1, MAX_CHOICES),
        "best_of": integer(1, 20),
        **SAMPLING,
        "echo": boolean,
        "logprobs": integer(0, 5),
        "logit_bias": obj,
        "suffix": string,
    },
    "embeddings": {
        "input": Required(
            either(
                text,
                array(_embedding_item, what="an array", non_empty=True),
                what="a non-empty string or a non-empty array of strings or token ids",
            ),
            "is required",
        ),
        # Its values are the upstream's to judge (some take "int8").
        "encoding_format": string,
        "dimensions": integer(1),
        "user": string,
    },
    "images.generations": {
        "prompt": Required(text, "is required"),
        "n": integer(1, MAX_IMAGES),
        "size": string,
        "quality": string,
        "style": string,
        "response_format": string,
        "output_format": string,
        "background": string,
        "moderation": string,
        "stream": boolean,
        "user": string,
    },
    "responses": {
        "input": either(
            string,
            array(obj, what="an array of input items"),
            what="a string or an array of input items",
        ),
        "max_output_tokens": output_limit(),
        "temperature": number(0, 2),
        "top_p": number(0, 1),
        "top_logprobs": integer(0, 20),
        "stream": boolean,
        "stream_options": obj,
        "instructions": string,
        "previous_response_id": string,
        "store": boolean,
        "background": boolean,
        "parallel_tool_calls": boolean,
        "tools": array(obj, what="an array of objects"),
        "include": array(string, what="an array of strings"),
        "metadata": obj,
        "reasoning": obj,
        "text": obj,
        "user": string,
    },
    "messages": {
        "messages": Required(turns(ANTHROPIC_ROLES), "is required"),
        # Required by Messages.validate: a token count (relay.counting) has none.
        "max_tokens": output_limit(capped=True),
        "system": either(
            string,
            array(obj, what="an array of objects"),
            what="a string or an array of text blocks",
        ),
        "temperature": number(0, 1),
        "top_p": number(0, 1),
        "top_k": integer(0),
        "stop_sequences": array(string, what="an array of strings"),
        "stream": boolean,
        "tools": array(obj, what="an array of objects"),
        "metadata": obj,
    },
}


def check(endpoint: str, payload: dict, model: ModelInfo) -> None:
    """Refuse `payload` with a 400 naming its first invalid known field."""
    for name, rule in RULES.get(endpoint, {}).items():
        value = payload.get(name)
        if isinstance(rule, Required):
            if value is None:
                raise errors.bad_request(f"'{name}' {rule.problem}.", param=name)
            rule = rule.check
        elif value is None:
            continue
        try:
            rule(value, model)
        except Invalid as invalid:
            where = f"{name}{invalid.at}"
            got = value if invalid.got is _WHOLE else invalid.got
            raise errors.bad_request(
                f"Invalid '{where}': {invalid.problem}; got {shown(got)}.",
                param=where,
            ) from None
