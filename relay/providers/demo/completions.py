"""
Legacy completions: the same fixed continuation for every prompt, cut at
`stop` and `max_tokens`, with `n`, `best_of` and `echo` as the API has them.
"""

import time
import uuid

import httpx

from billing.pricing import TokenUsage
from relay.formats.usage import openai_usage
from relay.providers.demo.embeddings import refuse_embedding_model
from relay.providers.demo.errors import Refused
from relay.providers.demo.output import sse_response, text_output
from relay.providers.demo.params import (
    choice_count,
    input_items,
    item_text,
    item_tokens,
    token_limit,
)

COMPLETION_TEXT = (
    " - continued by Switchboard's demo channel, which writes this text "
    "locally and meters every token like a real model's completion."
)


def completions(payload: dict) -> httpx.Response:
    refuse_embedding_model(payload)
    prompts = input_items(payload.get("prompt"), "prompt")
    n = choice_count(payload)
    best_of = payload.get("best_of") or n
    if not isinstance(best_of, int) or best_of < n:
        raise Refused("'best_of' must be an integer at least 'n'.", "best_of")
    if best_of > n and payload.get("stream"):
        raise Refused("'best_of' cannot be used with 'stream'.", "best_of")
    limit = token_limit(payload, "max_tokens")
    output = text_output(COMPLETION_TEXT, payload, 16 if limit is None else limit)
    # With echo, each choice starts with its prompt (not billed as output).
    echoes = [
        item_text(prompt, "prompt") if payload.get("echo") is True else ""
        for prompt in prompts
    ]
    # Every best_of candidate is generated, and billed, as the API does.
    usage = openai_usage(
        TokenUsage(
            prompt=sum(item_tokens(prompt) for prompt in prompts),
            completion=output.tokens * best_of * len(prompts),
        )
    )
    base = {
        "id": f"cmpl-demo{uuid.uuid4().hex[:20]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": payload.get("model"),
    }

    def choice(index: int, text: str, finish: str | None) -> dict:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}

    # Prompt by prompt, n choices each, indexed in that order.
    indexed = [(i * n + c, echo) for i, echo in enumerate(echoes) for c in range(n)]
    if not payload.get("stream"):
        choices = [choice(i, echo + output.text, output.finish) for i, echo in indexed]
        return httpx.Response(200, json={**base, "choices": choices, "usage": usage})
    chunks = []
    for index, echo in indexed:
        for piece in [echo] * bool(echo) + output.pieces:
            chunks.append({**base, "choices": [choice(index, piece, None)]})
        chunks.append({**base, "choices": [choice(index, "", output.finish)]})
    return sse_response(payload, base, chunks, usage)
