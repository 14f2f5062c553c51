"""
What differs between the /v1 endpoints the relay meters: what a valid
request looks like, how big its prompt is, how much output it may produce.
Everything else (auth, holds, failover, streaming, settlement) is shared.
"""

import orjson

from relay import errors, tokens
from relay.catalog import ModelInfo


def _positive_int(payload: dict, *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _choices(payload: dict) -> int:
    return _positive_int(payload, "n") or 1


class Endpoint:
    name: str
    path: str
    streams = True
    # Ask the upstream for stream usage with OpenAI's stream_options.
    asks_usage = True
    # Client headers passed on to the upstream.
    forwarded_headers: tuple[str, ...] = ()

    def validate(self, payload: dict) -> None:
        """Refuse a request the upstream would refuse anyway, before holding."""

    def prompt_tokens(self, payload: dict) -> int:
        """Estimate the request's input tokens."""
        raise NotImplementedError

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        """Return the most output tokens the request may produce."""
        raise NotImplementedError

    def output_text(self, body: dict) -> str:
        """Return the text of a whole answer, to estimate unreported usage."""
        return ""


class ChatCompletions(Endpoint):
    name = "chat.completions"
    path = "/chat/completions"

    def validate(self, payload: dict) -> None:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise errors.bad_request(
                "'messages' must be a non-empty array of messages.", param="messages"
            )

    def prompt_tokens(self, payload: dict) -> int:
        tools = payload.get("tools")
        extra = orjson.dumps(tools).decode() if tools else ""
        return tokens.estimate_prompt(payload["messages"], extra)

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        limit = _positive_int(payload, "max_completion_tokens", "max_tokens")
        limit = min(limit or model.max_output_tokens, model.max_output_tokens)
        return limit * _choices(payload)

    def output_text(self, body: dict) -> str:
        return "".join(
            content
            for choice in body.get("choices") or ()
            if isinstance(content := (choice.get("message") or {}).get("content"), str)
        )


class Completions(Endpoint):
    """The legacy text completions endpoint."""

    name = "completions"
    path = "/completions"
    # The API's own default when max_tokens is absent.
    DEFAULT_MAX_TOKENS = 16

    def validate(self, payload: dict) -> None:
        prompt = payload.get("prompt")
        if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
            raise errors.bad_request(
                "'prompt' must be a string or a non-empty array.", param="prompt"
            )

    def prompt_tokens(self, payload: dict) -> int:
        prompt = payload["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        total = 0
        for item in prompts:
            if isinstance(item, str):
                total += tokens.count(item)
            elif isinstance(item, list):
                total += len(item)  # already token ids
            else:
                total += 1
        return total

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        limit = _positive_int(payload, "max_tokens") or self.DEFAULT_MAX_TOKENS
        limit = min(limit, model.max_output_tokens)
        prompt = payload["prompt"]
        prompts = (
            len(prompt)
            if isinstance(prompt, list)
            and not all(isinstance(item, int) for item in prompt)
            else 1
        )
        candidates = max(_choices(payload), _positive_int(payload, "best_of") or 1)
        return limit * candidates * prompts

    def output_text(self, body: dict) -> str:
        return "".join(
            text
            for choice in body.get("choices") or ()
            if isinstance(text := choice.get("text"), str)
        )


class Embeddings(Endpoint):
    name = "embeddings"
    path = "/embeddings"
    streams = False

    def validate(self, payload: dict) -> None:
        value = payload.get("input")
        if not (isinstance(value, str) and value) and not (
            isinstance(value, list) and value
        ):
            raise errors.bad_request(
                "'input' must be a non-empty string or array.", param="input"
            )

    def prompt_tokens(self, payload: dict) -> int:
        value = payload["input"]
        if isinstance(value, str):
            return tokens.count(value)
        if all(isinstance(item, int) for item in value):
            return len(value)
        total = 0
        for item in value:
            if isinstance(item, str):
                total += tokens.count(item)
            elif isinstance(item, list):
                total += len(item)
        return total

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        return 0


class Messages(Endpoint):
    """Anthropic's Messages API, inbound: for Claude Code and Anthropic SDKs."""

    name = "messages"
    path = "/v1/messages"
    asks_usage = False
    forwarded_headers = ("anthropic-version", "anthropic-beta")

    def validate(self, payload: dict) -> None:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise errors.bad_request(
                "messages: must be a non-empty list", param="messages"
            )
        if _positive_int(payload, "max_tokens") is None:
            raise errors.bad_request(
                "max_tokens: a positive integer is required", param="max_tokens"
            )

    def prompt_tokens(self, payload: dict) -> int:
        system = payload.get("system")
        if isinstance(system, list):
            system = " ".join(
                str(block.get("text", ""))
                for block in system
                if isinstance(block, dict)
            )
        extra = [payload.get("tools") or [], system or ""]
        return tokens.estimate_prompt(payload["messages"], orjson.dumps(extra).decode())

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        return min(payload["max_tokens"], model.max_output_tokens)

    def output_text(self, body: dict) -> str:
        return "".join(
            block.get("text") or ""
            for block in body.get("content") or ()
            if isinstance(block, dict)
        )


CHAT_COMPLETIONS = ChatCompletions()
MESSAGES = Messages()
COMPLETIONS = Completions()
EMBEDDINGS = Embeddings()
