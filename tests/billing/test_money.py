"""Money units and the one function that prices token usage."""

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import ModelPrice
from billing.money import (
    InexactPrice,
    format_usd,
    format_usd_exact,
    nano_per_token,
    usd_to_nano,
)
from billing.pricing import TokenUsage, UnitPrices, usage_cost

MAX_TOKENS = 10**7

# Every published price is a multiple of $0.001 per 1M tokens; up to $1000.
prices_per_mtok = st.integers(min_value=0, max_value=1_000_000).map(
    lambda thousandths: Decimal(thousandths).scaleb(-3)
)
token_counts = st.integers(min_value=0, max_value=MAX_TOKENS)


def exact_cost(
    prompt: int, cached: int, completion: int, input_, cached_input, output
) -> int:
    """The cost in nano-USD, computed in USD with Decimal and converted once."""
    with localcontext() as ctx:
        ctx.prec = 60
        million = Decimal(1_000_000)
        usd = (
            (prompt - cached) * input_ / million
            + cached * cached_input / million
            + completion * output / million
        )
        return usd_to_nano(usd)


def unit_prices(input_, cached_input, output) -> UnitPrices:
    return UnitPrices(
        input=nano_per_token(input_),
        cached_input=nano_per_token(cached_input),
        output=nano_per_token(output),
        cache_write=nano_per_token(input_),
        image_input=nano_per_token(input_),
    )


@pytest.mark.parametrize(
    "usd, nano",
    [
        ("1", 1_000_000_000),
        ("0.000000001", 1),
        ("1.000000001", 1_000_000_001),
        ("10.50", 10_500_000_000),
        ("-0.5", -500_000_000),
        ("0", 0),
        (Decimal("123456789.123456789"), 123_456_789_123_456_789),
        (3, 3_000_000_000),
    ],
)
def test_it_converts_usd_to_nano_exactly(usd, nano):
    assert usd_to_nano(usd) == nano
    assert isinstance(usd_to_nano(usd), int)


@pytest.mark.parametrize(
    "usd", ["0.0000000001", "1.0000000005", "-0.0000000001", "0.1234567891"]
)
def test_it_refuses_amounts_finer_than_a_nano_usd(usd):
    with pytest.raises(InexactPrice):
        usd_to_nano(usd)


@pytest.mark.parametrize(
    "usd_per_mtok, nano",
    [
        ("0.025", 25),
        ("2.00", 2000),
        ("0.001", 1),
        ("0.10", 100),
        ("0.40", 400),
        ("1.60", 1600),
        ("8", 8000),
        ("0", 0),
        (Decimal("75.000"), 75_000),
    ],
)
def test_it_turns_a_published_price_into_whole_nano_per_token(usd_per_mtok, nano):
    assert nano_per_token(usd_per_mtok) == nano


def test_every_price_step_up_to_a_hundred_dollars_is_a_whole_nano_per_token():
    for thousandths in range(100_001):
        price = Decimal(thousandths).scaleb(-3)
        assert nano_per_token(price) == thousandths


@pytest.mark.parametrize("usd_per_mtok", ["0.0255", "1.0001", "0.0001", "2.5005"])
def test_it_refuses_a_price_with_four_decimals(usd_per_mtok):
    with pytest.raises(InexactPrice, match="3 decimals"):
        nano_per_token(usd_per_mtok)


def test_an_inexact_price_is_a_value_error():
    with pytest.raises(ValueError):
        nano_per_token("0.0001")


@pytest.mark.parametrize(
    "nano, places, text",
    [
        (1_234_567_000, 6, "$1.234567"),
        (-100_000, 6, "-$0.000100"),
        (0, 6, "$0.000000"),
        (1_234_567_890, 6, "$1.234568"),
        (1_234_567_890, 2, "$1.23"),
        (1_236_000_000, 2, "$1.24"),
        (-1_236_000_000, 2, "-$1.24"),
        (1_234_567_890, 9, "$1.234567890"),
        (10_000_000_000, 2, "$10.00"),
        (1, 9, "$0.000000001"),
        (0, 9, "$0.000000000"),
        (100, 7, "$0.0000001"),
    ],
)
def test_it_formats_usd(nano, places, text):
    assert format_usd(nano, places=places) == text


def test_it_formats_six_places_by_default():
    assert format_usd(1) == "$0.000000"
    assert format_usd(500_000_000) == "$0.500000"


@settings(max_examples=200, deadline=None)
@given(
    prompt=token_counts,
    cached=token_counts,
    completion=token_counts,
    input_=prices_per_mtok,
    cached_input=prices_per_mtok,
    output=prices_per_mtok,
)
def test_the_cost_is_the_exact_decimal_cost(
    prompt, cached, completion, input_, cached_input, output
):
    prices = unit_prices(input_, cached_input, output)
    cost = usage_cost(TokenUsage(prompt, cached, completion), prices)
    capped = min(cached, prompt)
    assert type(cost) is int
    assert cost == exact_cost(prompt, capped, completion, input_, cached_input, output)


@settings(max_examples=200, deadline=None)
@given(
    prompt=token_counts,
    extra=st.integers(min_value=1, max_value=MAX_TOKENS),
    completion=token_counts,
    input_=prices_per_mtok,
    cached_input=prices_per_mtok,
    output=prices_per_mtok,
)
def test_cached_tokens_beyond_the_prompt_are_not_billed(
    prompt, extra, completion, input_, cached_input, output
):
    prices = unit_prices(input_, cached_input, output)
    too_many = usage_cost(TokenUsage(prompt, prompt + extra, completion), prices)
    all_cached = usage_cost(TokenUsage(prompt, prompt, completion), prices)
    assert too_many == all_cached


@settings(max_examples=200, deadline=None)
@given(
    prompt=token_counts,
    cached=token_counts,
    completion=token_counts,
    more=st.integers(min_value=1, max_value=MAX_TOKENS),
    input_=prices_per_mtok,
    discount=st.integers(min_value=0, max_value=1000),
    output=prices_per_mtok,
)
def test_the_cost_is_monotone_in_each_token_count(
    prompt, cached, completion, more, input_, discount, output
):
    # Cached input is never dearer than input in a published price.
    cached_input = max(Decimal(0), input_ - Decimal(discount).scaleb(-3))
    prices = unit_prices(input_, cached_input, output)

    def cost(p, c, o):
        return usage_cost(TokenUsage(p, c, o), prices)

    base = cost(prompt, cached, completion)
    assert cost(prompt + more, cached, completion) >= base
    assert cost(prompt, cached, completion + more) >= base
    # More of the prompt served from cache never costs more.
    assert cost(prompt, cached + more, completion) <= base


@settings(max_examples=200, deadline=None)
@given(
    prompt=token_counts,
    cached=token_counts,
    completion=token_counts,
    input_=prices_per_mtok,
    output=prices_per_mtok,
)
def test_a_model_without_a_cached_price_bills_cached_tokens_as_input(
    prompt, cached, completion, input_, output
):
    price = ModelPrice(
        model="no-cache-discount",
        input_per_mtok=input_,
        cached_input_per_mtok=None,
        output_per_mtok=output,
    )
    prices = UnitPrices.from_model_price(price)
    assert prices.cached_input == prices.input == nano_per_token(input_)
    cost = usage_cost(TokenUsage(prompt, cached, completion), prices)
    assert cost == exact_cost(prompt, 0, completion, input_, input_, output)
    assert cost == usage_cost(TokenUsage(prompt, 0, completion), prices)


def test_a_model_price_converts_each_bucket():
    price = ModelPrice(
        model="gpt-4.1-nano",
        input_per_mtok=Decimal("0.10"),
        cached_input_per_mtok=Decimal("0.025"),
        output_per_mtok=Decimal("0.40"),
    )
    assert UnitPrices.from_model_price(price) == UnitPrices(
        input=100, cached_input=25, output=400, cache_write=100, image_input=100
    )


@pytest.mark.parametrize(
    ("nano", "grouping", "shown"),
    [
        (5_000_000_000, False, "$5.00"),
        (4_999_999_900, False, "$4.9999999"),
        (150_000, False, "$0.00015"),
        (-3_000_000_000, False, "-$3.00"),
        (0, False, "$0.00"),
        (1, False, "$0.000000001"),
        (1_234_567_000_000_000, True, "$1,234,567.00"),
    ],
)
def test_exact_usd_for_people(nano, grouping, shown):
    assert format_usd_exact(nano, grouping=grouping) == shown
