"""
Which function tool a chat answer calls, if any: the one tool_choice forces,
or the one the user's last words name.
"""

import re

from relay.providers.demo.conversation import last_user
from relay.providers.demo.errors import Refused


def _function_tools(payload: dict) -> list[dict]:
    return [
        tool["function"]
        for tool in payload.get("tools") or ()
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]


# Words too common in requests to tell which tool is meant.
GENERIC_WORDS = frozenset(
    {"all", "and", "call", "for", "from", "get", "new", "run", "set", "the", "tool"}
)


def _name_words(name: str) -> set[str]:
    """Return the telling words of a tool name: get_weather, getWeather -> weather."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", name)
    return {w.lower() for w in words if len(w) > 2} - GENERIC_WORDS


def _mentioned(functions: list[dict], said: str) -> dict | None:
    """Return the tool the user's words name (its whole name, else the most
    words of it), or None."""
    lowered = said.lower()
    words = set(re.findall(r"[a-z0-9]+", lowered))
    words |= {word[:-1] for word in words if word.endswith("s")}
    best, best_score = None, 0
    for function in functions:
        score = len(_name_words(function["name"]) & words)
        if function["name"].lower() in lowered:
            score += len(lowered)  # the whole name beats any count of words
        if score > best_score:
            best, best_score = function, score
    return best


def tool_to_call(payload: dict) -> dict | None:
    """
    Return the function tool the answer calls, or None for a text answer.
    A tool is called when tool_choice names it or requires one (the first),
    or when the user's last words name it ("what's the weather?" calls
    get_weather): never after a tool's result, nor on words that name no
    tool. Calling a tool on every turn would make coding agents loop: Claude
    Code's first tool launches a sub-agent, whose first turn would launch
    another.
    """
    functions = _function_tools(payload)
    choice = payload.get("tool_choice")
    messages = payload.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if not functions or choice == "none" or last.get("role") == "tool":
        return None
    required = choice == "required"
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        allowed, required = [choice["function"].get("name")], True
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        listed = (choice.get("allowed_tools") or {}).get("tools") or ()
        allowed = [
            (t.get("function") or {}).get("name") or t.get("name")
            for t in listed
            if isinstance(t, dict)
        ]
        required = (choice.get("allowed_tools") or {}).get("mode") == "required"
    else:
        allowed = [function["name"] for function in functions]
    functions = [function for function in functions if function["name"] in allowed]
    if not functions:
        raise Refused(
            "Invalid value for 'tool_choice': it names no function in 'tools'.",
            "tool_choice",
        )
    said, _ = last_user(messages)
    mentioned = _mentioned(functions, said)
    return mentioned or (functions[0] if required else None)
