"""The management API: a key's in-flight limit and response cache, and
refused requests."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create
from relay.models import RefusalCount


def test_a_key_is_created_with_an_in_flight_limit(alice_api):
    response = alice_api.post("/api/keys/", {"name": "ci", "max_in_flight": 5})

    assert response.status_code == 201, response.json()
    assert response.json()["max_in_flight"] == 5
    assert ApiKey.objects.get(pk=response.json()["id"]).max_in_flight == 5
    refused = alice_api.post("/api/keys/", {"name": "ci", "max_in_flight": 0})
    assert refused.status_code == 400
    assert "max_in_flight" in str(refused.json())


def refused(customer, key, code, count, *, minutes_ago=1, status=429):
    RefusalCount.objects.create(
        tenant=customer.tenant,
        api_key=key,
        minute=timezone.now() - timedelta(minutes=minutes_ago),
        status=status,
        code=code,
        count=count,
    )


def test_refusals_of_the_last_day_by_key_and_code(alice, bob, alice_api):
    key = alice.tenant.api_keys.get()
    other, _ = api_key_create(tenant=alice.tenant, name="batch")
    refused(alice, key, "rate_limit_exceeded", 3, minutes_ago=2)
    refused(alice, key, "rate_limit_exceeded", 2)
    refused(alice, other, "insufficient_balance", 1, status=402)
    refused(alice, key, "rate_limit_exceeded", 40, minutes_ago=25 * 60)
    refused(bob, bob.tenant.api_keys.get(), "rate_limit_exceeded", 9)

    body = alice_api.get("/api/refusals/").json()

    assert [
        (row["key"]["id"], row["status"], row["code"], row["count"])
        for row in body["results"]
    ] == [
        (key.pk, 429, "rate_limit_exceeded", 5),
        (other.pk, 402, "insufficient_balance", 1),
    ]
    assert body["results"][0]["key"]["name"] == "alice's key"
    assert body["results"][0]["key"]["prefix"] == key.prefix
    assert body["results"][0]["last_at"]
    one = alice_api.get("/api/refusals/", key=other.pk).json()
    assert [row["count"] for row in one["results"]] == [1]
    # Another tenant's key id shows nothing of it.
    bobs = alice_api.get("/api/refusals/", key=bob.tenant.api_keys.get().pk)
    assert bobs.json() == {"results": []}
    assert alice_api.get("/api/refusals/", key="x").status_code == 400


def test_a_key_is_created_with_a_response_cache(alice_api):
    response = alice_api.post("/api/keys/", {"name": "evals", "cache_ttl": 600})

    assert response.status_code == 201, response.json()
    assert response.json()["cache_ttl"] == 600
    assert ApiKey.objects.get(pk=response.json()["id"]).cache_ttl == 600
    refused = alice_api.post("/api/keys/", {"name": "x", "cache_ttl": -1})
    assert refused.status_code == 400
    assert "cache_ttl" in str(refused.json())
