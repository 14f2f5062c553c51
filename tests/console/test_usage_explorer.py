"""The usage explorer: every tenant's requests, filtered, broken down, exported."""

import csv
import io
import warnings
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncRequestFactory
from django.urls import reverse
from django.utils import timezone

from console.views.usage import usage_export
from relay.models import Channel, UsageRecord
from tests import factories
from tests.console.conftest import usage_record


@pytest.fixture
def records(alice, bob, channel):
    other = Channel.objects.create(
        name="backup", kind=Channel.Kind.OPENAI, base_url="http://127.0.0.1:9/v1"
    )
    now = timezone.now()
    return {
        "alice_ok": usage_record(
            alice, channel=channel, charged=1000, cost=1000, upstream_cost=600
        ),
        "alice_error": usage_record(
            alice,
            channel=other,
            status=UsageRecord.Status.UPSTREAM_ERROR,
            http_status=502,
            usage_source=UsageRecord.Source.NONE,
            prompt_tokens=0,
            completion_tokens=0,
            error="=cmd|' /C calc'!A0",
        ),
        "bob_old": usage_record(
            bob,
            channel=channel,
            model="gpt-4.1",
            charged=5,
            cost=5,
            created_at=now - timedelta(days=3),
        ),
        "bob_new": usage_record(
            bob, channel=other, model="gpt-4.1", charged=7, cost=7, upstream_cost=None
        ),
    }


def request_ids(client, **params) -> set[str]:
    response = client.get(reverse("console:usage"), params)
    assert response.status_code == 200, response.content.decode()[-2000:]
    return {r.request_id for r in response.context["page"].object_list}


def test_filters_by_tenant_key_model_channel_status_and_time(
    support_client, records, alice, bob, channel
):
    r = {name: record.request_id for name, record in records.items()}
    assert request_ids(support_client) == set(r.values())
    assert request_ids(support_client, tenant=alice.tenant.pk) == {
        r["alice_ok"],
        r["alice_error"],
    }
    key = bob.tenant.api_keys.get()
    assert request_ids(support_client, key=key.pk) == {r["bob_old"], r["bob_new"]}
    assert request_ids(support_client, key=key.prefix) == {r["bob_old"], r["bob_new"]}
    assert request_ids(support_client, key=bob.secret) == {r["bob_old"], r["bob_new"]}
    assert request_ids(support_client, model="gpt-4.1") == {r["bob_old"], r["bob_new"]}
    assert request_ids(support_client, channel=channel.pk) == {
        r["alice_ok"],
        r["bob_old"],
    }
    assert request_ids(support_client, status="error") == {r["alice_error"]}
    assert request_ids(support_client, status="ok", tenant=bob.tenant.pk) == {
        r["bob_old"],
        r["bob_new"],
    }
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert r["bob_old"] not in request_ids(support_client, start=yesterday)
    assert request_ids(
        support_client, end=(timezone.now() - timedelta(days=2)).date().isoformat()
    ) == {r["bob_old"]}


def test_totals_follow_the_filters(support_client, records, alice):
    response = support_client.get(reverse("console:usage"), {"tenant": alice.tenant.pk})
    totals = response.context["totals"]
    assert (totals["requests"], totals["errors"], totals["charged"]) == (2, 1, 1000)
    assert totals["upstream"] == 600


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tenant": "abc"}, "tenant"),
        ({"channel": "-1"}, "channel"),
        ({"status": "teapot"}, "status"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2025-02-01", "end": "2025-01-01"}, "end"),
        ({"model": "a\x00b"}, "model"),
    ],
)
def test_bad_filters_are_explained(support_client, records, params, field):
    response = support_client.get(reverse("console:usage"), params)
    assert response.status_code == 400
    assert field in response.context["errors"]
    export = support_client.get(reverse("console:usage_export"), params)
    assert export.status_code == 400


def test_the_csv_export_holds_the_filtered_rows_exactly(support_client, records, bob):
    response = support_client.get(
        reverse("console:usage_export"), {"tenant": bob.tenant.pk}
    )
    assert response.status_code == 200
    assert response.streaming
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert {row["request_id"] for row in rows} == {
        records["bob_old"].request_id,
        records["bob_new"].request_id,
    }
    newest = rows[0]
    assert newest["request_id"] == records["bob_new"].request_id
    assert newest["charged_usd"] == "0.000000007"
    assert newest["upstream_cost_usd"] == ""
    assert newest["channel"] == "backup"
    assert newest["tenant"] == "Bob Corp"
    assert newest["price_multiplier"] == "1.0000"


def test_customer_text_cannot_become_a_spreadsheet_formula(support_client, records):
    response = support_client.get(reverse("console:usage_export"), {"status": "error"})
    [row] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["error"] == "'=cmd|' /C calc'!A0"


def test_the_breakdown_multiplies_each_bucket_by_its_snapshot_price(
    support_client, alice
):
    record = usage_record(
        alice,
        prompt_tokens=1000,
        cached_tokens=200,
        cache_write_tokens=100,
        completion_tokens=50,
        input_price=400,
        cached_input_price=100,
        cache_write_price=500,
        output_price=1600,
        per_request_price=3000,
        price_multiplier=Decimal("0.8500"),
        # (700*400 + 200*100 + 100*500 + 50*1600 + 3000) * 0.85
        cost=368_050,
        charged=368_050,
        upstream_cost=200_000,
    )
    response = support_client.get(
        reverse("console:usage_detail", args=[record.request_id])
    )
    breakdown = response.context["breakdown"]
    assert [(line.bucket, line.quantity, line.amount) for line in breakdown.lines] == [
        ("input", 700, 280_000),
        ("cached input", 200, 20_000),
        ("cache write", 100, 50_000),
        ("output", 50, 80_000),
        ("request fee", 1, 3000),
    ]
    assert breakdown.subtotal == 433_000
    assert breakdown.consistent
    assert breakdown.margin == 168_050
    text = response.content.decode()
    # Rounded for reading, exact on hover.
    assert 'id="breakdown-cost"><span title="$0.000368050">$0.00037</span><' in text
    assert 'id="breakdown-upstream"><span title="$0.000200000">$0.00020</span><' in text


def test_reasoning_is_shown_apart_at_the_output_price(support_client, alice):
    record = usage_record(
        alice,
        prompt_tokens=10,
        completion_tokens=50,
        reasoning_tokens=30,
        input_price=400,
        output_price=1600,
        cost=84_000,
        charged=84_000,
    )
    response = support_client.get(
        reverse("console:usage_detail", args=[record.request_id])
    )
    breakdown = response.context["breakdown"]
    assert [(line.bucket, line.quantity, line.amount) for line in breakdown.lines] == [
        ("input", 10, 4_000),
        ("output", 20, 32_000),
        ("reasoning (output)", 30, 48_000),
    ]
    assert breakdown.consistent


def test_an_unknown_request_is_not_found(support_client, db):
    response = support_client.get(reverse("console:usage_detail", args=["req_nope"]))
    assert response.status_code == 404


def test_the_list_pages_without_one_query_per_row(
    support_client, alice, channel, django_assert_max_num_queries
):
    for _ in range(30):
        usage_record(alice, channel=channel)
    with django_assert_max_num_queries(12):
        response = support_client.get(reverse("console:usage"))
    assert len(response.context["page"].object_list) == 30


def test_under_asgi_the_export_is_pulled_chunk_by_chunk(support, alice, channel):
    """Under ASGI (uvicorn, as in production) Django would read a plain
    iterator whole into memory before the first byte, warning that it does:
    the export hands it an asynchronous one instead."""
    template = usage_record(alice, channel=channel)
    UsageRecord.objects.bulk_create(
        UsageRecord(
            **{
                f.attname: getattr(template, f.attname)
                for f in UsageRecord._meta.concrete_fields
                if f.attname not in ("id", "request_id")
            },
            request_id=f"req_bulk_{i}",
        )
        for i in range(1200)
    )
    request = AsyncRequestFactory().get(reverse("console:usage_export"))
    request.user = support
    response = usage_export(request)
    assert response.is_async

    async def read() -> list[bytes]:
        return [chunk async for chunk in response]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunks = async_to_sync(read)()
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 1 + 1201
    assert lines[0].startswith("created_at,request_id,")
    assert len(chunks) == 3  # 500 rows a chunk


def test_a_request_routed_by_auto_says_so_to_staff(support_client, alice):
    record = factories.usage_record(alice, model="gpt-4.1-mini", routed_from="auto")

    page = support_client.get(reverse("console:usage_detail", args=[record.request_id]))

    assert "gpt-4.1-mini (chosen for “auto”)" in page.content.decode()
