"""Every upstream rate limited: the client gets 429 upstream_rate_limited with
the longest wait any upstream asked for, and is charged nothing."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from relay.attempts import retry_after
from relay.models import UsageRecord
from tests import factories

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def preferred(channel, fake, settings):
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0
    fake.scenario("preferred")
    return factories.channel(
        "preferred",
        fake.url("preferred"),
        ["gpt-4.1-mini"],
        key="sk-preferred",
        priority=10,
    )


def call(relay, customer, body=BODY):
    return httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {customer.secret}"},
        timeout=10,
    )


def assert_refused_uncharged(response, customer, *, retry_after):
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_rate_limited"
    assert response.headers.get("retry-after") == retry_after
    record = UsageRecord.objects.get()
    assert (record.status, record.http_status) == ("rejected", 429)
    assert record.charged == 0
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(kind="usage").exists()
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (10_000_000_000, 0)
    call_command("billing_audit")


def test_every_channel_rate_limited(relay, alice, channel, preferred, fake):
    fake.scenario("preferred", status=429, retry_after=7)
    fake.scenario("default", status=429, retry_after=3)

    response = call(relay, alice)

    assert fake.request_counts["preferred"] == 1
    assert fake.request_counts["default"] == 1
    assert_refused_uncharged(response, alice, retry_after="7")


def test_one_channel_rate_limited(relay, alice, channel, fake, settings):
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0
    fake.scenario("default", status=429, retry_after=2)

    response = call(relay, alice)

    assert_refused_uncharged(response, alice, retry_after="2")


def test_a_stream_rate_limited_everywhere(relay, alice, channel, fake):
    fake.scenario("default", status=429, retry_after=4)

    response = call(relay, alice, {**BODY, "stream": True})

    assert_refused_uncharged(response, alice, retry_after="4")


def test_upstreams_that_do_not_say_how_long(relay, alice, channel, fake):
    fake.scenario("default", status=429, retry_after=None)

    response = call(relay, alice)

    assert_refused_uncharged(response, alice, retry_after=None)


def test_rate_limited_and_down_is_still_unavailable(
    relay, alice, channel, preferred, fake
):
    fake.scenario("preferred", status=500)
    fake.scenario("default", status=429, retry_after=3)

    response = call(relay, alice)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"


def test_the_channel_that_serves_after_a_429_serves(
    relay, alice, channel, preferred, fake
):
    fake.scenario("preferred", status=429, retry_after=30)

    assert call(relay, alice).status_code == 200


def in_seconds(seconds: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"retry-after": "3"}, 3),
        ({"retry-after": "2.5"}, 3),
        ({"retry-after-ms": "1500"}, 2),
        ({"retry-after-ms": "1500", "retry-after": "1"}, 2),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0),
        ({"retry-after": "tomorrow"}, None),
        ({}, None),
    ],
)
def test_how_long_an_upstream_asks_to_wait(headers, seconds):
    assert retry_after(httpx.Headers(headers)) == seconds


def test_a_wait_given_as_a_date():
    assert 118 <= retry_after(httpx.Headers({"retry-after": in_seconds(120)})) <= 120
