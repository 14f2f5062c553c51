"""Idempotency-Key: a repeat gets the first answer and is not charged again;
a repeat in flight gets 409, another body 422; keys are the tenant's own."""

import asyncio

import httpx
import pytest
from django.core.management import call_command

from billing.models import Hold, LedgerEntry
from relay import idempotency
from relay.models import IdempotencyRecord, UsageRecord

BODY = {
    "model": "gpt-4.1-mini",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 20,
}


def post(relay, secret, key, body=BODY, path="chat/completions"):
    headers = {"authorization": f"Bearer {secret}"}
    if key is not None:
        headers["idempotency-key"] = key
    return httpx.post(f"{relay}/{path}", json=body, headers=headers, timeout=30)


def charges(customer) -> int:
    return LedgerEntry.objects.filter(
        tenant=customer.tenant, kind=LedgerEntry.Kind.USAGE
    ).count()


def test_a_repeat_gets_the_answer_and_is_charged_once(relay, channel, alice, fake):
    first = post(relay, alice.secret, "order-1")
    balance = alice.wallet.balance

    repeat = post(relay, alice.secret, "order-1")

    assert first.status_code == repeat.status_code == 200
    assert repeat.content == first.content
    assert repeat.headers["content-type"] == first.headers["content-type"]
    assert first.headers[idempotency.HEADER] == "stored"
    assert repeat.headers[idempotency.HEADER] == "replayed"
    assert repeat.headers[idempotency.REPLAYED_FROM] == first.headers["x-request-id"]
    assert repeat.headers["x-request-id"] != first.headers["x-request-id"]
    assert len(fake.requests) == 1
    assert UsageRecord.objects.count() == 1
    assert charges(alice) == 1
    assert alice.wallet.balance == balance
    assert not Hold.objects.exists()
    call_command("billing_audit")


def read_stream(relay, secret, key) -> tuple[httpx.Response, bytes]:
    with httpx.stream(
        "POST",
        f"{relay}/chat/completions",
        json={**BODY, "stream": True},
        headers={"authorization": f"Bearer {secret}", "idempotency-key": key},
        timeout=30,
    ) as answer:
        return answer, answer.read()


def test_a_stream_is_replayed_as_the_same_events(relay, channel, alice, fake):
    fake.scenario(reply="one two three four")
    first, events = read_stream(relay, alice.secret, "stream-1")
    assert events.endswith(b"data: [DONE]\n\n")
    # Stored in the background once the stream has ended.
    for _ in range(100):
        if IdempotencyRecord.objects.filter(state="done").exists():
            break
        asyncio.run(asyncio.sleep(0.05))

    repeat, replayed = read_stream(relay, alice.secret, "stream-1")

    assert repeat.status_code == 200
    assert repeat.headers["content-type"].startswith("text/event-stream")
    assert repeat.headers[idempotency.HEADER] == "replayed"
    assert replayed == events
    assert len(fake.requests) == 1
    assert charges(alice) == 1
    call_command("billing_audit")


def test_a_repeat_in_flight_gets_409(relay, channel, alice, fake):
    fake.scenario(latency=1.0)

    async def both():
        async with httpx.AsyncClient(timeout=30) as client:

            async def send():
                return await client.post(
                    f"{relay}/chat/completions",
                    json=BODY,
                    headers={
                        "authorization": f"Bearer {alice.secret}",
                        "idempotency-key": "slow",
                    },
                )

            first = asyncio.ensure_future(send())
            # The first is in flight once the upstream has it.
            while not fake.requests:
                await asyncio.sleep(0.02)
            second = await send()
            return await first, second

    first, second = asyncio.run(both())

    assert first.status_code == 200
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "idempotency_key_in_use"
    assert set(error) == {"message", "type", "param", "code"}
    assert len(fake.requests) == 1
    assert charges(alice) == 1
    # Once answered, the same repeat is replayed.
    assert post(relay, alice.secret, "slow").content == first.content


def test_another_body_with_the_same_key_gets_422(relay, channel, alice, fake):
    assert post(relay, alice.secret, "k").status_code == 200

    other = post(relay, alice.secret, "k", {**BODY, "max_tokens": 21})
    elsewhere = post(relay, alice.secret, "k", {**BODY}, path="completions")

    for refused in (other, elsewhere):
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(fake.requests) == 1
    assert charges(alice) == 1


def test_keys_are_the_tenants_own(relay, channel, alice, bob, fake):
    mine = post(relay, alice.secret, "shared-name")
    theirs = post(relay, bob.secret, "shared-name")

    assert mine.status_code == theirs.status_code == 200
    assert theirs.headers[idempotency.HEADER] == "stored"
    assert len(fake.requests) == 2
    assert charges(alice) == charges(bob) == 1
    # And each tenant's repeat gets its own answer.
    assert post(relay, bob.secret, "shared-name").content == theirs.content
    assert post(relay, alice.secret, "shared-name").content == mine.content
    assert len(fake.requests) == 2


def test_a_refused_request_gives_its_key_back(relay, channel, alice, fake):
    alice.set_balance("0")
    assert post(relay, alice.secret, "retry-me").status_code == 402
    alice.set_balance("5")

    served = post(relay, alice.secret, "retry-me")

    assert served.status_code == 200
    assert charges(alice) == 1


def test_an_upstream_failure_gives_its_key_back(relay, channel, alice, fake):
    fake.scenario(status=500)
    assert post(relay, alice.secret, "flaky").status_code >= 500
    fake.scenario()

    assert post(relay, alice.secret, "flaky").headers[idempotency.HEADER] == "stored"


def test_answers_too_large_are_not_stored(relay, channel, alice, fake, monkeypatch):
    monkeypatch.setattr(idempotency, "MAX_STORED_BYTES", 10)

    first = post(relay, alice.secret, "big")
    again = post(relay, alice.secret, "big")

    assert first.headers[idempotency.HEADER].startswith("not-stored")
    assert again.headers[idempotency.HEADER].startswith("not-stored")
    assert len(fake.requests) == 2
    assert not IdempotencyRecord.objects.exists()


def test_anthropic_shape_on_messages(relay, claude_channel, alice):
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert post(relay, alice.secret, "m", body, path="messages").status_code == 200

    refused = post(relay, alice.secret, "m", {**body, "max_tokens": 11}, "messages")

    assert refused.status_code == 422
    assert refused.json()["type"] == "error"
    assert refused.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_a_bad_key_is_refused(relay, channel, alice, key):
    refused = post(relay, alice.secret, key)
    assert refused.status_code == 400
    assert "Idempotency-Key" in refused.json()["error"]["message"]


def test_without_the_header_nothing_is_kept(relay, channel, alice, fake):
    assert post(relay, alice.secret, None).status_code == 200
    assert post(relay, alice.secret, None).status_code == 200
    assert len(fake.requests) == 2
    assert not IdempotencyRecord.objects.exists()


def test_expired_records_are_purged(db, alice):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    for name, expires in [("old", now - timedelta(seconds=1)), ("new", now)]:
        IdempotencyRecord.objects.create(
            tenant=alice.tenant,
            key=name,
            fingerprint="0" * 64,
            state="done",
            request_id="req_x",
            expires_at=expires + timedelta(hours=1) if name == "new" else expires,
        )

    assert idempotency.purge_expired(now=now) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
