"""Anthropic's Messages API translated to chat completions and back."""

import anthropic
import httpx2
import orjson
import pydantic
import pytest
from anthropic import Stream
from anthropic._streaming import SSEDecoder
from anthropic._types import NOT_GIVEN
from anthropic.lib.streaming import MessageStream
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.pricing import TokenUsage
from relay.errors import RelayError
from relay.formats.messages import StreamFromChat, from_chat, to_chat
from tests import factories

MODEL = "gpt-5-mini"
PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQ="
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEATHER_FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": WEATHER["input_schema"],
    },
}
# What the upstream reported: 100 prompt tokens, 30 read from the cache and
# 20 written to it; Anthropic counts the other 50 as input_tokens.
USAGE = TokenUsage(prompt=100, cached=30, cache_write=20, completion=7)
ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_read_input_tokens": 30,
    "cache_creation_input_tokens": 20,
    "output_tokens": 7,
}

_events = pydantic.TypeAdapter(RawMessageStreamEvent)
CHAT_FIELDS = {
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "response_format",
    "user",
}


def request(*messages, **fields) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": list(messages) or [user("Hi")],
        **fields,
    }


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def chat_messages(*messages, **fields) -> list[dict]:
    return to_chat(request(*messages, **fields), reasoning=False)["messages"]


def refused(payload: dict, *, reasoning: bool = False) -> RelayError:
    with pytest.raises(RelayError) as caught:
        to_chat(payload, reasoning=reasoning)
    assert caught.value.status == 400
    return caught.value


def tool_use(call_id, name="get_weather", **arguments):
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def tool_result(call_id, content, **fields):
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **fields}


def image(data=PNG):
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": data},
    }


# -- request -------------------------------------------------------------


def test_it_maps_a_plain_request_field_by_field():
    chat = to_chat(
        request(
            user("Hi"),
            stream=True,
            temperature=0.3,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            metadata={"user_id": "user-42"},
        ),
        reasoning=False,
    )
    assert chat == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "max_tokens": 1024,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "user": "user-42",
    }


def test_it_translates_what_claude_code_sends():
    user_id = '{"device_id":"' + "a" * 64 + '","session_id":"1234-5678"}'
    payload = request(
        user(
            [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {
                    "type": "text",
                    "text": "Fix the bug",
                    "cache_control": {"type": "ephemeral"},
                },
            ]
        ),
        max_tokens=32000,
        stream=True,
        system=[
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.1.abc; cch=3f2a1;",
            },
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
        ],
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
        tools=[
            {**WEATHER, "cache_control": {"type": "ephemeral"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        metadata={"user_id": user_id},
        service_tier="auto",
        container="container_1",
        mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
    )
    chat = to_chat(payload, reasoning=True)
    assert set(chat) == {
        "model",
        "messages",
        "stream",
        "max_completion_tokens",
        "tools",
        "reasoning_effort",
        "user",
    }
    assert chat["max_completion_tokens"] == 32000
    assert chat["reasoning_effort"] == "high"
    # The billing line changes on every request: left in, it would defeat
    # the upstream's prefix cache.
    assert chat["messages"][0] == {"role": "system", "content": "You are Claude Code."}
    assert chat["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
            {"type": "text", "text": "Fix the bug"},
        ],
    }
    assert chat["tools"] == [WEATHER_FUNCTION]
    # Too long for OpenAI's `user`: a stable digest stands in for it.
    assert len(chat["user"]) == 64
    assert chat["user"] == to_chat(payload, reasoning=True)["user"]
    assert b"cache_control" not in orjson.dumps(chat)


def test_it_joins_system_blocks_into_one_leading_system_message():
    messages = chat_messages(
        user("Hi"),
        system=[{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
    )
    assert messages[0] == {"role": "system", "content": "One.\n\nTwo."}
    assert chat_messages(user("Hi"), system="Be brief.")[0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_system_messages_among_the_turns_stay_in_place():
    messages = chat_messages(
        user("Say hello"),
        {
            "role": "system",
            "content": [{"type": "text", "text": "# Environment\nLinux"}],
        },
        user("Again"),
    )
    assert messages == [
        {"role": "user", "content": "Say hello"},
        {"role": "system", "content": "# Environment\nLinux"},
        {"role": "user", "content": "Again"},
    ]


def test_it_keeps_a_system_prompt_around_the_billing_line():
    system = "x-anthropic-billing-header: cch=1;\nYou are helpful."
    assert chat_messages(user("Hi"), system=system)[0]["content"] == "You are helpful."


def test_it_translates_images_and_documents():
    messages = chat_messages(
        user(
            [
                image(),
                {"type": "image", "source": {"type": "url", "url": "https://x/a.jpg"}},
                {
                    "type": "document",
                    "title": "report.pdf",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": PDF,
                    },
                },
                {
                    "type": "document",
                    "source": {
                        "type": "text",
                        "media_type": "text/plain",
                        "data": "Plain notes.",
                    },
                },
                {
                    "type": "document",
                    "source": {
                        "type": "content",
                        "content": [{"type": "text", "text": "Inline."}, image()],
                    },
                },
                {"type": "text", "text": "Summarise."},
            ]
        )
    )
    png = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert messages == [
        {
            "role": "user",
            "content": [
                png,
                {"type": "image_url", "image_url": {"url": "https://x/a.jpg"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "report.pdf",
                        "file_data": f"data:application/pdf;base64,{PDF}",
                    },
                },
                {"type": "text", "text": "Plain notes."},
                {"type": "text", "text": "Inline."},
                png,
                {"type": "text", "text": "Summarise."},
            ],
        }
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    ],
)
def test_it_refuses_sources_chat_completions_cannot_fetch(block):
    error = refused(request(user([block])))
    assert error.message.startswith("messages.0.content.0.source:")


def test_it_drops_thinking_and_server_tool_blocks_from_the_history():
    messages = chat_messages(
        user("Search it"),
        assistant(
            [
                {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "x"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [],
                },
                {"type": "text", "text": "Found it."},
            ]
        ),
        assistant([{"type": "thinking", "thinking": "Only this.", "signature": "s"}]),
        user("Thanks"),
    )
    assert messages == [
        {"role": "user", "content": "Search it"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "Thanks"},
    ]


def test_a_compaction_summary_stays_as_assistant_text():
    messages = chat_messages(
        user("Long session"),
        assistant([{"type": "compaction", "content": "Summary: fixed 3 bugs."}]),
        user("Next?"),
    )
    assert messages[1] == {"role": "assistant", "content": "Summary: fixed 3 bugs."}


def test_tool_use_and_tool_results_keep_chat_completions_order():
    messages = chat_messages(
        user("Weather in Paris and Rome?"),
        assistant(
            [
                {"type": "text", "text": "Checking."},
                tool_use("toolu_1", city="Paris"),
                tool_use("toolu_2", city="Rome"),
            ]
        ),
        user(
            [
                tool_result("toolu_1", "18C"),
                tool_result("toolu_2", [{"type": "text", "text": "21C"}]),
                {"type": "text", "text": "And tomorrow?"},
            ]
        ),
    )
    assert messages == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        factories.assistant_calls(
            "Checking.",
            factories.tool_call("toolu_1", "get_weather", '{"city":"Paris"}'),
            factories.tool_call("toolu_2", "get_weather", '{"city":"Rome"}'),
        ),
        factories.tool_message("toolu_1", "18C"),
        factories.tool_message("toolu_2", "21C"),
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_an_assistant_turn_of_only_tool_calls_has_no_content():
    messages = chat_messages(
        user("Go"), assistant([tool_use("toolu_1", city="Oslo")]), user("x")
    )
    assert messages[1]["content"] is None
    assert messages[1]["tool_calls"][0]["id"] == "toolu_1"


def test_tool_messages_come_first_even_after_text():
    messages = chat_messages(
        user("Go"),
        assistant([tool_use("toolu_1")]),
        user([{"type": "text", "text": "Here:"}, tool_result("toolu_1", "done")]),
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert messages[3] == {"role": "user", "content": "Here:"}


def test_tool_result_text_is_joined_and_errors_keep_their_text():
    messages = chat_messages(
        user("Go"),
        assistant([tool_use("toolu_1"), tool_use("toolu_2"), tool_use("toolu_3")]),
        user(
            [
                tool_result(
                    "toolu_1",
                    [{"type": "text", "text": "line 1"}, {"type": "text", "text": "2"}],
                ),
                tool_result("toolu_2", "No such city.", is_error=True),
                {"type": "tool_result", "tool_use_id": "toolu_3"},
            ]
        ),
    )
    assert messages[2:] == [
        factories.tool_message("toolu_1", "line 1\n2"),
        factories.tool_message("toolu_2", "No such city."),
        factories.tool_message("toolu_3", ""),
    ]


def test_tool_search_references_in_a_tool_result_are_left_out():
    messages = chat_messages(
        user("Find a tool"),
        assistant([tool_use("toolu_1", "tool_search")]),
        user(
            [
                tool_result(
                    "toolu_1",
                    [
                        {"type": "tool_reference", "tool_name": "get_weather"},
                        {"type": "text", "text": "Found one."},
                    ],
                )
            ]
        ),
    )
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "Found one.",
    }


def test_images_in_tool_results_follow_in_a_user_message():
    messages = chat_messages(
        user("Screenshot it"),
        assistant([tool_use("toolu_1", "screenshot")]),
        user(
            [
                tool_result(
                    "toolu_1", [{"type": "text", "text": "Captured."}, image()]
                ),
                {"type": "text", "text": "What do you see?"},
            ]
        ),
    )
    tool, follow_up = messages[2], messages[3]
    assert tool["role"] == "tool"
    assert tool["tool_call_id"] == "toolu_1"
    assert tool["content"].startswith("Captured.\n")
    assert "next user message" in tool["content"]
    assert follow_up["role"] == "user"
    introduction, picture, question = follow_up["content"]
    assert "toolu_1" in introduction["text"]
    assert picture == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }
    assert question == {"type": "text", "text": "What do you see?"}


def test_custom_tools_become_functions_and_server_tools_are_dropped():
    chat = to_chat(
        request(
            tools=[
                WEATHER,
                {**WEATHER, "name": "lookup", "type": "custom", "strict": True},
                {"type": "bash_20250124", "name": "bash"},
                {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
                {"type": "computer_20250124", "name": "computer"},
                {"type": "code_execution_20250825", "name": "code_execution"},
            ]
        ),
        reasoning=False,
    )
    lookup = {**WEATHER_FUNCTION["function"], "name": "lookup"}
    assert chat["tools"] == [
        WEATHER_FUNCTION,
        {"type": "function", "function": lookup},
    ]


def test_only_server_tools_leave_no_tools_and_no_tool_choice():
    chat = to_chat(
        request(
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        ),
        reasoning=False,
    )
    assert "tools" not in chat
    assert "tool_choice" not in chat
    assert "parallel_tool_calls" not in chat


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        ({"type": "none"}, "none"),
    ],
)
def test_tool_choice(choice, expected):
    chat = to_chat(request(tools=[WEATHER], tool_choice=choice), reasoning=False)
    assert chat["tool_choice"] == expected
    assert "parallel_tool_calls" not in chat


def test_disable_parallel_tool_use_turns_parallel_tool_calls_off():
    chat = to_chat(
        request(
            tools=[WEATHER],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
        ),
        reasoning=False,
    )
    assert chat["tool_choice"] == "required"
    assert chat["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "tool", "name": "web_search"},
        {"type": "any"},
        {"type": "sometimes"},
    ],
)
def test_it_refuses_a_tool_choice_the_model_cannot_honour(choice):
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    refused(request(tools=tools, tool_choice=choice))


def test_it_keeps_the_first_four_stop_sequences():
    chat = to_chat(request(stop_sequences=["a", "b", "c", "d", "e"]), reasoning=False)
    assert chat["stop"] == ["a", "b", "c", "d"]


def test_max_tokens_becomes_max_completion_tokens_for_a_reasoning_model():
    assert to_chat(request(), reasoning=True)["max_completion_tokens"] == 1024
    assert "max_tokens" not in to_chat(request(), reasoning=True)
    assert to_chat(request(), reasoning=False)["max_tokens"] == 1024


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4095}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 16383}, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, "high"),
        ({"type": "adaptive"}, "medium"),
        ({"type": "disabled"}, None),
    ],
)
def test_thinking_becomes_reasoning_effort(thinking, effort):
    chat = to_chat(request(thinking=thinking), reasoning=True)
    assert chat.get("reasoning_effort") == effort
    assert "reasoning_effort" not in to_chat(
        request(thinking=thinking), reasoning=False
    )


@pytest.mark.parametrize(
    ("given", "effort"),
    [
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("xhigh", "high"),
        ("max", "high"),
    ],
)
def test_adaptive_thinking_takes_the_effort_asked(given, effort):
    payload = request(thinking={"type": "adaptive"}, output_config={"effort": given})
    assert to_chat(payload, reasoning=True)["reasoning_effort"] == effort
    # Anthropic applies effort without thinking too.
    payload = request(output_config={"effort": given})
    assert to_chat(payload, reasoning=True)["reasoning_effort"] == effort


def test_structured_output_becomes_a_response_format():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = to_chat(
        request(output_config={"format": {"type": "json_schema", "schema": schema}}),
        reasoning=False,
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


@pytest.mark.parametrize(
    ("payload", "start"),
    [
        ({"model": MODEL, "max_tokens": 10}, "messages:"),
        ({"model": MODEL, "max_tokens": 10, "messages": []}, "messages:"),
        (request(user(["not a block"])), "messages.0.content.0:"),
        (
            request(user([{"type": "hologram", "data": "x"}])),
            "messages.0.content.0.type: unknown content block type",
        ),
        (request(user("Hi"), {"role": "tool", "content": "x"}), "messages.1.role"),
        (request({"role": "system", "content": [image()]}), "messages.0.content.0:"),
        ({"model": MODEL, "messages": [user("Hi")]}, "max_tokens:"),
        (request(system=[{"type": "image"}]), "system.0:"),
        (request(stop_sequences="END"), "stop_sequences:"),
        (request(thinking={"type": "enabled"}), "thinking.budget_tokens:"),
        (request(output_config={"effort": "extreme"}), "output_config.effort:"),
        (request(tools=[{"name": "x"}]), "tools.0.input_schema:"),
        (request(output_config={"format": "json"}), "output_config.format:"),
    ],
)
def test_it_refuses_invalid_requests(payload, start):
    assert refused(payload, reasoning=True).message.startswith(start)


_leaf = st.none() | st.booleans() | st.integers(-1, 20_000) | st.text(max_size=3)
_any = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=6,
)


def _shaped(**fields):
    """Objects with some of `fields`, each either its strategy or anything."""
    return st.fixed_dictionaries(
        {}, optional={name: strategy | _any for name, strategy in fields.items()}
    )


def _one_of(*names):
    return st.sampled_from(names)


_source = _shaped(
    type=_one_of("base64", "url", "text", "content", "file"),
    data=_leaf,
    media_type=_leaf,
    url=_leaf,
    content=st.lists(_shaped(type=_one_of("text", "image"), text=_leaf), max_size=2),
)
_inner_block = _shaped(
    type=_one_of("text", "image", "document", "search_result", "tool_reference"),
    text=_leaf,
    source=_source,
    content=st.lists(_shaped(type=st.just("text"), text=_leaf), max_size=2),
)
_block = _shaped(
    type=_one_of("text", "image", "document", "tool_result", "tool_use", "thinking"),
    text=_leaf,
    source=_source,
    tool_use_id=_leaf,
    content=st.lists(_inner_block, max_size=2),
    id=_leaf,
    name=_leaf,
    input=_any,
)
_payload = _shaped(
    max_tokens=_leaf,
    messages=st.lists(
        _shaped(
            role=_one_of("user", "assistant"), content=st.lists(_block, max_size=3)
        ),
        min_size=1,
        max_size=3,
    ),
    system=st.lists(_shaped(type=st.just("text"), text=_leaf), max_size=2),
    tools=st.lists(
        _shaped(type=_one_of("custom", "web_search_20250305"), name=_leaf),
        max_size=2,
    ),
    tool_choice=_shaped(type=_one_of("auto", "any", "tool", "none"), name=_any),
    thinking=_shaped(type=_one_of("enabled", "adaptive"), budget_tokens=_leaf),
    output_config=_shaped(effort=_any, format=_shaped(type=_leaf, schema=_any)),
    metadata=_shaped(user_id=_any),
    stop_sequences=st.lists(_leaf, max_size=5),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_payload, st.booleans())
def test_any_malformed_request_is_a_400_never_a_crash(payload, reasoning):
    try:
        chat = to_chat(payload, reasoning=reasoning)
    except RelayError as error:
        assert error.status == 400
    else:
        assert set(chat) <= CHAT_FIELDS


# -- response ------------------------------------------------------------


def completion(message: dict, finish_reason="stop", usage=None) -> dict:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def answered(message: dict, finish_reason="stop", usage=USAGE, **fields) -> Message:
    body = from_chat(
        completion(message, finish_reason, **fields),
        usage,
        model="claude-sonnet-4-5",
        answer_id="msg_sb1",
    )
    return Message.model_validate(body, strict=False)


def test_a_text_answer_becomes_a_message_with_the_full_usage():
    message = answered({"role": "assistant", "content": "Hello!"})
    assert message.id == "msg_sb1"
    assert message.model == "claude-sonnet-4-5"
    assert message.role == "assistant"
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "text", "text": "Hello!"}
    ]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE


def test_tool_calls_become_tool_use_blocks_after_the_text():
    message = answered(
        factories.assistant_calls(
            "Let me check.",
            factories.tool_call("call_1", "get_weather", '{"city": "Paris"}'),
            factories.tool_call("functions.get_weather:1", "get_weather", "{broken"),
            {"type": "function", "function": {"name": "now", "arguments": ""}},
        ),
        finish_reason="tool_calls",
    )
    text, paris, broken, now = message.content
    assert text.text == "Let me check."
    assert (paris.type, paris.id, paris.name, paris.input) == (
        "tool_use",
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    # Unparsable arguments: an empty object; an id Anthropic would refuse
    # back in the history is rewritten to one it accepts.
    assert (broken.id, broken.input) == ("functions_get_weather_1", {})
    assert now.id.startswith("toolu_") and len(now.id) > len("toolu_")
    assert message.stop_reason == "tool_use"


def test_tool_calls_without_text_have_no_text_block():
    message = answered(
        factories.assistant_calls(
            None, factories.tool_call("call_1", "get_weather", "{}")
        ),
        # Some upstreams end a turn of tool calls with "stop".
        finish_reason="stop",
    )
    assert [block.type for block in message.content] == ["tool_use"]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_become_stop_reasons(finish_reason, stop_reason):
    message = answered({"role": "assistant", "content": "x"}, finish_reason)
    assert message.stop_reason == stop_reason


def test_a_refusal_is_shown_and_stops_as_one():
    message = answered({"role": "assistant", "content": None, "refusal": "I can't."})
    assert message.content[0].text == "I can't."
    assert message.stop_reason == "refusal"
    raw = streamed(chunk({"refusal": "I can't."}), chunk(finish_reason="stop"))
    streamed_message = final_message(raw)
    assert streamed_message.content[0].text == "I can't."
    assert streamed_message.stop_reason == "refusal"


def test_without_usage_given_the_completions_own_is_used():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 20},
    }
    message = answered({"role": "assistant", "content": "x"}, usage=None)
    assert message.usage.input_tokens == 0
    body = from_chat(
        completion({"role": "assistant", "content": "x"}, usage=usage),
        None,
        model="m",
        answer_id="msg_1",
    )
    assert body["usage"] == ANTHROPIC_USAGE


# -- stream --------------------------------------------------------------


def chunk(delta: dict | None = None, finish_reason=None, choices=True) -> dict:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-5-mini-2025-08-07",
        "choices": [],
    }
    if choices:
        body["choices"] = [
            {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
        ]
    return body


def text(piece: str) -> dict:
    return chunk({"content": piece})


def call(index: int, call_id=None, name=None, arguments="") -> dict:
    tool_call: dict = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        tool_call |= {"id": call_id, "type": "function"}
        tool_call["function"]["name"] = name
    return chunk({"tool_calls": [tool_call]})


def decoded(raw: bytes) -> list[dict]:
    """Return every event of `raw` as Anthropic's SDK reads it, checking
    each event's name and, for message events, its schema."""
    out = []
    for event in SSEDecoder().iter_bytes(iter([raw])):
        data = event.json()
        assert event.event == data["type"]
        if event.event == "error":
            ErrorResponse.model_validate(data)
        else:
            _events.validate_python(data)
        out.append(data)
    return out


def kinds(raw: bytes) -> list[str]:
    names = []
    for event in decoded(raw):
        name = event["type"].removeprefix("content_block_")
        if event["type"] == "content_block_start":
            name += ":" + event["content_block"]["type"]
        elif event["type"] == "content_block_delta":
            name += ":" + event["delta"]["type"]
        names.append(name)
    return names


def final_message(raw: bytes):
    """Return the message Anthropic's MessageStream accumulates from `raw`."""
    client = anthropic.Anthropic(api_key="test", base_url="http://127.0.0.1:9")
    response = httpx2.Response(
        200,
        content=raw,
        headers={"content-type": "text/event-stream"},
        request=httpx2.Request("POST", "http://127.0.0.1:9/v1/messages"),
    )
    stream = Stream(cast_to=RawMessageStreamEvent, response=response, client=client)
    return MessageStream(stream, output_format=NOT_GIVEN).get_final_message()


def streamed(*chunks, usage=USAGE) -> bytes:
    translator = StreamFromChat(model="claude-sonnet-4-5", answer_id="msg_sb1")
    return b"".join(translator.feed(c) for c in chunks) + translator.finish(usage)


_tool_call = _shaped(
    index=_leaf, id=_leaf, function=_shaped(name=_leaf, arguments=_leaf)
)
_choice = _shaped(
    index=st.just(0),
    delta=_shaped(content=_leaf, refusal=_leaf, tool_calls=st.lists(_tool_call)),
    message=_shaped(content=_leaf, tool_calls=st.lists(_tool_call, max_size=2)),
    finish_reason=_leaf,
)
_chunk = _shaped(choices=st.lists(_choice, max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_chunk, max_size=5))
def test_any_chunks_give_a_well_formed_stream_and_message(chunks):
    raw = streamed(*chunks)
    assert decoded(raw)[-1] == {"type": "message_stop"}
    for body in chunks:
        Message.model_validate(from_chat(body, USAGE, model="m", answer_id="msg_1"))


def test_a_text_stream_becomes_messages_events():
    raw = streamed(
        chunk({"role": "assistant", "content": ""}),
        text("Hel"),
        text("lo!"),
        chunk(finish_reason="stop"),
        chunk(choices=False),  # usage only
    )
    assert kinds(raw) == [
        "message_start",
        "start:text",
        "delta:text_delta",
        "delta:text_delta",
        "stop",
        "message_delta",
        "message_stop",
    ]
    start = decoded(raw)[0]["message"]
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    message = final_message(raw)
    assert (message.id, message.model) == ("msg_sb1", "claude-sonnet-4-5")
    assert message.content[0].text == "Hello!"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE


def test_the_first_chunk_starts_the_message_even_when_it_carries_usage_only():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    assert kinds(translator.feed(chunk(choices=False))) == ["message_start"]
    assert translator.feed(chunk(choices=False)) == b""


def test_two_tool_calls_stream_one_block_after_the_other():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    sent = [
        translator.feed(piece)
        for piece in (
            call(0, "call_1", "get_weather"),
            call(0, arguments='{"city":'),
            call(0, arguments=' "Paris"}'),
            call(1, "call_2", "get_weather", '{"city": "Rome"}'),
            chunk(finish_reason="tool_calls"),
        )
    ]
    # Arguments stream live while their call is the open block.
    assert kinds(sent[1]) == ["delta:input_json_delta"]
    assert kinds(sent[3]) == ["stop", "start:tool_use", "delta:input_json_delta"]
    message = final_message(b"".join(sent) + translator.finish(USAGE))
    assert [(b.id, b.name, b.input) for b in message.content] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "get_weather", {"city": "Rome"}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE


def test_interleaved_tool_calls_are_released_in_order():
    raw = streamed(
        call(0, "call_1", "get_weather"),
        call(1, "call_2", "get_weather"),
        call(1, arguments='{"city": '),
        call(0, arguments='{"city": '),
        call(1, arguments='"Rome"}'),
        call(0, arguments='"Paris"}'),
        chunk(finish_reason="tool_calls"),
    )
    assert kinds(raw) == [
        "message_start",
        "start:tool_use",
        "delta:input_json_delta",
        "delta:input_json_delta",
        "stop",
        "start:tool_use",
        "delta:input_json_delta",
        "stop",
        "message_delta",
        "message_stop",
    ]
    message = final_message(raw)
    assert [(b.id, b.input) for b in message.content] == [
        ("call_1", {"city": "Paris"}),
        ("call_2", {"city": "Rome"}),
    ]


def test_whole_tool_calls_in_one_delta_pass_at_once():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    both = chunk(
        {
            "tool_calls": [
                {
                    **factories.tool_call("call_a", "get_weather", '{"city": "Oslo"}'),
                    "index": 0,
                },
                {**factories.tool_call("call_b", "now", "{}"), "index": 1},
            ]
        }
    )
    live = translator.feed(both)
    assert kinds(live) == [
        "message_start",
        "start:tool_use",
        "delta:input_json_delta",
        "stop",
        "start:tool_use",
        "delta:input_json_delta",
    ]
    raw = live + translator.feed(chunk(finish_reason="stop")) + translator.finish(USAGE)
    message = final_message(raw)
    assert [(b.name, b.input) for b in message.content] == [
        ("get_weather", {"city": "Oslo"}),
        ("now", {}),
    ]
    assert message.stop_reason == "tool_use"


def test_text_then_a_tool_call():
    raw = streamed(
        text("Checking"),
        text("."),
        call(0, "call_1", "get_weather", '{"city"'),
        call(0, arguments=': "Lima"}'),
        chunk(finish_reason="tool_calls"),
    )
    assert kinds(raw) == [
        "message_start",
        "start:text",
        "delta:text_delta",
        "delta:text_delta",
        "stop",
        "start:tool_use",
        "delta:input_json_delta",
        "delta:input_json_delta",
        "stop",
        "message_delta",
        "message_stop",
    ]
    message = final_message(raw)
    assert message.content[0].text == "Checking."
    assert message.content[1].input == {"city": "Lima"}


def test_a_late_fragment_for_a_closed_call_is_dropped():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    translator.feed(call(0, "call_1", "get_weather", '{"city": "Oslo"}'))
    translator.feed(call(1, "call_2", "get_weather", '{"city": '))
    # Whitespace after the first call's complete JSON: its block is closed.
    assert translator.feed(call(0, arguments=" ")) == b""
    rest = translator.feed(call(1, arguments='"Rome"}'))
    assert [(e["type"], e["index"]) for e in decoded(rest)] == [
        ("content_block_delta", 1)
    ]


def test_text_after_a_tool_call_waits_for_the_call_to_be_whole():
    raw = streamed(
        call(0, "call_1", "get_weather", '{"city": '),
        text("Meanwhile."),
        call(0, arguments='"Kyiv"}'),
        chunk(finish_reason="tool_calls"),
    )
    assert kinds(raw)[1:7] == [
        "start:tool_use",
        "delta:input_json_delta",
        "delta:input_json_delta",
        "stop",
        "start:text",
        "delta:text_delta",
    ]
    message = final_message(raw)
    assert message.content[0].input == {"city": "Kyiv"}
    assert message.content[1].text == "Meanwhile."


def test_a_tool_call_opens_once_its_name_is_known():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    first = translator.feed(
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function"}]})
    )
    assert kinds(first) == ["message_start"]
    named = translator.feed(call(0, "call_1", "now", "{}"))
    assert kinds(named) == ["start:tool_use", "delta:input_json_delta"]
    message = final_message(first + named + translator.finish(USAGE))
    assert (message.content[0].id, message.content[0].name) == ("call_1", "now")


def test_a_tool_call_without_an_id_gets_one():
    raw = streamed(
        chunk({"tool_calls": [{"index": 0, "function": {"name": "now"}}]}),
        chunk(finish_reason="tool_calls"),
    )
    block = final_message(raw).content[0]
    assert block.id.startswith("toolu_")
    assert block.input == {}


def test_reasoning_content_is_not_shown():
    raw = streamed(
        chunk({"reasoning_content": "Let me think."}),
        text("42"),
        chunk(finish_reason="stop"),
    )
    message = final_message(raw)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "42"


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("length", "max_tokens"), ("content_filter", "refusal"), ("stop", "end_turn")],
)
def test_a_stream_ends_with_the_stop_reason(finish_reason, stop_reason):
    raw = streamed(text("x"), chunk(finish_reason=finish_reason))
    assert final_message(raw).stop_reason == stop_reason


def test_finish_without_any_chunk_is_a_whole_empty_message():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    raw = translator.finish(USAGE)
    assert kinds(raw) == [
        "message_start",
        "start:text",
        "stop",
        "message_delta",
        "message_stop",
    ]
    message = final_message(raw)
    assert message.content[0].text == ""
    assert message.usage.model_dump(exclude_none=True) == ANTHROPIC_USAGE
    assert translator.finish(USAGE) == b""
    assert translator.broken() == b""


def test_finish_without_usage_reports_zeros():
    message = final_message(streamed(text("x"), usage=None))
    assert message.usage.output_tokens == 0
    assert message.usage.input_tokens == 0


def test_an_upstream_error_mid_stream_is_one_error_event():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    raw = translator.feed(text("Hel"))
    error = translator.fail(
        {
            "message": "Rate limit reached.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    )
    assert decoded(error) == [
        {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Rate limit reached."},
        }
    ]
    assert translator.finish(USAGE) == b""
    assert translator.feed(text("lo")) == b""
    with pytest.raises(anthropic.APIStatusError) as caught:
        final_message(raw + error)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_an_error_before_any_chunk_needs_no_message_start():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    error = decoded(translator.fail({"message": "Bad.", "type": "server_error"}))
    assert error == [
        {"type": "error", "error": {"type": "api_error", "message": "Bad."}}
    ]


def test_a_broken_stream_says_what_was_charged():
    translator = StreamFromChat(model="m", answer_id="msg_1")
    raw = translator.feed(text("Hel"))
    broken = translator.broken()
    (event,) = decoded(broken)
    assert event["error"]["type"] == "api_error"
    assert "charged" in event["error"]["message"]
    assert translator.broken() == b""
    assert translator.fail({"message": "x"}) == b""
    with pytest.raises(anthropic.APIStatusError):
        final_message(raw + broken)
