"""
A Messages API request as a chat completions payload (to_chat).

Requests are rebuilt field by field rather than copied: the chat payload
holds only what chat completions can say, so nothing Messages-only
(`cache_control`, `context_management`, `container`, `mcp_servers`...)
ever reaches an OpenAI-format upstream. What cannot be expressed follows a
documented rule:

- Anthropic's server and versioned tools (`web_search_*`, `bash_*`,
  `text_editor_*`, `computer_*`, `code_execution_*`...) are dropped: a
  translated channel cannot run Anthropic's server tools. Their blocks in
  the history (`server_tool_use`, `*_tool_result`) go with them.
- Thinking blocks are dropped: their signatures only mean something to
  Anthropic. `thinking` and `output_config.effort` become
  `reasoning_effort` for a model that reasons, and nothing otherwise.
- Claude Code's `x-anthropic-billing-header:` system line is dropped: it
  changes on every request and, first in the prompt, would defeat the
  upstream's prefix cache.
- Images and PDFs inside a tool result cannot ride in a chat `tool`
  message: they follow in a user message after the tool messages.
- Documents by URL or by Files API id, and images by file id, are refused
  (400): chat completions has no way to fetch them. So is a `tool_choice`
  naming a tool that was dropped.
- `top_k` is dropped (OpenAI refuses it); only the first four
  `stop_sequences` are kept (OpenAI refuses more); a `metadata.user_id`
  longer than OpenAI-compatible upstreams take becomes its SHA-256.
- `output_config.format` (structured output) becomes `response_format`.
"""

import hashlib

import orjson

from relay import errors

BILLING_HEADER = "x-anthropic-billing-header:"
# OpenAI refuses more stop sequences than this; the first ones are kept.
MAX_STOP_SEQUENCES = 4
# The longest `user` OpenAI-compatible upstreams reliably accept; Claude
# Code's user ids are longer.
MAX_USER_LENGTH = 64
# Budget thresholds (tokens) between reasoning efforts.
LOW_BUDGET, MEDIUM_BUDGET = 4096, 16384
EFFORTS = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}

# Blocks that are another provider's state: they cannot be replayed to a
# chat completions model and are left out of the history.
_PROVIDER_STATE = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
        "compaction",
    }
)
# Blocks of a tool result with no rendering outside Anthropic's tool search
# and browser tools.
_TOOL_RESULT_STATE = frozenset({"tool_reference", "browser_state"})


def _invalid(path: str, message: str) -> errors.RelayError:
    return errors.bad_request(f"{path}: {message}", param=path.split(".")[0])


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_server_tool_result(kind: str) -> bool:
    # web_search_tool_result, code_execution_tool_result and the ones to come.
    return kind.endswith("_tool_result")


def _without_billing_header(text: str) -> str:
    if BILLING_HEADER not in text:
        return text
    lines = text.split("\n")
    return "\n".join(line for line in lines if not line.startswith(BILLING_HEADER))


def _system(system, path: str) -> str:
    """Return the text of a system prompt (the top-level one, or a system
    message's content)."""
    if system is None:
        return ""
    if isinstance(system, str):
        texts = [system]
    elif isinstance(system, list):
        texts = []
        for j, block in enumerate(system):
            if not (
                isinstance(block, dict)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            ):
                raise _invalid(f"{path}.{j}", "must be a text block")
            texts.append(block["text"])
    else:
        raise _invalid(path, "must be a string or a list of text blocks")
    kept = [text for text in map(_without_billing_header, texts) if text.strip()]
    return "\n\n".join(kept)


def _text(block: dict, path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _invalid(f"{path}.text", "must be a string")
    return text


def _image_part(block: dict, path: str) -> dict:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        data, media_type = source.get("data"), source.get("media_type")
        if not isinstance(data, str) or not isinstance(media_type, str):
            raise _invalid(f"{path}.source", "base64 needs `data` and `media_type`")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    elif kind == "file":
        raise _invalid(
            f"{path}.source", "images by file id cannot be sent to this model"
        )
    else:
        raise _invalid(f"{path}.source", "must be a base64 or url image source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: dict, path: str) -> list[dict]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        data = source.get("data")
        if not isinstance(data, str):
            raise _invalid(f"{path}.source.data", "must be a string")
        media_type = source.get("media_type") or "application/pdf"
        title = block.get("title")
        file = {
            "filename": title if isinstance(title, str) and title else "document.pdf",
            "file_data": f"data:{media_type};base64,{data}",
        }
        return [{"type": "file", "file": file}]
    if kind == "text":
        data = source.get("data")
        if not isinstance(data, str):
            raise _invalid(f"{path}.source.data", "must be a string")
        return [{"type": "text", "text": data}] if data else []
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise _invalid(f"{path}.source.content", "must be a string or a list")
        parts = []
        for k, inner in enumerate(content):
            inner_path = f"{path}.source.content.{k}"
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "text":
                if text := _text(inner, inner_path):
                    parts.append({"type": "text", "text": text})
            elif kind == "image":
                parts.append(_image_part(inner, inner_path))
            else:
                raise _invalid(inner_path, "must be a text or image block")
        return parts
    if kind in ("url", "file"):
        raise _invalid(
            f"{path}.source",
            f"documents by {kind} cannot be sent to this model: send the PDF "
            "as base64 data",
        )
    raise _invalid(f"{path}.source", "unknown document source")


def _search_result_text(block: dict, path: str) -> str:
    content = block.get("content")
    if not isinstance(content, list):
        raise _invalid(f"{path}.content", "must be a list of text blocks")
    texts = [
        _text(inner, f"{path}.content.{k}")
        for k, inner in enumerate(content)
        if isinstance(inner, dict)
    ]
    head = [str(block[name]) for name in ("title", "source") if block.get(name)]
    return "\n\n".join(filter(None, ["\n".join(head), *texts]))


def _user_parts(block: dict, kind: str, path: str) -> list[dict]:
    """Return the chat content parts for one user block (not a tool result)."""
    if kind == "text":
        text = _text(block, path)
        return [{"type": "text", "text": text}] if text else []
    if kind == "image":
        return [_image_part(block, path)]
    if kind == "document":
        return _document_parts(block, path)
    if kind == "search_result":
        text = _search_result_text(block, path)
        return [{"type": "text", "text": text}] if text else []
    raise _invalid(f"{path}.type", f"unknown content block type `{kind}`")


def _tool_message(block: dict, path: str) -> tuple[dict, list[dict]]:
    """
    Return the chat `tool` message for a tool_result, and the image and PDF
    parts that a tool message cannot carry (they follow in a user message).
    `is_error` has no chat equivalent: the text says what went wrong.
    """
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{path}.tool_use_id", "must be a non-empty string")
    content = block.get("content")
    texts: list[str] = []
    media: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            inner_path = f"{path}.content.{k}"
            kind = _block_kind(inner, inner_path)
            if kind in _TOOL_RESULT_STATE:
                continue
            for part in _user_parts(inner, kind, inner_path):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    media.append(part)
    elif content is not None:
        raise _invalid(f"{path}.content", "must be a string or a list of blocks")
    text = "\n".join(texts)
    if media:
        note = (
            f"[{len(media)} attachment(s) of this result follow in the next "
            "user message]"
        )
        text = f"{text}\n{note}" if text else note
        media.insert(
            0, {"type": "text", "text": f"[attachments of tool result {call_id}]"}
        )
    return {"role": "tool", "tool_call_id": call_id, "content": text}, media


def _user_content(parts: list[dict]):
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _user_turn(blocks: list, path: str) -> list[dict]:
    """
    Return the chat messages for a user turn: its tool results first, as
    `tool` messages (chat completions wants them right after the assistant
    message that called the tools), then one user message with the rest.
    """
    tools: list[dict] = []
    moved: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(blocks):
        block_path = f"{path}.{j}"
        kind = _block_kind(block, block_path)
        if kind == "tool_result":
            message, media = _tool_message(block, block_path)
            tools.append(message)
            moved.extend(media)
        elif kind in _PROVIDER_STATE or _is_server_tool_result(kind):
            continue
        else:
            parts.extend(_user_parts(block, kind, block_path))
    parts = moved + parts
    if parts:
        tools.append({"role": "user", "content": _user_content(parts)})
    return tools


def _tool_call(block: dict, path: str) -> dict:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"{path}.id", "must be a non-empty string")
    if not isinstance(name, str) or not name:
        raise _invalid(f"{path}.name", "must be a non-empty string")
    arguments = block.get("input")
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": name,
            "arguments": orjson.dumps({} if arguments is None else arguments).decode(),
        },
    }


def _assistant_turn(blocks: list, path: str) -> list[dict]:
    texts: list[str] = []
    calls: list[dict] = []
    for j, block in enumerate(blocks):
        block_path = f"{path}.{j}"
        kind = _block_kind(block, block_path)
        if kind == "text":
            texts.append(_text(block, block_path))
        elif kind == "tool_use":
            calls.append(_tool_call(block, block_path))
        elif kind == "compaction" and isinstance(block.get("content"), str):
            # The summary of what came before it: the only rendering a
            # model other than Claude can read.
            texts.append(block["content"])
        # Anything else an assistant turn holds (thinking, server tool
        # calls and results...) is the provider's own state.
    # Citations split one answer into several text blocks: joined as written.
    text = "".join(texts)
    if not text and not calls:
        return []
    message: dict = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _block_kind(block, path: str) -> str:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise _invalid(path, "must be a content block object with a `type`")
    return kind


def _messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "must be a non-empty list")
    translated = []
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise _invalid(path, "must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant", "system"):
            raise _invalid(f"{path}.role", "must be `user`, `assistant` or `system`")
        if role == "system":
            # System messages among the turns (Claude Code sends them) stay
            # where they stand.
            if text := _system(content, f"{path}.content"):
                translated.append({"role": "system", "content": text})
        elif isinstance(content, str):
            if content:
                translated.append({"role": role, "content": content})
        elif isinstance(content, list):
            turn = _user_turn if role == "user" else _assistant_turn
            translated.extend(turn(content, f"{path}.content"))
        else:
            raise _invalid(f"{path}.content", "must be a string or a list of blocks")
    return translated


def _tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools", "must be a list")
    functions = []
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _invalid(path, "must be an object")
        if tool.get("type") not in (None, "custom"):
            continue  # a server or versioned tool: see the module docstring
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{path}.name", "must be a non-empty string")
        if not isinstance(schema, dict):
            raise _invalid(f"{path}.input_schema", "must be a JSON schema object")
        function: dict = {"name": name}
        if isinstance(tool.get("description"), str) and tool["description"]:
            function["description"] = tool["description"]
        # `strict` is not passed on: OpenAI's strict mode demands more of a
        # schema (every property required) than Anthropic's does.
        function["parameters"] = schema
        functions.append({"type": "function", "function": function})
    return functions


def _tool_choice(choice, names: set[str]) -> tuple[object, bool]:
    """Return chat's tool_choice (None: leave it out) and whether parallel
    tool calls were disabled."""
    if choice is None:
        return None, False
    if not isinstance(choice, dict):
        raise _invalid("tool_choice", "must be an object")
    kind = choice.get("type")
    serial = choice.get("disable_parallel_tool_use") is True
    if kind == "auto":
        return "auto", serial
    if kind == "none":
        return "none", False
    if kind == "any":
        if not names:
            raise _invalid(
                "tool_choice",
                "`any` needs a tool this model can run (Anthropic's "
                "server tools cannot run on it)",
            )
        return "required", serial
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or name not in names:
            raise _invalid(
                "tool_choice.name",
                f"`{name}` is not one of the tools this model can run",
            )
        return {"type": "function", "function": {"name": name}}, serial
    raise _invalid("tool_choice.type", "must be `auto`, `any`, `tool` or `none`")


def _reasoning_effort(thinking, output_config) -> str | None:
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise _invalid("output_config.effort", "must be one of " + ", ".join(EFFORTS))
    if thinking is None:
        # Effort applies with or without thinking on Anthropic's side too.
        return EFFORTS[effort] if effort else None
    if not isinstance(thinking, dict):
        raise _invalid("thinking", "must be an object")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not is_int(budget) or budget < 1:
            raise _invalid("thinking.budget_tokens", "must be a positive integer")
        if budget < LOW_BUDGET:
            return "low"
        return "medium" if budget < MEDIUM_BUDGET else "high"
    if kind in ("adaptive", "between_tools"):
        return EFFORTS[effort] if effort else "medium"
    # `disabled`, and types added after this was written.
    return None


def _response_format(output_config) -> dict | None:
    output_format = (
        output_config.get("format") if isinstance(output_config, dict) else None
    )
    if output_format is None:
        return None
    if not isinstance(output_format, dict):
        raise _invalid("output_config.format", "must be an object")
    schema = output_format.get("schema")
    if output_format.get("type") != "json_schema" or not isinstance(schema, dict):
        raise _invalid("output_config.format", "must be a json_schema format")
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def _stop(stop_sequences) -> list[str]:
    if stop_sequences is None:
        return []
    if not isinstance(stop_sequences, list) or not all(
        isinstance(stop, str) for stop in stop_sequences
    ):
        raise _invalid("stop_sequences", "must be a list of strings")
    return stop_sequences[:MAX_STOP_SEQUENCES]


def _user(metadata) -> str | None:
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    if len(user_id) <= MAX_USER_LENGTH:
        return user_id
    # Stable per user, so upstream abuse and cache bucketing still work.
    return hashlib.sha256(user_id.encode()).hexdigest()


def to_chat(payload: dict, *, reasoning: bool) -> dict:
    """
    Return the chat completions payload for a Messages API request.
    `reasoning`: the target model reasons, so `thinking` (and
    `output_config.effort`) map to `reasoning_effort`; otherwise they are
    dropped. Raise errors.bad_request(...) for what is invalid or cannot be
    expressed.

    Tool results become `tool` messages placed right after the assistant
    message that called them, then the turn's other blocks form one user
    message. Images and PDFs returned by a tool cannot ride in a chat tool
    message: the tool message says so and they lead that user message,
    introduced by the tool call's id. At most four stop sequences are kept
    (OpenAI refuses more): the first four.
    """
    if not isinstance(payload, dict):
        raise errors.bad_request("The request body must be a JSON object.")
    messages = _messages(payload.get("messages"))
    system = _system(payload.get("system"), "system")
    if system:
        messages.insert(0, {"role": "system", "content": system})
    chat: dict = {"model": payload.get("model"), "messages": messages}
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("stream", "must be a boolean")
    if stream:
        chat["stream"] = True
    limit = payload.get("max_tokens")
    if not is_int(limit) or limit < 1:
        raise _invalid("max_tokens", "a positive integer is required")
    chat["max_completion_tokens" if reasoning else "max_tokens"] = limit
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            chat[name] = payload[name]
    if stops := _stop(payload.get("stop_sequences")):
        chat["stop"] = stops
    functions = _tools(payload.get("tools"))
    choice, serial = _tool_choice(
        payload.get("tool_choice"),
        {tool["function"]["name"] for tool in functions},
    )
    # Chat completions refuses tool_choice and parallel_tool_calls without tools.
    if functions:
        chat["tools"] = functions
        if choice is not None:
            chat["tool_choice"] = choice
        if serial:
            chat["parallel_tool_calls"] = False
    output_config = payload.get("output_config")
    if output_config is not None and not isinstance(output_config, dict):
        raise _invalid("output_config", "must be an object")
    effort = _reasoning_effort(payload.get("thinking"), output_config)
    if reasoning and effort:
        chat["reasoning_effort"] = effort
    if response_format := _response_format(output_config):
        chat["response_format"] = response_format
    if user := _user(payload.get("metadata")):
        chat["user"] = user
    return chat
