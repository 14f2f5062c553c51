"""
What the demo reads from a chat conversation: what the user typed last (and
how many images came with it), and the tool results that end it.
"""


def _text_of(content) -> str:
    if isinstance(content, list):
        return " ".join(
            str(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return str(content or "")


def _typed(content) -> tuple[str, int]:
    """Return what the user typed in a message and how many images it holds.
    Coding agents put their reminders before the user's words: the last text
    part is what was typed."""
    if not isinstance(content, list):
        return str(content or ""), 0
    parts = [part for part in content if isinstance(part, dict)]
    texts = [str(p["text"]) for p in parts if str(p.get("text") or "").strip()]
    images = sum(1 for part in parts if "text" not in part)
    return (texts[-1] if texts else ""), images


def tool_results(messages: list) -> list[tuple[str, str]]:
    """Return (tool name, result) for each tool result ending the conversation."""
    names = {
        call.get("id"): (call.get("function") or {}).get("name") or "tool"
        for message in messages
        if isinstance(message, dict)
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }
    results = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        text = _text_of(message.get("content"))
        results.append((names.get(message.get("tool_call_id"), "tool"), text))
    return results[::-1]


def last_user(messages: list) -> tuple[str, int]:
    """Return what the user typed last and how many images came with it."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _typed(message.get("content"))
    return "", 0
