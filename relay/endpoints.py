"""
What differs between the /v1 endpoints the relay meters: which models they
serve, what a valid request looks like, how big its prompt is, how much it
may use and at what prices, and what an answer without usage used.
Everything else (auth, holds, failover, streaming, settlement) is shared.
"""

from collections.abc import Callable
from dataclasses import replace

import orjson

from billing.pricing import TokenUsage, UnitPrices
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


def _with_tools(system, payload: dict) -> str:
    """Return the system prompt and the tools' definitions as one text."""
    text = system if isinstance(system, str) else ""
    tools = payload.get("tools")
    return f"{text}\n{orjson.dumps(tools).decode()}" if tools else text


# Where Anthropic's cache_control marks may be: on the request itself
# (automatic caching), and on its system, tool, message and content blocks.
_MARKED_LISTS = ("system", "tools", "messages", "input")


def _marked(payload: dict):
    """Yield what in a request may carry a cache_control mark."""
    yield payload
    for name in _MARKED_LISTS:
        items = payload.get(name)
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            yield item
            content = item.get("content")
            for block in content if isinstance(content, list) else ():
                if not isinstance(block, dict):
                    continue
                yield block
                inner = block.get("content")  # a tool result's blocks
                if isinstance(inner, list):
                    yield from (part for part in inner if isinstance(part, dict))


def cache_writes(payload: dict) -> str | None:
    """
    The cache writes a request may be charged, by its cache_control marks:
    "1h" when any asks the 1-hour lifetime, "5m" when some ask the default
    one, None without any (Anthropic writes nothing then). Marks cost
    nothing more for a model without a write price: it writes at its input
    price.
    """
    found = None
    for part in _marked(payload):
        mark = part.get("cache_control")
        if isinstance(mark, dict):
            if mark.get("ttl") == "1h":
                return "1h"
            found = "5m"
    return found


def estimated_usage(prompt: int, text: str) -> TokenUsage:
    """Usage the upstream did not report: the prompt estimate, and the
    tokens of the text it produced."""
    return TokenUsage(prompt=prompt, completion=tokens.count(text))


class Endpoint:
    name: str
    path: str
    streams = True
    # Ask the upstream for stream usage with OpenAI's stream_options.
    asks_usage = True
    # Client headers passed on to the upstream.
    forwarded_headers: tuple[str, ...] = ()

    @property
    def path_shown(self) -> str:
        """The endpoint as clients call it, for messages."""
        return f"POST /v1{self.path.removeprefix('/v1')}"

    def serves(self, model: ModelInfo) -> bool:
        """Return whether this endpoint bills `model`."""
        # An image model's token prices say nothing of text (DALL·E's are 0);
        # a model that may write no output tokens is an embedding model.
        return not model.generates_images and model.max_output_tokens > 0

    def unsupported(self, model: ModelInfo) -> errors.RelayError:
        if model.generates_images:
            return errors.model_not_supported(
                f"The model `{model.name}` generates images: use POST "
                "/v1/images/generations."
            )
        return errors.model_not_supported(
            f"The model `{model.name}` does not generate text: use POST /v1/embeddings."
        )

    def validate(self, payload: dict) -> None:
        """Refuse a request the upstream would refuse anyway, before holding:
        what the field checks of relay.validation, already passed, cannot say."""

    def unit_prices(self, payload: dict, model: ModelInfo) -> UnitPrices:
        """Return the prices the request is billed at, or refuse it."""
        return model.prices

    def worst_case(self, payload: dict, model: ModelInfo, prompt: int) -> TokenUsage:
        """Return the most the request may use: what its hold must cover. A
        request that asks for caching may have all its prompt written to the
        cache, at the write rate of the longest lifetime it asks
        (billing.pricing.hold_cost prices each written token at the dearer
        of that and plain input)."""
        writes = cache_writes(payload)
        return TokenUsage(
            prompt=prompt,
            completion=self.output_tokens(payload, model),
            cache_write=prompt if writes else 0,
            cache_write_1h=prompt if writes == "1h" else 0,
        )

    def hold_advice(self, worst: TokenUsage) -> str:
        """Return the end of the 402 message: how the request could fit."""
        if worst.completion:
            return (
                f" ({worst.completion} output tokens at most). Top up, or lower "
                "max_tokens."
            )
        return ". Top up to continue."

    def answer_usage(
        self,
        payload: dict,
        model: ModelInfo,
        prompt: Callable[[], int],
        body: bytes,
        reported: TokenUsage | None,
    ) -> tuple[TokenUsage, bool]:
        """Return what a whole answer used, and whether that is an estimate
        (then `prompt()` counts the prompt)."""
        if reported is not None:
            return reported, False
        text = self.output_text(orjson.loads(body))
        return estimated_usage(prompt(), text), True

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        """Estimate the request's input tokens, counting text with `count`
        (a cheap estimate for holds, `tokens.count` to bill a cut stream)."""
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

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        tools = payload.get("tools")
        extra = orjson.dumps(tools).decode() if tools else ""
        return tokens.estimate_prompt(payload["messages"], extra, count)

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

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        prompt = payload["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        total = 0
        for item in prompts:
            if isinstance(item, str):
                total += count(item)
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

    def serves(self, model: ModelInfo) -> bool:
        return not model.generates_images

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        value = payload["input"]
        if isinstance(value, str):
            return count(value)
        if all(isinstance(item, int) for item in value):
            return len(value)
        total = 0
        for item in value:
            if isinstance(item, str):
                total += count(item)
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
        # Checked by relay.validation when present; only a token count
        # (relay.counting) may leave it out.
        if payload.get("max_tokens") is None:
            raise errors.bad_request("max_tokens: Field required", param="max_tokens")

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        system = payload.get("system")
        if isinstance(system, list):
            system = " ".join(
                str(block.get("text", ""))
                for block in system
                if isinstance(block, dict)
            )
        return tokens.estimate_turns(
            payload["messages"], _with_tools(system, payload), count
        )

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        return min(payload["max_tokens"], model.max_output_tokens)

    def output_text(self, body: dict) -> str:
        return "".join(
            block.get("text")
            or block.get("thinking")
            or (orjson.dumps(block["input"]).decode() if "input" in block else "")
            for block in body.get("content") or ()
            if isinstance(block, dict)
        )


class Responses(Endpoint):
    """
    OpenAI's Responses API, inbound: for Codex CLI and the SDKs'
    `responses` resource. Served natively by OpenAI and Azure channels and
    translated to chat completions for every other channel.
    """

    name = "responses"
    path = "/responses"
    # The Responses API always reports usage in its final event.
    asks_usage = False

    def validate(self, payload: dict) -> None:
        if payload.get("input") is None and not payload.get("previous_response_id"):
            raise errors.bad_request(
                "'input' is required: a string or an array of input items.",
                param="input",
            )
        if payload.get("background"):
            # Its answer is made after this request ends: there would be no
            # usage to settle it by.
            raise errors.bad_request(
                "Background responses are not supported: leave out 'background'.",
                param="background",
            )

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        value = payload.get("input")
        items = (
            [{"role": "user", "content": value}] if isinstance(value, str) else value
        )
        return tokens.estimate_turns(
            items or [], _with_tools(payload.get("instructions"), payload), count
        )

    def output_tokens(self, payload: dict, model: ModelInfo) -> int:
        limit = _positive_int(payload, "max_output_tokens")
        return min(limit or model.max_output_tokens, model.max_output_tokens)

    def output_text(self, body: dict) -> str:
        pieces = []
        for item in body.get("output") or ():
            if not isinstance(item, dict):
                continue
            for part in item.get("content") or item.get("summary") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    pieces.append(part["text"])
            for name in ("arguments", "input"):
                if isinstance(item.get(name), str):
                    pieces.append(item[name])
        return "".join(pieces)


class ImagesGenerations(Endpoint):
    """
    OpenAI's image generation. An image model is billed either by tokens
    (GPT Image: the upstream reports usage; the model's output tokens per
    image size the hold) or per image (DALL·E: no usage; the images returned
    at the price of the quality and size asked). Never streamed for now: a
    request for a stream of partial images is refused.
    """

    name = "images.generations"
    path = "/images/generations"
    streams = False
    # What the DALL·E API makes when the request leaves quality or size out.
    DEFAULT_QUALITY = "standard"
    DEFAULT_SIZE = "1024x1024"

    def serves(self, model: ModelInfo) -> bool:
        return model.generates_images

    def unsupported(self, model: ModelInfo) -> errors.RelayError:
        return errors.model_not_supported(
            f"The model `{model.name}` does not generate images."
        )

    def validate(self, payload: dict) -> None:
        if payload.get("stream") is True:
            raise errors.bad_request(
                "Streaming image generation is not supported: leave out 'stream'.",
                param="stream",
            )

    def prompt_tokens(self, payload: dict, count=tokens.estimate) -> int:
        return count(payload["prompt"])

    def _keys(self, payload: dict, model: ModelInfo) -> list[str]:
        """Return the "quality:size" keys the request may mean, or refuse it."""
        per_image = bool(model.image_prices)
        table = model.image_prices or model.image_output_tokens
        quality, size = payload.get("quality"), payload.get("size")
        if per_image:
            # Billed by what was asked, so "auto" has no price.
            quality = self.DEFAULT_QUALITY if quality is None else quality
            size = self.DEFAULT_SIZE if size is None else size

        def fits(asked: str | None, offered: str) -> bool:
            # Billed by tokens, "auto" (the default) may be any of them.
            return asked == offered or (not per_image and asked in (None, "auto"))

        keys = [
            key
            for key in table
            if fits(quality, key.partition(":")[0])
            and fits(size, key.partition(":")[2])
        ]
        if not keys:
            offered = any(fits(quality, key.partition(":")[0]) for key in table)
            raise errors.bad_request(
                f"The model `{model.name}` offers no {quality or 'auto'} quality "
                f"image of size {size or 'auto'}. Valid quality:size pairs: "
                f"{', '.join(sorted(table))}.",
                param="size" if offered else "quality",
            )
        return keys

    def _output_tokens(self, payload: dict, model: ModelInfo) -> int:
        """Return the most output tokens one image of the request may take."""
        return max(model.image_output_tokens[key] for key in self._keys(payload, model))

    def unit_prices(self, payload: dict, model: ModelInfo) -> UnitPrices:
        if not model.image_prices:
            self._keys(payload, model)  # refuses what the model does not offer
            return model.prices
        [key] = self._keys(payload, model)
        return replace(model.prices, per_image=model.image_prices[key])

    def worst_case(self, payload: dict, model: ModelInfo, prompt: int) -> TokenUsage:
        images = payload.get("n") or 1
        if model.image_prices:
            return TokenUsage(images=images)
        return TokenUsage(
            prompt=prompt, completion=images * self._output_tokens(payload, model)
        )

    def hold_advice(self, worst: TokenUsage) -> str:
        return ". Top up, or ask for fewer images, a lower quality or a smaller size."

    def answer_usage(
        self,
        payload: dict,
        model: ModelInfo,
        prompt: Callable[[], int],
        body: bytes,
        reported: TokenUsage | None,
    ) -> tuple[TokenUsage, bool]:
        images = len(orjson.loads(body).get("data") or ())
        if model.image_prices:
            # Billed per image, counted in the answer: nothing is estimated.
            return TokenUsage(images=images), False
        if reported is not None:
            return replace(reported, images=images), False
        # Billed by tokens the upstream did not report: each image returned
        # at the most the quality and size asked may take.
        completion = images * self._output_tokens(payload, model)
        return TokenUsage(prompt=prompt(), completion=completion, images=images), True


CHAT_COMPLETIONS = ChatCompletions()
MESSAGES = Messages()
RESPONSES = Responses()
COMPLETIONS = Completions()
EMBEDDINGS = Embeddings()
IMAGES_GENERATIONS = ImagesGenerations()
