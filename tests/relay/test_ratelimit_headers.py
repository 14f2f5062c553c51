"""OpenAI's x-ratelimit-* headers on the answers of a key that has limits."""

import httpx
import pytest

from accounts.services import api_key_create
from relay import limits

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {
    f"x-ratelimit-{what}-{kind}"
    for what in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
}


def call(relay, secret, body=BODY):
    return httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def limited_key(customer, **limits_):
    _, secret = api_key_create(tenant=customer.tenant, name="limited", **limits_)
    return secret


def rate_headers(response) -> set[str]:
    return {name for name in response.headers if name.startswith("x-ratelimit-")}


@pytest.fixture
def clock(monkeypatch):
    """The limits' wall clock, at the start of a minute, movable by tests."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(limits, "wall_clock", lambda: now[0])
    return now


def test_it_tells_the_minute_of_a_limited_key(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=3, tpm_limit=1000)

    first = call(relay, secret)

    assert first.status_code == 200
    assert rate_headers(first) == HEADERS
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    estimate = 1000 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert 0 < estimate < 1000
    assert first.headers["x-ratelimit-reset-tokens"] == "1m0s"

    clock[0] += 6.5
    second = call(relay, secret)

    assert second.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-reset-requests"] == "53.5s"
    assert second.headers["x-ratelimit-reset-tokens"] == "53.5s"
    # The first request counts as what it used, the second as its estimate.
    used = first.json()["usage"]["total_tokens"]
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == (
        1000 - used - estimate
    )


def test_a_stream_carries_them_too(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=5)

    with httpx.stream(
        "POST",
        f"{relay}/chat/completions",
        json={**BODY, "stream": True},
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    ) as streamed:
        streamed.read()

    assert streamed.status_code == 200
    assert streamed.headers["x-ratelimit-limit-requests"] == "5"
    assert streamed.headers["x-ratelimit-remaining-requests"] == "4"


def test_only_the_limits_the_key_has(relay, channel, alice, clock):
    requests_only = call(relay, limited_key(alice, rpm_limit=5))
    tokens_only = call(relay, limited_key(alice, tpm_limit=500))

    assert rate_headers(requests_only) == {h for h in HEADERS if "requests" in h}
    assert rate_headers(tokens_only) == {h for h in HEADERS if "tokens" in h}


def test_a_key_without_limits_gets_none(relay, channel, alice):
    answer = call(relay, alice.secret)

    assert answer.status_code == 200
    assert rate_headers(answer) == set()


def test_a_refusal_by_the_keys_own_limit_tells_them(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=1, tpm_limit=1000)
    assert call(relay, secret).status_code == 200
    clock[0] += 15

    refused = call(relay, secret)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["retry-after"] == "45"
    assert rate_headers(refused) == HEADERS
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"] == "45s"


def test_a_refusal_after_admission_tells_them(relay, channel, alice, clock):
    secret = limited_key(alice, rpm_limit=2)
    wallet = alice.wallet
    wallet.balance = 0
    wallet.save()

    refused = call(relay, secret)

    assert refused.status_code == 402
    assert refused.headers["x-ratelimit-remaining-requests"] == "1"


@pytest.mark.parametrize(
    "seconds, written",
    [
        (0, "0s"),
        (0.02, "20ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.9991, "1m0s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (90.25, "1m30.25s"),
    ],
)
def test_reset_durations_are_written_as_openai_writes_them(seconds, written):
    assert limits.duration(seconds) == written
