"""The fake Anthropic API itself, driven by the official SDK and httpx."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.fakes.anthropic import (
    DEFAULT_REPLY,
    TOOL_INPUT,
    TOOL_TOKENS,
    FakeAnthropic,
    input_tokens,
)
from tests.fakes.upstream import split_reply

MODEL = "claude-sonnet-4-5"
HEADERS = {"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# What Claude Code adds around the conversation (trimmed).
CLAUDE_CODE: dict[str, Any] = {
    "max_tokens": 32000,
    "stream": True,
    "thinking": {"type": "adaptive"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
    "metadata": {"user_id": "user_abc_account_def_session_ghi"},
    "system": [
        {
            "type": "text",
            "text": "You are Claude Code.",
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "tools": [WEATHER],
    "service_tier": "auto",
    "container": None,
}


@pytest.fixture
def fake(fake_anthropic: FakeAnthropic) -> FakeAnthropic:
    """The suite's fake, reset around each test."""
    return fake_anthropic


@pytest.fixture
def client(fake: FakeAnthropic) -> anthropic.Anthropic:
    # The SDK sends its api_key as a bearer token; the fake, like the
    # relay's upstream calls, takes x-api-key.
    return anthropic.Anthropic(
        base_url=fake.base_url,
        api_key=None,
        default_headers={"X-Api-Key": "sk-ant"},
        max_retries=0,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate``: the fake notices a client leaving on its own time."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def events(text: str) -> list[dict[str, Any]]:
    found = []
    for block in text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            event = orjson.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            found.append(event)
    return found


def test_what_claude_code_sends_is_accepted(fake: FakeAnthropic, http: httpx.Client):
    body = {"model": MODEL, "messages": [user("List the files")], **CLAUDE_CODE}

    response = http.post(
        fake.base_url + "/v1/messages",
        params={"beta": "true"},
        json=body,
        headers={**HEADERS, "anthropic-beta": "context-management-2025-06-27"},
    )

    assert response.status_code == 200
    assert events(response.text)[-1] == {"type": "message_stop"}


def test_undocumented_fields_are_still_refused(fake: FakeAnthropic, http: httpx.Client):
    body = {"model": MODEL, "max_tokens": 10, "messages": [user("Hi")], "n": 2}

    response = http.post(fake.base_url + "/v1/messages", json=body, headers=HEADERS)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "n: Extra inputs are not permitted"


def test_count_tokens_counts_like_a_message(
    fake: FakeAnthropic, client: anthropic.Anthropic
):
    fake.configure(cache_read=5)
    messages = [user("How warm is Paris today?")]

    counted = client.messages.count_tokens(
        model=MODEL, messages=messages, system="Be brief.", tools=[WEATHER]
    )
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=messages,
        system="Be brief.",
        tools=[WEATHER],
    )

    expected = input_tokens(
        {"messages": messages, "system": "Be brief.", "tools": [WEATHER]}
    )
    assert counted.input_tokens == expected == 3 + 2 + (3 + 5) + TOOL_TOKENS
    usage = message.usage
    assert usage.input_tokens + usage.cache_read_input_tokens == expected
    assert fake.last_request.path == "/v1/messages"


@pytest.mark.parametrize(
    ("headers", "extra", "status", "message"),
    [
        ({"anthropic-version": "2023-06-01"}, {}, 401, "x-api-key header is required"),
        ({"x-api-key": "k"}, {}, 400, "anthropic-version: header is required"),
        (
            HEADERS,
            {"max_tokens": 10},
            400,
            "max_tokens: Extra inputs are not permitted",
        ),
        (HEADERS, {"stream": True}, 400, "stream: Extra inputs are not permitted"),
        (HEADERS, {"messages": []}, 400, "messages: at least one message is required"),
    ],
)
def test_count_tokens_refuses_like_messages(
    fake: FakeAnthropic,
    http: httpx.Client,
    headers: dict[str, str],
    extra: dict[str, Any],
    status: int,
    message: str,
):
    body = {"model": MODEL, "messages": [user("Hi")], **extra}

    response = http.post(
        fake.base_url + "/v1/messages/count_tokens", json=body, headers=headers
    )

    assert response.status_code == status
    assert response.json()["error"]["message"] == message


def test_count_tokens_accepts_claude_code_fields(
    fake: FakeAnthropic, http: httpx.Client
):
    body = {
        "model": MODEL,
        "messages": [user("Hi")],
        **{
            k: CLAUDE_CODE[k]
            for k in ("thinking", "output_config", "context_management")
        },
        "system": CLAUDE_CODE["system"],
    }

    response = http.post(
        fake.base_url + "/v1/messages/count_tokens", json=body, headers=HEADERS
    )

    assert response.json() == {"input_tokens": 3 + 4 + (3 + 1)}


def test_error_after_sends_an_error_event_after_the_input_usage(
    fake: FakeAnthropic, http: httpx.Client
):
    fake.configure(error_after=2, cache_read=4, cache_creation=3)
    body = {"model": MODEL, "max_tokens": 100, "messages": [user("Hi")], "stream": True}

    response = http.post(fake.base_url + "/v1/messages", json=body, headers=HEADERS)

    found = events(response.text)
    assert found[0]["message"]["usage"]["cache_read_input_tokens"] == 4
    deltas = [e["delta"]["text"] for e in found if e["type"] == "content_block_delta"]
    assert deltas == split_reply(DEFAULT_REPLY)[:2]
    assert found[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_the_sdk_raises_on_a_mid_stream_error(
    fake: FakeAnthropic, client: anthropic.Anthropic
):
    fake.configure(error_after=1)
    texts: list[str] = []

    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(
            model=MODEL, max_tokens=100, messages=[user("Hi")]
        ) as stream,
    ):
        texts.extend(stream.text_stream)

    assert texts == ["Hello! "]


def test_drop_after_cuts_the_stream_after_message_start_usage(
    fake: FakeAnthropic, http: httpx.Client
):
    fake.configure(drop_after=2, cache_read=4, cache_creation=3)
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [user("Hi there")],
        "stream": True,
    }
    received: list[bytes] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream(
            "POST", fake.base_url + "/v1/messages", json=body, headers=HEADERS
        ) as response,
    ):
        received.extend(response.iter_raw())
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(
            fake.base_url + "/v1/messages",
            json={**body, "stream": False},
            headers=HEADERS,
        )

    text = b"".join(received).decode()
    start = events(text.split("\n\n")[0] + "\n\n")[0]
    total = input_tokens(body)
    assert start["type"] == "message_start"
    assert start["message"]["usage"] == {
        "input_tokens": total - 4 - 3,
        "cache_creation_input_tokens": 3,
        "cache_read_input_tokens": 4,
        "output_tokens": 1,
    }
    assert text.count("event: content_block_delta") == 2
    assert "message_delta" not in text and "message_stop" not in text


def test_drop_after_past_the_content_cuts_before_message_delta(
    fake: FakeAnthropic, http: httpx.Client
):
    fake.configure(drop_after=99)
    body = {"model": MODEL, "max_tokens": 100, "messages": [user("Hi")], "stream": True}
    received: list[bytes] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream(
            "POST", fake.base_url + "/v1/messages", json=body, headers=HEADERS
        ) as response,
    ):
        received.extend(response.iter_raw())

    text = b"".join(received).decode()
    assert text.count("event: content_block_delta") == len(split_reply(DEFAULT_REPLY))
    assert "content_block_stop" in text and "message_delta" not in text


def test_a_tool_use_round_trip_ends_in_text(
    fake: FakeAnthropic, client: anthropic.Anthropic
):
    fake.configure(tool_use=True, reply="Let me check.")
    question = [user("Weather in Paris?")]

    first = client.messages.create(
        model=MODEL, max_tokens=100, messages=question, tools=[WEATHER]
    )
    call = first.content[-1]
    second = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            *question,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}
                ],
            },
        ],
    )

    assert first.stop_reason == "tool_use"
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == TOOL_INPUT
    assert first.usage.output_tokens == 3 + TOOL_TOKENS
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    assert second.content[0].text == "Let me check."
    assert second.usage.input_tokens == input_tokens(fake.last_request.body)


def test_tool_name_and_input_pick_a_declared_tool(
    fake: FakeAnthropic, client: anthropic.Anthropic
):
    shell = {"name": "Bash", "input_schema": {"type": "object"}}
    fake.configure(tool_use=True, tool_name="Bash", tool_input={"command": "ls"})

    answer = client.messages.create(
        model=MODEL, max_tokens=100, messages=[user("List")], tools=[WEATHER, shell]
    )

    call = answer.content[-1]
    assert (call.name, call.input) == ("Bash", {"command": "ls"})


# -- stream knobs ------------------------------------------------------------


def stream_body(text: str = "Hi") -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": [user(text)], "stream": True}


def decodes(piece: bytes) -> bool:
    try:
        piece.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_chunk_delay_paces_each_content_delta(fake: FakeAnthropic, http: httpx.Client):
    fake.configure(reply="one two three", chunk_delay=0.05)
    pieces: list[bytes] = []

    started = time.monotonic()
    with http.stream(
        "POST", fake.base_url + "/v1/messages", json=stream_body(), headers=HEADERS
    ) as response:
        pieces.extend(response.iter_raw())
    elapsed = time.monotonic() - started

    found = events(b"".join(pieces).decode())
    deltas = [e["delta"]["text"] for e in found if e["type"] == "content_block_delta"]
    assert deltas == ["one ", "two ", "three"]
    assert found[-1]["type"] == "message_stop"
    # Each delta waits its own pause, so they arrive in reads of their own.
    assert elapsed >= 3 * 0.05
    delta = b"event: content_block_delta"
    assert [piece.count(delta) for piece in pieces].count(1) == 3


def test_a_client_leaving_mid_stream_is_counted(
    fake: FakeAnthropic, http: httpx.Client
):
    fake.configure(reply="one two three four", chunk_delay=0.2)

    with http.stream(
        "POST", fake.base_url + "/v1/messages", json=stream_body(), headers=HEADERS
    ) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if "content_block_delta" in line)

    assert wait_for(lambda: fake.aborted_streams == 1)
    assert fake.aborted_after == [1]
    # A stream read to its end is not abandoned, and the fake serves on.
    fake.configure()
    finished = http.post(
        fake.base_url + "/v1/messages", json=stream_body(), headers=HEADERS
    )
    assert events(finished.text)[-1]["type"] == "message_stop"
    assert fake.aborted_streams == 1
    fake.reset()
    assert (fake.aborted_streams, fake.aborted_after) == (0, [])


def test_split_utf8_cuts_each_multibyte_event_inside_a_character(
    fake: FakeAnthropic, http: httpx.Client
):
    reply = "Café 日本 ok 😀"
    fake.configure(reply=reply, split_utf8=True)

    with http.stream(
        "POST", fake.base_url + "/v1/messages", json=stream_body(), headers=HEADERS
    ) as response:
        pieces = list(response.iter_raw())

    assert not all(map(decodes, pieces))
    # A cut falls just after a character's lead byte: the rest comes next.
    cuts = [at for at, piece in enumerate(pieces) if piece[-1] >= 0xC0]
    assert cuts
    assert all(0x80 <= pieces[at + 1][0] < 0xC0 for at in cuts)
    found = events(b"".join(pieces).decode())
    deltas = [e["delta"]["text"] for e in found if e["type"] == "content_block_delta"]
    assert deltas == ["Café ", "日本 ", "ok ", "😀"]
    assert found[-1]["type"] == "message_stop"
