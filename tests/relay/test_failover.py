"""The preferred channel fails in every way a channel fails; the backup is
tried after it and serves, and the request is charged exactly once."""

import socket
import struct
import threading
import time

import httpx
import pytest
from django.core.management import call_command

from billing.models import LedgerEntry
from relay.models import Channel, UsageRecord
from tests import factories

BODY = {
    "model": "gpt-4.1-mini",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 5,
}


class DownServer:
    """
    An upstream address whose server is down: every connection is taken and
    reset at once, before any answer. Unlike a closed port, it notes when
    each attempt came, on the clock the fakes record requests with.
    """

    def __init__(self):
        self.attempts: list[float] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.attempts.append(time.monotonic())
            # Linger 0: close with a reset, as a dead server's host answers.
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def down():
    server = DownServer()
    yield server
    server.stop()


@pytest.fixture
def preferred(channel, fake, settings) -> Channel:
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0
    fake.scenario("preferred")
    return factories.channel(
        "preferred",
        fake.url("preferred"),
        ["gpt-4.1-mini"],
        key="sk-preferred",
        priority=10,
    )


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


def attempts_in_order(fake) -> list[str]:
    """Return the fake's scenarios in the order the relay's attempts came."""
    return [request.scenario for request in fake.requests]


def test_a_channel_that_is_down(relay, alice, channel, preferred, fake, down):
    Channel.objects.filter(pk=preferred.pk).update(base_url=down.url)
    served_once_by_the_backup(relay, alice, channel)
    [backup] = fake.requests
    assert backup.scenario == "default"
    [tried] = down.attempts
    assert tried < backup.received_at


def test_a_channel_answering_500(relay, alice, channel, preferred, fake):
    fake.scenario("preferred", status=500)
    served_once_by_the_backup(relay, alice, channel)
    assert fake.request_counts["preferred"] == 1
    assert attempts_in_order(fake) == ["preferred", "default"]


def test_a_rate_limited_channel(relay, alice, channel, preferred, fake):
    fake.scenario("preferred", status=429)
    served_once_by_the_backup(relay, alice, channel)
    assert attempts_in_order(fake) == ["preferred", "default"]


def test_a_slow_channel_times_out_on_its_own_read_timeout(
    relay, alice, channel, preferred, fake
):
    Channel.objects.filter(pk=preferred.pk).update(read_timeout=0.2)
    fake.scenario("preferred", latency=2.0)
    served_once_by_the_backup(relay, alice, channel)
    assert attempts_in_order(fake) == ["preferred", "default"]
    slow, backup = fake.requests
    # The backup was asked only once the preferred channel had timed out
    # (less a margin for when each fake notes the request's arrival).
    assert backup.received_at - slow.received_at >= 0.15
