"""Chat tool calls and the newer stream knobs of the fake OpenAI upstream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.upstream import (
    DEFAULT_REPLY,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    FakeUpstream,
    Scenario,
    argument_fragments,
    expected_usage,
    split_reply,
)

MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CHAT = "/chat/completions"


def sdk(fake: FakeUpstream, scenario: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url(scenario), api_key="sk-x", max_retries=0)


def data_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if block:
            payload = block.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return events


def test_argument_fragments_are_two_or_more_and_rejoin() -> None:
    for arguments in ("", "{", "{}", TOOL_ARGUMENTS):
        pieces = argument_fragments(arguments)
        assert len(pieces) >= 2
        assert "".join(pieces) == arguments


def test_tool_knobs_are_checked() -> None:
    with pytest.raises(ValueError, match="tool_call"):
        Scenario(tool_call={"arguments": "{}"})
    with pytest.raises(ValueError, match="error_after_chunks"):
        Scenario(error_after_chunks=-1)


def test_call_tools_answers_tool_calls(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True, reasoning_tokens=4)

    answer = sdk(fake, "tools").chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER]
    )

    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == TOOL_ARGUMENTS
    assert answer.usage.completion_tokens == TOOL_CALL_TOKENS + 4
    assert answer.usage.model_dump(exclude_none=True) == expected_usage(
        MESSAGES, reasoning_tokens=4, tool_call=True
    )


def test_a_streamed_tool_call_sends_id_and_name_then_fragments(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("tools", call_tools=True)
    body = {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "tools": [WEATHER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    events = data_events(http.post(fake.url("tools") + CHAT, json=body).text)

    *chunks, usage, done = events
    assert done == "[DONE]"
    opener = chunks[0]["choices"][0]["delta"]
    assert opener["role"] == "assistant" and opener["content"] is None
    [call] = opener["tool_calls"]
    assert call["index"] == 0 and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert len(fragments) >= 2
    assert all(set(f) == {"index", "function"} for f in fragments)
    assert "".join(f["function"]["arguments"] for f in fragments) == TOOL_ARGUMENTS
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert usage["usage"]["completion_tokens"] == TOOL_CALL_TOKENS


def test_the_sdk_rebuilds_a_streamed_tool_call(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True)

    chunks = list(
        sdk(fake, "tools").chat.completions.create(
            model="gpt-4o", messages=MESSAGES, tools=[WEATHER], stream=True
        )
    )

    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices]
    arguments = "".join(
        call[0].function.arguments or "" for call in calls if call is not None
    )
    assert json.loads(arguments) == json.loads(TOOL_ARGUMENTS)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_tool_round_trip_ends_in_text(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True)
    client = sdk(fake, "tools")
    first = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER]
    )
    call = first.choices[0].message.tool_calls[0]

    second = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            *MESSAGES,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
        ],
        tools=[WEATHER],
    )

    assert second.choices[0].message.content == DEFAULT_REPLY
    assert second.choices[0].finish_reason == "stop"
    assert second.usage.completion_tokens == len(split_reply(DEFAULT_REPLY))


def test_tool_choice_and_the_tool_call_knob(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True)
    fake.scenario("named", tool_call={"name": "run", "arguments": {"cmd": "ls"}})
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    tools = sdk(fake, "tools").chat.completions
    create = {"model": "gpt-4o", "messages": MESSAGES}

    chosen = tools.create(
        **create,
        tools=[WEATHER, clock],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    declined = tools.create(**create, tools=[WEATHER], tool_choice="none")
    toolless = tools.create(**create)
    named = sdk(fake, "named").chat.completions.create(**create)
    plain = sdk(fake, "default").chat.completions.create(**create, tools=[WEATHER])

    assert chosen.choices[0].message.tool_calls[0].function.name == "get_time"
    assert declined.choices[0].message.content == DEFAULT_REPLY
    assert toolless.choices[0].message.content == DEFAULT_REPLY
    call = named.choices[0].message.tool_calls[0].function
    assert call.name == "run" and json.loads(call.arguments) == {"cmd": "ls"}
    assert plain.choices[0].message.content == DEFAULT_REPLY


def test_error_after_chunks_ends_a_chat_stream_with_an_error(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("flaky", error_after_chunks=2)
    fake.scenario("late", error_after_chunks=99)
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}

    flaky = http.post(fake.url("flaky") + CHAT, json=body)
    late = http.post(fake.url("late") + CHAT, json=body)
    plain = http.post(fake.url("flaky") + CHAT, json={**body, "stream": False})

    events = data_events(flaky.text)
    assert flaky.status_code == 200
    contents = [e["choices"][0]["delta"].get("content") for e in events[1:-1]]
    assert contents == split_reply(DEFAULT_REPLY)[:2]
    assert events[-1] == {
        "error": {
            "message": "The server had an error while processing your request. "
            "Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert "[DONE]" not in flaky.text
    late_events = data_events(late.text)
    assert "error" in late_events[-1] and len(late_events) == 2 + len(
        split_reply(DEFAULT_REPLY)
    )
    assert plain.json()["choices"][0]["message"]["content"] == DEFAULT_REPLY


def test_the_sdk_raises_on_a_mid_stream_error(fake: FakeUpstream) -> None:
    fake.scenario("flaky", error_after_chunks=1)
    seen: list[str] = []

    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in sdk(fake, "flaky").chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        ):
            seen.append(chunk.choices[0].delta.content or "")

    assert "".join(seen) == "Hello! "


def test_error_after_chunks_applies_to_legacy_completions(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("flaky", error_after_chunks=1)
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Hi", "stream": True}

    events = data_events(http.post(fake.url("flaky") + "/completions", json=body).text)

    assert [e["choices"][0]["text"] for e in events[:-1]] == ["Hello! "]
    assert events[-1]["error"]["type"] == "server_error"


def test_split_utf8_cuts_a_chat_character_across_writes(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("utf8", reply="Ça va? 日本語 é", split_utf8=True)
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}

    with http.stream("POST", fake.url("utf8") + CHAT, json=body) as response:
        pieces = list(response.iter_raw())

    # One cut per multi-byte word ("Ça ", "日本語 ", "é"), just after the
    # first character's lead byte.
    cut = [piece for piece in pieces if piece[-1] >= 0xC0]
    assert len(cut) == 3
    with pytest.raises(UnicodeDecodeError):
        cut[0].decode()
    events = data_events(b"".join(pieces).decode())
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "Ça va? 日本語 é"


def test_split_utf8_leaves_ascii_events_whole(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("utf8", split_utf8=True)
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}

    with http.stream("POST", fake.url("utf8") + CHAT, json=body) as response:
        pieces = list(response.iter_raw())

    assert all(piece.decode() for piece in pieces)
