"""
Staff set the new prices (1-hour cache write, cached image input,
long-context tiers) in the console's form and through CSV import and
export, now or on a schedule; the relay charges a scheduled tier from its
time.
"""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import roles
from billing.models import ModelPrice, PriceChange
from billing.price_changes import price_changes_apply
from billing.price_import import PriceImportError, prices_import
from billing.pricing import LongContext, TokenUsage, usage_cost
from console.prices import CSV_COLUMNS, price_csv_rows, price_rows_parse
from relay import catalog
from tests import factories
from tests.console.conftest import client_for, make_staff

# The columns a file exported before these prices existed has.
OLD_COLUMNS = (
    "model",
    "input_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "output_per_mtok",
    "image_input_per_mtok",
    "per_request_usd",
    "context_window",
    "max_output_tokens",
    "is_active",
    "effective_at",
)
SONNET_LONG = {
    "long_context_threshold": "200000",
    "long_input_per_mtok": "6",
    "long_cached_input_per_mtok": "0.6",
    "long_cache_write_per_mtok": "7.5",
    "long_cache_write_1h_per_mtok": "12",
    "long_output_per_mtok": "22.5",
}


@pytest.fixture
def sonnet(db) -> ModelPrice:
    """Sonnet 4.5 without the new prices (the seeded row has them)."""
    return factories.model_price(
        "claude-sonnet-4-5",
        input_per_mtok="3",
        cached_input_per_mtok="0.3",
        cache_write_per_mtok="3.75",
        output_per_mtok="15",
        max_output_tokens=64_000,
        cache_write_1h_per_mtok=None,
        long_context_threshold=None,
        **dict.fromkeys(ModelPrice.LONG_FIELDS),
    )


def to_csv(rows: list[dict], columns=CSV_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def exported() -> dict[str, dict]:
    text = io.StringIO()
    csv.writer(text).writerows(price_csv_rows())
    return {row["model"]: row for row in csv.DictReader(io.StringIO(text.getvalue()))}


def row_of(model: str, **cells) -> dict:
    return {**exported()[model], **cells}


def test_the_export_has_the_new_prices(sonnet):
    ModelPrice.objects.filter(pk=sonnet.pk).update(
        cache_write_1h_per_mtok=Decimal("6"),
        long_context_threshold=200_000,
        long_input_per_mtok=Decimal("6"),
        long_output_per_mtok=Decimal("22.5"),
    )
    row = exported()["claude-sonnet-4-5"]
    assert row["cache_write_1h_per_mtok"] == "6"
    assert row["cached_image_input_per_mtok"] == ""
    assert (row["long_context_threshold"], row["long_input_per_mtok"]) == (
        "200000",
        "6",
    )
    assert (row["long_cached_input_per_mtok"], row["long_output_per_mtok"]) == (
        "",
        "22.5",
    )


def test_an_import_sets_a_long_context_tier_and_one_hour_writes_now(sonnet):
    rows = price_rows_parse(
        to_csv(
            [row_of("claude-sonnet-4-5", cache_write_1h_per_mtok="6", **SONNET_LONG)]
        )
    )
    result = prices_import(rows=rows, actor=None, reason="1M context")

    assert result.updated == ["claude-sonnet-4-5"]
    sonnet.refresh_from_db()
    assert sonnet.cache_write_1h_per_mtok == Decimal("6")
    assert sonnet.long_context_threshold == 200_000
    assert (sonnet.long_input_per_mtok, sonnet.long_output_per_mtok) == (
        Decimal("6"),
        Decimal("22.5"),
    )
    # The export reads back what was imported: a second import changes nothing.
    again = prices_import(
        rows=price_rows_parse(to_csv([exported()["claude-sonnet-4-5"]])),
        actor=None,
        reason="no-op",
    )
    assert again.unchanged == ["claude-sonnet-4-5"]


def test_a_file_without_the_new_columns_leaves_them_as_they_are(sonnet):
    ModelPrice.objects.filter(pk=sonnet.pk).update(
        cache_write_1h_per_mtok=Decimal("6"),
        long_context_threshold=200_000,
        long_input_per_mtok=Decimal("6"),
        long_output_per_mtok=Decimal("22.5"),
    )
    old = {column: exported()["claude-sonnet-4-5"][column] for column in OLD_COLUMNS}
    rows = price_rows_parse(to_csv([{**old, "input_per_mtok": "2.5"}], OLD_COLUMNS))

    prices_import(rows=rows, actor=None, reason="older export")

    sonnet.refresh_from_db()
    assert sonnet.input_per_mtok == Decimal("2.5")
    assert sonnet.cache_write_1h_per_mtok == Decimal("6")
    assert sonnet.long_context_threshold == 200_000
    assert sonnet.long_output_per_mtok == Decimal("22.5")


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"long_context_threshold": "200000"}, "long_input_per_mtok: Required"),
        ({"long_input_per_mtok": "6", "long_output_per_mtok": "22.5"}, "threshold"),
        ({**SONNET_LONG, "long_context_threshold": "0"}, "at least 1"),
        ({**SONNET_LONG, "long_context_threshold": "2e5"}, "not a whole number"),
        ({"cached_image_input_per_mtok": "0.0001"}, "whole number of nano-USD"),
    ],
)
def test_an_incomplete_or_inexact_tier_is_refused_with_its_line(sonnet, cells, message):
    with pytest.raises(PriceImportError) as raised:
        rows = price_rows_parse(to_csv([row_of("claude-sonnet-4-5", **cells)]))
        prices_import(rows=rows, actor=None, reason="x")
    errors = raised.value.errors
    assert {line for line, _ in errors} == {2}
    assert any(message in text for _, text in errors)
    sonnet.refresh_from_db()
    assert sonnet.long_context_threshold is None


def test_a_scheduled_tier_is_charged_from_its_time(sonnet, monkeypatch):
    later = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    rows = price_rows_parse(
        to_csv(
            [row_of("claude-sonnet-4-5", effective_at=later.isoformat(), **SONNET_LONG)]
        )
    )
    assert prices_import(rows=rows, actor=None, reason="x").scheduled
    change = PriceChange.objects.get()
    assert change.long_context_threshold == 200_000

    snapshot = catalog._load().models["claude-sonnet-4-5"]
    long_prompt = TokenUsage(prompt=200_001, completion=1)
    assert (
        usage_cost(long_prompt, snapshot.current().prices) == 200_001 * 3_000 + 15_000
    )
    monkeypatch.setattr(catalog, "wall_clock", lambda: later.timestamp())
    assert snapshot.current().prices.long_context == LongContext(
        threshold=200_000,
        input=6_000,
        cached_input=600,
        output=22_500,
        cache_write=7_500,
        cache_write_1h=12_000,
    )
    assert usage_cost(long_prompt, snapshot.current().prices) == (
        200_001 * 6_000 + 22_500
    )

    assert price_changes_apply(now=later) == 1
    sonnet.refresh_from_db()
    assert sonnet.long_context_threshold == 200_000
    assert sonnet.long_cache_write_1h_per_mtok == Decimal("12")


def test_the_console_form_sets_the_new_prices(sonnet):
    client = client_for(make_staff("finance@switchboard.test", roles.FINANCE))
    url = reverse("console:price_change", args=[sonnet.pk])
    form = client.get(url).content.decode()
    assert 'name="long_context_threshold"' in form
    assert 'name="cache_write_1h_per_mtok"' in form

    response = client.post(
        url,
        {
            "input_per_mtok": "3",
            "cached_input_per_mtok": "0.3",
            "cache_write_per_mtok": "3.75",
            "cache_write_1h_per_mtok": "6",
            "output_per_mtok": "15",
            "per_request_usd": "0",
            **SONNET_LONG,
            "reason": "1M context",
        },
    )

    assert response.status_code == 302
    sonnet.refresh_from_db()
    assert (sonnet.cache_write_1h_per_mtok, sonnet.long_context_threshold) == (
        Decimal("6"),
        200_000,
    )
    assert sonnet.long_cache_write_per_mtok == Decimal("7.5")
    page = client.get(reverse("console:prices")).content.decode()
    assert "above 200000 tokens: $6.00 / $22.50" in page

    refused = client.post(
        url,
        {
            "input_per_mtok": "3",
            "output_per_mtok": "15",
            "long_context_threshold": "200000",
            "reason": "forgot the prices",
        },
    )
    assert refused.status_code == 400
    assert "Required with a long-context threshold" in refused.content.decode()
