"""A flat per-request fee on top of tokens, for models priced that way."""

from decimal import Decimal

import openai
import pytest

from billing.models import ModelPrice
from billing.pricing import TokenUsage, UnitPrices, usage_cost
from relay.models import UsageRecord

PRICES = UnitPrices(
    input=400,
    cached_input=100,
    output=1600,
    cache_write=400,
    image_input=400,
    per_request=25_000_000,
)


def test_the_fee_is_added_once_per_billed_request():
    usage = TokenUsage(prompt=10, completion=5)
    assert usage_cost(usage, PRICES) == 10 * 400 + 5 * 1600
    billed = TokenUsage(prompt=10, completion=5, requests=1)
    assert usage_cost(billed, PRICES) == 10 * 400 + 5 * 1600 + 25_000_000


def test_a_model_price_converts_its_fee_exactly():
    price = ModelPrice(
        model="search-model",
        input_per_mtok=Decimal("2.50"),
        output_per_mtok=Decimal("10.00"),
        per_request_usd=Decimal("0.025"),
    )
    assert UnitPrices.from_model_price(price).per_request == 25_000_000


@pytest.fixture
def fee(prices):
    ModelPrice.objects.filter(model="gpt-4.1-mini").update(
        per_request_usd=Decimal("0.01")
    )


def test_a_served_request_pays_the_fee_and_a_refused_one_does_not(
    relay, alice, channel, fake, fee
):
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    before = alice.wallet.balance
    reply = client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}]
    )
    tokens = reply.usage.prompt_tokens * 400 + reply.usage.completion_tokens * 1600
    assert before - alice.wallet.balance == tokens + 10_000_000
    record = UsageRecord.objects.get()
    assert record.per_request_price == 10_000_000
    assert record.charged == tokens + 10_000_000

    fake.scenario(status=500)
    after_first = alice.wallet.balance
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert alice.wallet.balance == after_first
    assert alice.wallet.held == 0
