"""
Chat completions: a greeting that quotes the user, a tool call, JSON output
or a reply to a tool's result, as one response or as an SSE stream of
deltas. The relay translates the Responses API and Anthropic's Messages to
chat completions for the demo, so this is what Codex CLI and Claude Code get
from it too.
"""

import time
import uuid

import httpx
import orjson

from billing.pricing import TokenUsage
from relay import tokens
from relay.formats.usage import openai_usage
from relay.providers.demo.conversation import last_user, tool_results
from relay.providers.demo.embeddings import refuse_embedding_model
from relay.providers.demo.output import Output, cut, sse_response, text_output
from relay.providers.demo.params import choice_count, token_limit
from relay.providers.demo.schema import schema_example
from relay.providers.demo.tools import tool_to_call

# What a user's text is shortened to when an answer quotes it.
QUOTE_CHARS = 60


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def _greeting(messages: list) -> str:
    said, images = last_user(messages)
    seen = ""
    if images:
        seen = f" and {images} image{'s' if images > 1 else ''}"
    return (
        f'Hello from Switchboard\'s demo channel! You said: "{_quote(said)}"{seen}. '
        "This answer was generated locally, and its tokens were metered and "
        "charged like a real model's."
    )


def chat_text(payload: dict) -> str:
    """Return the text the demo answers a chat completion with."""
    messages = payload.get("messages") or []
    results = tool_results(messages)
    if results:
        text = "; ".join(f'`{name}` returned "{_quote(r)}"' for name, r in results)
        return (
            f"Switchboard's demo channel got the tool result: {text}. This "
            "answer was generated locally and metered like a real model's."
        )
    greeting = _greeting(messages)
    response_format = payload.get("response_format") or {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return orjson.dumps(schema_example(schema)).decode()
    if kind == "json_object":
        return orjson.dumps({"message": greeting}).decode()
    return greeting


def chat_output(payload: dict) -> Output:
    """Return one choice of the demo's answer to a chat completion."""
    limit = token_limit(payload, "max_completion_tokens", "max_tokens")
    function = tool_to_call(payload)
    if function is None:
        return text_output(chat_text(payload), payload, limit)
    name = function["name"]
    arguments = orjson.dumps(schema_example(function.get("parameters") or {}))
    named = tokens.count(name)
    budget = None if limit is None else max(limit - named, 0)
    pieces, produced, shortened = cut(arguments.decode(), budget)
    finish = "length" if shortened else "tool_calls"
    return Output(pieces, named + produced, finish, tool=name)


def chat_prompt_tokens(payload: dict) -> int:
    """Count the prompt: messages, tools, the JSON schema asked for and the
    tool calls already made."""
    messages = payload.get("messages") or []
    extra = [payload[k] for k in ("tools", "response_format") if payload.get(k)]
    extra += [
        message["tool_calls"]
        for message in messages
        if isinstance(message, dict) and message.get("tool_calls")
    ]
    return tokens.estimate_prompt(
        messages, orjson.dumps(extra).decode() if extra else ""
    )


def _call_id() -> str:
    return f"call_demo{uuid.uuid4().hex[:20]}"


def _chat_message(output: Output) -> dict:
    message = {"role": "assistant", "content": None, "refusal": None}
    if output.tool:
        function = {"name": output.tool, "arguments": output.text}
        message["tool_calls"] = [
            {"id": _call_id(), "type": "function", "function": function}
        ]
    else:
        message["content"] = output.text
    return message


def _chat_deltas(output: Output) -> list[dict]:
    """Return one choice's stream deltas, as OpenAI sends them: the call's
    id and name first, then its arguments in fragments."""
    if output.tool:
        call = {
            "index": 0,
            "id": _call_id(),
            "type": "function",
            "function": {"name": output.tool, "arguments": ""},
        }
        first = {"role": "assistant", "content": None, "tool_calls": [call]}
        return [first] + [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            for piece in output.pieces
        ]
    first = {"role": "assistant", "content": ""}
    return [first] + [{"content": piece} for piece in output.pieces]


def chat_completions(payload: dict) -> httpx.Response:
    refuse_embedding_model(payload)
    # Every choice is the same answer: the demo is deterministic.
    outputs = [chat_output(payload)] * choice_count(payload)
    usage = openai_usage(
        TokenUsage(
            prompt=chat_prompt_tokens(payload),
            completion=sum(output.tokens for output in outputs),
        )
    )
    base = {
        "id": f"chatcmpl-demo{uuid.uuid4().hex[:20]}",
        "created": int(time.time()),
        "model": payload.get("model"),
        "system_fingerprint": "fp_demo",
    }
    if not payload.get("stream"):
        choices = [
            {
                "index": index,
                "message": _chat_message(output),
                "logprobs": None,
                "finish_reason": output.finish,
            }
            for index, output in enumerate(outputs)
        ]
        body = {**base, "object": "chat.completion", "choices": choices}
        return httpx.Response(200, json={**body, "usage": usage})
    base["object"] = "chat.completion.chunk"
    chunks = []
    for index, output in enumerate(outputs):
        for delta in _chat_deltas(output):
            choice = {"index": index, "delta": delta, "finish_reason": None}
            chunks.append({**base, "choices": [choice]})
        choice = {"index": index, "delta": {}, "finish_reason": output.finish}
        chunks.append({**base, "choices": [choice]})
    return sse_response(payload, base, chunks, usage)
