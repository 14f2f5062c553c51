"""Image buckets of the one cost function, and the image prices of the catalog."""

from decimal import Decimal, localcontext
from importlib import import_module

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import ModelPrice
from billing.money import nano_per_token, usd_to_nano
from billing.pricing import TokenUsage, UnitPrices, usage_cost
from relay.catalog import _load
from tests.factories import GPT_IMAGE_TOKENS

seed_images = import_module("billing.migrations.0006_seed_image_models")

MAX_TOKENS = 10**7
prices_per_mtok = st.integers(min_value=0, max_value=1_000_000).map(
    lambda thousandths: Decimal(thousandths).scaleb(-3)
)
# Up to $10 per image, to the nano-USD.
usd_per_image = st.integers(min_value=0, max_value=10 * 10**9).map(
    lambda nano: Decimal(nano).scaleb(-9)
)
tokens = st.integers(min_value=0, max_value=MAX_TOKENS)


@settings(max_examples=300, deadline=None)
@given(
    text=tokens,
    cached=tokens,
    written=tokens,
    image=tokens,
    completion=tokens,
    images=st.integers(min_value=0, max_value=10),
    input_=prices_per_mtok,
    cached_input=prices_per_mtok,
    cache_write=prices_per_mtok,
    image_input=prices_per_mtok,
    output=prices_per_mtok,
    per_image=usd_per_image,
)
def test_every_bucket_is_the_exact_decimal_cost(
    text,
    cached,
    written,
    image,
    completion,
    images,
    input_,
    cached_input,
    cache_write,
    image_input,
    output,
    per_image,
):
    prices = UnitPrices(
        input=nano_per_token(input_),
        cached_input=nano_per_token(cached_input),
        output=nano_per_token(output),
        cache_write=nano_per_token(cache_write),
        image_input=nano_per_token(image_input),
        per_image=usd_to_nano(per_image),
    )
    usage = TokenUsage(
        prompt=text + cached + written + image,
        cached=cached,
        cache_write=written,
        image_input=image,
        completion=completion,
        images=images,
    )
    with localcontext() as ctx:
        ctx.prec = 60
        usd = (
            text * input_
            + cached * cached_input
            + written * cache_write
            + image * image_input
            + completion * output
        ) / 1_000_000 + images * per_image

    cost = usage_cost(usage, prices)

    assert type(cost) is int
    assert cost == usd_to_nano(usd)


@settings(max_examples=200, deadline=None)
@given(
    prompt=tokens,
    cached=tokens,
    written=tokens,
    image=tokens,
    extra=st.integers(min_value=1, max_value=MAX_TOKENS),
    input_=prices_per_mtok,
    image_input=prices_per_mtok,
)
def test_buckets_together_never_exceed_the_prompt(
    prompt, cached, written, image, extra, input_, image_input
):
    prices = UnitPrices(
        input=nano_per_token(input_),
        cached_input=0,
        output=0,
        cache_write=0,
        image_input=nano_per_token(image_input),
    )

    def cost(image_tokens: int) -> int:
        return usage_cost(
            TokenUsage(prompt, cached, 0, written, image_input=image_tokens), prices
        )

    # Image tokens are what is left of the prompt after the cache buckets.
    room = max(0, prompt - min(cached, prompt) - min(written, prompt - cached))
    assert cost(room + extra) == cost(room)
    assert cost(room) <= prompt * max(prices.input, prices.image_input)


@settings(max_examples=100, deadline=None)
@given(
    images=st.integers(min_value=0, max_value=10),
    more=st.integers(min_value=1, max_value=10),
    per_image=usd_per_image,
)
def test_more_images_never_cost_less(images, more, per_image):
    prices = UnitPrices(0, 0, 0, 0, 0, per_image=usd_to_nano(per_image))
    fewer = usage_cost(TokenUsage(images=images), prices)
    assert usage_cost(TokenUsage(images=images + more), prices) >= fewer
    assert fewer == images * usd_to_nano(per_image)


def test_an_unpriced_image_input_is_billed_as_input():
    price = ModelPrice(
        model="vision", input_per_mtok=Decimal("2.50"), output_per_mtok=Decimal("10")
    )
    prices = UnitPrices.from_model_price(price)
    assert (prices.image_input, prices.per_image) == (2500, 0)

    price.image_input_per_mtok = Decimal("10.00")
    assert UnitPrices.from_model_price(price).image_input == 10_000


def image_model(**fields) -> ModelPrice:
    return ModelPrice(
        model="image-model",
        input_per_mtok=Decimal("0"),
        output_per_mtok=Decimal("0"),
        **fields,
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"image_prices": {"standard:1024x1024": "0.040", "hd:1792x1024": "0.12"}},
        {"image_prices": {"standard:256x256": "0.000000001"}},
        {"image_prices": {"standard:1024x1024": "2"}},
        {"image_output_tokens": {"low:1024x1024": 272, "high:1536x1024": 6208}},
        {"image_input_per_mtok": Decimal("10.000")},
    ],
)
def test_valid_image_prices_pass(fields):
    image_model(**fields).clean()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"image_prices": {"standard:1024x1024": 0.04}}, "image_prices"),
        ({"image_prices": {"standard:1024x1024": "0.0400000001"}}, "image_prices"),
        ({"image_prices": {"standard:1024x1024": "-0.04"}}, "image_prices"),
        ({"image_prices": {"standard:1024x1024": "4e-2"}}, "image_prices"),
        ({"image_prices": {"standard:1024x1024": " 0.04"}}, "image_prices"),
        ({"image_prices": {"standard:1024x1024": "NaN"}}, "image_prices"),
        ({"image_prices": {"standard": "0.04"}}, "image_prices"),
        ({"image_prices": {"HD:1024x1024": "0.08"}}, "image_prices"),
        ({"image_prices": {"hd:1024*1024": "0.08"}}, "image_prices"),
        ({"image_prices": ["standard:1024x1024"]}, "image_prices"),
        ({"image_output_tokens": {"low:1024x1024": 0}}, "image_output_tokens"),
        ({"image_output_tokens": {"low:1024x1024": "272"}}, "image_output_tokens"),
        ({"image_output_tokens": {"low:1024x1024": True}}, "image_output_tokens"),
        ({"image_output_tokens": {"low:1024x1024": 27.2}}, "image_output_tokens"),
        ({"image_input_per_mtok": Decimal("10.0001")}, "image_input_per_mtok"),
        ({"image_input_per_mtok": Decimal("-1")}, "image_input_per_mtok"),
    ],
)
def test_invalid_image_prices_are_refused(fields, field):
    with pytest.raises(ValidationError) as caught:
        image_model(**fields).clean()
    assert field in caught.value.message_dict


def test_a_model_is_billed_per_image_or_by_tokens_not_both():
    model = image_model(
        image_prices={"standard:1024x1024": "0.04"},
        image_output_tokens={"low:1024x1024": 272},
    )
    with pytest.raises(ValidationError, match="not both"):
        model.clean()


# Restated from the providers' pages rather than read from the migration
# (GPT Image 1's tokens in tests/factories.py).
PER_IMAGE_NANO = {
    "dall-e-3": {
        "standard:1024x1024": 40_000_000,
        "standard:1024x1792": 80_000_000,
        "standard:1792x1024": 80_000_000,
        "hd:1024x1024": 80_000_000,
        "hd:1024x1792": 120_000_000,
        "hd:1792x1024": 120_000_000,
    },
    "dall-e-2": {
        "standard:256x256": 16_000_000,
        "standard:512x512": 18_000_000,
        "standard:1024x1024": 20_000_000,
    },
}


def test_the_image_models_are_seeded_at_published_prices(db):
    # Migrations run once per test database: these are the migration's rows.
    rows = {p.model: p for p in ModelPrice.objects.filter(model__in=seed_images.MODELS)}
    assert sorted(rows) == ["dall-e-2", "dall-e-3", "gpt-image-1"]
    for row in rows.values():
        row.full_clean()
        assert row.is_active

    gpt_image = UnitPrices.from_model_price(rows["gpt-image-1"])
    assert gpt_image == UnitPrices(
        input=5_000, cached_input=1_250, output=40_000, cache_write=5_000,
        image_input=10_000, cached_image_input=2_500,
    )  # fmt: skip
    assert rows["gpt-image-1"].image_output_tokens == GPT_IMAGE_TOKENS
    assert rows["gpt-image-1"].image_prices == {}

    models = _load().models
    assert models["gpt-image-1"].image_output_tokens == GPT_IMAGE_TOKENS
    for name, prices in PER_IMAGE_NANO.items():
        assert models[name].image_prices == prices
        assert models[name].generates_images
        # Billed per image only.
        assert UnitPrices.from_model_price(rows[name]) == UnitPrices(0, 0, 0, 0, 0)
    assert not models["gpt-4.1"].generates_images
