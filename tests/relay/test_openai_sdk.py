"""The official openai SDK drives a live Switchboard, as customers would."""

import openai
import pytest

from accounts.services import api_key_create
from billing.models import Hold, LedgerEntry
from relay.models import UsageRecord
from tests.fakes.upstream import DEFAULT_REPLY, expected_usage

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the test suite"},
]
# gpt-4.1-mini: $0.40 / $0.10 / $1.60 per 1M tokens = 400 / 100 / 1600 nano-USD
INPUT, CACHED, OUTPUT = 400, 100, 1600


@pytest.fixture
def client(relay, alice, channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def expected_cost(usage: dict) -> int:
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    return (
        (usage["prompt_tokens"] - cached) * INPUT
        + cached * CACHED
        + usage["completion_tokens"] * OUTPUT
    )


def test_it_completes_and_charges_exactly(client, alice, fake):
    before = alice.wallet.balance
    reply = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    usage = expected_usage(MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.usage.prompt_tokens == usage["prompt_tokens"]
    assert reply.usage.completion_tokens == usage["completion_tokens"]
    wallet = alice.wallet
    assert before - wallet.balance == expected_cost(usage)
    assert wallet.held == 0
    assert not Hold.objects.exists()
    record = UsageRecord.objects.get()
    assert record.request_id == reply._request_id
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert record.charged == record.cost == expected_cost(usage)
    assert (record.input_price, record.cached_input_price, record.output_price) == (
        INPUT,
        CACHED,
        OUTPUT,
    )
    # The upstream got our channel's key, never the customer's.
    assert fake.last_request.api_key == "sk-upstream-secret-1234"


def test_it_bills_cached_prompt_tokens_at_the_cached_price(client, alice, fake):
    fake.scenario(cached_tokens=5)
    before = alice.wallet.balance
    client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    usage = expected_usage(MESSAGES, cached_tokens=5)
    assert before - alice.wallet.balance == expected_cost(usage)
    assert UsageRecord.objects.get().cached_tokens == 5


def test_it_streams_without_usage_unless_asked(client, alice, fake):
    before = alice.wallet.balance
    stream = client.chat.completions.create(
        model="gpt-4.1-mini", messages=MESSAGES, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_REPLY
    assert all(c.usage is None for c in chunks)
    # The relay asked upstream for usage anyway: it is what gets billed.
    assert fake.last_request.body["stream_options"] == {"include_usage": True}
    usage = expected_usage(MESSAGES)
    assert before - alice.wallet.balance == expected_cost(usage)
    assert alice.wallet.held == 0


def test_it_forwards_stream_usage_when_asked(client, alice):
    before = alice.wallet.balance
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = expected_usage(MESSAGES)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == usage["prompt_tokens"]
    assert chunks[-1].usage.completion_tokens == usage["completion_tokens"]
    assert before - alice.wallet.balance == expected_cost(usage)
    record = UsageRecord.objects.get()
    assert record.stream and record.ttfb_ms is not None


def test_it_lists_the_models_a_key_may_use(client):
    models = [m.id for m in client.models.list()]
    # "auto" (relay.auto) first: its default tiers are these three.
    assert models == ["auto", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"]


@pytest.mark.parametrize(
    ("secret", "exception"),
    [("sk-sb-not-a-real-key", openai.AuthenticationError), ("", None)],
)
def test_a_bad_key_is_an_authentication_error(relay, channel, alice, secret, exception):
    client = openai.OpenAI(base_url=relay, api_key=secret or "x", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert caught.value.status_code == 401
    assert not LedgerEntry.objects.filter(kind="usage").exists()


def test_errors_surface_as_the_sdk_exception_classes(client, alice, fake):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4.1-mini", messages=[])
    fake.scenario(status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert fake.base_url not in str(caught.value.body)
    wallet = alice.wallet
    assert (wallet.balance, wallet.held) == (10_000_000_000, 0)


def test_refusals_surface_as_their_sdk_exception_classes(relay, channel, alice):
    _, nano_only = api_key_create(
        tenant=alice.tenant, name="nano", allowed_models=["gpt-4.1-nano"]
    )
    client = openai.OpenAI(base_url=relay, api_key=nano_only, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    poor = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        # 128 choices of up to 32,768 gpt-4.1 tokens may cost $33.5; alice
        # has $10.
        poor.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, max_tokens=32_768, n=128
        )
    assert caught.value.status_code == 402
    assert caught.value.code == "insufficient_balance"
