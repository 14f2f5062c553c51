"""
Long-context tiers, Anthropic's 5-minute and 1-hour cache writes and GPT
Image's cached image input, charged at the providers' published figures,
exact to the nano-USD.
"""

from decimal import Decimal
from importlib import import_module

import pytest
from django.core.exceptions import ValidationError

from billing.models import ModelPrice
from billing.pricing import (
    LongContext,
    TokenUsage,
    UnitPrices,
    hold_cost,
    prompt_buckets,
    usage_cost,
)
from relay.formats.usage import (
    anthropic_usage,
    openai_usage,
    responses_usage,
    usage_from_anthropic,
    usage_from_openai,
)

tiers_migration = import_module("billing.migrations.0015_price_tiers_and_cache_writes")


def price(model: str, **fields) -> ModelPrice:
    values = {
        name: Decimal(v) if isinstance(v, str) else v for name, v in fields.items()
    }
    return ModelPrice(model=model, **values)


# Published prices, USD per 1M tokens (billing/migrations/0015 names the pages).
# Gemini 2.5 Pro: $1.25 / cache $0.125 / $10 up to 200k prompt tokens, $2.50 /
# cache $0.25 / $15 above.
GEMINI_25_PRO = price(
    "gemini-2.5-pro",
    input_per_mtok="1.25",
    cached_input_per_mtok="0.125",
    output_per_mtok="10.00",
    long_context_threshold=200_000,
    long_input_per_mtok="2.50",
    long_cached_input_per_mtok="0.25",
    long_output_per_mtok="15.00",
)
# Claude Sonnet 4.5 (1M context): $3 / $15 up to 200k input tokens, $6 /
# $22.50 above; cache reads 0.1x, 5-minute writes 1.25x, 1-hour writes 2x the
# input price of the tier.
SONNET_45 = price(
    "claude-sonnet-4-5",
    input_per_mtok="3.00",
    cached_input_per_mtok="0.30",
    cache_write_per_mtok="3.75",
    cache_write_1h_per_mtok="6.00",
    output_per_mtok="15.00",
    long_context_threshold=200_000,
    long_input_per_mtok="6.00",
    long_cached_input_per_mtok="0.60",
    long_cache_write_per_mtok="7.50",
    long_cache_write_1h_per_mtok="12.00",
    long_output_per_mtok="22.50",
)
# Claude Haiku 4.5: $1 input, $1.25 5-minute write, $2 1-hour write, $0.10
# cache read, $5 output.
HAIKU_45 = price(
    "claude-haiku-4-5",
    input_per_mtok="1.00",
    cached_input_per_mtok="0.10",
    cache_write_per_mtok="1.25",
    cache_write_1h_per_mtok="2.00",
    output_per_mtok="5.00",
)
# GPT Image 1: text $5, cached text $1.25, image $10, cached image $2.50,
# output $40.
GPT_IMAGE_1 = price(
    "gpt-image-1",
    input_per_mtok="5.00",
    cached_input_per_mtok="1.25",
    image_input_per_mtok="10.00",
    cached_image_input_per_mtok="2.50",
    output_per_mtok="40.00",
)


def units(model_price: ModelPrice) -> UnitPrices:
    model_price.full_clean(validate_unique=False)
    return UnitPrices.from_model_price(model_price)


# -- long-context tiers ------------------------------------------------------


def test_gemini_25_pro_at_200k_prompt_tokens_is_the_lower_tier():
    usage = TokenUsage(prompt=200_000, completion=10_000)
    # 200,000 x $1.25/1M + 10,000 x $10/1M = $0.25 + $0.10
    assert usage_cost(usage, units(GEMINI_25_PRO)) == 350_000_000


def test_gemini_25_pro_above_200k_prompt_tokens_is_the_higher_tier_for_every_bucket():
    usage = TokenUsage(prompt=200_001, completion=10_000)
    # 200,001 x $2.50/1M + 10,000 x $15/1M
    assert usage_cost(usage, units(GEMINI_25_PRO)) == 500_002_500 + 150_000_000
    cached = TokenUsage(prompt=300_000, cached=100_000, completion=1_000)
    # 200,000 x $2.50 + 100,000 x $0.25 + 1,000 x $15, per 1M
    assert usage_cost(cached, units(GEMINI_25_PRO)) == (
        500_000_000 + 25_000_000 + 15_000_000
    )


def test_sonnet_45_long_context_scales_cache_reads_and_writes():
    prices = units(SONNET_45)
    # 250,000 prompt tokens: 170,000 fresh, 50,000 read, 20,000 written for 5
    # minutes and 10,000 for an hour; 1,000 output.
    usage = TokenUsage(
        prompt=250_000,
        cached=50_000,
        cache_write=30_000,
        cache_write_1h=10_000,
        completion=1_000,
    )
    assert usage_cost(usage, prices) == (
        170_000 * 6_000  # $6
        + 50_000 * 600  # $0.60
        + 20_000 * 7_500  # $7.50
        + 10_000 * 12_000  # $12
        + 1_000 * 22_500  # $22.50
    )
    # The same buckets under the threshold: the standard prices.
    small = TokenUsage(
        prompt=150_000,
        cached=50_000,
        cache_write=30_000,
        cache_write_1h=10_000,
        completion=1_000,
    )
    assert usage_cost(small, prices) == (
        70_000 * 3_000 + 50_000 * 300 + 20_000 * 3_750 + 10_000 * 6_000 + 1_000 * 15_000
    )


def test_the_tier_counts_the_whole_prompt_cache_reads_and_writes_included():
    # Anthropic: 150,000 uncached input tokens and 60,000 read from the cache
    # are a 210,000-token prompt, above 200K.
    usage = usage_from_anthropic(
        {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 0}
    )
    assert usage.prompt == 210_000
    assert usage_cost(usage, units(SONNET_45)) == 150_000 * 6_000 + 60_000 * 600


def test_the_long_tier_keeps_the_models_image_and_request_prices():
    prices = UnitPrices(
        input=1,
        cached_input=1,
        output=1,
        cache_write=1,
        image_input=7,
        per_request=1_000,
        long_context=LongContext(10, 2, 2, 2, 2, 2),
    )
    usage = TokenUsage(prompt=20, image_input=5, completion=1, requests=1)
    assert usage_cost(usage, prices) == 15 * 2 + 5 * 7 + 1 * 2 + 1_000


def test_tier_choice_and_the_prices_a_record_keeps():
    prices = units(SONNET_45)
    assert not prices.is_long(200_000) and prices.is_long(200_001)
    standard, long = prices.at(200_000), prices.at(200_001)
    assert standard.long_context is None and long.long_context is None
    assert (standard.input, standard.output, standard.cache_write_1h) == (
        3_000,
        15_000,
        6_000,
    )
    assert (long.input, long.cached_input, long.cache_write, long.output) == (
        6_000,
        600,
        7_500,
        22_500,
    )
    assert long.cache_write_1h == 12_000


# -- holds -------------------------------------------------------------------


def test_a_hold_whose_estimate_is_past_the_threshold_is_at_the_long_prices():
    prices = units(SONNET_45)
    worst = TokenUsage(prompt=250_000, completion=32_000, requests=1)
    assert hold_cost(worst, prices) == 250_000 * 6_000 + 32_000 * 22_500
    assert hold_cost(worst, prices) == usage_cost(worst, prices)


def test_a_hold_estimated_just_under_the_threshold_still_covers_the_long_prices():
    # Estimates may fall short of the provider's count (another tokenizer):
    # past 80% of the threshold the hold covers the dearer tier.
    prices = units(SONNET_45)
    near = TokenUsage(prompt=160_001, completion=32_000)
    assert usage_cost(near, prices) == 160_001 * 3_000 + 32_000 * 15_000
    assert hold_cost(near, prices) == 160_001 * 6_000 + 32_000 * 22_500
    far = TokenUsage(prompt=160_000, completion=32_000)
    assert hold_cost(far, prices) == usage_cost(far, prices)


def test_a_hold_never_falls_below_either_tier():
    # A long tier cheaper than the standard one (a promotion): the hold near
    # the threshold still covers the standard prices.
    odd = units(
        price(
            "odd",
            input_per_mtok="2.00",
            output_per_mtok="8.00",
            long_context_threshold=1_000,
            long_input_per_mtok="1.00",
            long_output_per_mtok="4.00",
        )
    )
    worst = TokenUsage(prompt=1_000, completion=100)
    assert hold_cost(worst, odd) == 1_000 * 2_000 + 100 * 8_000
    assert hold_cost(TokenUsage(prompt=5_000), odd) == 5_000 * 2_000


def test_a_model_without_tiers_holds_what_it_charges():
    prices = units(HAIKU_45)
    worst = TokenUsage(prompt=900_000, completion=64_000)
    assert hold_cost(worst, prices) == usage_cost(worst, prices)


# -- Anthropic's cache writes ------------------------------------------------


def test_haiku_45_five_minute_and_one_hour_cache_writes():
    usage = usage_from_anthropic(
        {
            "input_tokens": 100,
            "cache_creation_input_tokens": 3_000,
            "cache_read_input_tokens": 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1_000,
                "ephemeral_1h_input_tokens": 2_000,
            },
            "output_tokens": 50,
        }
    )
    assert (usage.prompt, usage.cache_write, usage.cache_write_1h) == (
        3_100,
        3_000,
        2_000,
    )
    # 100 x $1 + 1,000 x $1.25 + 2,000 x $2 + 50 x $5, per 1M
    assert usage_cost(usage, units(HAIKU_45)) == 100_000 + 1_250_000 + 4_000_000 + (
        250_000
    )


def test_writes_without_a_breakdown_are_five_minute_writes():
    usage = usage_from_anthropic(
        {"input_tokens": 10, "cache_creation_input_tokens": 1_000, "output_tokens": 0}
    )
    assert (usage.cache_write, usage.cache_write_1h) == (1_000, 0)
    assert usage_cost(usage, units(HAIKU_45)) == 10 * 1_000 + 1_000 * 1_250


def test_a_breakdown_alone_gives_the_writes():
    usage = usage_from_anthropic(
        {
            "input_tokens": 0,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 5,
                "ephemeral_1h_input_tokens": 7,
            },
        }
    )
    assert (usage.prompt, usage.cache_write, usage.cache_write_1h) == (12, 12, 7)


def test_unpriced_one_hour_writes_are_billed_as_five_minute_writes():
    haiku_35 = price(
        "claude-3-5-haiku-latest",
        input_per_mtok="0.80",
        cached_input_per_mtok="0.08",
        cache_write_per_mtok="1.00",
        output_per_mtok="4.00",
    )
    assert units(haiku_35).cache_write_1h == 1_000
    # ...and the long tier's, as its 5-minute write, itself its input.
    gemini = units(GEMINI_25_PRO)
    assert gemini.long_context == LongContext(
        threshold=200_000,
        input=2_500,
        cached_input=250,
        output=15_000,
        cache_write=2_500,
        cache_write_1h=2_500,
    )


@pytest.mark.parametrize(
    "usage",
    [
        TokenUsage(prompt=100, cached=10, cache_write=30, cache_write_1h=20),
        TokenUsage(prompt=100, cache_write=30),
        TokenUsage(prompt=5, completion=3),
    ],
)
def test_every_wire_format_keeps_the_one_hour_writes(usage):
    assert usage_from_anthropic(anthropic_usage(usage)) == usage
    assert usage_from_openai(openai_usage(usage)) == usage
    assert usage_from_openai(responses_usage(usage)) == usage


def test_the_anthropic_shape_tells_the_lifetimes_apart():
    shown = anthropic_usage(TokenUsage(prompt=100, cache_write=30, cache_write_1h=20))
    assert shown["cache_creation_input_tokens"] == 30
    assert shown["cache_creation"] == {
        "ephemeral_5m_input_tokens": 10,
        "ephemeral_1h_input_tokens": 20,
    }
    assert "cache_creation" not in anthropic_usage(TokenUsage(prompt=9, cache_write=4))


# -- GPT Image cached image input --------------------------------------------


def test_gpt_image_1_cached_text_and_image_input():
    # The Images API reports no cached tokens (relay.formats.usage): these
    # counts test the price buckets alone.
    usage = TokenUsage(
        prompt=1_100,
        cached=640,
        image_input=1_000,
        cached_image_input=600,
        completion=4_160,
    )
    assert prompt_buckets(usage) == prompt_buckets(usage).__class__(
        input=60, cached_input=40, image_input=400, cached_image_input=600
    )
    # 60 x $5 + 40 x $1.25 + 400 x $10 + 600 x $2.50 + 4,160 x $40, per 1M
    assert usage_cost(usage, units(GPT_IMAGE_1)) == (
        300_000 + 50_000 + 4_000_000 + 1_500_000 + 166_400_000
    )


def test_cached_tokens_that_can_only_be_image_tokens_are_cached_image_input():
    # 10 text tokens, 90 image tokens, 50 cached and no split: at least 40 of
    # the cached tokens are image tokens.
    usage = TokenUsage(prompt=100, cached=50, image_input=90)
    split = prompt_buckets(usage)
    assert (split.cached_input, split.cached_image_input) == (10, 40)
    assert (split.input, split.image_input) == (0, 50)
    assert usage_cost(usage, units(GPT_IMAGE_1)) == (
        10 * 1_250 + 40 * 2_500 + 50 * 10_000
    )


def test_unpriced_cached_image_input_is_billed_as_cached_input():
    # As image tokens read from the cache were billed before they had a
    # price of their own.
    model = price(
        "gpt-image-x",
        input_per_mtok="5.00",
        cached_input_per_mtok="1.25",
        image_input_per_mtok="10.00",
        output_per_mtok="40.00",
    )
    assert units(model).cached_image_input == 1_250
    assert UnitPrices(
        input=1, cached_input=2, output=3, cache_write=4, image_input=5
    ) == UnitPrices(
        input=1,
        cached_input=2,
        output=3,
        cache_write=4,
        image_input=5,
        cache_write_1h=4,
        cached_image_input=2,
    )


@pytest.mark.parametrize(
    "usage",
    [
        TokenUsage(prompt=100, cached=30, cache_write=20, cache_write_1h=50),
        TokenUsage(prompt=10, cached=50, image_input=90, cached_image_input=70),
        TokenUsage(prompt=100, cached=60, cache_write=60, image_input=100),
        TokenUsage(prompt=0, cached=5, cache_write=5, image_input=5),
    ],
)
def test_the_buckets_are_exactly_the_prompt(usage):
    split = prompt_buckets(usage)
    parts = (
        split.input,
        split.cached_input,
        split.cache_write,
        split.cache_write_1h,
        split.image_input,
        split.cached_image_input,
    )
    assert min(parts) >= 0
    assert sum(parts) == usage.prompt


# -- the catalog -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"long_context_threshold": 200_000}, "long_input_per_mtok"),
        (
            {"long_context_threshold": 200_000, "long_input_per_mtok": "2.50"},
            "long_output_per_mtok",
        ),
        (
            {"long_input_per_mtok": "2.50", "long_output_per_mtok": "15"},
            "long_context_threshold",
        ),
        ({"long_cached_input_per_mtok": "0.25"}, "long_context_threshold"),
        (
            {
                "long_context_threshold": 0,
                "long_input_per_mtok": "2.50",
                "long_output_per_mtok": "15",
            },
            "long_context_threshold",
        ),
        ({"cache_write_1h_per_mtok": "0.0001"}, "cache_write_1h_per_mtok"),
        ({"cached_image_input_per_mtok": "-1"}, "cached_image_input_per_mtok"),
        (
            {
                "long_context_threshold": 10,
                "long_input_per_mtok": "1",
                "long_output_per_mtok": "1",
                "long_cache_write_1h_per_mtok": "0.0005",
            },
            "long_cache_write_1h_per_mtok",
        ),
    ],
)
def test_the_catalog_refuses_incomplete_or_inexact_new_prices(fields, field):
    model_price = price("m", input_per_mtok="1", output_per_mtok="1", **fields)
    with pytest.raises(ValidationError) as refused:
        model_price.full_clean(validate_unique=False)
    assert field in refused.value.message_dict


# Restated from the providers' pages rather than read from the migration, so
# a typo in either shows: nano-USD per token.
SEEDED = {
    "claude-3-5-haiku-latest": {"cache_write_1h": 1_600},
    "claude-3-5-sonnet-20241022": {"cache_write_1h": 6_000},
    "claude-haiku-4-5": {"cache_write": 1_250, "cache_write_1h": 2_000},
    "claude-opus-4-5": {"cache_write": 6_250, "cache_write_1h": 10_000},
    "claude-sonnet-4-5": {
        "input": 3_000,
        "cache_write": 3_750,
        "cache_write_1h": 6_000,
        "output": 15_000,
        "long_context": LongContext(
            threshold=200_000,
            input=6_000,
            cached_input=600,
            output=22_500,
            cache_write=7_500,
            cache_write_1h=12_000,
        ),
    },
    "gemini-2.5-pro": {
        "long_context": LongContext(
            threshold=200_000,
            input=2_500,
            cached_input=250,
            output=15_000,
            cache_write=2_500,
            cache_write_1h=2_500,
        )
    },
    "gpt-image-1": {"image_input": 10_000, "cached_image_input": 2_500},
    # Models without these prices keep their fallbacks.
    "gpt-4.1": {"cache_write_1h": 2_000, "cached_image_input": 500},
}


@pytest.mark.parametrize("model", sorted(SEEDED))
def test_the_catalog_is_seeded_with_the_published_figures(db, model):
    row = ModelPrice.objects.get(model=model)
    row.full_clean()
    prices = UnitPrices.from_model_price(row)
    for name, expected in SEEDED[model].items():
        assert getattr(prices, name) == expected, name
    if "long_context" not in SEEDED[model]:
        assert prices.long_context is None


def test_the_seed_updates_only_existing_rows(db):
    ModelPrice.objects.filter(model="claude-opus-4-5").delete()
    ModelPrice.objects.filter(model="gpt-image-1").update(
        cached_image_input_per_mtok=None
    )
    from django.apps import apps

    tiers_migration.seed(apps, None)

    assert not ModelPrice.objects.filter(model="claude-opus-4-5").exists()
    assert ModelPrice.objects.get(model="gpt-image-1").cached_image_input_per_mtok == (
        Decimal("2.500")
    )
