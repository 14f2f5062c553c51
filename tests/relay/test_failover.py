"""The first channel fails in every way a channel fails; the next one serves,
and the request is charged exactly once."""

import socket

import httpx
import pytest
from django.core.management import call_command

from billing.models import LedgerEntry
from relay.models import Channel, UsageRecord

BODY = {
    "model": "gpt-4.1-mini",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 5,
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def preferred(channel, fake, settings) -> Channel:
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0
    fake.scenario("preferred")
    preferred = Channel.objects.create(
        name="preferred",
        base_url=fake.url("preferred"),
        model_names=["gpt-4.1-mini"],
        priority=10,
    )
    preferred.add_key("sk-preferred")
    return preferred


def served_once_by_the_backup(relay, customer, channel) -> None:
    before = customer.wallet.balance
    response = httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {customer.secret}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    record = UsageRecord.objects.get()
    assert record.channel_id == channel.pk
    assert LedgerEntry.objects.filter(kind="usage").count() == 1
    assert before - customer.wallet.balance == record.charged > 0
    assert customer.wallet.held == 0
    call_command("billing_audit")


def test_a_channel_that_is_down(relay, alice, channel, preferred):
    Channel.objects.filter(pk=preferred.pk).update(
        base_url=f"http://127.0.0.1:{closed_port()}/v1"
    )
    served_once_by_the_backup(relay, alice, channel)


def test_a_channel_answering_500(relay, alice, channel, preferred, fake):
    fake.scenario("preferred", status=500)
    served_once_by_the_backup(relay, alice, channel)
    assert fake.request_counts["preferred"] == 1


def test_a_rate_limited_channel(relay, alice, channel, preferred, fake):
    fake.scenario("preferred", status=429)
    served_once_by_the_backup(relay, alice, channel)


def test_a_slow_channel_times_out_on_its_own_read_timeout(
    relay, alice, channel, preferred, fake
):
    Channel.objects.filter(pk=preferred.pk).update(read_timeout=0.2)
    fake.scenario("preferred", latency=2.0)
    served_once_by_the_backup(relay, alice, channel)
