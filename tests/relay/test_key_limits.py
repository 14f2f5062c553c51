"""A key's own limits: where it may be used from, requests and tokens a minute."""

import httpx
import pytest

from accounts.models import ApiKey
from accounts.services import api_key_create
from billing.models import Hold, LedgerEntry
from relay import limits
from relay.models import UsageRecord

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


def call(relay, secret):
    return httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def limited_key(customer, **limits_):
    _, secret = api_key_create(tenant=customer.tenant, name="limited", **limits_)
    return secret


@pytest.fixture
def clock(monkeypatch):
    """The limits' wall clock, at the start of a minute, movable by tests."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(limits, "wall_clock", lambda: now[0])
    return now


def test_requests_per_minute(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=2)
    assert [call(relay, secret).status_code for _ in range(2)] == [200, 200]

    refused = call(relay, secret)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "2 requests per minute" in error["message"]
    assert refused.headers["retry-after"] == "60"
    assert UsageRecord.objects.count() == 2  # the refusal was never relayed
    assert not Hold.objects.exists()
    assert LedgerEntry.objects.filter(kind="usage").count() == 2
    # Other keys of the tenant are not limited by this one's limit.
    assert call(relay, alice.secret).status_code == 200
    # The next minute starts afresh.
    clock[0] += 60
    assert call(relay, secret).status_code == 200


def test_tokens_per_minute_count_the_real_usage(relay, channel, alice, clock):
    secret = limited_key(alice, tpm_limit=10)
    first = call(relay, secret)
    assert first.status_code == 200
    assert first.json()["usage"]["total_tokens"] >= 10  # over the limit now

    refused = call(relay, secret)

    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    clock[0] += 60
    assert call(relay, secret).status_code == 200


def test_a_refused_request_uses_no_allowance(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=1)
    assert call(relay, secret).status_code == 200
    for _ in range(3):
        assert call(relay, secret).status_code == 429
    clock[0] += 60
    assert call(relay, secret).status_code == 200
    assert call(relay, secret).status_code == 429


@pytest.mark.parametrize(
    ("allowed", "status"),
    [
        ([], 200),
        (["127.0.0.1"], 200),
        (["127.0.0.0/8", "2001:db8::/32"], 200),
        (["10.0.0.0/8"], 403),
    ],
)
def test_ip_allowlist(relay, channel, alice, allowed, status):
    secret = limited_key(alice, allowed_ips=allowed)
    response = call(relay, secret)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["code"] == "ip_not_allowed"
        assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "localhost", "1.2.3"])
def test_an_allowlist_entry_must_be_an_address_or_network(alice, entry):
    with pytest.raises(ValueError, match="not an IP address or network"):
        limited_key(alice, allowed_ips=[entry])
    assert not ApiKey.objects.filter(name="limited").exists()
