"""
POST /v1/responses driven by the official openai SDK through a live
Switchboard, on every kind of channel: native OpenAI (passed through), and
Anthropic, Gemini and a chat-only OpenAI-compatible vendor (translated to
chat completions). Every answer is billed at the catalog price of the tokens
the fake upstream reports, computed here from the fakes' documented rules.
Stored responses (previous_response_id, GET/DELETE/cancel/input_items) are
in test_responses_stored.py.
"""

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from relay import tokens
from relay.endpoints import RESPONSES
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes import upstream as fake_openai

Status = UsageRecord.Status
Source = UsageRecord.Source

INSTRUCTIONS = "You are terse."
QUESTION = "What is the weather in Paris today?"
LONG_REPLY = " ".join(f"word{i}" for i in range(200))
# Every multi-byte width: 2 (ü, é), 3 (—, 你) and 4 (😀) bytes.
UTF8_REPLY = "Grüße — 你好 😀 café"

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}
FORECAST_SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string"}},
    "required": ["summary"],
    "additionalProperties": False,
}
JSON_FORMAT = {
    "type": "json_schema",
    "name": "forecast",
    "schema": FORECAST_SCHEMA,
    "strict": True,
}


# -- prices, restated in nano-USD per token ----------------------------------


@dataclass(frozen=True)
class Prices:
    input: int
    cached: int
    cache_write: int
    output: int


# gpt-4.1-mini $0.40 / $0.10 / $1.60 per 1M (cache writes billed as input).
GPT_MINI = Prices(400, 100, 400, 1_600)
# o4-mini $1.10 / $0.275 / $4.40 per 1M (billing/migrations/0012).
O4_MINI = Prices(1_100, 275, 1_100, 4_400)
# claude-3-5-haiku $0.80 input, $0.08 cache read, $1.00 cache write, $4.00 output.
HAIKU = Prices(800, 80, 1_000, 4_000)
# claude-sonnet-4-5 $3.00 / $0.30 read / $3.75 write / $15.00.
SONNET = Prices(3_000, 300, 3_750, 15_000)
# gemini-2.5-flash $0.30 / $0.075 / $2.50.
FLASH = Prices(300, 75, 300, 2_500)


@dataclass(frozen=True)
class Usage:
    """Token counts OpenAI's way: `prompt` is all input, cache included."""

    prompt: int
    completion: int
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def cost(self, prices: Prices) -> int:
        plain = self.prompt - self.cached - self.cache_write
        return (
            plain * prices.input
            + self.cached * prices.cached
            + self.cache_write * prices.cache_write
            + self.completion * prices.output
        )


def recorded(record: UsageRecord) -> Usage:
    return Usage(
        prompt=record.prompt_tokens,
        completion=record.completion_tokens,
        cached=record.cached_tokens,
        cache_write=record.cache_write_tokens,
        reasoning=record.reasoning_tokens,
    )


# -- the four kinds of upstream ----------------------------------------------

# Generic knob -> each fake's own name for it.
KNOBS = {
    "openai": {
        "reply": "reply",
        "tool": "call_tools",
        "reasoning": "reasoning_tokens",
        "cached": "cached_tokens",
        "drop_after": "drop_after_chunks",
        "error_after": "error_after_chunks",
        "chunk_delay": "chunk_delay",
        "split_utf8": "split_utf8",
    },
    "anthropic": {
        "reply": "reply",
        "tool": "tool_use",
        "cached": "cache_read",
        "cache_write": "cache_creation",
        "drop_after": "drop_after",
        "error_after": "error_after",
        "chunk_delay": "chunk_delay",
        "split_utf8": "split_utf8",
    },
    "gemini": {
        "reply": "reply",
        "tool": "function_call",
        "reasoning": "thoughts_tokens",
        "cached": "cached_tokens",
        "drop_after": "drop_after",
        "error_after": "error_after",
        "chunk_delay": "chunk_delay",
        "split_utf8": "split_utf8",
    },
}
KNOBS["chat"] = KNOBS["openai"]
KINDS = ["openai", "anthropic", "gemini", "chat"]
TRANSLATED = ["anthropic", "gemini", "chat"]
CHAT_SCENARIO = "chatonly"


@dataclass
class Upstream:
    """One channel kind and the fake behind it, seen the same way by tests."""

    kind: str
    model: str
    channel: Channel
    fake: Any
    prices: Prices
    knobs: dict = field(default_factory=dict)

    def configure(self, **knobs) -> None:
        """Set the fake's behaviour by generic knob names (KNOBS)."""
        names = KNOBS[self.kind]
        unknown = set(knobs) - set(names)
        assert not unknown, f"{self.kind} fake has no {unknown}"
        mapped = {names[name]: value for name, value in knobs.items()}
        if self.kind in ("openai", "chat"):
            self.fake.scenario(self.scenario, **mapped)
        else:
            self.fake.configure(**mapped)
        self.knobs = knobs

    @property
    def scenario(self) -> str:
        return CHAT_SCENARIO if self.kind == "chat" else fake_openai.DEFAULT_SCENARIO

    @property
    def reply(self) -> str:
        defaults = {
            "openai": fake_openai.DEFAULT_REPLY,
            "chat": fake_openai.DEFAULT_REPLY,
            "anthropic": fake_anthropic.DEFAULT_REPLY,
            "gemini": fake_gemini.DEFAULT_REPLY,
        }
        return self.knobs.get("reply", defaults[self.kind])

    @property
    def abandoned(self) -> int:
        """How many of its streams the upstream saw left before their end."""
        if self.kind in ("openai", "chat"):
            return self.fake.aborted_counts[self.scenario]
        return self.fake.aborted_streams

    @property
    def sent(self) -> list[dict]:
        """The generation requests that reached the upstream, oldest first."""
        if self.kind in ("openai", "chat"):
            path = "/responses" if self.kind == "openai" else "/chat/completions"
            return [
                r.body
                for r in self.fake.requests_for(self.scenario)
                if r.method == "POST" and r.path.endswith(path)
            ]
        return [r.body for r in self.fake.requests if r.method == "POST"]

    def usage(self, body: dict, previous: dict | None = None) -> Usage:
        """What the fake reports for `body`, by its documented rules."""
        if self.kind == "openai":
            scenario = self.fake.get_scenario(self.scenario)
            found = fake_openai.expected_responses_usage(
                body, scenario, previous_usage=previous
            )
            return Usage(
                prompt=found["input_tokens"],
                completion=found["output_tokens"],
                cached=found["input_tokens_details"]["cached_tokens"],
                reasoning=found["output_tokens_details"]["reasoning_tokens"],
            )
        if self.kind == "chat":
            scenario = self.fake.get_scenario(self.scenario)
            found = fake_openai.expected_usage(
                body["messages"],
                scenario.reply,
                max_tokens=fake_openai.token_limit(body),
                cached_tokens=scenario.cached_tokens,
                reasoning_tokens=scenario.reasoning_tokens,
                tool_call=fake_openai.planned_tool_call(body, scenario) is not None,
            )
            return Usage(
                prompt=found["prompt_tokens"],
                completion=found["completion_tokens"],
                cached=found["prompt_tokens_details"]["cached_tokens"],
                reasoning=found["completion_tokens_details"]["reasoning_tokens"],
            )
        if self.kind == "anthropic":
            found = fake_anthropic.plan_reply(body, self.fake.knobs)["usage"]
            read = found["cache_read_input_tokens"]
            written = found["cache_creation_input_tokens"]
            return Usage(
                prompt=found["input_tokens"] + read + written,
                completion=found["output_tokens"],
                cached=read,
                cache_write=written,
            )
        return self._gemini_usage(body)

    def _gemini_usage(self, body: dict) -> Usage:
        knobs = self.fake.knobs
        prompt = fake_gemini.prompt_tokens(body)
        declared = any(
            tool.get("functionDeclarations") for tool in body.get("tools") or ()
        )
        answered = any(
            "functionResponse" in part for part in body["contents"][-1]["parts"]
        )
        if knobs.function_call and declared and not answered:
            candidates = fake_gemini.FUNCTION_REPLY_TOKENS
        else:
            words = len(re.findall(r"\S+\s*", knobs.reply))
            limit = (body.get("generationConfig") or {}).get("maxOutputTokens")
            candidates = min(words, limit) if limit is not None else words
        return Usage(
            prompt=prompt,
            completion=candidates + knobs.thoughts_tokens,
            cached=min(knobs.cached_tokens, prompt),
            reasoning=knobs.thoughts_tokens,
        )


def chat_only_channel(fake) -> Channel:
    """A vendor serving gpt-4.1-mini on the fake's chat-only scenario."""
    return factories.channel(
        "chat-only-vendor",
        fake.url(CHAT_SCENARIO),
        ["gpt-4.1-mini"],
        key="sk-chat-only-vendor",
        responses_api=False,
    )


def make_upstream(request, kind: str) -> Upstream:
    if kind == "openai":
        channel = request.getfixturevalue("channel")
        fake = request.getfixturevalue("fake")
        return Upstream(kind, "gpt-4.1-mini", channel, fake, GPT_MINI)
    if kind == "chat":
        fake = request.getfixturevalue("fake")
        fake.scenario(CHAT_SCENARIO)
        channel = chat_only_channel(fake)
        return Upstream(kind, "gpt-4.1-mini", channel, fake, GPT_MINI)
    if kind == "anthropic":
        channel = request.getfixturevalue("claude_channel")
        fake = request.getfixturevalue("fake_anthropic")
        return Upstream(kind, "claude-3-5-haiku-latest", channel, fake, HAIKU)
    channel = request.getfixturevalue("gemini_channel")
    fake = request.getfixturevalue("fake_gemini")
    return Upstream(kind, "gemini-2.5-flash", channel, fake, FLASH)


@pytest.fixture(params=KINDS)
def up(request, relay, alice) -> Upstream:
    return make_upstream(request, request.param)


@pytest.fixture
def client(relay, alice) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def add_model(
    name: str, prices: Prices, *, reasoning: bool, max_output: int = 64_000
) -> None:
    """Price a model in the catalog from nano-USD per token."""

    def per_mtok(nano: int) -> Decimal:
        return Decimal(nano) / 1000

    factories.model_price(
        name,
        input_per_mtok=per_mtok(prices.input),
        cached_input_per_mtok=per_mtok(prices.cached),
        cache_write_per_mtok=per_mtok(prices.cache_write),
        output_per_mtok=per_mtok(prices.output),
        max_output_tokens=max_output,
        reasoning=reasoning,
    )


def serve(upstream: Upstream, model: str, prices: Prices, *, reasoning: bool):
    """Have the upstream's channel serve `model` at `prices`."""
    add_model(model, prices, reasoning=reasoning)
    if model not in upstream.channel.model_names:
        factories.also_serve(upstream.channel, model)
    upstream.model, upstream.prices = model, prices


# -- reading answers -----------------------------------------------------------


def auth(secret: str) -> dict:
    return {"authorization": f"Bearer {secret}"}


def post(relay: str, secret: str, body, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{relay}/responses", headers=auth(secret), timeout=10, **kwargs, json=body
    )


def events_of(raw: bytes) -> list[tuple[str, dict]]:
    """Split a Responses API stream into (event name, data) pairs."""
    found = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if data:
            payload = orjson.loads(b"\n".join(data))
            found.append((name or payload.get("type"), payload))
    return found


def deltas_of(events: list[tuple[str, dict]]) -> str:
    return "".join(
        data["delta"] for name, data in events if name == "response.output_text.delta"
    )


def first_words(text: str, count: int) -> str:
    """The first `count` chunks a fake streams: words, each with its space."""
    return "".join(word + " " for word in text.split(" ")[:count])


def eventually(predicate, timeout: float = 2.0) -> bool:
    """Poll `predicate`: an upstream notices a client leaving on its own time."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def wait_for_record(request_id: str, timeout: float = 5.0) -> UsageRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = UsageRecord.objects.filter(request_id=request_id).first()
        if record is not None:
            return record
        time.sleep(0.02)
    raise AssertionError(f"no usage record for {request_id}")


def assert_charged(customer, before: int, records, prices: Prices) -> None:
    """Each record costs its tokens at `prices`; the wallet paid exactly that."""
    total = 0
    for record in records:
        cost = recorded(record).cost(prices)
        assert record.cost == record.charged == cost > 0, record.request_id
        charged_at = Prices(
            record.input_price,
            record.cached_input_price,
            record.cache_write_price,
            record.output_price,
        )
        assert charged_at == prices
        total += cost
    wallet = customer.wallet
    assert before - wallet.balance == total
    assert wallet.held == 0
    assert not Hold.objects.exists()
    assert LedgerEntry.objects.filter(kind="usage").count() == len(records)


def assert_uncharged(customer, before: int) -> None:
    tenant = customer.tenant
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (before, 0)
    assert not Hold.objects.filter(tenant=tenant).exists()
    assert not LedgerEntry.objects.filter(tenant=tenant, kind="usage").exists()
    assert not UsageRecord.objects.filter(tenant=tenant, charged__gt=0).exists()


# -- 1. a text answer ------------------------------------------------------------

CACHE_KNOBS = {"anthropic": {"cached": 2, "cache_write": 1}}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_text_answer_is_billed_at_the_catalog_price(up, client, alice, stream):
    up.configure(**CACHE_KNOBS.get(up.kind, {"cached": 2}))
    before = alice.wallet.balance
    request = {"model": up.model, "instructions": INSTRUCTIONS, "input": QUESTION}
    if stream:
        with client.responses.stream(**request) as events:
            request_id = events._response.headers["x-request-id"]
            deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
            answer = events.get_final_response()
        assert "".join(deltas) == up.reply
    else:
        answer = client.responses.create(**request)
        request_id = answer._request_id
    assert answer.output_text == up.reply
    assert answer.status == "completed"
    [body] = up.sent
    expected = up.usage(body)
    assert expected.cached == 2
    record = UsageRecord.objects.get()
    assert record.request_id == request_id
    assert (record.endpoint, record.model, record.stream) == (
        "responses",
        up.model,
        stream,
    )
    assert (record.status, record.usage_source) == (Status.OK, Source.REPORTED)
    assert record.channel_id == up.channel.pk
    assert recorded(record) == expected
    assert record.response_id == answer.id
    # The client's usage object is the one it was charged for.
    assert answer.usage.input_tokens == expected.prompt
    assert answer.usage.input_tokens_details.cached_tokens == expected.cached
    assert answer.usage.output_tokens == expected.completion
    assert_charged(alice, before, [record], up.prices)
    call_command("billing_audit")


def test_an_answer_cut_by_max_output_tokens_is_incomplete_and_billed(up, client, alice):
    up.configure(reply=LONG_REPLY)
    before = alice.wallet.balance
    answer = client.responses.create(
        model=up.model, input=QUESTION, max_output_tokens=20
    )
    assert answer.status == "incomplete"
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.output_text == first_words(LONG_REPLY, 20)
    [body] = up.sent
    record = UsageRecord.objects.get()
    assert record.status == Status.OK
    assert recorded(record) == up.usage(body)
    assert record.completion_tokens == 20
    assert_charged(alice, before, [record], up.prices)


# -- 2. a function call round trip -----------------------------------------------


def first_call(client, model: str, *, stream: bool):
    """Ask a question the model answers with a call of WEATHER."""
    request = {"model": model, "input": QUESTION, "tools": [WEATHER]}
    if stream:
        with client.responses.stream(**request) as events:
            answer = events.get_final_response()
    else:
        answer = client.responses.create(**request)
    [call] = [item for item in answer.output if item.type == "function_call"]
    return answer, call


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_function_call_round_trip_is_billed_turn_by_turn(up, client, alice, stream):
    up.configure(tool=True)
    before = alice.wallet.balance
    _, call = first_call(client, up.model, stream=stream)
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments)  # a JSON object, whole
    final = client.responses.create(
        model=up.model,
        input=[
            {"role": "user", "content": QUESTION},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": "18C and sunny",
            },
        ],
        tools=[WEATHER],
        text={"format": JSON_FORMAT},
    )
    assert final.output_text == up.reply
    assert final.text.format.type == "json_schema"
    first_body, second_body = up.sent
    assert_carried_the_round_trip(up, second_body, call)
    records = list(UsageRecord.objects.order_by("created_at", "pk"))
    assert [r.stream for r in records] == [stream, False]
    for record, body in zip(records, (first_body, second_body), strict=True):
        assert record.status == Status.OK
        assert recorded(record) == up.usage(body)
    assert_charged(alice, before, records, up.prices)


def assert_carried_the_round_trip(up: Upstream, body: dict, call) -> None:
    """The call and its output reached the upstream in its own format, and
    so did the final turn's JSON schema where the provider can take one."""
    if up.kind == "openai":
        assert [item.get("call_id") for item in body["input"]] == [
            None,
            call.call_id,
            call.call_id,
        ]
        assert body["text"] == {"format": JSON_FORMAT}
    elif up.kind == "chat":
        assistant, result = body["messages"][-2:]
        assert assistant["tool_calls"][0]["id"] == call.call_id
        assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
        assert result == {
            "role": "tool",
            "tool_call_id": call.call_id,
            "content": "18C and sunny",
        }
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": "forecast",
                "schema": FORECAST_SCHEMA,
                "strict": True,
            },
        }
    elif up.kind == "anthropic":
        assistant, result = body["messages"][-2:]
        [use] = [b for b in assistant["content"] if b["type"] == "tool_use"]
        assert (use["id"], use["name"]) == (call.call_id, "get_weather")
        assert result["content"][0]["tool_use_id"] == call.call_id
        # The Messages request the relay builds has no structured output
        # (output_format): the schema is dropped for Claude.
    else:
        model_turn, user_turn = body["contents"][-2:]
        assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
        response = user_turn["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather"
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == FORECAST_SCHEMA


# -- 3. reasoning ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    ("up", "model", "prices", "knob"),
    [
        ("openai", "o4-mini", O4_MINI, 12),
        ("gemini", "gemini-2.5-flash", FLASH, 9),
    ],
    indirect=["up"],
)
def test_reasoning_tokens_are_billed_as_output_and_shown(
    up, client, alice, model, prices, knob, stream
):
    serve(up, model, prices, reasoning=True)
    up.configure(reasoning=knob)
    before = alice.wallet.balance
    request = {"model": model, "input": QUESTION, "reasoning": {"effort": "medium"}}
    if stream:
        with client.responses.stream(**request) as events:
            answer = events.get_final_response()
    else:
        answer = client.responses.create(**request)
    assert answer.output_text == up.reply
    assert answer.usage.output_tokens_details.reasoning_tokens == knob
    [body] = up.sent
    expected = up.usage(body)
    assert expected.reasoning == knob
    assert answer.usage.output_tokens == expected.completion
    record = UsageRecord.objects.get()
    assert record.reasoning_tokens == knob
    # Reasoning is part of the output, billed at the output price.
    assert record.completion_tokens == len(up.reply.split()) + knob
    assert recorded(record) == expected
    assert_charged(alice, before, [record], prices)


# What `reasoning: {"effort": "medium"}` becomes upstream, for a reasoning
# model and for a model that does not reason.
EFFORTS = [
    ("anthropic", "claude-sonnet-4-5", SONNET, True, "thinking", 4096),
    ("anthropic", "claude-3-5-haiku-latest", HAIKU, False, "thinking", None),
    ("gemini", "gemini-2.5-flash", FLASH, True, "thinkingConfig", 8192),
    ("gemini", "gemini-2.5-flash", FLASH, False, "thinkingConfig", None),
    ("chat", "o4-mini", O4_MINI, True, "reasoning_effort", "medium"),
    ("chat", "gpt-4.1-mini", GPT_MINI, False, "reasoning_effort", None),
]


@pytest.mark.parametrize(
    ("up", "model", "prices", "reasoning", "name", "expected"),
    EFFORTS,
    indirect=["up"],
    ids=[f"{e[0]}-{'reasoning' if e[3] else 'plain'}" for e in EFFORTS],
)
def test_reasoning_effort_reaches_only_reasoning_models(
    up, client, alice, model, prices, reasoning, name, expected
):
    serve(up, model, prices, reasoning=reasoning)
    before = alice.wallet.balance
    answer = client.responses.create(
        model=model,
        input=QUESTION,
        max_output_tokens=8000,
        reasoning={"effort": "medium"},
    )
    assert answer.output_text == up.reply
    [body] = up.sent
    assert "reasoning" not in body
    if up.kind == "anthropic":
        found = body.get("thinking")
        budget = found and found["budget_tokens"]
        assert budget == expected
        if found:
            assert found["type"] == "enabled" and body["max_tokens"] == 8000
    elif up.kind == "gemini":
        found = body["generationConfig"].get("thinkingConfig")
        assert (found and found["thinkingBudget"]) == expected
    else:
        assert body.get("reasoning_effort") == expected
    assert_charged(alice, before, [UsageRecord.objects.get()], prices)


@pytest.mark.parametrize("up", ["openai"], indirect=True)
def test_reasoning_settings_pass_through_to_a_native_channel(up, client):
    serve(up, "o4-mini", O4_MINI, reasoning=True)
    client.responses.create(
        model="o4-mini",
        input=QUESTION,
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    [body] = up.sent
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "reasoning_effort" not in body


# -- 4. UTF-8 cut across network writes ------------------------------------------


@pytest.mark.parametrize("up", KINDS, indirect=True)
def test_a_character_split_across_writes_arrives_whole(up, client, alice):
    up.configure(reply=UTF8_REPLY, split_utf8=True)
    before = alice.wallet.balance
    with client.responses.stream(model=up.model, input=QUESTION) as events:
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        answer = events.get_final_response()
    assert "".join(deltas) == UTF8_REPLY
    assert answer.output_text == UTF8_REPLY
    [body] = up.sent
    record = UsageRecord.objects.get()
    assert recorded(record) == up.usage(body)
    assert_charged(alice, before, [record], up.prices)


# -- 5. streams cut short ------------------------------------------------------


# Input buckets the upstream reports before any output, for a cut to show.
REPORTED_INPUT = {"anthropic": {"cached": 2, "cache_write": 1}, "gemini": {"cached": 2}}


@pytest.mark.parametrize("up", KINDS, indirect=True)
def test_a_client_disconnect_stops_the_upstream_and_charges_what_was_produced(
    up, client, alice
):
    # The pause leaves the relay ample time to stop before the next chunk, so
    # what the upstream sent is what the relay read.
    up.configure(reply=LONG_REPLY, chunk_delay=0.1, **REPORTED_INPUT.get(up.kind, {}))
    before = alice.wallet.balance
    received = []
    with client.responses.stream(model=up.model, input=QUESTION) as events:
        request_id = events._response.headers["x-request-id"]
        for event in events:
            if event.type == "response.output_text.delta":
                received.append(event.delta)
                break
    record = wait_for_record(request_id)
    assert record.status == Status.CLIENT_CLOSED
    assert record.endpoint == "responses" and record.stream
    # The relay stopped reading the upstream instead of draining it.
    assert eventually(lambda: up.abandoned == 1)
    # The input as the upstream reported it before the cut, else counted.
    [body] = up.sent
    reported = produced_prompt(up, body)
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (
        reported.prompt,
        reported.cached,
        reported.cache_write,
    )
    if up.kind == "gemini":
        # Each chunk carries Gemini's running usage, one token a word here:
        # the last one read is billed as reported.
        [sent] = up.fake.aborted_after
        assert record.usage_source == Source.REPORTED
        assert len(received) <= record.completion_tokens == sent
    else:
        # The output estimated from the text produced: at least what the
        # client saw (with Anthropic, exactly the deltas the upstream sent).
        assert record.usage_source == Source.ESTIMATED
        assert tokens.count("".join(received)) <= record.completion_tokens
        if up.kind == "anthropic":
            [sent] = up.fake.aborted_after
            produced = first_words(LONG_REPLY, sent)
            assert record.completion_tokens == tokens.count(produced)
    # Far less than the whole reply.
    assert record.completion_tokens < tokens.count(LONG_REPLY) // 2
    assert_charged(alice, before, [record], up.prices)
    call_command("billing_audit")


def cut_stream(relay, customer, upstream: Upstream) -> tuple[list, UsageRecord]:
    response = post(
        relay,
        customer.secret,
        {"model": upstream.model, "input": QUESTION, "stream": True},
    )
    assert response.status_code == 200
    events = events_of(response.content)
    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    return events, record


def failed_events(events) -> list[dict]:
    failed = [data for name, data in events if name == "response.failed"]
    assert len(failed) == 1, [name for name, _ in events]
    assert events[-1][0] == "response.failed"
    # Numbered on without a gap, the relay's own last event included.
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert not any(
        n in ("response.completed", "response.incomplete") for n, _ in events
    )
    return failed


def produced_prompt(up: Upstream, body: dict) -> Usage:
    """The input a cut stream is billed for: the buckets the upstream
    reported before the cut (Anthropic's message_start, Gemini's running
    usage), else the prompt counted exactly."""
    if up.kind in ("anthropic", "gemini"):
        return up.usage(body)
    prompt = RESPONSES.prompt_tokens({"input": QUESTION}, tokens.count)
    return Usage(prompt=prompt, completion=0)


@pytest.mark.parametrize("up", KINDS, indirect=True)
def test_an_upstream_dropping_the_stream_fails_it_once_and_charges_what_it_sent(
    relay, up, alice
):
    up.configure(drop_after=3, **CACHE_KNOBS.get(up.kind, {}))
    before = alice.wallet.balance
    events, record = cut_stream(relay, alice, up)
    [failed] = failed_events(events)
    assert failed["response"]["error"]["code"] == "upstream_stream_closed"
    assert not any(name == "error" for name, _ in events)
    text = deltas_of(events)
    assert text == first_words(up.reply, 3)
    assert record.status == Status.UPSTREAM_CLOSED
    assert record.error
    [body] = up.sent
    reported = produced_prompt(up, body)
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (
        reported.prompt,
        reported.cached,
        reported.cache_write,
    )
    if up.kind == "gemini":
        # Gemini's every chunk carries its running usage: the upstream's count.
        assert record.usage_source == Source.REPORTED
        assert record.completion_tokens == 3
    else:
        assert record.usage_source == Source.ESTIMATED
        assert record.completion_tokens == tokens.count(text)
    # No retry once bytes reached the client.
    assert len(up.sent) == 1
    assert_charged(alice, before, [record], up.prices)
    call_command("billing_audit")


UPSTREAM_ERRORS = {
    "openai": (
        "The model failed to generate a response.",
        "The server had an error while processing your request. Sorry about that!",
    ),
    "chat": (
        "The server had an error while processing your request. Sorry about that!",
    ),
    "anthropic": ("Overloaded",),
    "gemini": (fake_gemini.STREAM_ERROR,),
}


@pytest.mark.parametrize("up", KINDS, indirect=True)
def test_an_upstream_error_mid_stream_reaches_the_client_once(relay, up, alice):
    up.configure(error_after=2)
    before = alice.wallet.balance
    events, record = cut_stream(relay, alice, up)
    [failed] = failed_events(events)
    messages = UPSTREAM_ERRORS[up.kind]
    assert failed["response"]["error"]["message"] in messages
    # Only the native stream has the upstream's own `error` event to pass on.
    errors = [data for name, data in events if name == "error"]
    assert len(errors) == (1 if up.kind == "openai" else 0)
    assert deltas_of(events) == first_words(up.reply, 2)
    assert record.status == Status.UPSTREAM_ERROR
    assert record.error in messages
    assert len(up.sent) == 1
    assert_charged(alice, before, [record], up.prices)


# -- 7. refusals -----------------------------------------------------------------


def assert_openai_error(response: httpx.Response, status: int, code=None, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert response.headers["x-request-id"].startswith("req_")
    return error


MALFORMED = [
    ("not-json", b'{"model": "gpt-4.1-mini", "input": ', None),
    ("not-an-object", b'["gpt-4.1-mini"]', None),
    ("input-missing", {"model": "gpt-4.1-mini"}, "input"),
    ("input-a-number", {"model": "gpt-4.1-mini", "input": 42}, "input"),
    ("stream-yes", {"model": "gpt-4.1-mini", "input": "hi", "stream": "yes"}, "stream"),
    (
        "max-output-tokens-abc",
        {"model": "gpt-4.1-mini", "input": "hi", "max_output_tokens": "abc"},
        "max_output_tokens",
    ),
    ("model-missing", {"input": "hi"}, "model"),
]


@pytest.mark.parametrize(
    ("body", "param"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_body_is_refused_uncharged(
    relay, alice, channel, fake, body, param
):
    before = alice.wallet.balance
    if isinstance(body, bytes):
        response = httpx.post(
            f"{relay}/responses",
            content=body,
            headers={**auth(alice.secret), "content-type": "application/json"},
        )
    else:
        response = post(relay, alice.secret, body)
    error = assert_openai_error(response, 400, param=param)
    assert error["type"] == "invalid_request_error"
    assert fake.requests == []
    assert_uncharged(alice, before)


def test_the_sdk_sees_each_refusal_as_its_exception_class(
    relay, alice, channel, fake, client
):
    before = alice.wallet.balance
    stranger = openai.OpenAI(base_url=relay, api_key="sk-sb-nobody", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        stranger.responses.create(model="gpt-4.1-mini", input="hi")
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-9-imaginary", input="hi")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4.1-mini", input=42)
    assert caught.value.param == "input"
    assert fake.requests == []
    assert_uncharged(alice, before)


def test_the_upstreams_verdict_on_the_request_comes_back_uncharged(
    relay, alice, channel, fake
):
    before = alice.wallet.balance
    response = post(
        relay,
        alice.secret,
        {"model": "gpt-4.1-mini", "input": "hi", "max_output_tokens": 5},
    )
    error = assert_openai_error(response, 400, param="max_output_tokens")
    assert "minimum" in error["message"]
    assert len(fake.requests) == 1  # a verdict, not a fault: never retried
    record = UsageRecord.objects.get()
    assert (record.status, record.http_status) == (Status.REJECTED, 400)
    assert_uncharged(alice, before)


def test_an_empty_wallet_is_refused_with_402(relay, alice, channel, fake):
    carol = factories.customer("carol", usd="")
    response = post(relay, carol.secret, {"model": "gpt-4.1-mini", "input": "hi"})
    error = assert_openai_error(response, 402, code="insufficient_balance")
    assert "output tokens" in error["message"]
    assert fake.requests == []
    assert_uncharged(carol, 0)


def test_an_embedding_model_is_not_served_here(relay, alice, channel, fake):
    factories.model_price(
        "text-embedding-3-small",
        input_per_mtok="0.02",
        context_window=8_192,
        max_output_tokens=0,
    )
    factories.also_serve(channel, "text-embedding-3-small")
    before = alice.wallet.balance
    response = post(
        relay, alice.secret, {"model": "text-embedding-3-small", "input": "hi"}
    )
    assert_openai_error(response, 404, code="model_not_supported", param="model")
    assert fake.requests == []
    assert_uncharged(alice, before)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/responses", "POST"),
        ("PUT", "/responses", "POST"),
        ("POST", "/responses/resp_123", "GET, DELETE"),
        ("GET", "/responses/resp_123/cancel", "POST"),
        ("DELETE", "/responses/resp_123/input_items", "GET"),
    ],
)
def test_a_wrong_method_is_refused_with_405(
    relay, alice, channel, method, path, allowed
):
    response = httpx.request(method, f"{relay}{path}", headers=auth(alice.secret))
    assert_openai_error(response, 405, code="method_not_allowed")
    assert response.headers["allow"] == allowed


def test_an_item_reference_is_refused_on_a_translated_channel(
    relay, alice, claude_channel, fake_anthropic
):
    before = alice.wallet.balance
    response = post(
        relay,
        alice.secret,
        {
            "model": "claude-3-5-haiku-latest",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "item_reference", "id": "msg_earlier"},
            ],
        },
    )
    error = assert_openai_error(response, 400, param="input[1]")
    assert "item_reference" in error["message"]
    assert fake_anthropic.requests == []
    assert_uncharged(alice, before)


# -- 8. the public model name ------------------------------------------------------

UPSTREAM_NAMES = {
    "openai": "gpt-4.1-mini-2025-04-14",
    "chat": "vendor/gpt-4.1-mini",
    "anthropic": "claude-3-5-haiku-20241022",
    "gemini": "gemini-2.5-flash-preview-09-2025",
}


def upstream_model(up: Upstream) -> str:
    """The model name the upstream was last asked for."""
    request = up.fake.last_request
    if up.kind == "gemini":
        return request.model
    return request.body["model"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_answer_names_the_public_model_not_the_channels(
    relay, up, alice, client, stream
):
    mapped = UPSTREAM_NAMES[up.kind]
    up.channel.model_map = {up.model: mapped}
    up.channel.save()
    before = alice.wallet.balance
    if stream:
        response = post(
            relay, alice.secret, {"model": up.model, "input": QUESTION, "stream": True}
        )
        events = events_of(response.content)
        snapshots = [data["response"] for _, data in events if "response" in data]
        assert [s["model"] for s in snapshots] == [up.model] * len(snapshots) != []
        assert deltas_of(events) == up.reply
        assert mapped not in response.text
    else:
        answer = client.responses.create(model=up.model, input=QUESTION)
        assert answer.model == up.model
        assert answer.output_text == up.reply
        assert mapped not in answer.to_json()
    assert upstream_model(up) == mapped
    record = UsageRecord.objects.get()
    assert record.model == up.model
    assert_charged(alice, before, [record], up.prices)


def test_a_request_only_the_native_channel_can_serve_goes_there(
    relay, alice, channel, fake, client
):
    """
    gpt-4.1-mini is served by a native channel and a chat-only one: what
    only the Responses API can express (an item_reference) must go to the
    native channel, not be refused because the other cannot take it.
    """
    chat_only_channel(fake)
    fake.scenario(CHAT_SCENARIO)
    for _ in range(4):
        answer = client.responses.create(
            model="gpt-4.1-mini",
            input=[
                {"role": "user", "content": QUESTION},
                {"type": "item_reference", "id": "msg_earlier"},
                {"role": "user", "content": "And tomorrow?"},
            ],
        )
        assert answer.output_text == fake_openai.DEFAULT_REPLY
    assert len(fake.requests_for(fake_openai.DEFAULT_SCENARIO)) == 4
    assert fake.requests_for(CHAT_SCENARIO) == []
