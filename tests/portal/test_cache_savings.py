"""The dashboard tells what the response cache did: its hit rate over the
last 30 days and the money it saved, the tenant's own."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse

from portal import selectors
from relay.models import UsageRecord
from tests import factories

NOON = datetime(2025, 6, 30, 12, tzinfo=UTC)
TODAY = date(2025, 6, 30)
CACHE = UsageRecord.Source.CACHE


def hit(owner, *, charged=0, uncached=3_000_000, created_at=NOON):
    return factories.usage_record(
        owner,
        usage_source=CACHE,
        charged=charged,
        uncached_cost=uncached,
        created_at=created_at,
    )


def test_hit_rate_and_savings_over_thirty_days(alice, bob):
    hit(alice, charged=1_000_000, uncached=3_000_000)
    hit(alice, charged=0, uncached=2_500_000)
    factories.usage_record(alice, created_at=NOON, charged=3_000_000)
    factories.usage_record(alice, created_at=NOON - timedelta(days=2), charged=5)
    hit(alice, created_at=NOON - timedelta(days=30))  # before the window
    hit(bob, charged=0, uncached=9_000_000)  # another tenant's

    used = selectors.cache_use(tenant=alice.tenant, today=TODAY)

    assert (used.requests, used.hits) == (4, 2)
    assert used.hit_rate == 50.0
    assert used.charged == 1_000_000
    assert used.saved == 5_500_000 - 1_000_000


def test_no_requests_is_a_zero_rate(alice):
    used = selectors.cache_use(tenant=alice.tenant, today=TODAY)
    assert (used.requests, used.hits, used.hit_rate, used.saved) == (0, 0, 0.0, 0)


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def test_the_dashboard_shows_them_once_the_cache_answered(signed_in, alice):
    factories.usage_record(alice)
    assert (
        'data-testid="response-cache"'
        not in signed_in.get(reverse("dashboard")).content.decode()
    )
    factories.usage_record(
        alice, usage_source=CACHE, charged=250_000_000, uncached_cost=4_250_000_000
    )

    html = signed_in.get(reverse("dashboard")).content.decode()

    assert 'data-testid="response-cache"' in html
    assert "1 of 2 requests answered from the cache (50.0%)" in html
    assert 'Saved <span title="$4.000000000">$4.00</span>' in html


def test_owners_give_a_key_a_response_cache_when_they_create_it(client, alice):
    client.force_login(alice.user)

    made = client.post(reverse("key_create"), {"name": "evals", "cache_ttl": "600"})
    too_long = client.post(
        reverse("key_create"), {"name": "forever", "cache_ttl": str(8 * 86400)}
    )

    assert made.status_code == 200
    assert alice.tenant.api_keys.get(name="evals").cache_ttl == 600
    assert too_long.context["form"].errors["cache_ttl"]
    assert not alice.tenant.api_keys.filter(name="forever").exists()
