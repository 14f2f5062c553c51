"""
Every /v1 endpoint checks the type and range of the fields it knows before
anything is held or forwarded, and names the field in the error's `param`.
"""

import httpx
import pytest

from billing.models import Hold, LedgerEntry
from relay.models import UsageRecord
from tests import factories

CHAT = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "gpt-4.1-mini", "prompt": "Say hi", "max_tokens": 5}
EMBEDDING = {"model": "text-embedding-3-small", "input": "hello"}
RESPONSE = {"model": "gpt-4.1-mini", "input": "hi"}
MESSAGE = {
    "model": "gpt-4.1-mini",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}
IMAGE = {"model": "gpt-image-1", "prompt": "A lighthouse"}
LONG = "x" * 100_000


@pytest.fixture
def served(channel):
    """The channel, serving an embedding and an image model besides chat."""
    factories.model_price(
        "text-embedding-3-small",
        input_per_mtok="0.02",
        cached_input_per_mtok=None,
        max_output_tokens=0,
    )
    factories.gpt_image_price()
    return factories.also_serve(channel, "text-embedding-3-small", "gpt-image-1")


def post(relay, secret, path, body):
    return httpx.post(
        f"{relay}/{path}",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def assert_refused_before_anything(response, customer, fake) -> dict:
    assert response.status_code == 400, response.text
    assert fake.request_counts.total() == 0
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    assert not UsageRecord.objects.exists()
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (10_000_000_000, 0)
    return response.json()["error"]


OPENAI_PROBES = [
    # What the security review sent, and was held, forwarded and charged for.
    ("chat/completions", CHAT, {"max_tokens": "abc"}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": -5}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": 0}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": True}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": 1e30}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": 7.5}, "max_tokens"),
    ("chat/completions", CHAT, {"max_tokens": 10**9}, "max_tokens"),
    ("chat/completions", CHAT, {"max_completion_tokens": "9"}, "max_completion_tokens"),
    ("chat/completions", CHAT, {"messages": [5]}, "messages.[0]"),
    ("chat/completions", CHAT, {"messages": "hi"}, "messages"),
    ("chat/completions", CHAT, {"messages": [{"content": "hi"}]}, "messages.[0].role"),
    (
        "chat/completions",
        CHAT,
        {"messages": [{"role": "user", "content": "a"}, {"role": "wizard"}]},
        "messages.[1].role",
    ),
    ("chat/completions", CHAT, {"n": -1}, "n"),
    ("chat/completions", CHAT, {"n": 0}, "n"),
    ("chat/completions", CHAT, {"n": 129}, "n"),
    ("chat/completions", CHAT, {"n": "2"}, "n"),
    ("chat/completions", CHAT, {"stream": "yes"}, "stream"),
    ("chat/completions", CHAT, {"stream": 1}, "stream"),
    ("chat/completions", CHAT, {"temperature": 2.5}, "temperature"),
    ("chat/completions", CHAT, {"temperature": -0.1}, "temperature"),
    ("chat/completions", CHAT, {"temperature": "hot"}, "temperature"),
    ("chat/completions", CHAT, {"top_p": 1.5}, "top_p"),
    ("chat/completions", CHAT, {"presence_penalty": 2.5}, "presence_penalty"),
    ("chat/completions", CHAT, {"frequency_penalty": -3}, "frequency_penalty"),
    ("chat/completions", CHAT, {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("chat/completions", CHAT, {"stop": 5}, "stop"),
    ("chat/completions", CHAT, {"seed": "1"}, "seed"),
    ("chat/completions", CHAT, {"seed": 1.5}, "seed"),
    ("chat/completions", CHAT, {"stream_options": "yes"}, "stream_options"),
    ("chat/completions", CHAT, {"tools": {"type": "function"}}, "tools"),
    ("completions", COMPLETION, {"max_tokens": "abc"}, "max_tokens"),
    ("completions", COMPLETION, {"max_tokens": -5}, "max_tokens"),
    ("completions", COMPLETION, {"n": 0}, "n"),
    ("completions", COMPLETION, {"best_of": 21}, "best_of"),
    ("completions", COMPLETION, {"prompt": 5}, "prompt"),
    ("completions", COMPLETION, {"logprobs": 6}, "logprobs"),
    ("completions", COMPLETION, {"echo": "yes"}, "echo"),
    ("embeddings", EMBEDDING, {"input": 5}, "input"),
    ("embeddings", EMBEDDING, {"input": []}, "input"),
    ("embeddings", EMBEDDING, {"input": [None]}, "input"),
    ("embeddings", EMBEDDING, {"encoding_format": 5}, "encoding_format"),
    ("embeddings", EMBEDDING, {"dimensions": 0}, "dimensions"),
    ("responses", RESPONSE, {"input": 5}, "input"),
    ("responses", RESPONSE, {"input": [5]}, "input"),
    ("responses", RESPONSE, {"max_output_tokens": -1}, "max_output_tokens"),
    ("responses", RESPONSE, {"max_output_tokens": "abc"}, "max_output_tokens"),
    ("responses", RESPONSE, {"max_output_tokens": 10**9}, "max_output_tokens"),
    ("responses", RESPONSE, {"temperature": 2.5}, "temperature"),
    ("responses", RESPONSE, {"stream": "yes"}, "stream"),
    ("responses", RESPONSE, {"instructions": 5}, "instructions"),
    ("responses", RESPONSE, {"include": "reasoning"}, "include"),
    ("responses", RESPONSE, {"store": "no"}, "store"),
    ("images/generations", IMAGE, {"n": -1}, "n"),
    ("images/generations", IMAGE, {"response_format": 5}, "response_format"),
    ("images/generations", IMAGE, {"stream": "yes"}, "stream"),
]


@pytest.mark.parametrize(("path", "body", "change", "param"), OPENAI_PROBES)
def test_an_invalid_field_is_refused_before_the_hold(
    relay, alice, served, fake, path, body, change, param
):
    response = post(relay, alice.secret, path, {**body, **change})
    error = assert_refused_before_anything(response, alice, fake)
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_tokens": "abc"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 1e30}, "max_tokens"),
        ({"messages": [5]}, "messages.[0]"),
        ({"messages": [{"role": "tool", "content": "hi"}]}, "messages.[0].role"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"stream": "yes"}, "stream"),
        ({"system": 5}, "system"),
    ],
)
def test_messages_refuses_an_invalid_field_in_anthropics_shape(
    relay, alice, served, fake, change, field
):
    response = post(relay, alice.secret, "messages", {**MESSAGE, **change})
    assert_refused_before_anything(response, alice, fake)
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert field in body["error"]["message"]


def test_messages_caps_a_max_tokens_above_the_models_limit(relay, alice, served, fake):
    # Claude Code sends one figure for every model: lowered, not refused.
    response = post(relay, alice.secret, "messages", {**MESSAGE, "max_tokens": 10**9})
    assert response.status_code == 200, response.text
    assert fake.last_request.body["max_tokens"] == 32_768


def test_an_echoed_value_is_cut_short(relay, alice, served, fake):
    response = post(
        relay, alice.secret, "chat/completions", {**CHAT, "max_tokens": LONG}
    )
    error = assert_refused_before_anything(response, alice, fake)
    assert error["param"] == "max_tokens"
    assert len(error["message"]) < 300
    assert "x" * 101 not in error["message"]


def test_a_huge_model_name_is_not_echoed(relay, alice, served, fake):
    response = post(relay, alice.secret, "chat/completions", {**CHAT, "model": LONG})
    error = assert_refused_before_anything(response, alice, fake)
    assert error["param"] == "model"
    assert len(error["message"]) < 300


def test_unknown_fields_and_nulls_pass_through_untouched(relay, alice, served, fake):
    extra = {
        "vendor_option": {"nested": [1, "two", None]},
        "response_format": {"type": "json_object"},
        "temperature": None,
        "max_tokens": None,
        "logit_bias": {"50256": -100},
    }
    response = post(relay, alice.secret, "chat/completions", {**CHAT, **extra})
    assert response.status_code == 200, response.text
    sent = fake.last_request.body
    assert sent["vendor_option"] == extra["vendor_option"]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["logit_bias"] == {"50256": -100}


def test_valid_values_at_the_edges_are_served(relay, alice, served, fake):
    edges = {
        "max_tokens": 32_768,
        "n": 1,
        "temperature": 2,
        "top_p": 0,
        "presence_penalty": -2,
        "frequency_penalty": 2.0,
        "stop": ["a", "b", "c", "d"],
        "seed": -1,
        "stream": False,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": "Really."},
            {"role": "user", "content": "hi"},
        ],
    }
    response = post(relay, alice.secret, "chat/completions", {**CHAT, **edges})
    assert response.status_code == 200, response.text
