"""Prompt-cache buckets: reads and writes are parts of the prompt."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import ModelPrice
from billing.money import NANO_PER_USD
from billing.pricing import TokenUsage, UnitPrices, usage_cost

# Claude 3.5 Sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
SONNET = UnitPrices(
    input=3000, cached_input=300, output=15000, cache_write=3750, image_input=3000
)
tokens = st.integers(min_value=0, max_value=2_000_000)


@settings(max_examples=200)
@given(fresh=tokens, read=tokens, written=tokens, completion=tokens)
def test_each_bucket_is_billed_at_its_own_price(fresh, read, written, completion):
    usage = TokenUsage(
        prompt=fresh + read + written,
        cached=read,
        cache_write=written,
        completion=completion,
    )
    usd = (
        Decimal(fresh) * Decimal("3")
        + Decimal(read) * Decimal("0.30")
        + Decimal(written) * Decimal("3.75")
        + Decimal(completion) * Decimal("15")
    ) / 1_000_000
    assert usage_cost(usage, SONNET) == usd * NANO_PER_USD


def test_buckets_never_exceed_the_prompt():
    # A provider reporting more cached tokens than it was sent bills the
    # prompt once, never more.
    usage = TokenUsage(prompt=10, cached=8, cache_write=8, completion=0)
    assert usage_cost(usage, SONNET) == 8 * 300 + 2 * 3750


def test_an_unpriced_cache_write_is_billed_as_input():
    price = ModelPrice(
        model="claude-3-5-haiku-latest",
        input_per_mtok=Decimal("0.80"),
        cached_input_per_mtok=Decimal("0.08"),
        output_per_mtok=Decimal("4.00"),
    )
    assert UnitPrices.from_model_price(price).cache_write == 800
