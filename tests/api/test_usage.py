from accounts.services import api_key_create
from relay.models import UsageRecord
from tests.api.conftest import make_usage


def request_ids(response) -> list[str]:
    return [record["request_id"] for record in response.json()["results"]]


def test_it_lists_usage_newest_first_with_cost(alice, alice_api):
    make_usage(alice, 0)
    make_usage(
        alice,
        1,
        prompt_tokens=1200,
        cached_tokens=200,
        completion_tokens=33,
        cost=123_456_789_012,
        charged=123_456_789_011,
    )

    response = alice_api.get("/api/usage/")

    assert response.status_code == 200
    assert request_ids(response) == [
        f"req_{alice.tenant.pk}_1",
        f"req_{alice.tenant.pk}_0",
    ]
    record = response.json()["results"][0]
    key = alice.tenant.api_keys.get()
    assert record["key"] == {"id": key.pk, "name": key.name, "prefix": key.prefix}
    assert record["prompt_tokens"] == 1200
    assert record["cached_tokens"] == 200
    assert record["completion_tokens"] == 33
    assert record["cost"] == 123_456_789_012
    assert record["cost_usd"] == "123.456789012"
    assert record["charged_usd"] == "123.456789011"
    assert record["status"] == "ok"
    assert record["created_at"] == "2025-03-10T12:01:00Z"


def test_it_filters(alice, alice_api):
    other, _ = api_key_create(tenant=alice.tenant, name="other")
    make_usage(alice, 0, api_key=other)
    make_usage(alice, 1, model="gpt-4.1")
    make_usage(alice, 2, status=UsageRecord.Status.UPSTREAM_ERROR, http_status=502)
    make_usage(alice, 30)
    prefix = f"req_{alice.tenant.pk}_"

    def found(**params):
        return request_ids(alice_api.get("/api/usage/", **params))

    assert found(key=other.pk) == [f"{prefix}0"]
    assert found(model="gpt-4.1") == [f"{prefix}1"]
    assert found(status="upstream_error") == [f"{prefix}2"]
    assert found(start="2025-03-10T12:01:00Z", end="2025-03-10T12:30:00Z") == [
        f"{prefix}2",
        f"{prefix}1",
    ]
    assert found(end="2025-03-10") == [f"{prefix}{n}" for n in (30, 2, 1, 0)]
    assert found(start="2025-03-11") == []


def test_bad_filters_are_400_naming_each(alice_api):
    response = alice_api.get("/api/usage/", start="last week", status="great")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"start", "status"}
    assert "ISO 8601" in body["errors"]["start"][0]


def test_pages_follow_the_cursor_without_gaps_or_repeats(alice, alice_api):
    for n in range(7):
        make_usage(alice, n)
    # Same instant: the cursor must still keep them apart.
    make_usage(
        alice,
        100,
        created_at=UsageRecord.objects.get(
            request_id=f"req_{alice.tenant.pk}_3"
        ).created_at,
    )

    seen = []
    response = alice_api.get("/api/usage/", page_size=3, model="gpt-4.1-mini")
    for _ in range(10):
        seen += request_ids(response)
        next_url = response.json()["next"]
        if next_url is None:
            break
        assert "model=gpt-4.1-mini" in next_url
        response = alice_api.client.get(next_url)

    assert len(seen) == 8
    assert len(set(seen)) == 8


def test_a_bad_cursor_is_400(alice_api):
    response = alice_api.get("/api/usage/", cursor="garbage")

    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


def test_one_record_by_request_id(alice, alice_api):
    make_usage(alice, 5, cost=7)

    response = alice_api.get(f"/api/usage/req_{alice.tenant.pk}_5/")

    assert response.status_code == 200
    assert response.json()["cost_usd"] == "0.000000007"


def test_a_record_of_a_deleted_key_has_no_key(alice, alice_api):
    make_usage(alice, 0, api_key=None)

    assert alice_api.get("/api/usage/").json()["results"][0]["key"] is None


def test_members_read_usage(alice, carol_api):
    make_usage(alice, 0)

    assert len(carol_api.get("/api/usage/").json()["results"]) == 1
