"""POST /v1/embeddings through a live Switchboard, driven by the openai SDK."""

import httpx
import openai
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes.upstream import (
    encode_embedding,
    expected_embedding_tokens,
    expected_embeddings,
)
from tests.relay.checks import (
    assert_refused_before_the_upstream,
    assert_refused_uncharged,
)

MODEL = "text-embedding-3-small"
# $0.02 per 1M input tokens = 20 nano-USD per token; embeddings produce no output.
INPUT_PRICE = 20
INPUTS = ["The quick brown fox", "jumps over the lazy dog", "again"]
START_BALANCE = 10_000_000_000


@pytest.fixture
def embedding_channel(channel):
    factories.model_price(
        MODEL,
        input_per_mtok="0.02",
        cached_input_per_mtok=None,
        context_window=8_192,
        max_output_tokens=0,
    )
    return factories.also_serve(channel, MODEL)


@pytest.fixture
def client(relay, alice, embedding_channel):
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def post(relay, secret, body):
    return httpx.post(
        f"{relay}/embeddings",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def assert_charged(customer, tokens: int) -> UsageRecord:
    """Check the one usage record, the ledger and the wallet for `tokens`."""
    cost = tokens * INPUT_PRICE
    wallet = customer.wallet
    assert START_BALANCE - wallet.balance == cost
    assert wallet.held == 0
    assert not Hold.objects.exists()
    record = UsageRecord.objects.get()
    assert record.endpoint == "embeddings"
    assert record.model == MODEL
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
    assert not record.stream
    assert (record.prompt_tokens, record.completion_tokens) == (tokens, 0)
    assert (record.input_price, record.output_price) == (INPUT_PRICE, 0)
    assert record.cost == record.charged == cost
    usage = LedgerEntry.objects.get(kind=LedgerEntry.Kind.USAGE)
    assert usage.amount == -cost
    call_command("billing_audit")
    return record


def test_the_sdk_default_base64_passes_through_and_decodes_exactly(client, alice, fake):
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=INPUTS)
    result = raw.parse()

    vectors = expected_embeddings(INPUTS, MODEL)
    # The SDK asked for base64 and decoded it: the floats are the fake's own.
    assert [item.embedding for item in result.data] == vectors
    assert [item.index for item in result.data] == [0, 1, 2]
    assert result.model == MODEL
    tokens = expected_embedding_tokens(INPUTS)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (tokens, tokens)
    # The relay sent the SDK's body on untouched, and the answer back unchanged.
    sent = fake.last_request
    assert sent.path == "/v1/embeddings"
    assert sent.api_key == "sk-upstream-secret-1234"
    assert sent.body == {"model": MODEL, "input": INPUTS, "encoding_format": "base64"}
    body = raw.http_response.json()
    assert [item["embedding"] for item in body["data"]] == [
        encode_embedding(vector) for vector in vectors
    ]
    record = assert_charged(alice, tokens)
    assert record.request_id == raw.headers["x-request-id"]


def test_float_encoding_is_passed_through_too(client, alice, fake):
    result = client.embeddings.create(
        model=MODEL, input="The quick brown fox", encoding_format="float", dimensions=4
    )

    assert [item.embedding for item in result.data] == expected_embeddings(
        "The quick brown fox", MODEL, 4
    )
    assert len(result.data[0].embedding) == 4
    assert fake.last_request.body == {
        "model": MODEL,
        "input": "The quick brown fox",
        "encoding_format": "float",
        "dimensions": 4,
    }
    assert_charged(alice, 4)


def test_token_id_inputs_are_charged_by_their_length(client, alice, fake):
    result = client.embeddings.create(
        model=MODEL, input=[[101, 102, 103], [104, 105]], encoding_format="float"
    )

    assert len(result.data) == 2
    assert result.usage.prompt_tokens == 5
    assert_charged(alice, 5)


def test_a_stream_flag_is_not_streamed(relay, alice, embedding_channel, fake):
    body = {"model": MODEL, "input": INPUTS, "stream": True}

    response = post(relay, alice.secret, body)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["object"] == "list"
    assert [item["embedding"] for item in data["data"]] == expected_embeddings(
        INPUTS, MODEL
    )
    # Passed on as sent: no stream_options forced onto an endpoint that has none.
    assert fake.last_request.body == body
    assert_charged(alice, expected_embedding_tokens(INPUTS))


def test_a_mapped_model_name_is_sent_upstream_and_billed_publicly(
    client, alice, fake, embedding_channel
):
    Channel.objects.filter(pk=embedding_channel.pk).update(
        model_map={MODEL: "vendor-embed-small"}
    )

    result = client.embeddings.create(model=MODEL, input=INPUTS)

    assert fake.last_request.body["model"] == "vendor-embed-small"
    assert [item.embedding for item in result.data] == expected_embeddings(
        INPUTS, "vendor-embed-small"
    )
    assert assert_charged(alice, expected_embedding_tokens(INPUTS)).model == MODEL


@pytest.mark.parametrize(
    "body", factories.bodies_lacking(MODEL, "input", None, "", [], 42)
)
def test_a_missing_or_empty_input_is_refused_before_the_upstream(
    relay, alice, embedding_channel, fake, body
):
    response = post(relay, alice.secret, body)

    assert_refused_before_the_upstream(response, "input", alice, START_BALANCE, fake)


def test_the_sdk_sees_refusals_as_its_exception_classes(client, alice, fake):
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input=[])
    assert caught.value.body["param"] == "input"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-9", input="hi")
    assert fake.request_counts.total() == 0
    wallet = alice.wallet
    assert (wallet.balance, wallet.held) == (START_BALANCE, 0)


def test_an_upstream_verdict_on_the_request_comes_back_uncharged(
    relay, alice, embedding_channel, fake
):
    # The relay leaves encoding_format to the upstream, which refuses it.
    body = {"model": MODEL, "input": INPUTS, "encoding_format": "int8"}

    response = post(relay, alice.secret, body)

    assert_refused_uncharged(response, 400, "encoding_format", alice, START_BALANCE)
    assert fake.request_counts.total() == 1
    record = UsageRecord.objects.get()
    assert (record.endpoint, record.status, record.charged) == (
        "embeddings",
        UsageRecord.Status.REJECTED,
        0,
    )


def test_an_azure_channel_embeds_by_deployment(relay, alice, fake):
    factories.model_price(MODEL, input_per_mtok="0.02")
    factories.azure_channel("azure-embed", fake.base_url, {MODEL: "embed-deploy"})
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)

    result = client.embeddings.create(model=MODEL, input=INPUTS)

    sent = fake.last_request
    assert sent.path == "/openai/deployments/embed-deploy/embeddings"
    assert sent.query == "api-version=2024-10-21"
    assert sent.headers["api-key"] == "azure-secret"
    assert [item.embedding for item in result.data] == expected_embeddings(
        INPUTS, "embed-deploy"
    )
    assert assert_charged(alice, expected_embedding_tokens(INPUTS)).model == MODEL


def test_an_empty_wallet_is_refused_with_402(relay, alice, embedding_channel, fake):
    alice.set_balance("0")

    response = post(relay, alice.secret, {"model": MODEL, "input": INPUTS})

    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == "insufficient_balance"
    assert fake.request_counts.total() == 0
    assert not Hold.objects.exists()
    call_command("billing_audit")


def test_the_402_for_embeddings_gives_advice_that_applies(
    relay, alice, embedding_channel
):
    alice.set_balance("0")

    response = post(relay, alice.secret, {"model": MODEL, "input": INPUTS})

    message = response.json()["error"]["message"]
    assert "max_tokens" not in message
    assert "output tokens" not in message
