import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict

from accounts.services import api_key_create
from billing.money import usd_string
from relay.filters import UsageFilter
from relay.models import UsageRecord
from relay.selectors import CSV_HEADER, usage_csv_rows, usage_records
from tests import factories

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def record(customer, n: int, **fields) -> UsageRecord:
    """Usage record `n` of `customer`, made `n` hours after T0."""
    values = {
        "request_id": f"req-{customer.tenant.pk}-{n}",
        "created_at": T0 + timedelta(hours=n),
        **fields,
    }
    return factories.usage_record(customer, **values)


def ids(records) -> list[str]:
    return [r.request_id for r in records]


def usage_filtered(*, tenant_id: int, **params) -> list[UsageRecord]:
    """`tenant_id`'s records narrowed by the query parameters `params`."""
    usage = UsageFilter(
        {name: str(value) for name, value in params.items()},
        queryset=usage_records(tenant_id=tenant_id),
    )
    assert usage.is_valid(), usage.problems
    return list(usage.qs)


def usage_filters_from(params) -> dict:
    """The values UsageFilter parses from `params`; AssertionError naming the
    refused parameters when it refuses any."""
    usage = UsageFilter(params, queryset=UsageRecord.objects.none())
    if not usage.is_valid():
        raise Refused(usage.problems)
    return usage.form.cleaned_data


class Refused(AssertionError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(errors)


def test_it_returns_only_the_tenants_records_newest_first(alice, bob):
    record(alice, 0)
    record(alice, 2)
    record(alice, 1)
    record(bob, 5)

    found = usage_filtered(tenant_id=alice.tenant.pk)

    assert ids(found) == [f"req-{alice.tenant.pk}-{n}" for n in (2, 1, 0)]


def test_it_filters_by_start_inclusive_and_end_exclusive(alice):
    for n in range(4):
        record(alice, n)

    found = usage_filtered(
        tenant_id=alice.tenant.pk,
        start=(T0 + timedelta(hours=1)).isoformat(),
        end=(T0 + timedelta(hours=3)).isoformat(),
    )

    assert ids(found) == [f"req-{alice.tenant.pk}-{n}" for n in (2, 1)]


def test_it_filters_by_key_model_and_status(alice):
    other_key, _ = api_key_create(tenant=alice.tenant, name="other")
    record(alice, 0, api_key=other_key)
    record(alice, 1, model="gpt-4.1")
    record(alice, 2, status=UsageRecord.Status.UPSTREAM_ERROR, http_status=502)
    record(alice, 3)
    tenant = alice.tenant.pk

    assert ids(usage_filtered(tenant_id=tenant, key=other_key.pk)) == [
        f"req-{tenant}-0"
    ]
    assert ids(usage_filtered(tenant_id=tenant, model="gpt-4.1")) == [f"req-{tenant}-1"]
    assert ids(usage_filtered(tenant_id=tenant, status="upstream_error")) == [
        f"req-{tenant}-2"
    ]


def test_a_key_of_another_tenant_finds_nothing(alice, bob):
    bob_key = bob.tenant.api_keys.get()
    record(bob, 0, api_key=bob_key)

    assert not usage_filtered(tenant_id=alice.tenant.pk, key=bob_key.pk)


def test_it_parses_every_parameter():
    params = QueryDict(
        "start=2025-03-01&end=2025-03-31T12:30:00Z&key=7&model=gpt-4.1&status=ok"
        "&end_user=ann&tag=team%3Dsearch"
    )

    assert usage_filters_from(params) == {
        "start": datetime(2025, 3, 1, tzinfo=UTC),
        "end": datetime(2025, 3, 31, 12, 30, tzinfo=UTC),
        "key": 7,
        "model": "gpt-4.1",
        "status": "ok",
        "end_user": "ann",
        "tag": ("team", "search"),
    }


def test_empty_parameters_do_not_filter():
    params = QueryDict("start=&end=&key=&model=&status=")

    assert set(usage_filters_from(params).values()) == {None}


def test_an_end_date_includes_the_whole_day():
    filters = usage_filters_from(QueryDict("start=2025-03-10&end=2025-03-10"))

    assert filters["start"] == datetime(2025, 3, 10, tzinfo=UTC)
    assert filters["end"] == datetime(2025, 3, 11, tzinfo=UTC)


def test_an_offset_is_honoured():
    filters = usage_filters_from(QueryDict("start=2025-03-10T09:00:00%2B02:00"))

    assert filters["start"] == datetime(2025, 3, 10, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "query, param, message",
    [
        ("start=yesterday", "start", "ISO 8601"),
        ("end=2025-02-30", "end", "ISO 8601"),
        ("end=9999-12-31", "end", "ISO 8601"),
        ("key=abc", "key", "positive integer"),
        ("key=-1", "key", "positive integer"),
        ("key=0", "key", "positive integer"),
        ("key=99999999999999999999", "key", "positive integer"),
        ("status=fine", "status", "ok, client_closed"),
        ("model=" + "m" * 101, "model", "at most 100"),
        ("model=gpt%00", "model", "no control characters"),
        ("start=2025-03-02&end=2025-03-01", "end", "after its start"),
    ],
)
def test_it_refuses_bad_parameters(query, param, message):
    with pytest.raises(Refused) as refused:
        usage_filters_from(QueryDict(query))

    assert list(refused.value.errors) == [param]
    assert message in refused.value.errors[param]


def test_it_names_every_bad_parameter():
    with pytest.raises(Refused) as refused:
        usage_filters_from(QueryDict("start=x&key=y"))

    assert set(refused.value.errors) == {"start", "key"}


def test_usd_strings_are_exact():
    assert usd_string(0) == "0.000000000"
    assert usd_string(1) == "0.000000001"
    assert usd_string(-1_500_000_000) == "-1.500000000"
    assert usd_string(-1) == "-0.000000001"
    assert usd_string(12_345_678_901_234) == "12345.678901234"
    for nano in (0, 7, -7, 999_999_999, -1_000_000_000, 10**18 + 1):
        # The same digits as Decimal's exact rendering.
        assert usd_string(nano) == f"{Decimal(nano).scaleb(-9):f}"
    assert usd_string(2**63 - 1) == "9223372036.854775807"


def test_csv_rows_carry_exact_costs_and_the_key(alice):
    key = alice.tenant.api_keys.get()
    record(
        alice,
        1,
        api_key=key,
        prompt_tokens=1200,
        cached_tokens=200,
        completion_tokens=33,
        reasoning_tokens=8,
        cost=123_456_789_012,
        charged=123_456_789_011,
        endpoint="chat.completions",
    )
    record(alice, 0, api_key=None, images=2, cost=7, charged=0)

    rows = list(usage_csv_rows(usage_records(tenant_id=alice.tenant.pk)))

    assert rows[0] == CSV_HEADER
    assert list(rows[1]) == [
        (T0 + timedelta(hours=1)).isoformat(),
        f"req-{alice.tenant.pk}-1",
        key.name,
        key.prefix,
        "gpt-4.1-mini",
        "chat.completions",
        "ok",
        200,
        1200,
        200,
        33,
        8,
        0,
        "123.456789012",
        "123.456789011",
        "",
        "",
    ]
    assert rows[2][2:4] == ("", "")
    assert rows[2][12:] == (2, "0.000000007", "0.000000000", "", "")


def test_csv_export_reads_keys_without_a_query_per_row(
    alice, django_assert_num_queries
):
    key = alice.tenant.api_keys.get()
    for n in range(30):
        record(alice, n, api_key=key)
    records = usage_records(tenant_id=alice.tenant.pk)

    with django_assert_num_queries(1):
        out = io.StringIO()
        csv.writer(out).writerows(usage_csv_rows(records))

    lines = out.getvalue().splitlines()
    assert len(lines) == 31
    assert lines[1].split(",")[2] == key.name
