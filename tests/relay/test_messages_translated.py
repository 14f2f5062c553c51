"""
POST /v1/messages for models that are not Claude: the official anthropic SDK
against the live relay, translated to chat completions for an OpenAI-format
channel and a Gemini channel, billed exactly like any other request.
"""

import json
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from accounts.services import api_key_create
from billing.models import Hold, LedgerEntry, ModelPrice
from relay import limits, tokens
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes import gemini as fake_gemini_api
from tests.fakes.anthropic import COUNT_TOKENS_PATH
from tests.fakes.anthropic import input_tokens as anthropic_input_tokens
from tests.fakes.upstream import (
    DEFAULT_REPLY,
    TOOL_ARGUMENTS,
    expected_usage,
    token_limit,
)

GPT = "gpt-4.1-mini"
CLAUDE = "claude-3-5-haiku-latest"
# A model with a 16k output limit, and one that reasons.
SMALL = "gpt-4o-mini"
REASONER = "o4-mini"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
HELLO = [{"role": "user", "content": "Say hello"}]
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    404: "not_found_error",
}


@dataclass
class Target:
    """One kind of translated channel: its model, prices (nano-USD per token:
    input, cached input, output) and what its fake received and reported."""

    kind: str
    model: str
    prices: tuple[int, int, int]
    reply: str
    fake: Any
    # The cached prompt tokens the fake was told to report.
    cached: int = 0

    def configure(self, *, cached: int = 0, tool: bool = False) -> None:
        if self.kind == "openai":
            self.fake.scenario(cached_tokens=cached, call_tools=tool)
        else:
            self.fake.configure(cached_tokens=cached, function_call=tool)
        self.cached = cached

    def sent(self) -> dict:
        return self.fake.last_request.body

    def system_sent(self) -> str | None:
        sent = self.sent()
        if self.kind == "openai":
            first = sent["messages"][0]
            return first["content"] if first["role"] == "system" else None
        parts = (sent.get("systemInstruction") or {}).get("parts") or []
        return "".join(part["text"] for part in parts) or None

    def usage(self, *, tool_call: bool = False) -> tuple[int, int, int]:
        """Return (prompt, cached, completion) as the upstream reported them."""
        sent = self.sent()
        cached = self.cached
        if self.kind == "openai":
            usage = expected_usage(
                sent["messages"],
                max_tokens=token_limit(sent),
                cached_tokens=cached,
                tool_call=tool_call,
            )
            return (
                usage["prompt_tokens"],
                usage["prompt_tokens_details"]["cached_tokens"],
                usage["completion_tokens"],
            )
        prompt = fake_gemini_api.prompt_tokens(sent)
        if tool_call:
            completion = fake_gemini_api.FUNCTION_REPLY_TOKENS
        else:
            limit = sent.get("generationConfig", {}).get("maxOutputTokens")
            completion = min(len(self.reply.split()), limit or 10**9)
        return prompt, min(cached, prompt), completion

    def cost(self, prompt: int, cached: int, completion: int) -> int:
        plain, read, output = self.prices
        return (prompt - cached) * plain + cached * read + completion * output


@pytest.fixture(params=["openai", "gemini"])
def target(request, alice) -> Target:
    if request.param == "openai":
        request.getfixturevalue("channel")
        fake = request.getfixturevalue("fake")
        return Target("openai", GPT, (400, 100, 1600), DEFAULT_REPLY, fake)
    request.getfixturevalue("gemini_channel")
    fake = request.getfixturevalue("fake_gemini")
    return Target(
        "gemini",
        "gemini-2.5-flash",
        (300, 75, 2500),
        fake_gemini_api.DEFAULT_REPLY,
        fake,
    )


@pytest.fixture
def client(relay_server, relay, alice) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=relay_server.base_url, api_key=alice.secret, max_retries=0
    )


def assert_charged(customer, before: int, request_id: str, expected: int):
    """Return the request's usage record once it is shown to have charged
    exactly `expected`, once, with no hold left."""
    record = UsageRecord.objects.get(request_id=request_id)
    assert record.endpoint == "messages"
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert record.cost == record.charged == expected > 0
    assert before - customer.wallet.balance == expected
    ledger = LedgerEntry.objects.get(reference=f"usage:{request_id}")
    assert ledger.amount == -expected
    assert customer.wallet.held == 0
    assert not Hold.objects.exists()
    return record


def assert_reconciles(target: Target, usage, expected: int) -> None:
    """The answer's own usage object adds up to the charge."""
    plain, read, output = target.prices
    assert usage.cache_creation_input_tokens == 0
    assert (
        usage.input_tokens * plain
        + usage.cache_read_input_tokens * read
        + usage.output_tokens * output
        == expected
    )


def create(client, **fields):
    """Return (message, request id) of a messages.create call."""
    raw = client.messages.with_raw_response.create(**fields)
    return raw.parse(), raw.headers["x-request-id"]


# -- text, billing, request mapping --------------------------------------------


def test_a_message_is_answered_and_billed_exactly(client, alice, target):
    target.configure(cached=4)
    before = alice.wallet.balance
    message, request_id = create(
        client,
        model=target.model,
        max_tokens=200,
        system="Be brief.",
        messages=HELLO,
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == target.model
    assert [block.text for block in message.content] == [target.reply]
    assert message.stop_reason == "end_turn"
    assert target.system_sent() == "Be brief."
    prompt, cached, completion = target.usage()
    assert cached == 4
    assert message.usage.input_tokens == prompt - cached
    assert message.usage.cache_read_input_tokens == cached
    assert message.usage.output_tokens == completion
    expected = target.cost(prompt, cached, completion)
    record = assert_charged(alice, before, request_id, expected)
    assert (record.prompt_tokens, record.cached_tokens, record.completion_tokens) == (
        prompt,
        cached,
        completion,
    )
    assert record.model == target.model and not record.stream
    assert_reconciles(target, message.usage, expected)


def test_a_message_stream_is_answered_and_billed_exactly(client, alice, target):
    target.configure(cached=3)
    before = alice.wallet.balance
    with client.messages.stream(
        model=target.model,
        max_tokens=200,
        system="Be brief.",
        messages=HELLO,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert text == target.reply
    assert final.model == target.model
    assert final.stop_reason == "end_turn"
    assert target.system_sent() == "Be brief."
    prompt, cached, completion = target.usage()
    assert final.usage.input_tokens == prompt - cached
    assert final.usage.cache_read_input_tokens == cached == 3
    assert final.usage.output_tokens == completion
    expected = target.cost(prompt, cached, completion)
    record = assert_charged(alice, before, request_id, expected)
    assert record.stream
    assert (record.prompt_tokens, record.completion_tokens) == (prompt, completion)
    assert_reconciles(target, final.usage, expected)


def test_system_blocks_with_cache_marks_reach_the_upstream_as_a_system_message(
    client, target
):
    target.configure()
    create(
        client,
        model=target.model,
        max_tokens=50,
        system=[
            {
                "type": "text",
                "text": "Be brief.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "Answer in English."},
        ],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Say hello",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        ],
    )
    assert target.system_sent() == "Be brief.\n\nAnswer in English."
    assert b"cache_control" not in target.fake.last_request.raw_body


def test_stop_sequences_reach_the_upstream(client, target):
    target.configure()
    create(
        client,
        model=target.model,
        max_tokens=50,
        stop_sequences=["END", "\n\nHuman:"],
        messages=HELLO,
    )
    sent = target.sent()
    if target.kind == "openai":
        assert sent["stop"] == ["END", "\n\nHuman:"]
    else:
        assert sent["generationConfig"]["stopSequences"] == ["END", "\n\nHuman:"]


def price(model: str, *, max_output: int, reasoning: bool = False) -> None:
    factories.model_price(
        model,
        input_per_mtok="1.10",
        cached_input_per_mtok="0.275",
        output_per_mtok="4.40",
        max_output_tokens=max_output,
        reasoning=reasoning,
    )


@pytest.fixture
def more_models(channel) -> Channel:
    price(SMALL, max_output=16_384)
    price(REASONER, max_output=100_000, reasoning=True)
    return factories.also_serve(channel, SMALL, REASONER)


THINKING = {"type": "enabled", "budget_tokens": 2048}


def test_thinking_becomes_reasoning_effort_for_a_reasoning_model(
    client, alice, more_models, fake
):
    fake.scenario(reasoning_tokens=7)
    before = alice.wallet.balance
    message, request_id = create(
        client, model=REASONER, max_tokens=4096, thinking=THINKING, messages=HELLO
    )
    sent = fake.last_request.body
    assert sent["reasoning_effort"] == "low"
    assert sent["max_completion_tokens"] == 4096 and "max_tokens" not in sent
    assert "thinking" not in sent
    # No thinking block comes back (the upstream's reasoning has no
    # signature to replay), but its tokens are output, billed and shown.
    assert [block.type for block in message.content] == ["text"]
    usage = expected_usage(
        sent["messages"], max_tokens=token_limit(sent), reasoning_tokens=7
    )
    assert message.usage.output_tokens == usage["completion_tokens"]
    expected = usage["prompt_tokens"] * 1100 + usage["completion_tokens"] * 4400
    record = assert_charged(alice, before, request_id, expected)
    assert record.reasoning_tokens == 7


def test_thinking_is_dropped_for_a_model_that_does_not_reason(client, target):
    target.configure()
    create(
        client, model=target.model, max_tokens=4096, thinking=THINKING, messages=HELLO
    )
    sent = target.sent()
    assert "thinking" not in sent
    if target.kind == "openai":
        assert "reasoning_effort" not in sent and sent["max_tokens"] == 4096
    else:
        assert "thinkingConfig" not in sent["generationConfig"]


def test_thinking_sets_gemini_thinking_budget_when_the_model_reasons(
    client, gemini_channel, fake_gemini
):
    ModelPrice.objects.filter(model="gemini-2.5-flash").update(reasoning=True)
    create(
        client,
        model="gemini-2.5-flash",
        max_tokens=4096,
        thinking=THINKING,
        messages=HELLO,
    )
    config = fake_gemini.last_request.body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1024}


def test_max_tokens_above_the_models_limit_is_capped(client, alice, more_models, fake):
    # Claude Code asks for 32,000 (streaming, as the SDK requires for that).
    before = alice.wallet.balance
    with client.messages.stream(
        model=SMALL, max_tokens=32_000, messages=HELLO
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert final.content[0].text == DEFAULT_REPLY
    sent = fake.last_request.body
    assert sent["max_tokens"] == 16_384
    usage = expected_usage(sent["messages"])
    expected = usage["prompt_tokens"] * 1100 + usage["completion_tokens"] * 4400
    assert_charged(alice, before, request_id, expected)


def test_max_tokens_above_geminis_limit_is_capped(client, gemini_channel, fake_gemini):
    with client.messages.stream(
        model="gemini-2.5-flash", max_tokens=100_000, messages=HELLO
    ) as stream:
        stream.get_final_message()
    config = fake_gemini.last_request.body["generationConfig"]
    assert config["maxOutputTokens"] == 65_536


# -- tools -------------------------------------------------------------------


def tool_input(target: Target) -> dict:
    if target.kind == "openai":
        return json.loads(TOOL_ARGUMENTS)
    return fake_gemini_api.FUNCTION_ARGS


def test_a_tool_round_trip_is_translated_and_each_turn_billed(client, alice, target):
    target.configure(tool=True)
    before = alice.wallet.balance
    question = {"role": "user", "content": "Weather in Paris?"}
    first, first_id = create(
        client,
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],
        messages=[question],
    )
    assert first.stop_reason == "tool_use"
    [call] = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == tool_input(target)
    prompt, cached, completion = target.usage(tool_call=True)
    assert first.usage.output_tokens == completion
    first_cost = target.cost(prompt, cached, completion)
    assert_charged(alice, before, first_id, first_cost)

    second, second_id = create(
        client,
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": "18 degrees and sunny",
                    }
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert [block.text for block in second.content] == [target.reply]
    sent = target.sent()
    if target.kind == "openai":
        assistant, answer = sent["messages"][1:3]
        assert assistant["tool_calls"][0]["id"] == call.id
        assert answer == {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "18 degrees and sunny",
        }
    else:
        [part] = sent["contents"][2]["parts"]
        assert part["functionResponse"] == {
            "name": "get_weather",
            "response": {"result": "18 degrees and sunny"},
        }
    prompt, cached, completion = target.usage()
    assert_charged(
        alice, before - first_cost, second_id, target.cost(prompt, cached, completion)
    )


@pytest.mark.parametrize(
    ("choice", "chat_choice"),
    [
        ({"type": "any"}, "required"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        ({"type": "auto"}, "auto"),
    ],
)
def test_tool_choice_is_translated(client, channel, fake, choice, chat_choice):
    fake.scenario(call_tools=True)
    message, _ = create(
        client,
        model=GPT,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={**choice, "disable_parallel_tool_use": True},
        messages=HELLO,
    )
    sent = fake.last_request.body
    assert sent["tool_choice"] == chat_choice
    assert sent["parallel_tool_calls"] is False
    assert message.stop_reason == "tool_use"


def test_tool_choice_none_gets_text(client, channel, fake):
    fake.scenario(call_tools=True)
    message, _ = create(
        client,
        model=GPT,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=HELLO,
    )
    assert fake.last_request.body["tool_choice"] == "none"
    assert "parallel_tool_calls" not in fake.last_request.body
    assert [block.text for block in message.content] == [DEFAULT_REPLY]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ({"type": "any"}, {"mode": "ANY"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
        ({"type": "none"}, {"mode": "NONE"}),
    ],
)
def test_tool_choice_reaches_gemini(
    client, gemini_channel, fake_gemini, choice, config
):
    create(
        client,
        model="gemini-2.5-flash",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice=choice,
        messages=HELLO,
    )
    sent = fake_gemini.last_request.body
    assert sent["toolConfig"] == {"functionCallingConfig": config}


def test_server_tools_are_dropped(client, alice, target):
    target.configure(tool=True)
    before = alice.wallet.balance
    message, request_id = create(
        client,
        model=target.model,
        max_tokens=200,
        tools=[WEB_SEARCH, WEATHER],
        messages=HELLO,
    )
    sent = target.sent()
    if target.kind == "openai":
        assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]
    else:
        [tools] = sent["tools"]
        assert [d["name"] for d in tools["functionDeclarations"]] == ["get_weather"]
    assert b"web_search" not in target.fake.last_request.raw_body
    assert message.content[-1].name == "get_weather"
    prompt, cached, completion = target.usage(tool_call=True)
    assert_charged(alice, before, request_id, target.cost(prompt, cached, completion))


def test_a_request_with_only_server_tools_sends_none(client, target):
    target.configure(tool=True)
    message, _ = create(
        client, model=target.model, max_tokens=200, tools=[WEB_SEARCH], messages=HELLO
    )
    assert "tools" not in target.sent()
    assert [block.text for block in message.content] == [target.reply]


def test_a_streamed_tool_call_accumulates_its_input(client, alice, target):
    target.configure(tool=True)
    before = alice.wallet.balance
    with client.messages.stream(
        model=target.model,
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert final.stop_reason == "tool_use"
    [call] = final.content
    assert (call.type, call.name) == ("tool_use", "get_weather")
    assert call.input == tool_input(target)
    prompt, cached, completion = target.usage(tool_call=True)
    assert final.usage.output_tokens == completion
    assert_charged(alice, before, request_id, target.cost(prompt, cached, completion))


# -- count_tokens --------------------------------------------------------------


def assert_nothing_charged(customer, before: int) -> None:
    assert customer.wallet.balance == before
    assert customer.wallet.held == 0
    assert not UsageRecord.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    assert not Hold.objects.exists()


def test_count_tokens_counts_locally_for_a_translated_model(client, alice, target):
    before = alice.wallet.balance
    messages = [
        {"role": "user", "content": "What is the weather like in Paris today?"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "user", "content": [{"type": "text", "text": "Thanks a lot."}]},
    ]
    counted = client.messages.count_tokens(
        model=target.model, system="Be brief.", tools=[WEATHER], messages=messages
    )
    system_and_tools = f"Be brief.\n{json.dumps([WEATHER], separators=(',', ':'))}"
    texts = [system_and_tools, *(m["content"] for m in messages[:2]), "Thanks a lot."]
    assert counted.input_tokens == 3 + 3 * 3 + tokens.count("\n".join(texts))
    assert target.fake.requests == []
    assert_nothing_charged(alice, before)


def test_count_tokens_passes_a_claude_model_to_anthropic(
    client, alice, claude_channel, fake_anthropic
):
    before = alice.wallet.balance
    body = {"system": "Be brief.", "messages": HELLO, "tools": [WEATHER]}
    counted = client.messages.count_tokens(model=CLAUDE, **body)
    assert counted.input_tokens == anthropic_input_tokens(body)
    [sent] = fake_anthropic.requests
    assert sent.path == COUNT_TOKENS_PATH
    assert sent.api_key == "sk-ant-upstream"
    assert sent.body == {"model": CLAUDE, **body}
    assert_nothing_charged(alice, before)


def test_count_tokens_counts_against_the_keys_requests_per_minute(
    relay_server, relay, alice, claude_channel, fake_anthropic, monkeypatch
):
    # Each count is a request to the upstream, on the channel's own key.
    monkeypatch.setattr(limits, "wall_clock", lambda: 1_800_000_000.0)
    _, secret = api_key_create(tenant=alice.tenant, name="limited", rpm_limit=2)
    statuses = [
        send(relay_server, "/count_tokens", secret, count_body(CLAUDE)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert len(fake_anthropic.requests) == 2


# -- refusals in Anthropic's error shape ---------------------------------------


def refused(response: httpx.Response, status: int) -> str:
    """Return the message of an Anthropic-shaped refusal with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == ERROR_TYPES[status]
    assert body["error"]["message"]
    return body["error"]["message"]


def send(relay_server, path: str, secret: str, content) -> httpx.Response:
    kwargs = {"json": content} if isinstance(content, dict) else {"content": content}
    return httpx.post(
        f"{relay_server.base_url}/v1/messages{path}",
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
        timeout=10,
        **kwargs,
    )


@pytest.fixture(params=["native", "translated"])
def path_model(request, alice) -> str:
    """A model reached through Anthropic's own format, or translated."""
    if request.param == "native":
        request.getfixturevalue("claude_channel")
        return CLAUDE
    request.getfixturevalue("channel")
    return GPT


def body(model: str, **fields) -> dict:
    return {"model": model, "max_tokens": 50, "messages": HELLO, **fields}


def count_body(model: str) -> dict:
    """A count_tokens body: the prompt alone (Anthropic refuses max_tokens)."""
    return {"model": model, "messages": HELLO}


MALFORMED = {
    "not JSON": b'{"model": ',
    "not an object": b"[1, 2]",
    "messages missing": {"max_tokens": 50},
    "messages empty": {"max_tokens": 50, "messages": []},
    "max_tokens missing": {"messages": HELLO},
    "max_tokens zero": {"max_tokens": 0, "messages": HELLO},
    "max_tokens a string": {"max_tokens": "abc", "messages": HELLO},
    "stream not a boolean": {"max_tokens": 50, "messages": HELLO, "stream": "yes"},
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_body_is_refused_uncharged(
    relay_server, relay, alice, path_model, case
):
    content = MALFORMED[case]
    if isinstance(content, dict):
        content = {"model": path_model, **content}
    before = alice.wallet.balance
    refused(send(relay_server, "", alice.secret, content), 400)
    assert_nothing_charged(alice, before)


def test_a_content_block_of_unknown_type_is_refused_when_translated(
    relay_server, relay, alice, channel, fake
):
    before = alice.wallet.balance
    content = body(
        GPT, messages=[{"role": "user", "content": [{"type": "hologram", "x": 1}]}]
    )
    message = refused(send(relay_server, "", alice.secret, content), 400)
    assert "hologram" in message
    assert fake.requests == []
    assert_nothing_charged(alice, before)


def test_a_bad_key_is_refused(relay_server, relay, alice, path_model):
    refused(send(relay_server, "", "sk-sb-wrong", body(path_model)), 401)
    refused(
        send(relay_server, "/count_tokens", "sk-sb-wrong", count_body(path_model)),
        401,
    )
    assert not UsageRecord.objects.exists()


def test_an_empty_wallet_is_refused_with_402(relay_server, relay, path_model):
    carol = factories.customer("carol", usd="")
    message = refused(send(relay_server, "", carol.secret, body(path_model)), 402)
    assert "Insufficient balance" in message
    assert_nothing_charged(carol, 0)


def test_counting_tokens_needs_no_balance(relay_server, relay, path_model):
    carol = factories.customer("carol", usd="")
    response = send(relay_server, "/count_tokens", carol.secret, count_body(path_model))
    assert response.status_code == 200
    assert response.json()["input_tokens"] > 0
    assert_nothing_charged(carol, 0)


@pytest.fixture
def other_models(channel) -> Channel:
    factories.model_price("dall-e-3", image_prices={"standard:1024x1024": "0.040"})
    factories.model_price(
        "text-embedding-3-small",
        input_per_mtok="0.02",
        context_window=8_192,
        max_output_tokens=0,
    )
    return factories.also_serve(channel, "dall-e-3", "text-embedding-3-small")


@pytest.mark.parametrize("path", ["", "/count_tokens"])
@pytest.mark.parametrize("model", ["claude-unknown", "dall-e-3"])
def test_a_model_it_cannot_serve_is_not_found(
    relay_server, relay, alice, other_models, fake, path, model
):
    before = alice.wallet.balance
    content = count_body(model) if path else body(model)
    refused(send(relay_server, path, alice.secret, content), 404)
    assert fake.requests == []
    assert_nothing_charged(alice, before)


@pytest.mark.parametrize("path", ["", "/count_tokens"])
def test_an_embedding_model_is_not_found(
    relay_server, relay, alice, other_models, fake, path
):
    before = alice.wallet.balance
    model = "text-embedding-3-small"
    content = count_body(model) if path else body(model)
    refused(send(relay_server, path, alice.secret, content), 404)
    assert fake.requests == []
    assert_nothing_charged(alice, before)


COUNT_MALFORMED = {
    "not JSON": b'{"model": ',
    "not an object": b"[1, 2]",
    "messages missing": {},
    "messages empty": {"messages": []},
}


@pytest.mark.parametrize("case", list(COUNT_MALFORMED))
def test_count_tokens_refuses_a_malformed_body(
    relay_server, relay, alice, path_model, fake, fake_anthropic, case
):
    content = COUNT_MALFORMED[case]
    if isinstance(content, dict):
        content = {"model": path_model, **content}
    refused(send(relay_server, "/count_tokens", alice.secret, content), 400)
    assert fake.requests == [] and fake_anthropic.requests == []


def test_count_tokens_refuses_what_the_translation_refuses(
    relay_server, relay, alice, channel, fake
):
    # POST /v1/messages refuses this body (400, see above): counting it must
    # not pretend it is a prompt the model could be sent.
    content = {
        "model": GPT,
        "messages": [{"role": "user", "content": [{"type": "hologram", "x": 1}]}],
    }
    message = refused(send(relay_server, "/count_tokens", alice.secret, content), 400)
    assert "hologram" in message


def test_the_sdk_raises_anthropics_error_types(client, alice, channel):
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="nope", max_tokens=5, messages=HELLO)
    assert caught.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=GPT, max_tokens=0, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model=GPT, messages=[])


def test_an_upstream_verdict_comes_back_in_anthropics_shape(
    client, alice, channel, fake
):
    verdict = {
        "error": {
            "message": "This model's maximum context length is 1047576 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    fake.scenario(status=400, error_body=verdict)
    before = alice.wallet.balance
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=GPT, max_tokens=50, messages=HELLO)
    assert caught.value.status_code == 400
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": verdict["error"]["message"],
        },
    }
    assert fake.request_counts.total() == 1  # a verdict is not retried
    assert alice.wallet.balance == before and alice.wallet.held == 0
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    record = UsageRecord.objects.get()
    assert (record.status, record.http_status, record.cost) == ("rejected", 400, 0)


def test_an_anthropic_verdict_comes_back_with_its_status(
    client, alice, claude_channel, fake_anthropic
):
    before = alice.wallet.balance
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=CLAUDE,
            max_tokens=5,
            messages=[{"role": "assistant", "content": "I go first"}],
        )
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "alternate" in caught.value.body["error"]["message"]
    assert alice.wallet.balance == before and alice.wallet.held == 0


def test_a_stream_without_upstream_usage_shows_the_usage_it_is_billed(
    client, alice, channel, fake
):
    # Some OpenAI-compatible vendors send no usage chunk: the relay bills an
    # estimate, and the answer must say what that estimate was.
    fake.scenario(usage_in_stream=False)
    before = alice.wallet.balance
    with client.messages.stream(model=GPT, max_tokens=200, messages=HELLO) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    record = UsageRecord.objects.get(request_id=request_id)
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert record.charged == before - alice.wallet.balance > 0
    assert final.usage.input_tokens == record.prompt_tokens
    assert final.usage.output_tokens == record.completion_tokens
