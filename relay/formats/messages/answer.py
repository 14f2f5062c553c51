"""
A chat completion as a Messages API `message` (from_chat), and the pieces
of it the stream and the Anthropic adapter share.
"""

import re
import uuid

import orjson

from billing.pricing import TokenUsage
from relay.formats.usage import anthropic_usage, usage_from_openai


def tool_id(call_id) -> str:
    """Return a tool_use id Anthropic would accept back in the history."""
    if isinstance(call_id, str) and call_id:
        # Some vendors' ids hold `.` or `:` (e.g. `functions.read:0`), which
        # Anthropic refuses in a history. The client replays the rewritten
        # id in both tool_use and tool_result, so the pair still matches.
        return re.sub(r"[^A-Za-z0-9_-]", "_", call_id)
    return f"toolu_{uuid.uuid4().hex[:24]}"


def tool_input(arguments) -> dict:
    """Return chat tool-call arguments as Anthropic's `input` object."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    # Anthropic's `input` is an object; arguments a model never finished
    # writing have no better rendering than an empty one.
    return parsed if isinstance(parsed, dict) else {}


def stop_reason(finish, *, tool_calls: bool, refused: bool) -> str:
    if finish == "length":
        return "max_tokens"
    if finish == "content_filter":
        return "refusal"
    # Some upstreams end a turn of tool calls with "stop".
    if tool_calls or finish in ("tool_calls", "function_call"):
        return "tool_use"
    return "refusal" if refused else "end_turn"


def first_choice(body: dict) -> dict | None:
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _message_text(message: dict) -> tuple[str, bool]:
    """Return an answer's text, and whether it is a refusal."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    text = content if isinstance(content, str) else ""
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        return text + refusal, True
    return text, False


def _message_calls(message: dict) -> list[dict]:
    tool_calls = message.get("tool_calls")
    calls = [
        call
        for call in (tool_calls if isinstance(tool_calls, list) else ())
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    if isinstance(message.get("function_call"), dict):  # before tool_calls
        calls.append({"function": message["function_call"]})
    return calls


def from_chat(
    completion: dict,
    usage: TokenUsage | None,
    *,
    request: dict | None = None,
    answer_id: str,
    model: str,
) -> dict:
    """
    Return the Messages API `message` object for a `chat.completion` (first
    choice). `answer_id` is the message's id; `model` is the public model
    name to answer with; `usage` is authoritative when given, else the
    completion's own usage is used. `request`, the client's payload, is not
    read: it is taken so that every format's from_chat is called alike.
    """
    choice = first_choice(completion) or {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text, refused = _message_text(message)
    calls = _message_calls(message)
    content = [] if not text and calls else [{"type": "text", "text": text}]
    for call in calls:
        function = call["function"]
        content.append(
            {
                "type": "tool_use",
                "id": tool_id(call.get("id")),
                "name": str(function.get("name") or ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    if usage is None:
        reported = completion.get("usage")
        usage = usage_from_openai(reported) if isinstance(reported, dict) else None
    return {
        "id": answer_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(
            choice.get("finish_reason"), tool_calls=bool(calls), refused=refused
        ),
        "stop_sequence": None,
        "usage": anthropic_usage(usage or TokenUsage()),
    }
