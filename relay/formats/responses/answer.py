"""
The Responses API `response` object, and a chat completion as one
(from_chat). Chat's `reasoning_content` (DeepSeek and others) comes back as
a `reasoning` item with `reasoning_text` content.
"""

import time
import uuid

import orjson

from billing.pricing import TokenUsage
from relay.formats.responses.tools import ToolNames, str_or_none
from relay.formats.usage import responses_usage, usage_from_openai

BROKEN_MESSAGE = (
    "The upstream provider closed the stream before it finished. "
    "You were charged for the tokens produced."
)

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _usage(usage: TokenUsage | None) -> dict | None:
    if usage is None:
        return None
    return responses_usage(usage)


def _echo_reasoning(request: dict) -> dict:
    settings = request.get("reasoning")
    settings = settings if isinstance(settings, dict) else {}
    return {"effort": settings.get("effort"), "summary": settings.get("summary")}


def _echo_text(request: dict) -> dict:
    text = request.get("text")
    text = dict(text) if isinstance(text, dict) else {}
    text.setdefault("format", {"type": "text"})
    return text


def response_object(
    request: dict,
    *,
    response_id: str,
    model: str,
    status: str,
    output: list,
    usage: TokenUsage | None = None,
    created_at: int | None = None,
    error: dict | None = None,
    incomplete: str | None = None,
) -> dict:
    """Return a Responses API `response` object echoing `request`'s settings
    the way OpenAI does. Nothing is stored, so `store` is always false."""
    now = int(time.time())
    parallel = request.get("parallel_tool_calls")
    tools = request.get("tools")
    body = {
        "id": response_id,
        "object": "response",
        "created_at": created_at or now,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": _echo_reasoning(request),
        "safety_identifier": request.get("safety_identifier"),
        "store": False,
        "temperature": request.get("temperature", 1.0),
        "text": _echo_text(request),
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": _usage(usage),
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }
    if request.get("service_tier") is not None:
        body["service_tier"] = request["service_tier"]
    if status == "completed":
        body["completed_at"] = now
    return body


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str, status: str) -> dict:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def call_item(
    names: ToolNames, call_id: str, chat_name: str, arguments: str, status: str
) -> dict:
    kind, namespace, name = names.origin(chat_name)
    if kind == "custom":
        item = {
            "id": new_id("ctc"),
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": new_id("fc"),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }
    if namespace:
        item["namespace"] = namespace
    return item


def custom_input(arguments: str) -> str:
    """Return a freeform tool's input from its chat function's arguments."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return parsed["input"]
    # A model that ignored the wrapper: its arguments are the best input.
    return arguments


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def reasoning_text(message: dict) -> str | None:
    # DeepSeek's name; vLLM and OpenRouter say `reasoning`.
    text = message.get("reasoning_content") or message.get("reasoning")
    return text if isinstance(text, str) and text else None


def from_chat(
    completion: dict,
    usage: TokenUsage | None,
    *,
    request: dict,
    answer_id: str,
    model: str,
) -> dict:
    """
    Return the Responses API `response` object for a `chat.completion`.

    `request` is the client's Responses payload, echoed as OpenAI does and
    read for the tool names; `answer_id` is the response's id; `model` is
    the public model name; `usage` is authoritative when given, else the
    completion's own usage is used.
    """
    names = ToolNames.of(request)
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    incomplete = INCOMPLETE.get(choice.get("finish_reason"))
    status = "incomplete" if incomplete else "completed"

    output = []
    thought = reasoning_text(message)
    if thought:
        output.append(reasoning_item(new_id("rs"), thought, status))
    parts = []
    text = _content_text(message.get("content"))
    if text:
        parts.append(text_part(text))
    if str_or_none(message.get("refusal")):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(
            {
                "id": new_id("msg"),
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": parts,
            }
        )
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        output.append(
            call_item(
                names,
                str_or_none(call.get("id")) or new_id("call"),
                str_or_none(function.get("name")) or "",
                str_or_none(function.get("arguments")) or "",
                status,
            )
        )
    if usage is None and isinstance(completion.get("usage"), dict):
        usage = usage_from_openai(completion["usage"])
    created = completion.get("created")
    return response_object(
        request,
        response_id=answer_id,
        model=model,
        status=status,
        output=output,
        usage=usage,
        created_at=created if isinstance(created, int) else None,
        incomplete=incomplete,
    )
