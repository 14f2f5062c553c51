"""
OpenAI's Responses API (`POST /v1/responses`) to and from chat completions.

OpenAI and Azure channels serve the Responses API themselves: their answers
pass through ResponsesPassthrough and response_from_upstream. Every other
channel speaks chat completions inside the relay, so a Responses request is
rewritten by to_chat on the way in and the chat answer by from_chat or
StreamFromChat on the way out.

What a chat completion cannot carry is dropped or refused by rule:
- A translated channel cannot run OpenAI's hosted tools: tools of the types
  `web_search`, `file_search`, `code_interpreter`, `image_generation`,
  computer use, `local_shell`, `shell`, `apply_patch`, `mcp`, `tool_search`
  (deferred tools are not offered either)... are dropped from `tools`, a
  `tool_choice` forcing one becomes `auto`, and their records in the history
  (`web_search_call`, `local_shell_call`...) are dropped. Function and custom
  tools of those names (Codex's freeform `apply_patch`) are kept.
- `reasoning` and `compaction` items are encrypted provider state: dropped.
- Stored state (`previous_response_id`, `conversation`, `item_reference`),
  `prompt` templates and files by id or URL are refused with a 400.
- Images and files a tool returns (`function_call_output` parts) cannot sit
  in a chat tool message: they follow the run of tool results as one user
  message.

Tool names. Chat tools are flat functions, so:
- a `function` tool keeps its name;
- a `custom` (freeform) tool becomes a function of the same name taking
  `{"input": string}`, its description saying so and quoting its grammar;
  calls to it come back as `custom_tool_call` items carrying that string;
- a tool inside a `namespace` becomes `<namespace>__<name>`, underscores
  trailing the namespace and leading the name trimmed first: Codex's own
  flat name, `mcp__github__` + `create_issue` -> `mcp__github__create_issue`.
  A flat name already taken gets `_2`, `_3`... appended; one longer than 64
  characters is cut to 55 and ends in `_` and 8 hex digits of its SHA-256.
Top-level names are assigned first, so they never change. The map back is
rebuilt from the request alone (its `tools` and `additional_tools` items) by
the same rule, never by splitting a name: namespace names may themselves
contain `__`. A call comes back as a `function_call` (or `custom_tool_call`)
with the original `name` and, for a namespaced tool, its `namespace`.

`reasoning.effort` becomes `reasoning_effort` for reasoning models only, in
the levels every chat provider knows: minimal -> low, xhigh and max -> high,
none is left out (the model's default).

Chat's `reasoning_content` (DeepSeek and others) comes back as a `reasoning`
item with `reasoning_text` content, streamed as `response.reasoning_text.*`.
"""

import hashlib
import time
import uuid
from dataclasses import dataclass, field

import orjson

from billing.pricing import TokenUsage
from relay import errors
from relay.formats.usage import responses_usage, usage_from_openai
from relay.streaming import HeldBack, SSEBuffer, event_data, sse

# OpenAI's limit on chat function names; Gemini's is the same.
NAME_LIMIT = 64

BROKEN_MESSAGE = (
    "The upstream provider closed the stream before it finished. "
    "You were charged for the tokens produced."
)

# Items a chat model can neither see nor continue: provider state and the
# records of hosted tools, which only OpenAI's servers can run.
_DROPPED_ITEMS = frozenset(
    {
        "reasoning",
        "compaction",
        "compaction_summary",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "tool_search_call",
        "tool_search_output",
    }
)

_STATEFUL = {
    "previous_response_id": "`previous_response_id` needs stored responses, "
    "which this model's channel does not keep. Send the whole conversation "
    "in `input`.",
    "conversation": "`conversation` needs stored conversations, which this "
    "model's channel does not keep. Send the whole conversation in `input`.",
    "prompt": "Prompt templates (`prompt`) are not available for this model. "
    "Send the prompt in `instructions` and `input`.",
}

# Chat's reasoning_effort takes low/medium/high everywhere; finer levels
# exist only on some OpenAI models.
_EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

_IMAGE_DETAILS = {"low": "low", "high": "high", "auto": "auto", "original": "high"}

_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

# Stream events whose `delta` is text the model produced.
_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.mcp_call_arguments.delta",
    }
)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


# -- tool names ----------------------------------------------------------


def _fit(name: str) -> str:
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: NAME_LIMIT - 9]}_{digest}"


def _joined(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('_')}__{name.lstrip('_')}"


def _request_tools(payload: dict) -> list:
    """Return the tools a request offers: `tools` and `additional_tools` items."""
    tools = payload.get("tools")
    tools = list(tools) if isinstance(tools, list) else []
    items = payload.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            extra = item.get("tools")
            tools.extend(extra if isinstance(extra, list) else ())
    return tools


def _leaves(tools: list) -> list[tuple[str | None, dict]]:
    """Return (namespace, tool) for every function and custom tool, in order."""
    leaves = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind in ("function", "custom") and _str(tool.get("name")):
            leaves.append((None, tool))
        elif kind == "namespace" and _str(tool.get("name")):
            children = tool.get("tools")
            for child in children if isinstance(children, list) else ():
                if (
                    isinstance(child, dict)
                    and child.get("type") in ("function", "custom")
                    and _str(child.get("name"))
                ):
                    leaves.append((tool["name"], child))
    return leaves


class ToolNames:
    """The chat function name of every tool a request offers, and back."""

    def __init__(self, leaves: list[tuple[str | None, dict]]):
        self._chat: dict[tuple[str | None, str], str] = {}
        self._origin: dict[str, tuple[str, str | None, str]] = {}
        for plain in (True, False):
            for namespace, tool in leaves:
                if (namespace is None) != plain:
                    continue
                key = (namespace, tool["name"])
                if key in self._chat:
                    continue
                chat = tool["name"] if plain else self._free(_joined(*key))
                self._chat[key] = chat
                self._origin[chat] = (tool["type"], namespace, tool["name"])

    @classmethod
    def of(cls, payload: dict) -> "ToolNames":
        return cls(_leaves(_request_tools(payload)))

    def _free(self, base: str) -> str:
        candidate, n = _fit(base), 1
        while candidate in self._origin:
            n += 1
            candidate = _fit(f"{base}_{n}")
        return candidate

    def chat(self, namespace: str | None, name: str) -> str:
        """Return the chat name of a tool, offered or not (history may name
        tools the request no longer offers)."""
        known = self._chat.get((namespace or None, name))
        if known is not None:
            return known
        return _fit(_joined(namespace, name)) if namespace else name

    def origin(self, chat_name: str) -> tuple[str, str | None, str]:
        """Return (kind, namespace, name) for a chat function name; a name
        the request never offered is taken for a plain function."""
        return self._origin.get(chat_name, ("function", None, chat_name))


# -- request -------------------------------------------------------------


def _invalid(message: str, param: str) -> errors.RelayError:
    return errors.bad_request(message, param=param)


def _image_part(part: dict, where: str) -> dict:
    if part.get("file_id"):
        raise _invalid(
            "Images by `file_id` are not available for this model: send the "
            "image as `image_url` (a URL or a data URL).",
            where,
        )
    url = _str(part.get("image_url"))
    if not url:
        raise _invalid("An `input_image` needs an `image_url`.", where)
    image = {"url": url}
    detail = _IMAGE_DETAILS.get(part.get("detail"))
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file_part(part: dict, where: str) -> dict:
    if part.get("file_id") or part.get("file_url"):
        raise _invalid(
            "Files by `file_id` or `file_url` are not available for this model: "
            "send the file's content as `file_data`.",
            where,
        )
    data = _str(part.get("file_data"))
    if not data:
        raise _invalid("An `input_file` needs `file_data`.", where)
    file = {"file_data": data}
    if _str(part.get("filename")):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _content_part(part, where: str) -> dict:
    """Translate one input content part into a chat content part."""
    if not isinstance(part, dict):
        raise _invalid("A content part must be an object.", where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise _invalid("A text part needs `text`.", where)
        return {"type": "text", "text": text}
    if kind == "input_image":
        return _image_part(part, where)
    if kind == "input_file":
        return _file_part(part, where)
    if kind == "input_audio" and isinstance(part.get("input_audio"), dict):
        return {"type": "input_audio", "input_audio": part["input_audio"]}
    raise _invalid(f"Content parts of type `{kind}` are not supported here.", where)


def _assistant_text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid("`content` must be a string or a list of parts.", where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("refusal") if kind == "refusal" else None
        if kind in ("output_text", "input_text", "text"):
            text = part.get("text")
        if not isinstance(text, str):
            raise _invalid(
                "Assistant messages hold `output_text` and `refusal` parts.",
                f"{where}.content[{j}]",
            )
        texts.append(text)
    return "".join(texts)


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _invalid(
            "A message's `role` must be user, assistant, system or developer.",
            f"{where}.role",
        )
    content = item.get("content")
    if role == "assistant":
        return {"role": "assistant", "content": _assistant_text(content, where)}
    chat_role = "user" if role == "user" else "system"
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise _invalid("`content` must be a string or a list of parts.", where)
    parts = [
        _content_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)
    ]
    if chat_role == "system" and any(part["type"] != "text" for part in parts):
        raise _invalid(
            f"{role.capitalize()} messages can hold only text for this model.",
            f"{where}.content",
        )
    return {"role": chat_role, "content": parts}


def _call_id(item: dict, where: str) -> str:
    call_id = _str(item.get("call_id"))
    if not call_id:
        raise _invalid("A tool call or its output needs a `call_id`.", where)
    return call_id


def _tool_call(item: dict, names: ToolNames, where: str) -> dict:
    name = _str(item.get("name"))
    if not name:
        raise _invalid("A tool call needs a `name`.", where)
    namespace = _str(item.get("namespace"))
    if item.get("type") == "custom_tool_call":
        text = item.get("input")
        arguments = orjson.dumps({"input": text if isinstance(text, str) else ""})
        arguments = arguments.decode()
    else:
        arguments = item.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
    return {
        "id": _call_id(item, where),
        "type": "function",
        "function": {"name": names.chat(namespace, name), "arguments": arguments},
    }


def _tool_output(output, where: str) -> tuple[str, list[dict]]:
    """Return a tool output's text, and the parts a chat tool message cannot
    hold (images, files)."""
    if isinstance(output, str):
        return output, []
    if not isinstance(output, list):
        return orjson.dumps(output).decode(), []
    texts, others = [], []
    for j, part in enumerate(output):
        translated = _content_part(part, f"{where}.output[{j}]")
        if translated["type"] == "text":
            texts.append(translated["text"])
        else:
            others.append(translated)
    return "\n".join(texts), others


def _messages(items: list, names: ToolNames) -> list[dict]:
    messages: list[dict] = []
    # Chat wants every result of an assistant turn's calls right after it.
    held: list[dict] = []

    def release():
        if held:
            messages.append({"role": "user", "content": held.copy()})
            held.clear()

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid("Each input item must be an object.", where)
        kind = item.get("type")
        if kind in ("function_call_output", "custom_tool_call_output"):
            text, parts = _tool_output(item.get("output"), where)
            call_id = _call_id(item, where)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
            held.extend(parts)
            continue
        if kind in _DROPPED_ITEMS or kind == "additional_tools":
            continue
        if kind == "item_reference":
            raise _invalid(
                "`item_reference` needs stored items, which this model's channel "
                "does not keep. Send the item itself.",
                where,
            )
        release()
        if kind in ("function_call", "custom_tool_call"):
            call = _tool_call(item, names, where)
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append(
                    {"role": "assistant", "content": None, "tool_calls": [call]}
                )
        elif kind in (None, "message"):
            messages.append(_message(item, where))
        else:
            raise _invalid(
                f"Input items of type `{kind}` are not supported here.", where
            )
    release()
    return messages


def _input_schema() -> dict:
    return {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The tool's input."}},
        "required": ["input"],
        "additionalProperties": False,
    }


def _chat_tool(tool: dict, name: str, namespace_description: str | None) -> dict:
    description = _str(tool.get("description")) or namespace_description
    function: dict = {"name": name}
    if tool["type"] == "custom":
        # Freeform tools tell the model to send raw text ("do not wrap the
        # patch in JSON"); as a chat function it must, so say how.
        note = "Pass the whole input, unchanged, as the `input` string."
        grammar = tool.get("format")
        if isinstance(grammar, dict) and grammar.get("type") == "grammar":
            note += (
                f" It must follow this {grammar.get('syntax')} grammar:\n"
                f"{grammar.get('definition')}"
            )
        description = f"{description}\n\n{note}" if description else note
        if description:
            function["description"] = description
        function["parameters"] = _input_schema()
        return {"type": "function", "function": function}
    if description:
        function["description"] = description
    parameters = tool.get("parameters")
    function["parameters"] = (
        parameters
        if isinstance(parameters, dict)
        else {"type": "object", "properties": {}}
    )
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _chat_tools(tools: list, names: ToolNames) -> list[dict]:
    descriptions = {
        tool["name"]: _str(tool.get("description"))
        for tool in tools
        if isinstance(tool, dict) and tool.get("type") == "namespace"
    }
    return [
        _chat_tool(
            tool,
            names.chat(namespace, tool["name"]),
            descriptions.get(namespace) if namespace else None,
        )
        for namespace, tool in _leaves(tools)
    ]


def _chosen(ref: dict, names: ToolNames) -> str | None:
    """Return the chat name a tool_choice reference points at, if any."""
    if ref.get("type") not in ("function", "custom") or not _str(ref.get("name")):
        return None
    return names.chat(_str(ref.get("namespace")), ref["name"])


def _tool_choice(choice, names: ToolNames, tools: list[dict]):
    """Return (chat tool_choice or None, the chat tools it leaves)."""
    if choice in ("auto", "none", "required"):
        return choice, tools
    if not isinstance(choice, dict):
        return None, tools
    if choice.get("type") == "allowed_tools":
        # Chat's own allowed_tools is OpenAI's alone; offering only the
        # allowed tools means the same to every provider.
        refs = choice.get("tools")
        allowed = {
            _chosen(ref, names)
            for ref in (refs if isinstance(refs, list) else ())
            if isinstance(ref, dict)
        }
        kept = [tool for tool in tools if tool["function"]["name"] in allowed]
        mode = choice.get("mode") if choice.get("mode") == "required" else "auto"
        return mode, kept
    name = _chosen(choice, names)
    if name is None:
        # A hosted tool was forced; it is not offered here.
        return "auto", tools
    return {"type": "function", "function": {"name": name}}, tools


def _response_format(text) -> dict | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        return None
    schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema")}
    for name in ("strict", "description"):
        if fmt.get(name) is not None:
            schema[name] = fmt[name]
    return {"type": "json_schema", "json_schema": schema}


def to_chat(payload: dict, *, reasoning: bool) -> dict:
    """
    Return the chat completions payload for a Responses API request.

    `reasoning`: the model reasons, so `reasoning.effort` becomes
    `reasoning_effort` (dropped otherwise). Raise a 400 RelayError for input
    that is invalid or that a chat completion cannot express.
    """
    for name, message in _STATEFUL.items():
        if payload.get(name) is not None:
            raise _invalid(message, name)
    instructions = payload.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("`instructions` must be a string.", "instructions")
    raw = payload.get("input")
    if isinstance(raw, str):
        items = [{"role": "user", "content": raw}]
    elif isinstance(raw, list):
        items = raw
    else:
        raise _invalid("`input` must be a string or a list of input items.", "input")
    if payload.get("tools") is not None and not isinstance(payload["tools"], list):
        raise _invalid("`tools` must be a list.", "tools")

    tools = _request_tools(payload)
    names = ToolNames(_leaves(tools))
    messages = _messages(items, names)
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise _invalid("`input` holds nothing to answer.", "input")

    chat: dict = {"model": payload.get("model"), "messages": messages}
    if isinstance(payload.get("stream"), bool):
        chat["stream"] = payload["stream"]
    choice, chat_tools = _tool_choice(
        payload.get("tool_choice"), names, _chat_tools(tools, names)
    )
    # OpenAI refuses tool_choice and parallel_tool_calls without tools.
    if chat_tools:
        chat["tools"] = chat_tools
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(payload.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = payload["parallel_tool_calls"]
    if payload.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = payload["max_output_tokens"]
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            chat[name] = payload[name]
    user = _str(payload.get("safety_identifier")) or _str(payload.get("user"))
    if user:
        chat["user"] = user
    settings = payload.get("reasoning")
    effort = settings.get("effort") if isinstance(settings, dict) else None
    if reasoning and effort in _EFFORTS:
        chat["reasoning_effort"] = _EFFORTS[effort]
    response_format = _response_format(payload.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    return chat


# -- response ------------------------------------------------------------


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


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_item(item_id: str, text: str, status: str) -> dict:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def _call_item(
    names: ToolNames, call_id: str, chat_name: str, arguments: str, status: str
) -> dict:
    kind, namespace, name = names.origin(chat_name)
    if kind == "custom":
        item = {
            "id": _new_id("ctc"),
            "type": "custom_tool_call",
            "call_id": call_id,
            "name": name,
            "input": _custom_input(arguments),
        }
    else:
        item = {
            "id": _new_id("fc"),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }
    if namespace:
        item["namespace"] = namespace
    return item


def _custom_input(arguments: str) -> str:
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


def _reasoning_text(message: dict) -> str | None:
    # DeepSeek's name; vLLM and OpenRouter say `reasoning`.
    text = message.get("reasoning_content") or message.get("reasoning")
    return text if isinstance(text, str) and text else None


def from_chat(
    completion: dict,
    usage: TokenUsage | None,
    *,
    request: dict,
    response_id: str,
    model: str,
) -> dict:
    """
    Return the Responses API `response` object for a `chat.completion`.

    `request` is the client's Responses payload, echoed as OpenAI does and
    read for the tool names; `model` is the public model name; `usage` is
    authoritative when given, else the completion's own usage is used.
    """
    names = ToolNames.of(request)
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    incomplete = _INCOMPLETE.get(choice.get("finish_reason"))
    status = "incomplete" if incomplete else "completed"

    output = []
    thought = _reasoning_text(message)
    if thought:
        output.append(_reasoning_item(_new_id("rs"), thought, status))
    parts = []
    text = _content_text(message.get("content"))
    if text:
        parts.append(_text_part(text))
    if _str(message.get("refusal")):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(
            {
                "id": _new_id("msg"),
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
            _call_item(
                names,
                _str(call.get("id")) or _new_id("call"),
                _str(function.get("name")) or "",
                _str(function.get("arguments")) or "",
                status,
            )
        )
    if usage is None and isinstance(completion.get("usage"), dict):
        usage = usage_from_openai(completion["usage"])
    created = completion.get("created")
    return response_object(
        request,
        response_id=response_id,
        model=model,
        status=status,
        output=output,
        usage=usage,
        created_at=created if isinstance(created, int) else None,
        incomplete=incomplete,
    )


# -- stream from chat ----------------------------------------------------


@dataclass
class _Message:
    index: int
    item: dict
    part: dict | None = None


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    index: int | None = None
    item: dict | None = None
    closed: bool = False


class StreamFromChat:
    """
    Turn parsed `chat.completion.chunk` dicts into Responses API stream
    events, as OpenAI frames them (`event:` lines, `sequence_number` from 0).

    Output items follow the order the model produced them in. Text and
    reasoning are closed when a tool call starts (and tool calls when text
    comes after them); tool calls stay open until the upstream finishes,
    since chat interleaves their argument fragments. A custom tool's input
    is JSON-encoded inside its chat arguments, so it is sent whole when its
    call closes.
    """

    def __init__(self, *, request: dict, response_id: str, model: str):
        self._request = request
        self._id = response_id
        self._model = model
        self._names = ToolNames.of(request)
        self._created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._ended = False
        self._output: list[dict] = []
        self._message: _Message | None = None
        self._reasoning: _Message | None = None
        self._calls: dict[int, _Call] = {}
        self._call_ids: set[str] = set()
        self._finish_reason: str | None = None
        self._usage: TokenUsage | None = None

    # framing

    def _event(self, kind: str, **fields) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse(payload, kind)

    def _response(self, status: str, **extra) -> dict:
        return response_object(
            self._request,
            response_id=self._id,
            model=self._model,
            status=status,
            output=self._output if status != "in_progress" else [],
            created_at=self._created_at,
            **extra,
        )

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [
            self._event("response.created", response=self._response("in_progress")),
            self._event("response.in_progress", response=self._response("in_progress")),
        ]

    def _add(self, item: dict) -> tuple[int, bytes]:
        self._output.append(item)
        index = len(self._output) - 1
        return index, self._event(
            "response.output_item.added", output_index=index, item=item
        )

    def _done(self, index: int, item: dict) -> bytes:
        return self._event("response.output_item.done", output_index=index, item=item)

    # public

    def feed(self, chunk: dict) -> bytes:
        """Return the events for one chat chunk."""
        if self._ended:
            return b""
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return b"".join(out)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        thought = _reasoning_text(delta)
        if thought:
            out += self._delta("reasoning_text", thought)
        for name, kind in (("content", "output_text"), ("refusal", "refusal")):
            if _str(delta.get(name)):
                out += self._delta(kind, delta[name])
        calls = delta.get("tool_calls")
        for position, fragment in enumerate(calls if isinstance(calls, list) else ()):
            if isinstance(fragment, dict):
                out += self._call_fragment(position, fragment)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        return b"".join(out)

    def finish(self, usage: TokenUsage | None) -> bytes:
        """Return the closing events once the upstream finished: every open
        item's done events, then response.completed (or .incomplete)."""
        if self._ended:
            return b""
        out = self._start()
        self._ended = True
        incomplete = _INCOMPLETE.get(self._finish_reason)
        status = "incomplete" if incomplete else "completed"
        for call in self._calls.values():
            if call.item is None and (call.name or call.arguments):
                out += self._open_call(call)
        out += self._close_text(status)
        out += self._close_calls(status)
        kind = "response.incomplete" if incomplete else "response.completed"
        response = self._response(
            status, usage=usage or self._usage, incomplete=incomplete
        )
        out.append(self._event(kind, response=response))
        return b"".join(out)

    def fail(self, error: dict) -> bytes:
        """Return the terminal response.failed for an upstream error (OpenAI's
        error object: message, type, code, param)."""
        body = {
            "code": _str(error.get("code")) or "server_error",
            "message": _str(error.get("message")) or "The upstream provider failed.",
        }
        for name in ("type", "param"):
            if _str(error.get(name)):
                body[name] = error[name]
        return self._failed(body)

    def broken(self) -> bytes:
        """Return the terminal response.failed for a stream the upstream cut."""
        return self._failed(
            {"code": "upstream_stream_closed", "message": BROKEN_MESSAGE}
        )

    def _failed(self, error: dict) -> bytes:
        if self._ended:
            return b""
        out = self._start()
        self._ended = True
        # The failed response shows what was produced, cut where it stopped.
        for call in self._calls.values():
            if call.item is not None and not call.closed:
                arguments = "".join(call.arguments)
                if call.item["type"] == "custom_tool_call":
                    call.item["input"] = _custom_input(arguments)
                else:
                    call.item["arguments"] = arguments
        for item in self._output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        out.append(
            self._event(
                "response.failed", response=self._response("failed", error=error)
            )
        )
        return b"".join(out)

    # text, refusal and reasoning

    def _delta(self, kind: str, text: str) -> list[bytes]:
        """Add `text` to the open part of `kind`: output_text or refusal (in a
        message item) or reasoning_text (in a reasoning item)."""
        out = self._close_calls("completed")
        if kind == "reasoning_text":
            out += self._close_message("completed")
            if self._reasoning is None:
                item = _reasoning_item(_new_id("rs"), "", "in_progress")
                item["content"] = []
                self._reasoning = self._open(item, out)
            open_item = self._reasoning
        else:
            out += self._close_reasoning("completed")
            if self._message is None:
                item = {
                    "id": _new_id("msg"),
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
                self._message = self._open(item, out)
            open_item = self._message
        if open_item.part is None or open_item.part["type"] != kind:
            out += self._close_part(open_item)
            open_item.part = _empty_part(kind)
            open_item.item["content"].append(open_item.part)
            out.append(
                self._event(
                    "response.content_part.added",
                    **self._at(open_item),
                    part=open_item.part,
                )
            )
        key = "refusal" if kind == "refusal" else "text"
        open_item.part[key] += text
        extra = {"logprobs": []} if kind == "output_text" else {}
        out.append(
            self._event(
                f"response.{kind}.delta", **self._at(open_item), delta=text, **extra
            )
        )
        return out

    def _open(self, item: dict, out: list[bytes]) -> _Message:
        index, added = self._add(item)
        out.append(added)
        return _Message(index, item)

    def _at(self, open_item: _Message) -> dict:
        return {
            "item_id": open_item.item["id"],
            "output_index": open_item.index,
            "content_index": len(open_item.item["content"]) - 1,
        }

    def _close_part(self, open_item: _Message) -> list[bytes]:
        part = open_item.part
        if part is None:
            return []
        open_item.part = None
        at = self._at(open_item)
        if part["type"] == "refusal":
            done = self._event("response.refusal.done", **at, refusal=part["refusal"])
        elif part["type"] == "output_text":
            done = self._event(
                "response.output_text.done", **at, text=part["text"], logprobs=[]
            )
        else:
            done = self._event("response.reasoning_text.done", **at, text=part["text"])
        return [done, self._event("response.content_part.done", **at, part=part)]

    def _close_message(self, status: str) -> list[bytes]:
        open_item, self._message = self._message, None
        return self._close_item(open_item, status)

    def _close_reasoning(self, status: str) -> list[bytes]:
        open_item, self._reasoning = self._reasoning, None
        return self._close_item(open_item, status)

    def _close_item(self, open_item: _Message | None, status: str) -> list[bytes]:
        if open_item is None:
            return []
        out = self._close_part(open_item)
        open_item.item["status"] = status
        out.append(self._done(open_item.index, open_item.item))
        return out

    def _close_text(self, status: str) -> list[bytes]:
        return self._close_reasoning(status) + self._close_message(status)

    # tool calls

    def _call_fragment(self, position: int, fragment: dict) -> list[bytes]:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = self._index_of(_str(fragment.get("id")), position)
        call = self._calls.setdefault(index, _Call())
        if call.closed:
            return []
        if _str(fragment.get("id")) and not call.id:
            call.id = fragment["id"]
        function = fragment.get("function")
        function = function if isinstance(function, dict) else {}
        if _str(function.get("name")) and not call.name:
            call.name = function["name"]
        piece = _str(function.get("arguments")) or ""
        if call.item is None:
            if piece:
                call.arguments.append(piece)
            # The item is announced with its name, which chat sends first.
            return self._open_call(call) if call.name else []
        if not piece:
            return []
        call.arguments.append(piece)
        if call.item["type"] != "function_call":
            return []
        return [self._arguments_delta(call, piece)]

    def _index_of(self, call_id: str | None, position: int) -> int:
        """Place a fragment that came without `index` (which some
        OpenAI-compatible servers leave out): by its id, else it continues
        the latest call."""
        if call_id is None:
            return max(self._calls, default=position)
        for index, call in self._calls.items():
            if call.id == call_id:
                return index
        return max(self._calls, default=-1) + 1

    def _arguments_delta(self, call: _Call, piece: str) -> bytes:
        return self._event(
            "response.function_call_arguments.delta",
            item_id=call.item["id"],
            output_index=call.index,
            delta=piece,
        )

    def _open_call(self, call: _Call) -> list[bytes]:
        out = self._close_text("completed")
        call_id, n = call.id or _new_id("call"), 1
        # Call ids identify items for clients; some upstreams reuse them.
        while call_id in self._call_ids:
            n += 1
            call_id = f"{call.id}_{n}"
        self._call_ids.add(call_id)
        item = _call_item(self._names, call_id, call.name, "", "in_progress")
        if item["type"] == "custom_tool_call":
            item["input"] = ""
        call.item = item
        call.index, added = self._add(item)
        out.append(added)
        if item["type"] == "function_call" and call.arguments:
            out.append(self._arguments_delta(call, "".join(call.arguments)))
        return out

    def _close_calls(self, status: str) -> list[bytes]:
        out = []
        for call in self._calls.values():
            if call.item is None or call.closed:
                continue
            call.closed = True
            item, arguments = call.item, "".join(call.arguments)
            at = {"item_id": item["id"], "output_index": call.index}
            if item["type"] == "custom_tool_call":
                item["input"] = _custom_input(arguments)
                if item["input"]:
                    out.append(
                        self._event(
                            "response.custom_tool_call_input.delta",
                            **at,
                            delta=item["input"],
                        )
                    )
                out.append(
                    self._event(
                        "response.custom_tool_call_input.done",
                        **at,
                        input=item["input"],
                    )
                )
            else:
                item["arguments"] = arguments
                item["status"] = status
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        **at,
                        arguments=arguments,
                    )
                )
            out.append(self._done(call.index, item))
        return out


def _empty_part(kind: str) -> dict:
    if kind == "output_text":
        return _text_part("")
    if kind == "refusal":
        return {"type": "refusal", "refusal": ""}
    return {"type": "reasoning_text", "text": ""}


# -- native pass-through -------------------------------------------------


def broken_event(sequence_number: int, *, response: dict | None = None) -> bytes:
    """
    Return the response.failed event a Responses client gets when the
    upstream breaks off its stream; `response` is the last snapshot the
    upstream sent (response.created's), if any.
    """
    error = {"code": "upstream_stream_closed", "message": BROKEN_MESSAGE}
    if response is None:
        body = response_object(
            {}, response_id="", model="", status="failed", output=[], error=error
        )
    else:
        body = {**response, "status": "failed", "error": error}
    payload = {
        "type": "response.failed",
        "sequence_number": sequence_number,
        "response": body,
    }
    return sse(payload, "response.failed")


def _reframed(event: bytes, payload: dict) -> bytes:
    """Return `event` with its data replaced by `payload`, other lines kept."""
    lines = [
        line for line in event.split(b"\n") if line and not line.startswith(b"data:")
    ]
    lines.append(b"data: " + orjson.dumps(payload))
    return b"\n".join(lines) + b"\n\n"


class ResponsesPassthrough(HeldBack):
    """
    Follow an upstream Responses API event stream on its way to the client:
    events pass unchanged except that, given `rename=(upstream, public)`,
    the response objects name the public model. OpenAI answers with the
    dated snapshot of the name it was asked for, so the name is replaced
    whatever the upstream says. The terminal event (completed, incomplete
    or failed) is held back in `closing` for the relay to send once it has
    settled; an `error` event passes and is remembered in `error`.
    """

    prompt_usage: TokenUsage | None = None

    def __init__(self, *, rename: tuple[str, str] | None = None):
        self._public = rename[1] if rename else None
        self.usage: TokenUsage | None = None
        self.done = False
        self.text: list[str] = []
        self.closing = b""
        self.error = ""
        self.response_id = ""
        self._sequence = -1
        self._snapshot: dict | None = None
        self._buffer = SSEBuffer()

    @property
    def broken(self) -> bytes:
        return broken_event(self._sequence + 1, response=self._snapshot)

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._buffer.feed(data):
            if self.done:
                break
            passed = self._observe(event)
            if passed:
                out.append(passed)
        return b"".join(out)

    def end(self) -> bytes:
        # Complete only once a terminal event came.
        return b""

    def _observe(self, event: bytes) -> bytes:
        """Record what `event` says; return what the client gets now."""
        try:
            payload = orjson.loads(event_data(event))
        except orjson.JSONDecodeError:
            return event
        if not isinstance(payload, dict):
            return event
        sequence = payload.get("sequence_number")
        if isinstance(sequence, int) and sequence > self._sequence:
            self._sequence = sequence
        kind = payload.get("type")
        response = payload.get("response")
        if isinstance(response, dict):
            if self._public is not None and "model" in response:
                response["model"] = self._public
                event = _reframed(event, payload)
            return self._lifecycle(kind, response, event)
        if kind == "error":
            self.error = _str(payload.get("message")) or "The upstream provider failed."
        elif kind in _DELTAS and _str(payload.get("delta")):
            self.text.append(payload["delta"])
        return event

    def _lifecycle(self, kind, response: dict, event: bytes) -> bytes:
        if kind == "response.created" and _str(response.get("id")):
            self.response_id = response["id"]
        if kind not in _TERMINAL:
            self._snapshot = {**response, "output": []}
            return event
        if isinstance(response.get("usage"), dict):
            self.usage = usage_from_openai(response["usage"])
        if kind == "response.failed":
            error = response.get("error")
            message = _str(error.get("message")) if isinstance(error, dict) else None
            # An `error` event before it said more than its summary does.
            self.error = self.error or message or "The upstream provider failed."
        self.done, self.closing = True, event
        return b""


def response_from_upstream(
    raw: bytes, *, rename: tuple[str, str] | None
) -> tuple[bytes, TokenUsage | None, str]:
    """Return (the body for the client, naming the public model; its usage;
    the response id) for an upstream's non-streamed Responses API answer."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, None, ""
    if not isinstance(body, dict):
        return raw, None, ""
    usage = body.get("usage")
    usage = usage_from_openai(usage) if isinstance(usage, dict) else None
    if rename is not None and "model" in body:
        body["model"] = rename[1]
        raw = orjson.dumps(body)
    return raw, usage, _str(body.get("id")) or ""
