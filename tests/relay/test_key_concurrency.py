"""A key's limit on requests in flight: shared by every process, given back
when each request ends (a stream's when it ends or its client leaves)."""

import asyncio
import threading
import time

import httpx
import pytest
from django.core.management import call_command

from accounts.models import ApiKey
from accounts.services import api_key_create
from audit.models import AuditEvent
from billing.models import Hold, LedgerEntry
from config import redis_guard
from relay import concurrency
from relay.models import UsageRecord
from tests import factories
from tests.conftest import PRICES
from tests.servers import LoopbackFake

MESSAGES = [{"role": "user", "content": "Count to three"}]


class CountingUpstream(LoopbackFake):
    """The fake upstream behind a door that counts the requests inside at
    once, and the most there ever were."""

    uvicorn_options = {"interface": "asgi3", "proxy_headers": False}

    def __init__(self, inner):
        self.host, self.port, self._server = "127.0.0.1", 0, None
        self.inner = inner
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            await self.inner(scope, receive, send)
        finally:
            with self._lock:
                self.inside -= 1

    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


@pytest.fixture
def counting(fake):
    with CountingUpstream(fake) as door:
        yield door


@pytest.fixture
def counted_channel(db, counting):
    return factories.channel("counted", counting.url(), PRICES, key="sk-upstream")


def body(i: int) -> dict:
    return {
        "model": "gpt-4.1-mini",
        "messages": MESSAGES,
        "max_tokens": 6,
        "stream": i % 2 == 0,
    }


async def fire(relay: str, secret: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=count)
    ) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{relay}/chat/completions",
                    json=body(i),
                    headers={"authorization": f"Bearer {secret}"},
                )
                for i in range(count)
            )
        )


def limited_key(customer, limit: int) -> str:
    _, secret = api_key_create(
        tenant=customer.tenant, name="5 at once", max_in_flight=limit
    )
    return secret


@pytest.mark.postgres
def test_twenty_at_once_against_five(relay, counted_channel, counting, alice, fake):
    # Slow enough that the twenty overlap at the upstream.
    fake.scenario(latency=1.0)
    secret = limited_key(alice, 5)

    answers = asyncio.run(fire(relay, secret, 20))

    served = [answer for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code != 200]
    assert counting.peak <= 5
    assert len(served) >= 5
    assert refused, "the twenty should have overlapped"
    for answer in refused:
        assert answer.status_code == 429, answer.text
        error = answer.json()["error"]
        assert error["code"] == "concurrency_limit_exceeded"
        assert error["type"] == "requests"
        assert answer.headers["retry-after"] == "1"
    # Refused before any hold: only what was served was relayed and charged.
    assert len(fake.requests) == len(served)
    assert UsageRecord.objects.count() == len(served)
    assert LedgerEntry.objects.filter(kind="usage").count() == len(served)
    assert not Hold.objects.exists()
    call_command("billing_audit")

    # Every slot, streams' included, was given back: five at once again.
    fake.scenario(latency=0.2)
    again = asyncio.run(fire(relay, secret, 5))
    assert [answer.status_code for answer in again] == [200] * 5


def wait_until_served(relay: str, secret: str, attempts: int = 100) -> httpx.Response:
    """Call until the key's one slot is free again (it is given back by the
    stream that ended, a moment after its client has left)."""
    for _ in range(attempts):
        answer = httpx.post(
            f"{relay}/chat/completions",
            json=body(1),
            headers={"authorization": f"Bearer {secret}"},
            timeout=10,
        )
        if answer.status_code != 429:
            return answer
        time.sleep(0.05)
    return answer


def test_a_stream_gives_its_slot_back_when_its_client_leaves(
    relay, channel, alice, fake
):
    fake.scenario(chunk_delay=0.3, reply="one two three four five six seven eight")
    secret = limited_key(alice, 1)
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{relay}/chat/completions",
            json={**body(0), "max_tokens": 50},
            headers={"authorization": f"Bearer {secret}"},
        ) as streaming,
    ):
        assert streaming.status_code == 200
        chunks = streaming.iter_raw()  # kept: dropping it closes the stream
        next(chunks)
        # While it streams, the key's one slot is taken.
        busy = httpx.post(
            f"{relay}/chat/completions",
            json=body(1),
            headers={"authorization": f"Bearer {secret}"},
            timeout=10,
        )
        assert busy.status_code == 429
        assert busy.json()["error"]["code"] == "concurrency_limit_exceeded"
        # The client left in the middle of the stream.

    assert wait_until_served(relay, secret).status_code == 200


def test_a_refused_request_gives_its_slot_back(relay, channel, alice):
    secret = limited_key(alice, 1)
    alice.set_balance("0")
    for _ in range(3):
        refused = httpx.post(
            f"{relay}/chat/completions",
            json=body(1),
            headers={"authorization": f"Bearer {secret}"},
            timeout=10,
        )
        # 402, not 429: the slot of each refused request was given back.
        assert refused.status_code == 402, refused.text


def test_anthropic_shape_on_messages(relay, claude_channel, alice, fake_anthropic):
    fake_anthropic.configure(latency=1.0)
    secret = limited_key(alice, 1)

    async def two():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{relay}/messages",
                        json={
                            "model": "claude-3-5-haiku-latest",
                            "max_tokens": 10,
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                        headers={"x-api-key": secret},
                    )
                    for _ in range(2)
                )
            )

    answers = asyncio.run(two())
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 429], [answer.text for answer in answers]
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.json() == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": refused.json()["error"]["message"],
        },
    }


class TestPerProcessSlots:
    """Without Redis (or while it is away) each process counts its own."""

    def test_taken_given_back_and_lapsing(self, monkeypatch):
        now = [1000.0]
        monkeypatch.setattr(concurrency, "clock", lambda: now[0])
        local = concurrency.LocalSlots()
        assert local.take(7, "a", 2)
        assert local.take(7, "b", 2)
        assert not local.take(7, "c", 2)
        assert local.take(8, "c", 2)  # another key's own count
        local.give_back(concurrency.Slot(7, "a", local=True))
        assert local.take(7, "c", 2)
        # The lease of a request that never gave its slot back lapses.
        now[0] += concurrency.LEASE_SECONDS + 1
        assert local.take(7, "d", 2)
        assert local.take(7, "e", 2)
        assert not local.take(7, "f", 2)

    def test_renewed_leases_do_not_lapse(self, monkeypatch):
        now = [1000.0]
        monkeypatch.setattr(concurrency, "clock", lambda: now[0])
        local = concurrency.LocalSlots()
        assert local.take(7, "a", 1)
        now[0] += concurrency.LEASE_SECONDS - 1
        local.renew([concurrency.Slot(7, "a", local=True)])
        now[0] += concurrency.LEASE_SECONDS - 1
        assert not local.take(7, "b", 1)


def test_staff_setting_the_limit_is_audited(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    response = admin_client.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {
            "tenant": alice.tenant.pk,
            "name": key.name,
            "allowed_models": "[]",
            "allowed_ips": "[]",
            "max_in_flight": "4",
            "expires_at_0": "",
            "expires_at_1": "",
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    key.refresh_from_db()
    assert key.max_in_flight == 4
    event = AuditEvent.objects.get(action="apikey.change")
    assert "max_in_flight" in event.summary and event.tenant == alice.tenant


def test_while_redis_is_away_each_process_counts_its_own():
    # Nothing listens on port 1: every Redis call fails at once.
    away = concurrency.Slots("redis://127.0.0.1:1/0")
    identity_limit = 2

    async def take_three():
        taken = [await away.take(7, f"r{i}", identity_limit) for i in range(3)]
        for slot in taken:
            if slot is not None:
                await away.give_back(slot)
        again = await away.take(7, "r3", identity_limit)
        await away.close()
        return taken, again

    try:
        taken, again = asyncio.run(take_three())
    finally:
        redis_guard.reset()
    assert [slot is not None for slot in taken] == [True, True, False]
    assert all(slot.local for slot in taken if slot is not None)
    assert again is not None and again.local
