"""The price catalog: changes now or from a set time, and CSV in and out."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import ModelPrice, PriceChange
from billing.price_import import PriceImportError, prices_import
from console.prices import CSV_COLUMNS, price_rows_parse
from relay import catalog
from relay.models import UsageRecord


def export(client) -> str:
    response = client.get(reverse("console:price_export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content).decode()


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def upload(client, text: str, reason: str = "price update"):
    return client.post(
        reverse("console:price_import"),
        {
            "file": SimpleUploadedFile("prices.csv", text.encode(), "text/csv"),
            "reason": reason,
        },
    )


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def catalog_rows() -> list[tuple]:
    return list(
        ModelPrice.objects.order_by("model").values_list(
            "model",
            "input_per_mtok",
            "cached_input_per_mtok",
            "output_per_mtok",
            "per_request_usd",
            "context_window",
            "max_output_tokens",
            "is_active",
        )
    )


def test_the_export_lists_the_catalog_exactly(finance_client, prices):
    rows = {row["model"]: row for row in rows_of(export(finance_client))}
    nano = ModelPrice.objects.get(model="gpt-4.1-nano")
    assert rows["gpt-4.1-nano"] == {
        "model": "gpt-4.1-nano",
        "input_per_mtok": "0.1",
        "cached_input_per_mtok": "0.025",
        "cache_write_per_mtok": "",
        "cache_write_1h_per_mtok": "",
        "output_per_mtok": "0.4",
        "image_input_per_mtok": "",
        "cached_image_input_per_mtok": "",
        "per_request_usd": "0",
        "cache_hit_usd": "0",
        "long_context_threshold": "",
        "long_input_per_mtok": "",
        "long_cached_input_per_mtok": "",
        "long_cache_write_per_mtok": "",
        "long_cache_write_1h_per_mtok": "",
        "long_output_per_mtok": "",
        "context_window": str(nano.context_window),
        "max_output_tokens": "32768",
        "is_active": "true",
        "effective_at": "",
    }


def test_an_unchanged_export_imports_as_a_no_op(finance_client, prices):
    before = catalog_rows()
    response = upload(finance_client, export(finance_client))
    assert response.status_code == 302
    assert catalog_rows() == before
    assert not PriceChange.objects.exists()
    event = AuditEvent.objects.get(action="price.import")
    assert "0 changed now" in event.summary
    assert not AuditEvent.objects.filter(action="price.update").exists()


def test_round_trip_changes_now_schedules_later_and_adds_models(
    finance_client, finance, prices
):
    rows = rows_of(export(finance_client))
    later = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    for row in rows:
        if row["model"] == "gpt-4.1-mini":
            row["input_per_mtok"] = "0.45"
            row["max_output_tokens"] = "16000"
    gpt_now = next(row for row in rows if row["model"] == "gpt-4.1")
    rows.append(
        {
            **gpt_now,
            "input_per_mtok": "1.75",
            "output_per_mtok": "7.000",
            "effective_at": later.isoformat(),
        }
    )
    rows.append(
        {
            "model": "new-model",
            "input_per_mtok": "0.025",
            "cached_input_per_mtok": "",
            "cache_write_per_mtok": "",
            "output_per_mtok": "0.1",
            "image_input_per_mtok": "",
            "per_request_usd": "0.000000001",
            "context_window": "",
            "max_output_tokens": "",
            "is_active": "no",
            "effective_at": "",
        }
    )
    # gpt-4.1's first row must not change it now: copy its current figures.
    current = next(r for r in rows if r["model"] == "gpt-4.1" and not r["effective_at"])
    assert current["input_per_mtok"] == "2"

    response = upload(finance_client, to_csv(rows))

    assert response.status_code == 302, response.content.decode()[-3000:]
    mini = ModelPrice.objects.get(model="gpt-4.1-mini")
    assert (mini.input_per_mtok, mini.max_output_tokens) == (Decimal("0.45"), 16000)
    gpt = ModelPrice.objects.get(model="gpt-4.1")
    assert gpt.input_per_mtok == Decimal("2")  # not yet
    change = PriceChange.objects.get(model_price=gpt)
    assert change.effective_at == later
    assert (change.input_per_mtok, change.output_per_mtok) == (
        Decimal("1.75"),
        Decimal("7"),
    )
    assert change.cached_input_per_mtok == Decimal("0.5")
    assert change.created_by == finance
    new = ModelPrice.objects.get(model="new-model")
    assert (new.per_request_usd, new.is_active) == (Decimal("0.000000001"), False)
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {
        "price.update",
        "price.schedule",
        "price.create",
        "price.import",
    }
    # The export shows the change made now; the scheduled one is pending.
    again = {row["model"]: row for row in rows_of(export(finance_client))}
    assert again["gpt-4.1-mini"]["input_per_mtok"] == "0.45"
    assert again["gpt-4.1"]["input_per_mtok"] == "2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_per_mtok": "0.4505"}, "not a whole number of nano-USD per token"),
        ({"input_per_mtok": "1e3"}, "is not a price in USD"),
        ({"input_per_mtok": "-1"}, "is not a price in USD"),
        ({"output_per_mtok": ""}, "output_per_mtok: required"),
        ({"context_window": "-1"}, "is not a whole number"),
        ({"is_active": "maybe"}, "is not true or false"),
        ({"effective_at": "next tuesday"}, "is not an ISO 8601 date"),
        ({"effective_at": "2001-01-01"}, "effective_at is in the past"),
        ({"model": ""}, "model: required"),
    ],
)
def test_one_bad_row_and_nothing_is_imported(finance_client, prices, change, message):
    rows = rows_of(export(finance_client))
    rows[0]["input_per_mtok"] = "9"  # a good change that must not be applied
    rows[2].update(change)
    before = catalog_rows()

    response = upload(finance_client, to_csv(rows))

    text = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported" in text
    assert "Line 4: " in text  # the header is line 1
    assert message in text
    assert catalog_rows() == before
    assert not PriceChange.objects.exists()
    assert not AuditEvent.objects.exists()


def test_every_bad_line_is_listed(prices):
    text = to_csv(
        [
            {"model": "a", "input_per_mtok": "x", "output_per_mtok": "1"},
            {"model": "b", "input_per_mtok": "1", "output_per_mtok": "1"},
            {"model": "c", "input_per_mtok": "1", "output_per_mtok": "y"},
        ]
    )
    with pytest.raises(PriceImportError) as raised:
        prices_import(rows=price_rows_parse(text.encode()), actor=None, reason="x")
    assert [line for line, _ in raised.value.errors] == [2, 4]
    assert not ModelPrice.objects.filter(model__in=["a", "b", "c"]).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,input_per_mtok\ngpt,1\n", "missing columns"),
        (",".join([*CSV_COLUMNS, "colour"]) + "\n", "unknown columns: colour"),
        (",".join(CSV_COLUMNS) + "\n", "no rows"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(prices, text, message):
    with pytest.raises(PriceImportError) as raised:
        prices_import(rows=price_rows_parse(text.encode()), actor=None, reason="x")
    assert message in str(raised.value)


def test_a_binary_file_is_refused(prices):
    with pytest.raises(PriceImportError, match="not UTF-8"):
        prices_import(rows=price_rows_parse(b"\xff\xfe\x00"), actor=None, reason="x")


def test_a_new_model_cannot_be_scheduled_and_settings_change_only_now(prices):
    later = (timezone.now() + timedelta(days=1)).isoformat()
    text = to_csv(
        [
            {
                "model": "brand-new",
                "input_per_mtok": "1",
                "output_per_mtok": "2",
                "effective_at": later,
            },
            {
                "model": "gpt-4.1",
                "input_per_mtok": "1",
                "output_per_mtok": "2",
                "max_output_tokens": "99",
                "effective_at": later,
            },
        ]
    )
    with pytest.raises(PriceImportError) as raised:
        prices_import(rows=price_rows_parse(text.encode()), actor=None, reason="x")
    messages = dict(raised.value.errors)
    assert "new model" in messages[2]
    assert "max_output_tokens change at once" in messages[3]


def test_the_form_schedules_a_change(finance_client, finance, prices):
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    later = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)
    response = finance_client.post(
        reverse("console:price_change", args=[price.pk]),
        {
            "input_per_mtok": "0.8",
            "cached_input_per_mtok": "0.2",
            "output_per_mtok": "3.2",
            "per_request_usd": "0",
            "effective_at": later.isoformat(),
            "reason": "upstream raised prices",
        },
    )
    assert response.status_code == 302
    change = PriceChange.objects.get()
    assert (change.effective_at, change.input_per_mtok) == (later, Decimal("0.8"))
    price.refresh_from_db()
    assert price.input_per_mtok == Decimal("0.4")
    page = finance_client.get(reverse("console:prices")).content.decode()
    assert later.strftime("%Y-%m-%d %H:%M") in page

    cancel = finance_client.post(
        reverse("console:price_change_cancel", args=[change.pk]),
        {"cancel-reason": "typo"},
    )
    assert cancel.status_code == 302
    assert not PriceChange.objects.exists()
    assert AuditEvent.objects.filter(action="price.cancel", reason="typo").exists()


def test_the_form_changes_prices_now(finance_client, prices):
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    response = finance_client.post(
        reverse("console:price_change", args=[price.pk]),
        {"input_per_mtok": "0.5", "output_per_mtok": "1.6", "reason": "promo ends"},
    )
    assert response.status_code == 302
    price.refresh_from_db()
    assert price.input_per_mtok == Decimal("0.5")
    # An empty optional price means "billed as input".
    assert price.cached_input_per_mtok is None
    event = AuditEvent.objects.get(action="price.update")
    assert event.data["input_per_mtok"] == {"from": "0.4", "to": "0.5"}


def test_the_form_refuses_a_past_time_and_inexact_prices(finance_client, prices):
    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    past = finance_client.post(
        reverse("console:price_change", args=[price.pk]),
        {
            "input_per_mtok": "0.8",
            "output_per_mtok": "3.2",
            "effective_at": "2001-01-01T00:00:00Z",
            "reason": "x",
        },
    )
    assert past.status_code == 400
    assert "cannot take effect in the past" in past.content.decode()
    inexact = finance_client.post(
        reverse("console:price_change", args=[price.pk]),
        {"input_per_mtok": "0.0005", "output_per_mtok": "3.2", "reason": "x"},
    )
    assert inexact.status_code == 400
    price.refresh_from_db()
    assert price.input_per_mtok == Decimal("0.4")
    assert not PriceChange.objects.exists()


def test_a_change_scheduled_in_the_console_charges_requests_from_its_time(
    finance_client, relay, channel, alice, monkeypatch
):
    def chat() -> UsageRecord:
        response = httpx.post(
            f"{relay}/chat/completions",
            json={
                "model": "gpt-4.1-mini",
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"authorization": f"Bearer {alice.secret}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return UsageRecord.objects.get(request_id=response.headers["x-request-id"])

    price = ModelPrice.objects.get(model="gpt-4.1-mini")
    effective_at = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    response = finance_client.post(
        reverse("console:price_change", args=[price.pk]),
        {
            "input_per_mtok": "0.8",
            "cached_input_per_mtok": "0.1",
            "output_per_mtok": "3.2",
            "effective_at": effective_at.isoformat(),
            "reason": "upstream raised prices",
        },
    )
    assert response.status_code == 302
    catalog.forget()

    before = chat()
    monkeypatch.setattr(catalog, "wall_clock", lambda: effective_at.timestamp() + 1)
    after = chat()

    assert (before.input_price, before.output_price) == (400, 1600)
    assert (after.input_price, after.output_price) == (800, 3200)
    before.refresh_from_db()
    assert before.cost == before.prompt_tokens * 400 + before.completion_tokens * 1600
    assert after.cost == after.prompt_tokens * 800 + after.completion_tokens * 3200
