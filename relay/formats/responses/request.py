"""
A Responses API request as a chat completions payload (to_chat).

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

`reasoning.effort` becomes `reasoning_effort` for reasoning models only, in
the levels every chat provider knows: minimal -> low, xhigh and max -> high,
none is left out (the model's default).
"""

import orjson

from relay import errors
from relay.formats.responses.tools import (
    ToolNames,
    request_tools,
    str_or_none,
    tool_leaves,
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

_IMAGE_DETAILS = {"low": "low", "high": "high", "auto": "auto", "original": "high"}


def _invalid(message: str, param: str) -> errors.RelayError:
    return errors.bad_request(message, param=param)


def _image_part(part: dict, where: str) -> dict:
    if part.get("file_id"):
        raise _invalid(
            "Images by `file_id` are not available for this model: send the "
            "image as `image_url` (a URL or a data URL).",
            where,
        )
    url = str_or_none(part.get("image_url"))
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
    data = str_or_none(part.get("file_data"))
    if not data:
        raise _invalid("An `input_file` needs `file_data`.", where)
    file = {"file_data": data}
    if str_or_none(part.get("filename")):
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
    call_id = str_or_none(item.get("call_id"))
    if not call_id:
        raise _invalid("A tool call or its output needs a `call_id`.", where)
    return call_id


def _tool_call(item: dict, names: ToolNames, where: str) -> dict:
    name = str_or_none(item.get("name"))
    if not name:
        raise _invalid("A tool call needs a `name`.", where)
    namespace = str_or_none(item.get("namespace"))
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
    description = str_or_none(tool.get("description")) or namespace_description
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
        tool["name"]: str_or_none(tool.get("description"))
        for tool in tools
        if isinstance(tool, dict) and tool.get("type") == "namespace"
    }
    return [
        _chat_tool(
            tool,
            names.chat(namespace, tool["name"]),
            descriptions.get(namespace) if namespace else None,
        )
        for namespace, tool in tool_leaves(tools)
    ]


def _chosen(ref: dict, names: ToolNames) -> str | None:
    """Return the chat name a tool_choice reference points at, if any."""
    name = str_or_none(ref.get("name"))
    if ref.get("type") not in ("function", "custom") or not name:
        return None
    return names.chat(str_or_none(ref.get("namespace")), name)


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

    tools = request_tools(payload)
    names = ToolNames(tool_leaves(tools))
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
    user = str_or_none(payload.get("safety_identifier"))
    user = user or str_or_none(payload.get("user"))
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
