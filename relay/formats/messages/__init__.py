"""
Anthropic's Messages API in front of a chat completions upstream.

A Messages request is rebuilt as a chat completion by to_chat (request);
the answer comes back as a `message` by from_chat (answer), or as Messages
stream events by StreamFromChat (stream).
"""

from relay.formats.messages.answer import from_chat, tool_input
from relay.formats.messages.request import to_chat
from relay.formats.messages.stream import BROKEN_EVENT, StreamFromChat

__all__ = ["BROKEN_EVENT", "StreamFromChat", "from_chat", "to_chat", "tool_input"]
