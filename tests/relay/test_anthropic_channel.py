"""Claude behind the OpenAI wire format, driven by the openai SDK."""

import json

import openai
import pytest

from relay.models import UsageRecord
from tests import factories
from tests.fakes.anthropic import DEFAULT_REPLY, TOOL_INPUT, TOOL_TOKENS, input_tokens

MODEL = "claude-3-5-haiku-latest"
# $0.80 input, $0.08 cache read, $1.00 cache write, $4.00 output per 1M.
INPUT, READ, WRITE, OUTPUT = 800, 80, 1000, 4000
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the tests"},
]
WEATHER = factories.function_tool(
    "get_weather", "Weather for a city", location={"type": "string"}
)


@pytest.fixture
def client(relay, alice, claude_channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def anthropic_body() -> dict:
    return {
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello to the tests"}],
    }


def test_a_chat_is_translated_and_every_cache_bucket_billed(
    client, alice, fake_anthropic
):
    fake_anthropic.configure(cache_read=4, cache_creation=3)
    before = alice.wallet.balance
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.choices[0].finish_reason == "stop"
    sent = fake_anthropic.last_request
    assert sent.api_key == "sk-ant-upstream"
    assert sent.body["system"] == "Be brief."
    assert sent.body["max_tokens"] > 0
    total = input_tokens(anthropic_body())
    output = len(DEFAULT_REPLY.split())
    assert reply.usage.prompt_tokens == total
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    expected = (total - 7) * INPUT + 4 * READ + 3 * WRITE + output * OUTPUT
    assert before - alice.wallet.balance == expected
    record = UsageRecord.objects.get()
    assert (record.cached_tokens, record.cache_write_tokens) == (4, 3)
    assert record.cache_write_price == WRITE
    assert record.charged == expected


def test_a_stream_is_translated_to_openai_chunks(client, alice, fake_anthropic):
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
    assert text == DEFAULT_REPLY
    assert chunks[-1].usage.completion_tokens == len(DEFAULT_REPLY.split())
    record = UsageRecord.objects.get()
    assert record.stream and record.usage_source == "reported"
    assert before - alice.wallet.balance == record.charged > 0


def test_tool_calls_round_trip(client, fake_anthropic):
    fake_anthropic.configure(tool_use=True)
    first = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_INPUT
    assert first.usage.completion_tokens >= TOOL_TOKENS
    fake_anthropic.configure()
    second = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"},
        ],
        tools=[WEATHER],
    )
    assert second.choices[0].message.content == DEFAULT_REPLY
    sent = fake_anthropic.last_request.body["messages"]
    assert sent[1]["content"][-1]["type"] == "tool_use"
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "18°C and sunny",
    }
    assert UsageRecord.objects.count() == 2


def test_an_anthropic_refusal_reaches_the_client_uncharged(
    client, alice, fake_anthropic
):
    before = alice.wallet.balance
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "assistant", "content": "I start"}],
        )
    assert "user" in str(caught.value)
    assert alice.wallet.balance == before
    assert alice.wallet.held == 0
