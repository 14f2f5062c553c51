"""Each request records what its channel's upstream charges us for it."""

from decimal import Decimal

import httpx

from billing.pricing import TokenUsage, UnitPrices, usage_cost
from relay import catalog
from relay.models import ChannelCost, UsageRecord
from tests.fakes.upstream import expected_prompt_tokens

MESSAGES = [{"role": "user", "content": "what does this cost us"}]


def chat(relay, secret, model="gpt-4.1-mini"):
    response = httpx.post(
        f"{relay}/chat/completions",
        json={"model": model, "messages": MESSAGES},
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return UsageRecord.objects.get(request_id=response.headers["x-request-id"])


def test_the_channels_cost_prices_give_the_upstream_cost(relay, channel, alice):
    ChannelCost.objects.create(
        channel=channel,
        model="gpt-4.1-mini",
        input_per_mtok=Decimal("0.30"),
        cached_input_per_mtok=Decimal("0.075"),
        output_per_mtok=Decimal("1.20"),
    )
    catalog.forget()
    record = chat(relay, alice.secret)
    usage = TokenUsage(
        prompt=expected_prompt_tokens(MESSAGES), completion=record.completion_tokens
    )
    cost_prices = UnitPrices(
        input=300, cached_input=75, output=1200, cache_write=300, image_input=300
    )
    assert record.upstream_cost == usage_cost(usage, cost_prices) > 0
    assert record.upstream_cost < record.cost  # a margin


def test_a_model_without_cost_prices_has_an_unknown_upstream_cost(
    relay, channel, alice
):
    ChannelCost.objects.create(
        channel=channel,
        model="gpt-4.1",
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("4"),
    )
    catalog.forget()
    assert chat(relay, alice.secret, "gpt-4.1-mini").upstream_cost is None
    assert chat(relay, alice.secret, "gpt-4.1").upstream_cost > 0
