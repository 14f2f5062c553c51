"""POST /v1/messages: the anthropic SDK (and Claude Code) with a Switchboard key."""

import anthropic
import httpx
import pytest

from billing.models import LedgerEntry
from relay.models import UsageRecord
from tests.fakes.anthropic import DEFAULT_REPLY

MODEL = "claude-3-5-haiku-latest"
# $0.80 input, $0.08 cache read, $1.00 cache write, $4.00 output per 1M.
INPUT, READ, WRITE, OUTPUT = 800, 80, 1000, 4000


@pytest.fixture
def client(relay_server, relay, alice, claude_channel):
    return anthropic.Anthropic(
        base_url=relay_server.base_url, api_key=alice.secret, max_retries=0
    )


def cost(usage) -> int:
    return (
        usage.input_tokens * INPUT
        + (usage.cache_read_input_tokens or 0) * READ
        + (usage.cache_creation_input_tokens or 0) * WRITE
        + usage.output_tokens * OUTPUT
    )


def test_a_message_passes_through_and_is_billed(client, alice, fake_anthropic):
    fake_anthropic.configure(cache_read=2, cache_creation=1)
    before = alice.wallet.balance
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert message.content[0].text == DEFAULT_REPLY
    assert message.usage.cache_read_input_tokens == 2
    sent = fake_anthropic.last_request
    assert sent.api_key == "sk-ant-upstream"
    assert sent.body["system"] == "Be brief."
    assert before - alice.wallet.balance == cost(message.usage) > 0
    record = UsageRecord.objects.get()
    assert record.endpoint == "messages"
    assert (record.cached_tokens, record.cache_write_tokens) == (2, 1)


def test_a_message_stream_passes_through_and_is_billed(client, alice):
    before = alice.wallet.balance
    with client.messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "Say hello"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == DEFAULT_REPLY
    assert before - alice.wallet.balance == cost(final.usage) > 0
    record = UsageRecord.objects.get()
    assert record.stream and record.usage_source == "reported"


def test_the_key_works_as_x_api_key_like_claude_code_sends_it(
    relay, alice, claude_channel
):
    response = httpx.post(
        f"{relay}/messages",
        json={
            "model": MODEL,
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": alice.secret, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    assert response.json()["type"] == "message"


def test_refusals_come_in_anthropics_error_shape(client, alice, channel):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    bad = anthropic.Anthropic(
        base_url=str(client.base_url), api_key="sk-sb-wrong", max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="claude-unknown",
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert not LedgerEntry.objects.filter(kind="usage").exists()
    assert alice.wallet.held == 0


def test_the_upstream_verdict_reaches_the_client_in_its_shape(client, fake_anthropic):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "assistant", "content": "I go first"}],
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "user" in caught.value.body["error"]["message"]
