"""
The catalog seeded by billing/migrations/0004_seed_catalog.

Migrations run once per test database, so these tests read the rows the
migration wrote: they take `db` and none of the price fixtures, which would
overwrite some of them. pytest-django runs `db` tests before transactional
ones, whose flush would delete the seeded rows.
"""

from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps

from billing.models import ModelPrice
from billing.pricing import LongContext, UnitPrices

seed_catalog = import_module("billing.migrations.0004_seed_catalog")

# nano-USD per token: input, cached input (cache read), output, cache write;
# then context window, max output tokens. Restated from the providers' pricing
# pages rather than read from the migration, so a typo in either shows.
SEEDED = {
    "gpt-4.1": (2000, 500, 8000, 2000, 1_047_576, 32_768),
    "gpt-4.1-mini": (400, 100, 1600, 400, 1_047_576, 32_768),
    "gpt-4.1-nano": (100, 25, 400, 100, 1_047_576, 32_768),
    "gpt-4o": (2500, 1250, 10_000, 2500, 128_000, 16_384),
    "gpt-4o-mini": (150, 75, 600, 150, 128_000, 16_384),
    "text-embedding-3-small": (20, 20, 0, 20, 8_191, 0),
    "text-embedding-3-large": (130, 130, 0, 130, 8_191, 0),
    "claude-3-5-haiku-latest": (800, 80, 4000, 1000, 200_000, 8_192),
    "claude-3-5-haiku-20241022": (800, 80, 4000, 1000, 200_000, 8_192),
    "claude-3-5-sonnet-latest": (3000, 300, 15_000, 3750, 200_000, 8_192),
    "claude-3-5-sonnet-20241022": (3000, 300, 15_000, 3750, 200_000, 8_192),
    "gemini-2.5-flash": (300, 30, 2500, 300, 1_048_576, 65_536),
    "gemini-2.5-pro": (1250, 125, 10_000, 1250, 1_048_576, 65_536),
}


# Added by billing/migrations/0015: Anthropic's 1-hour cache write (2x input)
# and Gemini 2.5 Pro's prices for prompts over 200k tokens.
CACHE_WRITE_1H = {
    "claude-3-5-haiku-latest": 1600,
    "claude-3-5-haiku-20241022": 1600,
    "claude-3-5-sonnet-latest": 6000,
    "claude-3-5-sonnet-20241022": 6000,
}
LONG_CONTEXT = {
    "gemini-2.5-pro": LongContext(
        threshold=200_000,
        input=2500,
        cached_input=250,
        output=15_000,
        cache_write=2500,
        cache_write_1h=2500,
    ),
}


def seeded_rows() -> dict[str, ModelPrice]:
    return {p.model: p for p in ModelPrice.objects.filter(model__in=SEEDED)}


def test_the_migration_seeds_exactly_these_models():
    assert {row[0] for row in seed_catalog.PRICES} == set(SEEDED)


def test_every_seeded_model_exists_and_is_active(db):
    rows = seeded_rows()
    assert sorted(rows) == sorted(SEEDED)
    assert all(price.is_active for price in rows.values())


def test_image_models_are_not_seeded_here():
    # billing/migrations/0006_seed_image_models seeds them, with image prices.
    seeded = {row[0] for row in seed_catalog.PRICES}
    assert not seeded & {"gpt-image-1", "dall-e-3", "dall-e-2"}


@pytest.mark.parametrize("model", sorted(SEEDED))
def test_seeded_prices_are_exact_nano_usd_per_token(db, model):
    price = ModelPrice.objects.get(model=model)
    price.full_clean()  # includes the model's own at-most-3-decimals check
    units = UnitPrices.from_model_price(price)
    input_, cached, output, write, context, max_output = SEEDED[model]
    assert units == UnitPrices(
        input=input_,
        cached_input=cached,
        output=output,
        cache_write=write,
        image_input=input_,
        cache_write_1h=CACHE_WRITE_1H.get(model),
        long_context=LONG_CONTEXT.get(model),
    )
    assert (price.context_window, price.max_output_tokens) == (context, max_output)


def test_spot_checks(db):
    rows = seeded_rows()
    assert UnitPrices.from_model_price(rows["gpt-4o"]).input == 2500
    sonnet = UnitPrices.from_model_price(rows["claude-3-5-sonnet-20241022"])
    assert (sonnet.cached_input, sonnet.cache_write) == (300, 3750)
    assert rows["gpt-4.1-nano"].cached_input_per_mtok == Decimal("0.025")
    # OpenAI and Google bill no cache write: it falls back to input.
    assert rows["gpt-4o"].cache_write_per_mtok is None
    assert rows["gemini-2.5-pro"].cache_write_per_mtok is None
    # Embeddings: input only.
    assert rows["text-embedding-3-small"].output_per_mtok == 0
    assert rows["text-embedding-3-small"].cached_input_per_mtok is None


def test_the_seed_is_an_upsert_that_keeps_a_disabled_model_disabled(db):
    ModelPrice.objects.filter(model="gpt-4o").update(
        input_per_mtok=Decimal("9.999"), is_active=False
    )
    ModelPrice.objects.filter(model="gemini-2.5-flash").delete()

    seed_catalog.seed(apps, None)
    seed_catalog.seed(apps, None)

    gpt_4o = ModelPrice.objects.get(model="gpt-4o")
    assert gpt_4o.input_per_mtok == Decimal("2.500")
    assert not gpt_4o.is_active
    assert ModelPrice.objects.get(model="gemini-2.5-flash").is_active
    assert ModelPrice.objects.filter(model__in=SEEDED).count() == len(SEEDED)
