"""The usage log: filters, pages, CSV export, and a constant number of queries."""

import csv
import io
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncRequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_key_create
from portal.views.usage import usage_csv
from relay.models import UsageRecord
from tests import factories


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def rows(response) -> list[str]:
    return [r.request_id for r in response.context["page"]]


def test_it_lists_the_tenants_requests_newest_first(signed_in, alice):
    now = timezone.now()
    old = factories.usage_record(
        alice, created_at=now - timedelta(hours=2), charged=1_234
    )
    new = factories.usage_record(
        alice, created_at=now, prompt_tokens=321, completion_tokens=45
    )
    response = signed_in.get(reverse("usage"))
    assert response.status_code == 200
    assert rows(response) == [new.request_id, old.request_id]
    html = response.content.decode()
    assert "$0.000001234" in html
    assert ">321<" in html and ">45<" in html


def test_it_filters_by_date_key_model_and_status(signed_in, alice):
    other_key, _ = api_key_create(tenant=alice.tenant, name="batch")
    day = datetime(2025, 3, 10, 12, tzinfo=UTC)
    factories.usage_record(alice, created_at=day - timedelta(days=1))
    wanted = factories.usage_record(
        alice,
        api_key=other_key,
        model="gpt-4.1",
        status=UsageRecord.Status.UPSTREAM_ERROR,
        created_at=day,
    )
    factories.usage_record(alice, api_key=other_key, model="gpt-4.1", created_at=day)
    factories.usage_record(
        alice, api_key=other_key, status="upstream_error", created_at=day
    )
    factories.usage_record(
        alice, model="gpt-4.1", status="upstream_error", created_at=day
    )
    factories.usage_record(alice, created_at=day + timedelta(days=1))
    query = {
        "start": "2025-03-10",
        "end": "2025-03-10",
        "key": other_key.pk,
        "model": "gpt-4.1",
        "status": "upstream_error",
    }
    response = signed_in.get(reverse("usage"), query)
    assert rows(response) == [wanted.request_id]
    response = signed_in.get(
        reverse("usage"), {"start": "2025-03-10", "end": "2025-03-10"}
    )
    assert len(rows(response)) == 4


def test_a_bad_filter_is_explained_not_ignored(signed_in, alice):
    factories.usage_record(alice)
    response = signed_in.get(reverse("usage"), {"start": "yesterday", "status": "bad"})
    assert response.status_code == 200
    assert response.context["page"] is None
    html = response.content.decode()
    assert "is not an ISO 8601 date" in html
    assert "is not a status" in html
    assert 'aria-invalid="true"' in html


def test_it_pages_through_the_log(signed_in, alice):
    start = timezone.now() - timedelta(hours=1)
    records = [
        factories.usage_record(alice, created_at=start + timedelta(seconds=n))
        for n in range(55)
    ]
    first = signed_in.get(reverse("usage"), {"model": "gpt-4.1-mini"})
    second = signed_in.get(reverse("usage"), {"model": "gpt-4.1-mini", "page": 2})
    newest_first = [r.request_id for r in reversed(records)]
    assert rows(first) == newest_first[:50]
    assert rows(second) == newest_first[50:]
    assert "model=gpt-4.1-mini&amp;page=2" in first.content.decode()


def test_the_csv_export_holds_exactly_the_filtered_rows(signed_in, alice):
    key = alice.tenant.api_keys.get()
    at = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
    wanted = factories.usage_record(
        alice,
        model="gpt-4.1",
        created_at=at,
        prompt_tokens=1000,
        cached_tokens=200,
        completion_tokens=50,
        reasoning_tokens=20,
        cost=2_123_456_789,
        charged=2_000_000_001,
    )
    factories.usage_record(alice, model="gpt-4.1-nano", created_at=at)
    response = signed_in.get(reverse("usage_csv"), {"model": "gpt-4.1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    # The columns in their order, each with the wanted record's cell.
    expected = {
        "created_at": "2025-03-10T12:30:00+00:00",
        "request_id": wanted.request_id,
        "key_name": key.name,
        "key_prefix": key.prefix,
        "model": "gpt-4.1",
        "endpoint": "chat.completions",
        "status": "ok",
        "http_status": "200",
        "prompt_tokens": "1000",
        "cached_tokens": "200",
        "completion_tokens": "50",
        "reasoning_tokens": "20",
        "images": "0",
        "cost_usd": "2.123456789",
        "charged_usd": "2.000000001",
        "end_user": "",
        "tags": "",
    }
    assert list(csv.reader(io.StringIO(body))) == [
        list(expected),
        list(expected.values()),
    ]


def test_the_csv_export_keeps_the_customers_text_from_running_as_a_formula(
    signed_in, alice
):
    key, _ = api_key_create(tenant=alice.tenant, name='=HYPERLINK("http://x.test")')
    factories.usage_record(alice, api_key=key, model="@SUM(A1:A9)")
    factories.usage_record(alice, api_key=key, model="\tgpt-4.1-mini")
    response = signed_in.get(reverse("usage_csv"), {"key": key.pk})
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {row["key_name"] for row in rows} == {'\'=HYPERLINK("http://x.test")'}
    assert {row["model"] for row in rows} == {"'@SUM(A1:A9)", "'\tgpt-4.1-mini"}


def test_under_asgi_the_export_streams_in_chunks(alice):
    """Under ASGI (uvicorn) a synchronous iterator would be read whole into
    memory before the first byte, with a warning: the export pulls chunks."""
    key = alice.tenant.api_keys.get()
    UsageRecord.objects.bulk_create(
        UsageRecord(
            request_id=f"req-asgi-{n}",
            tenant=alice.tenant,
            api_key=key,
            model="gpt-4.1-mini",
            status=UsageRecord.Status.OK,
            http_status=200,
        )
        for n in range(1100)
    )
    request = AsyncRequestFactory().get(reverse("usage_csv"))
    request.user = alice.user
    response = usage_csv(request)

    async def chunks() -> list[bytes]:
        return [chunk async for chunk in response]

    assert response.is_async
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        received = async_to_sync(chunks)()
    assert [len(chunk.splitlines()) for chunk in received] == [500, 500, 101]


def test_a_bad_export_filter_is_a_400_with_the_reason(signed_in, alice):
    response = signed_in.get(reverse("usage_csv"), {"end": "31/12/2025"})
    assert response.status_code == 400
    assert "is not an ISO 8601 date" in response.content.decode()


def test_members_see_usage(client, alice):
    record = factories.usage_record(alice)
    client.force_login(factories.member(alice.tenant, "mallory@example.com"))
    assert record.request_id in client.get(reverse("usage")).content.decode()
    detail = client.get(reverse("usage_detail", args=[record.request_id]))
    assert detail.status_code == 200


def test_the_detail_page_shows_prices_and_cost(signed_in, alice):
    record = factories.usage_record(
        alice, cost=5_000_000, charged=5_000_000, latency_ms=812
    )
    response = signed_in.get(reverse("usage_detail", args=[record.request_id]))
    html = response.content.decode()
    assert "$0.005" in html and "812 ms" in html


def test_signed_out_visitors_are_sent_to_log_in(client, alice):
    response = client.get(reverse("usage"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_usage_page_takes_as_many_queries_for_40_rows_as_for_3(
    signed_in, alice, channel, django_assert_max_num_queries
):
    api_key_create(tenant=alice.tenant, name="second")
    counts = []
    for total in (3, 40):
        for n in range(UsageRecord.objects.count(), total):
            key, _ = api_key_create(tenant=alice.tenant, name=f"key {n}")
            factories.usage_record(alice, api_key=key)
        with django_assert_max_num_queries(10) as queries:
            response = signed_in.get(reverse("usage"))
        assert len(rows(response)) == total
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_detail_page_shows_the_reasoning_part_of_the_output(signed_in, alice):
    record = factories.usage_record(alice, completion_tokens=120, reasoning_tokens=80)
    response = signed_in.get(reverse("usage_detail", args=[record.request_id]))
    assert "120 (80 reasoning)" in response.content.decode()


def test_a_request_routed_by_auto_says_so_in_its_detail(signed_in, alice):
    record = factories.usage_record(alice, model="gpt-4.1-nano", routed_from="auto")

    page = signed_in.get(reverse("usage_detail", args=[record.request_id]))

    assert "gpt-4.1-nano" in page.content.decode()
    assert "(chosen for “auto”)" in page.content.decode()
