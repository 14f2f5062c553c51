"""
The translation layer's fixes, each shown on the live relay: cut Anthropic
streams billed by the buckets Anthropic reported, upstream errors passed on
exactly once, public model names in every answer, cache writes in OpenAI's
usage object.
"""

from dataclasses import dataclass

import httpx
import orjson
import pytest

from billing.models import Hold, LedgerEntry
from relay import tokens
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes.anthropic import input_tokens
from tests.fakes.gemini import STREAM_ERROR
from tests.fakes.upstream import status_error

CLAUDE = "claude-3-5-haiku-latest"
CLAUDE_UPSTREAM = "claude-3-5-haiku-20241022"
GPT = "gpt-4.1-mini"
GPT_UPSTREAM = "upstream-name"
GEMINI = "gemini-2.5-flash"
# nano-USD per token (USD per 1M tokens x 1000), from tests/conftest.py.
CLAUDE_INPUT, CLAUDE_READ, CLAUDE_WRITE, CLAUDE_OUTPUT = 800, 80, 1000, 4000
GPT_INPUT, GPT_OUTPUT = 400, 1600
GEMINI_INPUT, GEMINI_OUTPUT = 300, 2500

LONG_REPLY = " ".join(f"word{i}" for i in range(40))
# Long enough for cache buckets that dwarf the rest of the prompt.
SYSTEM_WORDS = 1500
SYSTEM = " ".join(["context"] * SYSTEM_WORDS)
QUESTION = "Tell me"
CACHE_READ, CACHE_WRITE = 1000, 400
# What FakeAnthropic counts: 3, the system's words, 3 + the question's words.
PROMPT = 3 + SYSTEM_WORDS + 3 + 2
DROP_AFTER = 5


def post(relay: str, path: str, customer, body: dict) -> httpx.Response:
    return httpx.post(
        f"{relay}{path}",
        json=body,
        headers={"authorization": f"Bearer {customer.secret}"},
        timeout=10,
    )


def payloads(response: httpx.Response) -> list:
    """Return the data of every server-sent event, parsed where it is JSON."""
    found = []
    for block in response.content.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(
            line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")
        )
        if data:
            found.append(data if data == b"[DONE]" else orjson.loads(data))
    return found


def error_events(events: list) -> list[dict]:
    """OpenAI's `{"error": ...}` chunks and Anthropic's `error` events."""
    return [
        e for e in events if isinstance(e, dict) and isinstance(e.get("error"), dict)
    ]


def chat_text(events: list) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices") or ()
    )


def messages_text(events: list) -> str:
    return "".join(
        event["delta"].get("text", "")
        for event in events
        if isinstance(event, dict) and event.get("type") == "content_block_delta"
    )


def responses_text(events: list) -> str:
    return "".join(
        event["delta"]
        for event in events
        if isinstance(event, dict) and event.get("type") == "response.output_text.delta"
    )


def assert_charged(customer, before: int, response, expected: int) -> UsageRecord:
    """Return the request's record after checking it charged `expected` once."""
    request_id = response.headers["x-request-id"]
    record = UsageRecord.objects.get(request_id=request_id)
    assert record.cost == record.charged == expected > 0
    assert before - customer.wallet.balance == expected
    ledger = LedgerEntry.objects.get(reference=f"usage:{request_id}")
    assert ledger.amount == -expected
    assert customer.wallet.held == 0
    assert not Hold.objects.exists()
    return record


def claude_cost(prompt: int, read: int, write: int, completion: int) -> int:
    return (
        (prompt - read - write) * CLAUDE_INPUT
        + read * CLAUDE_READ
        + write * CLAUDE_WRITE
        + completion * CLAUDE_OUTPUT
    )


# -- a broken Anthropic stream bills the buckets Anthropic reported -----------


CUT_STREAMS = {
    "chat.completions": (
        "/chat/completions",
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": QUESTION},
            ]
        },
        chat_text,
    ),
    "messages": (
        "/messages",
        {
            "system": SYSTEM,
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": QUESTION}],
        },
        messages_text,
    ),
    "responses": (
        "/responses",
        {"instructions": SYSTEM, "input": QUESTION},
        responses_text,
    ),
}


@pytest.mark.parametrize("endpoint", list(CUT_STREAMS))
def test_a_cut_anthropic_stream_bills_the_reported_cache_buckets(
    endpoint, relay, alice, claude_channel, fake_anthropic
):
    path, body, text_of = CUT_STREAMS[endpoint]
    fake_anthropic.configure(
        reply=LONG_REPLY,
        cache_read=CACHE_READ,
        cache_creation=CACHE_WRITE,
        drop_after=DROP_AFTER,
    )
    before = alice.wallet.balance
    response = post(relay, path, alice, {"model": CLAUDE, "stream": True, **body})
    assert response.status_code == 200
    [sent] = fake_anthropic.requests
    assert input_tokens(sent.body) == PROMPT
    events = payloads(response)
    text = text_of(events)
    assert text == "word0 word1 word2 word3 word4 "
    # The client is told, once, that the stream broke.
    assert len(error_events(events)) == (endpoint != "responses")
    expected = claude_cost(PROMPT, CACHE_READ, CACHE_WRITE, tokens.count(text))
    record = assert_charged(alice, before, response, expected)
    assert record.endpoint == endpoint
    assert record.status == UsageRecord.Status.UPSTREAM_CLOSED
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (
        PROMPT,
        CACHE_READ,
        CACHE_WRITE,
    )
    assert record.completion_tokens == tokens.count(text)
    assert (record.cached_input_price, record.cache_write_price) == (
        CLAUDE_READ,
        CLAUDE_WRITE,
    )


def test_a_cut_responses_stream_ends_in_response_failed(
    relay, alice, claude_channel, fake_anthropic
):
    fake_anthropic.configure(reply=LONG_REPLY, drop_after=DROP_AFTER)
    response = post(
        relay,
        "/responses",
        alice,
        {"model": CLAUDE, "stream": True, "input": QUESTION},
    )
    events = payloads(response)
    failed = [e for e in events if e.get("type") == "response.failed"]
    assert [e["type"] for e in events[-1:]] == ["response.failed"]
    assert len(failed) == 1
    assert failed[0]["response"]["error"]["code"] == "upstream_stream_closed"


# -- a mid-stream upstream error reaches the client exactly once --------------


def test_an_openai_error_mid_chat_is_passed_on_once(relay, alice, channel, fake):
    fake.scenario(reply=LONG_REPLY, error_after_chunks=3)
    messages = [{"role": "user", "content": QUESTION}]
    before = alice.wallet.balance
    response = post(
        relay,
        "/chat/completions",
        alice,
        {"model": GPT, "stream": True, "messages": messages},
    )
    events = payloads(response)
    upstream_error = status_error(500)
    assert error_events(events) == [upstream_error]
    assert events[-1] == upstream_error
    assert b"[DONE]" not in response.content
    text = chat_text(events)
    assert text == "word0 word1 word2 "
    prompt = tokens.estimate_prompt(messages)
    expected = prompt * GPT_INPUT + tokens.count(text) * GPT_OUTPUT
    record = assert_charged(alice, before, response, expected)
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR
    assert record.error == upstream_error["error"]["message"]
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert record.completion_tokens == tokens.count(text)


@dataclass
class CutChat:
    """A streamed chat its upstream broke off with an error."""

    before: int  # the customer's balance before it
    response: httpx.Response
    error: dict
    text: str


def chat_cut_after_three_words(relay, customer, upstream, model) -> CutChat:
    """
    Stream a chat from `model` whose upstream (FakeAnthropic or FakeGemini)
    sends an error after three words; check the error is the stream's one
    last event and no [DONE] follows.
    """
    upstream.configure(reply=LONG_REPLY, error_after=3)
    before = customer.wallet.balance
    response = post(
        relay,
        "/chat/completions",
        customer,
        {
            "model": model,
            "stream": True,
            "messages": [{"role": "user", "content": QUESTION}],
        },
    )
    events = payloads(response)
    [error] = error_events(events)
    assert events[-1] is error
    assert b"[DONE]" not in response.content
    text = chat_text(events)
    assert text == "word0 word1 word2 "
    return CutChat(before, response, error, text)


def test_an_anthropic_error_mid_chat_is_passed_on_once(
    relay, alice, claude_channel, fake_anthropic
):
    cut = chat_cut_after_three_words(relay, alice, fake_anthropic, CLAUDE)
    assert cut.error["error"]["message"] == "Overloaded"
    text = cut.text
    # message_start reported the input: 3 + 3 + the question's two words.
    expected = claude_cost(8, 0, 0, tokens.count(text))
    record = assert_charged(alice, cut.before, cut.response, expected)
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR
    assert record.error == "Overloaded"
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert (record.prompt_tokens, record.completion_tokens) == (8, tokens.count(text))


def test_an_anthropic_error_mid_message_is_passed_through_once(
    relay, alice, claude_channel, fake_anthropic
):
    fake_anthropic.configure(reply=LONG_REPLY, error_after=3)
    before = alice.wallet.balance
    response = post(
        relay,
        "/messages",
        alice,
        {
            "model": CLAUDE,
            "stream": True,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": QUESTION}],
        },
    )
    events = payloads(response)
    [error] = error_events(events)
    assert error == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert events[-1] is error
    assert not [e for e in events if e.get("type") == "message_stop"]
    text = messages_text(events)
    assert text == "word0 word1 word2 "
    expected = claude_cost(8, 0, 0, tokens.count(text))
    record = assert_charged(alice, before, response, expected)
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR
    assert record.error == "Overloaded"
    assert record.usage_source == UsageRecord.Source.ESTIMATED


def test_an_openai_error_mid_translated_message_is_passed_on_once(
    relay, alice, channel, fake
):
    fake.scenario(reply=LONG_REPLY, error_after_chunks=3)
    body = {
        "model": GPT,
        "stream": True,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    before = alice.wallet.balance
    response = post(relay, "/messages", alice, body)
    events = payloads(response)
    upstream_message = status_error(500)["error"]["message"]
    [error] = error_events(events)
    assert error == {
        "type": "error",
        "error": {"type": "api_error", "message": upstream_message},
    }
    assert events[-1] is error
    assert not [e for e in events if e.get("type") == "message_stop"]
    text = messages_text(events)
    assert text == "word0 word1 word2 "
    prompt = tokens.estimate_turns(body["messages"], "", tokens.count)
    expected = prompt * GPT_INPUT + tokens.count(text) * GPT_OUTPUT
    record = assert_charged(alice, before, response, expected)
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR
    assert record.error == upstream_message
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert record.completion_tokens == tokens.count(text)


def test_a_gemini_error_mid_chat_is_passed_on_once(
    relay, alice, gemini_channel, fake_gemini
):
    cut = chat_cut_after_three_words(relay, alice, fake_gemini, GEMINI)
    assert cut.error["error"]["message"] == STREAM_ERROR
    # Every Gemini chunk carries the usage so far: the upstream's own count
    # of what it produced (1 + 2 prompt tokens, 3 words) is what is billed.
    expected = 3 * GEMINI_INPUT + 3 * GEMINI_OUTPUT
    record = assert_charged(alice, cut.before, cut.response, expected)
    assert record.status == UsageRecord.Status.UPSTREAM_ERROR
    assert record.error == STREAM_ERROR
    assert (record.prompt_tokens, record.completion_tokens) == (3, 3)


# -- answers name the public model, never the channel's mapping ----------------


def models_named(value) -> list[str]:
    """Return every `model` field anywhere in a JSON value."""
    if isinstance(value, dict):
        found = [value["model"]] if isinstance(value.get("model"), str) else []
        for inner in value.values():
            found += models_named(inner)
        return found
    if isinstance(value, list):
        return [name for inner in value for name in models_named(inner)]
    return []


def models_answered(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        return models_named(payloads(response))
    return models_named(response.json())


@pytest.fixture
def mapped_channel(db, alice, fake) -> Channel:
    factories.model_price(
        "text-embedding-3-small",
        input_per_mtok="0.02",
        context_window=8_192,
        max_output_tokens=0,
    )
    return factories.channel(
        "mapped-openai",
        fake.url(),
        [GPT, "text-embedding-3-small"],
        key="sk-upstream-mapped",
        model_map={GPT: GPT_UPSTREAM, "text-embedding-3-small": "upstream-embed"},
    )


MESSAGE = [{"role": "user", "content": "Say hello"}]


def whole_and_streamed(model: str, *paths: str) -> list[tuple[str, dict]]:
    """A request for `model` to each of `paths`, then the same streamed."""
    bodies = {
        "/chat/completions": {"model": model, "messages": MESSAGE},
        "/messages": {"model": model, "max_tokens": 50, "messages": MESSAGE},
        "/completions": {"model": model, "prompt": "Say hello"},
        "/responses": {"model": model, "input": "Say hello"},
    }
    # The OpenAI formats report a stream's usage only when asked.
    usage = {"stream_options": {"include_usage": True}}
    asks_usage = {"/chat/completions", "/completions"}
    requests = []
    for path in paths:
        body = bodies[path]
        streamed = {**body, "stream": True, **(usage if path in asks_usage else {})}
        requests += [(path, body), (path, streamed)]
    return requests


OPENAI_MAPPED = [
    *whole_and_streamed(
        GPT, "/chat/completions", "/messages", "/completions", "/responses"
    ),
    ("/embeddings", {"model": "text-embedding-3-small", "input": "Say hello"}),
]


@pytest.mark.parametrize(("path", "body"), OPENAI_MAPPED)
def test_a_mapped_openai_model_is_answered_by_its_public_name(
    path, body, relay, alice, mapped_channel, fake
):
    response = post(relay, path, alice, body)
    named = models_answered(response)
    assert named and set(named) == {body["model"]}
    upstream = mapped_channel.model_map[body["model"]]
    assert fake.last_request.body["model"] == upstream


@pytest.fixture
def mapped_claude_channel(claude_channel) -> Channel:
    claude_channel.model_map = {CLAUDE: CLAUDE_UPSTREAM}
    claude_channel.save()
    return claude_channel


CLAUDE_MAPPED = whole_and_streamed(
    CLAUDE, "/chat/completions", "/messages", "/responses"
)


@pytest.mark.parametrize(("path", "body"), CLAUDE_MAPPED)
def test_a_mapped_claude_model_is_answered_by_its_public_name(
    path, body, relay, alice, mapped_claude_channel, fake_anthropic
):
    response = post(relay, path, alice, body)
    named = models_answered(response)
    assert named and set(named) == {CLAUDE}
    assert fake_anthropic.last_request.body["model"] == CLAUDE_UPSTREAM


# -- cache writes appear in OpenAI's usage object ------------------------------


def reconciled(usage: dict) -> int:
    """Return the charge a client computes from an OpenAI usage object."""
    details = usage["prompt_tokens_details"]
    read, write = details["cached_tokens"], details["cache_write_tokens"]
    return (
        (usage["prompt_tokens"] - read - write) * CLAUDE_INPUT
        + read * CLAUDE_READ
        + write * CLAUDE_WRITE
        + usage["completion_tokens"] * CLAUDE_OUTPUT
    )


CACHED_CHAT = {
    "model": CLAUDE,
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ],
}


def test_cache_writes_reconcile_a_chat_answer_with_its_charge(
    relay, alice, claude_channel, fake_anthropic
):
    fake_anthropic.configure(cache_read=CACHE_READ, cache_creation=CACHE_WRITE)
    before = alice.wallet.balance
    response = post(relay, "/chat/completions", alice, CACHED_CHAT)
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == PROMPT
    assert usage["prompt_tokens_details"] == {
        "cached_tokens": CACHE_READ,
        "cache_write_tokens": CACHE_WRITE,
    }
    record = assert_charged(alice, before, response, reconciled(usage))
    assert record.cache_write_tokens == CACHE_WRITE


def test_cache_writes_reconcile_a_chat_stream_with_its_charge(
    relay, alice, claude_channel, fake_anthropic
):
    fake_anthropic.configure(cache_read=CACHE_READ, cache_creation=CACHE_WRITE)
    before = alice.wallet.balance
    response = post(
        relay,
        "/chat/completions",
        alice,
        {**CACHED_CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    events = payloads(response)
    assert events[-1] == b"[DONE]"
    [usage] = [e["usage"] for e in events[:-1] if e.get("usage")]
    assert usage["prompt_tokens"] == PROMPT
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == CACHE_WRITE
    assert usage["prompt_tokens_details"]["cached_tokens"] == CACHE_READ
    assert_charged(alice, before, response, reconciled(usage))
