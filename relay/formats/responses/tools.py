"""
The chat function names of the tools a Responses request offers, and back.

Chat tools are flat functions, so:
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
"""

import hashlib

# OpenAI's limit on chat function names; Gemini's is the same.
NAME_LIMIT = 64


def str_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


def _fit(name: str) -> str:
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: NAME_LIMIT - 9]}_{digest}"


def _joined(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('_')}__{name.lstrip('_')}"


def request_tools(payload: dict) -> list:
    """Return the tools a request offers: `tools` and `additional_tools` items."""
    tools = payload.get("tools")
    tools = list(tools) if isinstance(tools, list) else []
    items = payload.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            extra = item.get("tools")
            tools.extend(extra if isinstance(extra, list) else ())
    return tools


def tool_leaves(tools: list) -> list[tuple[str | None, dict]]:
    """Return (namespace, tool) for every function and custom tool, in order."""
    leaves = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind in ("function", "custom") and str_or_none(tool.get("name")):
            leaves.append((None, tool))
        elif kind == "namespace" and str_or_none(tool.get("name")):
            children = tool.get("tools")
            for child in children if isinstance(children, list) else ():
                if (
                    isinstance(child, dict)
                    and child.get("type") in ("function", "custom")
                    and str_or_none(child.get("name"))
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
        return cls(tool_leaves(request_tools(payload)))

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
