"""
Every metered answer tells what it cost and the balance left: whole answers
in x-switchboard-cost and x-switchboard-balance and as `cost` in their usage
object; streams in their final usage (`cost` and `balance`), since their
headers go out before the charge. Exact to the nano-USD, for every format,
native and translated.
"""

import json
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from billing.models import LedgerEntry, Plan, Wallet
from relay.models import UsageRecord
from tests import factories

GPT = "gpt-4.1-mini"
CLAUDE = "claude-3-5-haiku-latest"
GEMINI = "gemini-2.5-flash"
# nano-USD per token. gpt-4.1-mini: $0.40 input, $0.10 cached, $1.60 output
# per 1M; Claude 3.5 Haiku: $0.80 input, $0.08 cache read, $1.00 cache write,
# $4.00 output; Gemini 2.5 Flash: $0.30 input, $0.075 cached, $2.50 output.
GPT_PRICES = {"input": 400, "cached": 100, "output": 1600}
CLAUDE_PRICES = {"input": 800, "read": 80, "write": 1000, "output": 4000}
GEMINI_PRICES = {"input": 300, "cached": 75, "output": 2500}
# gpt-4.1-mini by Anthropic's buckets: cache writes at the input price.
GPT_AS_ANTHROPIC = {"input": 400, "read": 100, "write": 400, "output": 1600}
HELLO = [{"role": "user", "content": "Say hello"}]
NANO = Decimal("0.000000001")


def usd(nano: int) -> Decimal:
    return nano * NANO


def nano(amount: Decimal | str) -> int:
    value = Decimal(amount) / NANO
    assert value == value.to_integral_value(), amount
    return int(value)


def parsed(text: str):
    """JSON with its numbers as Decimals: the cost read exactly."""
    return json.loads(text, parse_float=Decimal)


def events(body: str) -> list[dict]:
    """The JSON payloads of an SSE body, [DONE] left out."""
    found = []
    for event in body.split("\n\n"):
        data = "\n".join(
            line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")
        )
        if data and data != "[DONE]":
            found.append(parsed(data))
    return found


def post(relay: str, path: str, secret: str, body: dict, **headers) -> httpx.Response:
    response = httpx.post(
        f"{relay}{path}",
        json=body,
        headers={"authorization": f"Bearer {secret}", **headers},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response


def record_of(response: httpx.Response) -> UsageRecord:
    return UsageRecord.objects.get(request_id=response.headers["x-request-id"])


def balance(customer) -> int:
    return Wallet.objects.get(tenant=customer.tenant).balance


def chat_cost(usage: dict, prices=GPT_PRICES) -> int:
    """What an OpenAI usage object costs at `prices` (nano-USD per token)."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return (
        (usage["prompt_tokens"] - cached) * prices["input"]
        + cached * prices["cached"]
        + usage["completion_tokens"] * prices["output"]
    )


def responses_cost(usage: dict) -> int:
    cached = usage["input_tokens_details"]["cached_tokens"]
    return (
        (usage["input_tokens"] - cached) * GPT_PRICES["input"]
        + cached * GPT_PRICES["cached"]
        + usage["output_tokens"] * GPT_PRICES["output"]
    )


def anthropic_cost(usage: dict, prices=CLAUDE_PRICES) -> int:
    return (
        usage["input_tokens"] * prices["input"]
        + usage.get("cache_read_input_tokens", 0) * prices["read"]
        + usage.get("cache_creation_input_tokens", 0) * prices["write"]
        + usage["output_tokens"] * prices["output"]
    )


def assert_told(response: httpx.Response, usage: dict, cost: int, customer) -> None:
    """A whole answer's headers and usage say `cost`, and the balance left."""
    assert cost > 0
    assert response.headers["x-switchboard-cost"] == f"{usd(cost):.9f}"
    assert usage["cost"] == usd(cost)
    assert "x-switchboard-charged" not in response.headers
    assert "charged" not in usage and "balance" not in usage
    left = balance(customer)
    assert response.headers["x-switchboard-balance"] == f"{usd(left):.9f}"
    record = record_of(response)
    assert record.cost == record.charged == cost
    ledger = LedgerEntry.objects.get(reference=f"usage:{record.request_id}")
    assert ledger.amount == -cost


def assert_final_usage(usage: dict, cost: int, customer, before: int) -> None:
    """A stream's final usage says `cost` and the balance after the charge."""
    assert cost > 0
    assert usage["cost"] == usd(cost)
    assert usage["balance"] == usd(balance(customer)) == usd(before - cost)
    assert "charged" not in usage


# -- chat completions and legacy completions ---------------------------------


def test_a_chat_answer_tells_its_cost_and_the_balance_left(relay, channel, alice, fake):
    fake.scenario(cached_tokens=3)
    before = balance(alice)
    response = post(
        relay, "/chat/completions", alice.secret, {"model": GPT, "messages": HELLO}
    )
    usage = parsed(response.text)["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 3
    cost = chat_cost(usage)
    assert_told(response, usage, cost, alice)
    assert balance(alice) == before - cost


def test_the_cost_is_at_the_tenants_plan(relay, channel, alice):
    plan = Plan.objects.create(name="Reseller", multiplier=Decimal("1.25"))
    Wallet.objects.filter(tenant=alice.tenant).update(plan=plan)
    response = post(
        relay, "/chat/completions", alice.secret, {"model": GPT, "messages": HELLO}
    )
    usage = parsed(response.text)["usage"]
    # 1.25 times the list price, to the nearest nano-USD.
    cost = (chat_cost(usage) * 5 + 2) // 4
    assert_told(response, usage, cost, alice)


def test_a_chat_stream_ends_with_its_cost_and_balance(relay, channel, alice):
    before = balance(alice)
    response = post(
        relay,
        "/chat/completions",
        alice.secret,
        {
            "model": GPT,
            "messages": HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.text.endswith("data: [DONE]\n\n")
    # Sent before the charge: a stream's headers carry no cost.
    assert "x-switchboard-cost" not in response.headers
    assert "x-switchboard-balance" not in response.headers
    found = events(response.text)
    final = found[-1]
    assert final["choices"] == [] and final["object"] == "chat.completion.chunk"
    assert all("usage" not in chunk or chunk["usage"] is None for chunk in found[:-1])
    assert_final_usage(final["usage"], chat_cost(final["usage"]), alice, before)
    assert record_of(response).charged == chat_cost(final["usage"])


def test_a_stream_without_usage_asked_shows_none(relay, channel, alice):
    response = post(
        relay,
        "/chat/completions",
        alice.secret,
        {"model": GPT, "messages": HELLO, "stream": True},
    )
    assert all(not chunk.get("usage") for chunk in events(response.text))
    assert record_of(response).charged > 0


def test_the_openai_sdk_reads_the_cost(relay, channel, alice):
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model=GPT, messages=HELLO)
    completion = raw.parse()
    usage = completion.usage.model_dump()
    cost = chat_cost(usage)
    assert raw.headers["x-switchboard-cost"] == f"{usd(cost):.9f}"
    assert Decimal(str(completion.usage.model_extra["cost"])) == usd(cost)
    stream = client.chat.completions.create(
        model=GPT, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    final = list(stream)[-1]
    assert Decimal(str(final.usage.model_extra["cost"])) == usd(
        chat_cost(final.usage.model_dump())
    )
    assert Decimal(str(final.usage.model_extra["balance"])) == usd(balance(alice))


def test_a_legacy_completion_tells_its_cost(relay, channel, alice):
    response = post(
        relay, "/completions", alice.secret, {"model": GPT, "prompt": "Say hello"}
    )
    usage = parsed(response.text)["usage"]
    assert_told(response, usage, chat_cost(usage), alice)


def test_a_translated_chat_stream_from_gemini_ends_with_its_cost(
    relay, gemini_channel, alice
):
    before = balance(alice)
    response = post(
        relay,
        "/chat/completions",
        alice.secret,
        {
            "model": GEMINI,
            "messages": HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    final = events(response.text)[-1]
    assert final["choices"] == [] and final["model"] == GEMINI
    cost = chat_cost(final["usage"], GEMINI_PRICES)
    assert_final_usage(final["usage"], cost, alice, before)


def test_a_translated_chat_answer_from_claude_tells_its_cost(
    relay, claude_channel, alice, fake_anthropic
):
    fake_anthropic.configure(cache_read=2, cache_creation=1)
    response = post(
        relay, "/chat/completions", alice.secret, {"model": CLAUDE, "messages": HELLO}
    )
    usage = parsed(response.text)["usage"]
    details = usage["prompt_tokens_details"]
    uncached = (
        usage["prompt_tokens"]
        - details["cached_tokens"]
        - details["cache_write_tokens"]
    )
    cost = (
        uncached * CLAUDE_PRICES["input"]
        + details["cached_tokens"] * CLAUDE_PRICES["read"]
        + details["cache_write_tokens"] * CLAUDE_PRICES["write"]
        + usage["completion_tokens"] * CLAUDE_PRICES["output"]
    )
    assert_told(response, usage, cost, alice)


# -- Responses API -------------------------------------------------------------


@pytest.fixture
def chat_only(db, fake):
    """An OpenAI-compatible vendor without the Responses API: translated."""
    return factories.channel(
        "chat-only", fake.url(), factories.PRICES, responses_api=False
    )


@pytest.mark.parametrize("served", ["channel", "chat_only"])
def test_a_response_tells_its_cost(relay, alice, served, request):
    request.getfixturevalue(served)
    response = post(relay, "/responses", alice.secret, {"model": GPT, "input": "Hi"})
    usage = parsed(response.text)["usage"]
    assert_told(response, usage, responses_cost(usage), alice)


@pytest.mark.parametrize("served", ["channel", "chat_only"])
def test_a_response_stream_completes_with_its_cost(relay, alice, served, request):
    request.getfixturevalue(served)
    before = balance(alice)
    response = post(
        relay,
        "/responses",
        alice.secret,
        {"model": GPT, "input": "Hi", "stream": True},
    )
    found = events(response.text)
    assert found[-1]["type"] == "response.completed"
    usage = found[-1]["response"]["usage"]
    assert_final_usage(usage, responses_cost(usage), alice, before)
    assert all(
        "cost" not in ((event.get("response") or {}).get("usage") or {})
        for event in found[:-1]
    )


# -- Anthropic Messages --------------------------------------------------------


@pytest.fixture
def gpt_channel(channel):
    return channel


@pytest.mark.parametrize(
    "model, served", [(CLAUDE, "claude_channel"), (GPT, "gpt_channel")]
)
def test_a_message_tells_its_cost(relay, alice, fake_anthropic, model, served, request):
    request.getfixturevalue(served)
    fake_anthropic.configure(cache_read=2, cache_creation=1)
    response = post(
        relay,
        "/messages",
        alice.secret,
        {"model": model, "max_tokens": 100, "messages": HELLO},
        **{"anthropic-version": "2023-06-01"},
    )
    usage = parsed(response.text)["usage"]
    prices = CLAUDE_PRICES if model == CLAUDE else GPT_AS_ANTHROPIC
    if model == CLAUDE:
        assert usage["cache_read_input_tokens"] == 2
    assert_told(response, usage, anthropic_cost(usage, prices), alice)


@pytest.mark.parametrize(
    "model, served", [(CLAUDE, "claude_channel"), (GPT, "gpt_channel")]
)
def test_a_message_stream_ends_with_its_cost(relay, alice, model, served, request):
    request.getfixturevalue(served)
    before = balance(alice)
    response = post(
        relay,
        "/messages",
        alice.secret,
        {"model": model, "max_tokens": 100, "messages": HELLO, "stream": True},
        **{"anthropic-version": "2023-06-01"},
    )
    found = events(response.text)
    assert [event["type"] for event in found[-2:]] == ["message_delta", "message_stop"]
    assert [event["type"] for event in found].count("message_delta") == 1
    started = found[0]["message"]["usage"]
    usage = found[-2]["usage"]
    prices = CLAUDE_PRICES if model == CLAUDE else GPT_AS_ANTHROPIC
    # Anthropic's message_delta may leave the input to message_start.
    whole = {**started, **{k: v for k, v in usage.items() if v is not None}}
    assert_final_usage(usage, anthropic_cost(whole, prices), alice, before)


def test_the_anthropic_sdk_reads_the_cost(relay_server, relay, alice, claude_channel):
    client = anthropic.Anthropic(
        base_url=relay_server.base_url, api_key=alice.secret, max_retries=0
    )
    message = client.messages.create(model=CLAUDE, max_tokens=100, messages=HELLO)
    assert Decimal(str(message.usage.model_extra["cost"])) == usd(
        UsageRecord.objects.get().cost
    )
    with client.messages.stream(model=CLAUDE, max_tokens=100, messages=HELLO) as stream:
        [delta] = [event for event in stream if event.type == "message_delta"]
    cost = UsageRecord.objects.latest("created_at").cost
    assert Decimal(str(delta.usage.model_extra["cost"])) == usd(cost) > 0
    assert Decimal(str(delta.usage.model_extra["balance"])) == usd(balance(alice))


# -- embeddings and images -------------------------------------------------------


def test_embeddings_tell_their_cost(relay, channel, alice):
    factories.model_price(
        "text-embedding-3-small", input_per_mtok="0.02", max_output_tokens=0
    )
    factories.also_serve(channel, "text-embedding-3-small")
    response = post(
        relay,
        "/embeddings",
        alice.secret,
        {"model": "text-embedding-3-small", "input": ["one two three", "four"]},
    )
    usage = parsed(response.text)["usage"]
    assert_told(response, usage, usage["prompt_tokens"] * 20, alice)


@pytest.fixture
def image_channel(channel):
    factories.gpt_image_price()
    factories.model_price(
        "dall-e-3", image_prices={"standard:1024x1024": "0.04"}, max_output_tokens=0
    )
    return factories.also_serve(channel, "gpt-image-1", "dall-e-3")


def test_a_gpt_image_tells_its_cost(relay, image_channel, alice):
    response = post(
        relay,
        "/images/generations",
        alice.secret,
        {"model": "gpt-image-1", "prompt": "A lighthouse at dusk", "quality": "low"},
    )
    usage = parsed(response.text)["usage"]
    # $5 text input, $40 output per 1M tokens.
    cost = usage["input_tokens"] * 5_000 + usage["output_tokens"] * 40_000
    assert usage["input_tokens_details"]["image_tokens"] == 0
    assert_told(response, usage, cost, alice)


def test_an_image_billed_per_image_gets_a_usage_with_its_cost(
    relay, image_channel, alice
):
    response = post(
        relay,
        "/images/generations",
        alice.secret,
        {"model": "dall-e-3", "prompt": "A lighthouse", "n": 1},
    )
    usage = parsed(response.text)["usage"]
    assert usage == {"cost": Decimal("0.040000000")}
    assert_told(response, usage, 40_000_000, alice)


# -- what the customer says of the request --------------------------------------


def test_the_user_and_metadata_are_kept_on_the_usage_record(relay, channel, alice):
    response = post(
        relay,
        "/chat/completions",
        alice.secret,
        {
            "model": GPT,
            "messages": HELLO,
            "user": "customer-42",
            "metadata": {"team": "search", "env": "prod"},
        },
    )
    record = record_of(response)
    assert record.end_user == "customer-42"
    assert record.tags == {"team": "search", "env": "prod"}


def test_a_streams_user_is_kept_too(relay, channel, alice):
    response = post(
        relay,
        "/responses",
        alice.secret,
        {
            "model": GPT,
            "input": "Hi",
            "stream": True,
            "safety_identifier": "hashed-user",
            "metadata": {"feature": "summary"},
        },
    )
    record = record_of(response)
    assert (record.end_user, record.tags) == ("hashed-user", {"feature": "summary"})


def test_anthropics_metadata_user_id_is_the_end_user(relay, alice, claude_channel):
    response = post(
        relay,
        "/messages",
        alice.secret,
        {
            "model": CLAUDE,
            "max_tokens": 20,
            "messages": HELLO,
            "metadata": {"user_id": "user_abc_session_1"},
        },
        **{"anthropic-version": "2023-06-01"},
    )
    record = record_of(response)
    assert (record.end_user, record.tags) == ("user_abc_session_1", {})
