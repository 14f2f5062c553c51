"""Gemini behind the OpenAI wire format, driven by the openai SDK."""

import json

import openai
import pytest

from relay.models import UsageRecord
from tests import factories
from tests.fakes.gemini import prompt_tokens

MODEL = "gemini-2.5-flash"
# $0.30 input, $0.075 cached, $2.50 output per 1M.
INPUT, CACHED, OUTPUT = 300, 75, 2500
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the tests"},
]
SEARCH = factories.function_tool("search", "Search the web", query={"type": "string"})


@pytest.fixture
def client(relay, alice, gemini_channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def test_a_chat_is_translated_and_thinking_billed_as_output(client, alice, fake_gemini):
    fake_gemini.configure(cached_tokens=2, thoughts_tokens=7)
    before = alice.wallet.balance
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    sent = fake_gemini.last_request
    assert sent.headers["x-goog-api-key"] == "gemini-upstream-key"
    assert sent.body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    prompt = prompt_tokens(sent.body)
    words = len(reply.choices[0].message.content.split())
    assert reply.usage.prompt_tokens == prompt
    assert reply.usage.completion_tokens == words + 7
    expected = (prompt - 2) * INPUT + 2 * CACHED + (words + 7) * OUTPUT
    assert before - alice.wallet.balance == expected
    assert UsageRecord.objects.get().charged == expected


def test_a_stream_is_translated_and_charged(client, alice, fake_gemini):
    before = alice.wallet.balance
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage.completion_tokens == len(text.split())
    record = UsageRecord.objects.get()
    assert record.status == "ok" and record.usage_source == "reported"
    assert before - alice.wallet.balance == record.charged > 0


def test_tool_calls_round_trip(client, fake_gemini):
    fake_gemini.configure(function_call=True)
    first = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Find the news"}],
        tools=[SEARCH],
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": "fake"}
    fake_gemini.configure()
    second = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Find the news"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Nothing new."},
        ],
        tools=[SEARCH],
    )
    assert second.choices[0].message.content
    turns = fake_gemini.last_request.body["contents"]
    assert turns[1]["parts"][0]["functionCall"]["name"] == "search"
    assert turns[2]["parts"][0]["functionResponse"]["name"] == "search"


def test_a_bad_gemini_key_fails_over_instead_of_blaming_the_customer(
    client, alice, fake_gemini, gemini_channel
):
    fake_gemini.configure(api_key="the-right-key")
    gemini_channel.add_key("the-right-key")
    for _ in range(2):
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert reply.choices[0].message.content
    keys = [r.headers["x-goog-api-key"] for r in fake_gemini.requests]
    assert keys.count("the-right-key") == 2
