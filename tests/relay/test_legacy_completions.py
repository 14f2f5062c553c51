"""POST /v1/completions (legacy) through a live Switchboard and the openai SDK."""

from decimal import Decimal

import httpx
import openai
import orjson
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from billing.money import NANO_PER_USD
from relay import tokens
from relay.models import UsageRecord
from tests import factories
from tests.fakes.upstream import (
    DEFAULT_REPLY,
    LEGACY_DEFAULT_MAX_TOKENS,
    expected_completion_usage,
    split_reply,
)
from tests.relay.checks import (
    assert_refused_before_the_upstream,
    assert_refused_uncharged,
)

MODEL = "gpt-4.1-mini"
PROMPT = "Say hello to the test suite"
# gpt-4.1-mini: $0.40 / $0.10 / $1.60 per 1M tokens = 400 / 100 / 1600 nano-USD
INPUT, CACHED, OUTPUT = 400, 100, 1600
START_BALANCE = 10_000_000_000
LONG_REPLY = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def client(relay, alice, channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def expected_cost(usage: dict) -> int:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return (
        (usage["prompt_tokens"] - cached) * INPUT
        + cached * CACHED
        + usage["completion_tokens"] * OUTPUT
    )


def assert_charged(customer, usage: dict, *, stream: bool) -> UsageRecord:
    cost = expected_cost(usage)
    wallet = customer.wallet
    assert START_BALANCE - wallet.balance == cost
    assert wallet.held == 0
    assert not Hold.objects.exists()
    record = UsageRecord.objects.get()
    assert record.endpoint == "completions"
    assert record.model == MODEL
    assert record.stream is stream
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert record.prompt_tokens == usage["prompt_tokens"]
    assert record.completion_tokens == usage["completion_tokens"]
    assert (record.input_price, record.cached_input_price, record.output_price) == (
        INPUT,
        CACHED,
        OUTPUT,
    )
    assert record.cost == record.charged == cost
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.USAGE).amount == -cost
    call_command("billing_audit")
    return record


def post(relay, secret, body, **kwargs):
    return httpx.post(
        f"{relay}/completions",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
        **kwargs,
    )


def sse_events(text: str) -> list:
    events = []
    for block in text.split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else orjson.loads(data))
    return events


def test_it_completes_and_charges_exactly(client, alice, fake):
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=4)

    usage = expected_completion_usage(PROMPT, max_tokens=4)
    assert reply.object == "text_completion"
    assert reply.id.startswith("cmpl-")
    [choice] = reply.choices
    assert choice.text == "".join(split_reply(DEFAULT_REPLY)[:4])
    assert choice.finish_reason == "length"
    assert reply.usage.prompt_tokens == usage["prompt_tokens"]
    assert reply.usage.completion_tokens == usage["completion_tokens"] == 4
    sent = fake.last_request
    assert sent.path == "/v1/completions"
    assert sent.api_key == "sk-upstream-secret-1234"
    assert sent.body == {"model": MODEL, "prompt": PROMPT, "max_tokens": 4}
    record = assert_charged(alice, usage, stream=False)
    assert record.request_id == reply._request_id


def test_it_bills_cached_prompt_tokens_at_the_cached_price(client, alice, fake):
    fake.scenario(cached_tokens=4)

    client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3)

    usage = expected_completion_usage(PROMPT, max_tokens=3, cached_tokens=4)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert UsageRecord.objects.get().cached_tokens == 4
    assert_charged(alice, usage, stream=False)


def test_it_charges_every_prompt_and_choice(client, alice, fake):
    prompts = ["one two", "three four five"]

    reply = client.completions.create(
        model=MODEL, prompt=prompts, n=2, max_tokens=3, echo=True
    )

    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[2].text == "three four fiveHello! This is "
    usage = expected_completion_usage(prompts, max_tokens=3, n=2)
    assert usage["completion_tokens"] == 3 * 2 * 2
    assert fake.last_request.body["echo"] is True
    assert_charged(alice, usage, stream=False)


def test_it_streams_without_usage_unless_asked(client, alice, fake):
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, stream=True))

    assert "".join(c.choices[0].text for c in chunks) == DEFAULT_REPLY
    assert all(c.object == "text_completion" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The usage-only chunk the relay asked for was kept from the client.
    assert all(len(c.choices) == 1 for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert fake.last_request.body == {
        "model": MODEL,
        "prompt": PROMPT,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert_charged(alice, expected_completion_usage(PROMPT), stream=True)


def test_it_forwards_stream_usage_when_asked(client, alice, fake):
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt=PROMPT,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    usage = expected_completion_usage(PROMPT, max_tokens=5)
    *text_chunks, usage_chunk = chunks
    assert "".join(c.choices[0].text for c in text_chunks) == "".join(
        split_reply(DEFAULT_REPLY)[:5]
    )
    assert text_chunks[-1].choices[0].finish_reason == "length"
    assert usage_chunk.choices == []
    assert usage_chunk.usage.prompt_tokens == usage["prompt_tokens"]
    assert usage_chunk.usage.completion_tokens == usage["completion_tokens"]
    assert fake.last_request.body["stream_options"] == {"include_usage": True}
    record = assert_charged(alice, usage, stream=True)
    assert record.ttfb_ms is not None


def test_the_raw_stream_ends_with_done_after_settling(relay, alice, channel, fake):
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 2, "stream": True}

    response = post(relay, alice.secret, body)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    *events, done = sse_events(response.text)
    assert done == "[DONE]"
    assert [e["choices"][0]["text"] for e in events] == ["Hello! ", "This ", ""]
    assert all(e["object"] == "text_completion" for e in events)
    assert_charged(alice, expected_completion_usage(PROMPT, max_tokens=2), stream=True)


def set_balance(customer, nano: int) -> None:
    """Leave `customer` with exactly `nano` nano-USD, ledger included."""
    customer.set_balance(Decimal(nano) / NANO_PER_USD, reference=f"set-{nano}")


def test_the_hold_without_max_tokens_is_the_api_default_of_16(
    relay, alice, channel, fake
):
    # gpt-4.1-mini may write 32,768 tokens ($0.05); the API's default is 16.
    hold = tokens.estimate(PROMPT) * INPUT + LEGACY_DEFAULT_MAX_TOKENS * OUTPUT
    assert hold < 32_768 * OUTPUT
    fake.scenario(reply=LONG_REPLY)
    body = {"model": MODEL, "prompt": PROMPT}

    set_balance(alice, hold - 1)
    refused = post(relay, alice.secret, body)
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "insufficient_balance"
    assert fake.request_counts.total() == 0

    set_balance(alice, hold)
    served = post(relay, alice.secret, body)
    assert served.status_code == 200, served.text
    # The upstream applied the same default: 16 tokens at most, never more.
    assert "max_tokens" not in fake.last_request.body
    [choice] = served.json()["choices"]
    assert choice["text"] == "".join(split_reply(LONG_REPLY)[:16])
    assert choice["finish_reason"] == "length"
    usage = expected_completion_usage(PROMPT, LONG_REPLY)
    assert usage["completion_tokens"] == 16
    wallet = alice.wallet
    assert hold - wallet.balance == expected_cost(usage)
    assert wallet.held == 0
    assert not Hold.objects.exists()
    call_command("billing_audit")


def test_an_explicit_max_tokens_sizes_the_hold(relay, alice, channel, fake):
    set_balance(alice, 100_000)  # $0.0001
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 100}

    refused = post(relay, alice.secret, body)  # 100 x 1600 = 160,000 > 100,000
    assert refused.status_code == 402
    assert "max_tokens" in refused.json()["error"]["message"]
    served = post(relay, alice.secret, {**body, "max_tokens": 50})
    assert served.status_code == 200
    assert fake.request_counts.total() == 1


@pytest.mark.parametrize(
    "body", factories.bodies_lacking(MODEL, "prompt", None, [], 42)
)
def test_a_missing_prompt_is_refused_before_the_upstream(
    relay, alice, channel, fake, body
):
    response = post(relay, alice.secret, body)

    assert_refused_before_the_upstream(response, "prompt", alice, START_BALANCE, fake)


def test_the_sdk_sees_refusals_as_its_exception_classes(client, alice, fake):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt=[])
    assert caught.value.body["param"] == "prompt"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt=PROMPT)
    assert fake.request_counts.total() == 0


def test_an_upstream_verdict_on_the_request_comes_back_uncharged(
    relay, alice, channel, fake
):
    body = {"model": MODEL, "prompt": PROMPT, "n": 3, "best_of": 2}

    response = post(relay, alice.secret, body)

    assert_refused_uncharged(response, 400, "best_of", alice, START_BALANCE)
    assert fake.request_counts.total() == 1
    record = UsageRecord.objects.get()
    assert (record.endpoint, record.status, record.charged) == (
        "completions",
        UsageRecord.Status.REJECTED,
        0,
    )


def test_a_stream_cut_by_the_upstream_is_charged_for_what_was_produced(
    relay, alice, channel, fake
):
    fake.scenario(drop_after_chunks=2)
    body = {"model": MODEL, "prompt": PROMPT, "stream": True}

    response = post(relay, alice.secret, body)

    assert response.status_code == 200
    *events, closing = sse_events(response.text)
    assert [e["choices"][0]["text"] for e in events] == ["Hello! ", "This "]
    assert closing["error"]["code"] == "upstream_stream_closed"
    record = UsageRecord.objects.get()
    assert record.endpoint == "completions"
    assert record.status == UsageRecord.Status.UPSTREAM_CLOSED
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    # Estimated from the legacy chunks' text: what reached the client.
    assert record.completion_tokens == tokens.count("Hello! This ")
    assert record.prompt_tokens == tokens.count(PROMPT)
    assert START_BALANCE - alice.wallet.balance == record.charged == record.cost > 0
    assert alice.wallet.held == 0
    call_command("billing_audit")


def test_a_stream_without_upstream_usage_is_estimated_from_its_text(
    client, alice, fake
):
    fake.scenario(usage_in_stream=False)

    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, stream=True))

    assert "".join(c.choices[0].text for c in chunks) == DEFAULT_REPLY
    record = UsageRecord.objects.get()
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert record.completion_tokens == tokens.count(DEFAULT_REPLY)
    assert record.prompt_tokens == tokens.count(PROMPT)
    assert START_BALANCE - alice.wallet.balance == record.charged == record.cost > 0
    call_command("billing_audit")
