"""
The price buckets issue 15 added, charged through a live Switchboard against
the fakes, streamed and not, exact to the nano-USD at the providers'
published figures: Anthropic's 1-hour cache writes (and the holds of
requests that ask for caching), long-context tiers (Claude Sonnet 4.5,
Gemini 2.5 Pro) and GPT Image's text and image input.
"""

from decimal import Decimal

import httpx
import orjson
import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts import roles
from billing.models import LedgerEntry
from billing.pricing import TokenUsage, UnitPrices, usage_cost
from console.usage import cost_breakdown
from relay import endpoints
from relay.formats.usage import usage_from_openai
from relay.models import Channel, UsageRecord
from tests import factories
from tests.console.conftest import client_for, make_staff
from tests.fakes.anthropic import DEFAULT_REPLY, input_tokens
from tests.fakes.gemini import DEFAULT_REPLY as GEMINI_REPLY

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
GEMINI_PRO = "gemini-2.5-pro"
REPLY_WORDS = len(DEFAULT_REPLY.split())
# nano-USD per token, from the providers' pages (billing/migrations/0015).
# Claude Haiku 4.5: $1 input, $0.10 read, $1.25 5-minute write, $2 1-hour
# write, $5 output.
H_INPUT, H_READ, H_WRITE, H_WRITE_1H, H_OUTPUT = 1_000, 100, 1_250, 2_000, 5_000
# Claude Sonnet 4.5 up to 200K input tokens, then above.
S_INPUT, S_OUTPUT = 3_000, 15_000
S_LONG_INPUT, S_LONG_READ, S_LONG_WRITE, S_LONG_WRITE_1H, S_LONG_OUTPUT = (
    6_000,
    600,
    7_500,
    12_000,
    22_500,
)
# Gemini 2.5 Pro above 200k prompt tokens: $2.50 input, $15 output.
G_LONG_INPUT, G_LONG_OUTPUT = 2_500, 15_000
# GPT Image 1: text $5, cached text $1.25, image $10, cached image $2.50,
# output $40; low 1024x1024 is 272 output tokens.
I_TEXT, I_CACHED_TEXT, I_IMAGE, I_CACHED_IMAGE, I_OUTPUT = (
    5_000,
    1_250,
    10_000,
    2_500,
    40_000,
)
GPT_IMAGE_1 = UnitPrices(
    input=I_TEXT,
    cached_input=I_CACHED_TEXT,
    output=I_OUTPUT,
    cache_write=I_TEXT,
    image_input=I_IMAGE,
    cached_image_input=I_CACHED_IMAGE,
)
THRESHOLD = 200_000


@pytest.fixture
def tier_prices(db):
    factories.model_price(
        HAIKU,
        input_per_mtok="1.00",
        cached_input_per_mtok="0.10",
        cache_write_per_mtok="1.25",
        cache_write_1h_per_mtok="2.00",
        output_per_mtok="5.00",
        max_output_tokens=64_000,
    )
    factories.model_price(
        SONNET,
        input_per_mtok="3.00",
        cached_input_per_mtok="0.30",
        cache_write_per_mtok="3.75",
        cache_write_1h_per_mtok="6.00",
        output_per_mtok="15.00",
        long_context_threshold=THRESHOLD,
        long_input_per_mtok="6.00",
        long_cached_input_per_mtok="0.60",
        long_cache_write_per_mtok="7.50",
        long_cache_write_1h_per_mtok="12.00",
        long_output_per_mtok="22.50",
        max_output_tokens=64_000,
        context_window=1_000_000,
    )
    factories.model_price(
        GEMINI_PRO,
        input_per_mtok="1.25",
        cached_input_per_mtok="0.125",
        output_per_mtok="10.00",
        long_context_threshold=THRESHOLD,
        long_input_per_mtok="2.50",
        long_cached_input_per_mtok="0.25",
        long_output_per_mtok="15.00",
        max_output_tokens=65_536,
        context_window=1_048_576,
    )
    factories.model_price(
        "gpt-image-1",
        input_per_mtok="5.00",
        cached_input_per_mtok="1.25",
        image_input_per_mtok="10.00",
        cached_image_input_per_mtok="2.50",
        output_per_mtok="40.00",
        image_output_tokens=factories.GPT_IMAGE_TOKENS,
        max_output_tokens=0,
    )


@pytest.fixture
def claude(db, tier_prices, fake_anthropic) -> Channel:
    return factories.channel(
        "anthropic-tiers",
        fake_anthropic.base_url,
        [HAIKU, SONNET],
        key="sk-ant-upstream",
        kind=Channel.Kind.ANTHROPIC,
    )


@pytest.fixture
def gemini(db, tier_prices, fake_gemini) -> Channel:
    return factories.channel(
        "gemini-tiers",
        fake_gemini.url(),
        [GEMINI_PRO],
        key="gemini-upstream-key",
        kind=Channel.Kind.GEMINI,
    )


@pytest.fixture
def images(channel, tier_prices) -> Channel:
    return factories.also_serve(channel, "gpt-image-1")


def post(relay: str, customer, path: str, body: dict) -> httpx.Response:
    return httpx.post(
        f"{relay}/{path}",
        json=body,
        headers={
            "authorization": f"Bearer {customer.secret}",
            "anthropic-version": "2023-06-01",
        },
        timeout=30,
    )


def events(response: httpx.Response) -> list[dict]:
    """The JSON payloads of a streamed answer's events."""
    found = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            found.append(orjson.loads(line[6:]))
    return found


def charged_once(customer, before: int) -> UsageRecord:
    """The one usage record, checked against the wallet and the ledger."""
    record = UsageRecord.objects.get()
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert before - customer.wallet.balance == record.charged == record.cost
    assert customer.wallet.held == 0
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.USAGE).amount == -record.cost
    breakdown = cost_breakdown(record)
    assert breakdown.consistent
    assert sum(line.amount for line in breakdown.lines) == record.cost
    call_command("billing_audit")
    return record


def lines(record: UsageRecord) -> dict[str, tuple[int, int]]:
    """The record's breakdown as {bucket: (quantity, unit price)}."""
    return {
        line.bucket: (line.quantity, line.unit_price)
        for line in cost_breakdown(record).lines
    }


# -- Anthropic's 1-hour cache writes ------------------------------------------

CHAT = {
    "model": HAIKU,
    "max_tokens": 100,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello to the tests"},
    ],
}
MESSAGE = {
    "model": HAIKU,
    "max_tokens": 100,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": "Say hello to the tests"}],
}
# The fake's counts for both: the prompt, then 4 read, 5 written of which 3
# for an hour.
PROMPT = input_tokens(MESSAGE)
CACHED_HAIKU_COST = (
    (PROMPT - 9) * H_INPUT
    + 4 * H_READ
    + 2 * H_WRITE
    + 3 * H_WRITE_1H
    + REPLY_WORDS * H_OUTPUT
)


def assert_one_hour_writes(record: UsageRecord) -> None:
    assert (record.prompt_tokens, record.cached_tokens) == (PROMPT, 4)
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (5, 3)
    assert (record.cache_write_price, record.cache_write_1h_price) == (
        H_WRITE,
        H_WRITE_1H,
    )
    assert record.cost == CACHED_HAIKU_COST
    assert lines(record)["cache write"] == (2, H_WRITE)
    assert lines(record)["1-hour cache write"] == (3, H_WRITE_1H)
    assert record.long_context_threshold is None


def test_one_hour_cache_writes_through_chat_completions(
    relay, alice, claude, fake_anthropic
):
    fake_anthropic.configure(cache_read=4, cache_creation=5, cache_creation_1h=3)
    before = alice.wallet.balance

    response = post(relay, alice, "chat/completions", CHAT)

    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == PROMPT
    assert usage["prompt_tokens_details"] == {
        "cached_tokens": 4,
        "cache_write_tokens": 5,
        "cache_write_1h_tokens": 3,
    }
    assert_one_hour_writes(charged_once(alice, before))


@pytest.mark.parametrize("full_delta_usage", [False, True])
def test_one_hour_cache_writes_through_a_chat_stream(
    relay, alice, claude, fake_anthropic, full_delta_usage
):
    fake_anthropic.configure(
        cache_read=4,
        cache_creation=5,
        cache_creation_1h=3,
        full_delta_usage=full_delta_usage,
    )
    before = alice.wallet.balance

    response = post(
        relay,
        alice,
        "chat/completions",
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )

    assert response.status_code == 200
    [usage] = [chunk["usage"] for chunk in events(response) if chunk.get("usage")]
    assert usage["prompt_tokens_details"]["cache_write_1h_tokens"] == 3
    record = charged_once(alice, before)
    assert record.stream
    assert_one_hour_writes(record)


def test_one_hour_cache_writes_of_a_message(relay, alice, claude, fake_anthropic):
    fake_anthropic.configure(cache_read=4, cache_creation=5, cache_creation_1h=3)
    before = alice.wallet.balance

    response = post(relay, alice, "messages", MESSAGE)

    assert response.status_code == 200, response.text
    # Passed through as Anthropic sent it.
    assert response.json()["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 2,
        "ephemeral_1h_input_tokens": 3,
    }
    assert_one_hour_writes(charged_once(alice, before))


@pytest.mark.parametrize("full_delta_usage", [False, True])
def test_one_hour_cache_writes_of_a_message_stream(
    relay, alice, claude, fake_anthropic, full_delta_usage
):
    fake_anthropic.configure(
        cache_read=4,
        cache_creation=5,
        cache_creation_1h=3,
        full_delta_usage=full_delta_usage,
    )
    before = alice.wallet.balance

    response = post(relay, alice, "messages", {**MESSAGE, "stream": True})

    assert response.status_code == 200
    [start] = [e for e in events(response) if e["type"] == "message_start"]
    assert start["message"]["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] == (
        3
    )
    record = charged_once(alice, before)
    assert record.stream
    assert_one_hour_writes(record)


@pytest.mark.parametrize("stream", [False, True])
def test_one_hour_cache_writes_through_the_responses_bridge(
    relay, alice, claude, fake_anthropic, stream
):
    fake_anthropic.configure(cache_read=4, cache_creation=5, cache_creation_1h=3)
    before = alice.wallet.balance
    body = {
        "model": HAIKU,
        "max_output_tokens": 100,
        "instructions": "Be brief.",
        "input": "Say hello to the tests",
        "stream": stream,
    }

    response = post(relay, alice, "responses", body)

    assert response.status_code == 200, response.text
    if stream:
        [done] = [e for e in events(response) if e["type"] == "response.completed"]
        usage = done["response"]["usage"]
    else:
        usage = response.json()["usage"]
    assert usage["input_tokens_details"]["cache_write_1h_tokens"] == 3
    sent = fake_anthropic.last_request.body
    record = charged_once(alice, before)
    assert record.prompt_tokens == input_tokens(sent)
    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (5, 3)
    assert record.cost == (
        (input_tokens(sent) - 9) * H_INPUT
        + 4 * H_READ
        + 2 * H_WRITE
        + 3 * H_WRITE_1H
        + REPLY_WORDS * H_OUTPUT
    )


@pytest.mark.parametrize(
    "path, body, write",
    [
        (
            "messages",
            {
                **MESSAGE,
                "system": [
                    {
                        "type": "text",
                        "text": "Be brief.",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
            },
            H_WRITE_1H,
        ),
        ("messages", {**MESSAGE, "cache_control": {"type": "ephemeral"}}, H_WRITE),
        (
            "chat/completions",
            {
                **CHAT,
                "messages": [
                    {
                        "role": "system",
                        "content": [
                            {
                                "type": "text",
                                "text": "Be brief.",
                                "cache_control": {"type": "ephemeral"},
                            }
                        ],
                    },
                    {"role": "user", "content": "Say hello to the tests"},
                ],
            },
            H_WRITE,
        ),
    ],
    ids=["message-1h", "message-5m", "chat-5m"],
)
def test_the_hold_covers_the_prompt_written_to_the_cache(
    relay, alice, claude, fake_anthropic, path, body, write
):
    """Asked to cache, the whole prompt may be charged as written: the hold
    is the prompt at the write price of the longest lifetime asked."""
    endpoint = endpoints.MESSAGES if path == "messages" else endpoints.CHAT_COMPLETIONS
    estimate = endpoint.prompt_tokens(body)
    hold = estimate * write + 100 * H_OUTPUT
    fake_anthropic.configure(cache_creation=5, cache_creation_1h=3)

    # Enough for the prompt at the input price, and for all but a nano-USD
    # of the hold: refused before the upstream.
    assert estimate * H_INPUT + 100 * H_OUTPUT < hold
    alice.set_balance(Decimal(hold - 1).scaleb(-9))
    refused = post(relay, alice, path, body)
    assert refused.status_code == 402
    assert fake_anthropic.requests == []

    alice.set_balance(Decimal(hold).scaleb(-9))
    served = post(relay, alice, path, body)
    assert served.status_code == 200, served.text
    # Charged exactly what it used: the hold only reserved.
    record = charged_once(alice, hold)
    prompt = record.prompt_tokens
    assert record.cost == (
        (prompt - 5) * H_INPUT + 2 * H_WRITE + 3 * H_WRITE_1H + REPLY_WORDS * H_OUTPUT
    )
    assert record.cost < hold


# -- long-context tiers ------------------------------------------------------


def long_message(words: int, **fields) -> dict:
    """A Sonnet message whose prompt the fake counts as 6 + `words` tokens."""
    return {
        "model": SONNET,
        "max_tokens": 1_000,
        "messages": [{"role": "user", "content": "hello " * words}],
        **fields,
    }


@pytest.mark.parametrize("stream", [False, True])
def test_a_sonnet_prompt_over_200k_tokens_is_charged_the_long_context_prices(
    relay, alice, claude, fake_anthropic, stream
):
    fake_anthropic.configure(
        cache_read=50_000, cache_creation=30_000, cache_creation_1h=10_000
    )
    before = alice.wallet.balance
    body = long_message(THRESHOLD, stream=stream)

    response = post(relay, alice, "messages", body)

    assert response.status_code == 200, response.text[:300]
    prompt = 6 + THRESHOLD
    record = charged_once(alice, before)
    assert record.prompt_tokens == prompt == input_tokens(body)
    assert record.long_context_threshold == THRESHOLD
    # Every token bucket at its long-context price.
    assert record.cost == (
        (prompt - 80_000) * S_LONG_INPUT
        + 50_000 * S_LONG_READ
        + 20_000 * S_LONG_WRITE
        + 10_000 * S_LONG_WRITE_1H
        + REPLY_WORDS * S_LONG_OUTPUT
    )
    assert (record.input_price, record.cached_input_price, record.output_price) == (
        S_LONG_INPUT,
        S_LONG_READ,
        S_LONG_OUTPUT,
    )
    assert (record.cache_write_price, record.cache_write_1h_price) == (
        S_LONG_WRITE,
        S_LONG_WRITE_1H,
    )


def test_the_same_prompt_through_a_chat_stream_is_charged_the_long_prices(
    relay, alice, claude, fake_anthropic
):
    before = alice.wallet.balance
    body = {
        "model": SONNET,
        "max_tokens": 1_000,
        "stream": True,
        "messages": [{"role": "user", "content": "hello " * THRESHOLD}],
    }

    response = post(relay, alice, "chat/completions", body)

    assert response.status_code == 200
    prompt = input_tokens(fake_anthropic.last_request.body)
    assert prompt > THRESHOLD
    record = charged_once(alice, before)
    assert record.long_context_threshold == THRESHOLD
    assert record.cost == prompt * S_LONG_INPUT + REPLY_WORDS * S_LONG_OUTPUT


def test_a_prompt_at_the_threshold_is_charged_the_standard_prices(
    relay, alice, claude, fake_anthropic
):
    before = alice.wallet.balance
    body = long_message(THRESHOLD - 6)

    response = post(relay, alice, "messages", body)

    assert response.status_code == 200
    record = charged_once(alice, before)
    assert record.prompt_tokens == THRESHOLD
    assert record.long_context_threshold is None
    assert record.cost == THRESHOLD * S_INPUT + REPLY_WORDS * S_OUTPUT
    assert (record.input_price, record.output_price) == (S_INPUT, S_OUTPUT)


@pytest.mark.parametrize(
    "words",
    [
        THRESHOLD,  # estimated above the threshold
        90_000,  # estimated at 180,000: within the margin under it
    ],
)
def test_the_hold_covers_the_long_prices_once_the_estimate_nears_the_threshold(
    relay, alice, claude, fake_anthropic, words
):
    body = long_message(words)
    estimate = endpoints.MESSAGES.prompt_tokens(body)
    assert estimate > THRESHOLD * 0.8
    standard_hold = estimate * S_INPUT + 1_000 * S_OUTPUT
    long_hold = estimate * S_LONG_INPUT + 1_000 * S_LONG_OUTPUT

    # Enough for the standard prices only: refused before the upstream.
    alice.set_balance(Decimal(standard_hold).scaleb(-9))
    refused = post(relay, alice, "messages", body)
    assert refused.status_code == 402
    assert fake_anthropic.requests == []

    alice.set_balance(Decimal(long_hold).scaleb(-9))
    served = post(relay, alice, "messages", body)
    assert served.status_code == 200
    charged_once(alice, long_hold)


def test_a_short_prompt_is_held_at_the_standard_prices(
    relay, alice, claude, fake_anthropic
):
    body = long_message(10)
    estimate = endpoints.MESSAGES.prompt_tokens(body)
    alice.set_balance(Decimal(estimate * S_INPUT + 1_000 * S_OUTPUT).scaleb(-9))

    assert post(relay, alice, "messages", body).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_a_gemini_25_pro_prompt_over_200k_tokens_is_charged_the_long_prices(
    relay, alice, gemini, stream
):
    before = alice.wallet.balance
    body = {
        "model": GEMINI_PRO,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello " * THRESHOLD}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}

    response = post(relay, alice, "chat/completions", body)

    assert response.status_code == 200, response.text[:300]
    record = charged_once(alice, before)
    # The fake counts 1 for the turn and each word.
    assert record.prompt_tokens == THRESHOLD + 1
    assert record.completion_tokens == len(GEMINI_REPLY.split())
    assert record.long_context_threshold == THRESHOLD
    assert record.cost == (
        (THRESHOLD + 1) * G_LONG_INPUT + record.completion_tokens * G_LONG_OUTPUT
    )


def test_the_console_shows_the_long_context_tier(relay, alice, claude, fake_anthropic):
    assert post(relay, alice, "messages", long_message(THRESHOLD)).status_code == 200
    record = UsageRecord.objects.get()
    staff = client_for(make_staff("support@switchboard.test", roles.SUPPORT))

    page = staff.get(reverse("console:usage_detail", args=[record.request_id]))

    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="breakdown-tier"' in text
    assert f"{THRESHOLD + 6} tokens are more than {THRESHOLD}." in text
    assert lines(record)["input"] == (THRESHOLD + 6, S_LONG_INPUT)


# -- GPT Image input ------------------------------------------------------------

# The usage of OpenAI's own example answer (the OpenAPI spec's
# ImagesResponse): the Images API splits the input into text and image
# tokens and reports nothing read from the cache.
SPEC_EXAMPLE_USAGE = {
    "total_tokens": 100,
    "input_tokens": 50,
    "output_tokens": 50,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
}


def test_openais_example_image_usage_is_read_exactly():
    usage = usage_from_openai(SPEC_EXAMPLE_USAGE)

    assert usage == TokenUsage(prompt=50, image_input=40, completion=50)
    # 10 text and 40 image input tokens, 50 output, at GPT Image 1's prices.
    assert usage_cost(usage, GPT_IMAGE_1) == 10 * I_TEXT + 40 * I_IMAGE + 50 * I_OUTPUT


def test_gpt_image_1_text_and_image_input_are_charged_their_own_prices(
    relay, alice, images, fake
):
    fake.scenario(image_input_tokens=1_000)
    before = alice.wallet.balance
    body = {
        "model": "gpt-image-1",
        "prompt": "A lighthouse at dusk",
        "quality": "low",
        "size": "1024x1024",
    }

    response = post(relay, alice, "images/generations", body)

    assert response.status_code == 200, response.text
    # OpenAI's shape, as the fake answers it.
    details = response.json()["usage"]["input_tokens_details"]
    assert details == {"text_tokens": 4, "image_tokens": 1_000}
    record = charged_once(alice, before)
    assert (record.prompt_tokens, record.cached_tokens) == (1_004, 0)
    assert (record.image_input_tokens, record.cached_image_input_tokens) == (1_000, 0)
    assert record.image_input_price == I_IMAGE
    # 4 text, 1,000 image input; 272 output.
    assert record.cost == 4 * I_TEXT + 1_000 * I_IMAGE + 272 * I_OUTPUT
    assert lines(record)["image input"] == (1_000, I_IMAGE)
    assert lines(record)["input"] == (4, I_TEXT)
    assert "cached image input" not in lines(record)
