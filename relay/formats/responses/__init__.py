"""
OpenAI's Responses API (`POST /v1/responses`) to and from chat completions.

OpenAI and Azure channels serve the Responses API themselves: their answers
pass through (passthrough). Every other channel speaks chat completions
inside the relay, so a Responses request is rewritten by to_chat on the way
in (request, with the tool-name mapping in tools) and the chat answer by
from_chat (answer) or StreamFromChat (stream) on the way out.
"""

from relay.formats.responses.answer import from_chat
from relay.formats.responses.passthrough import (
    ResponsesPassthrough,
    broken_event,
    response_from_upstream,
)
from relay.formats.responses.request import to_chat
from relay.formats.responses.stream import StreamFromChat
from relay.formats.responses.tools import NAME_LIMIT

__all__ = [
    "NAME_LIMIT",
    "ResponsesPassthrough",
    "StreamFromChat",
    "broken_event",
    "from_chat",
    "response_from_upstream",
    "to_chat",
]
