"""Streams cut short: by the client, by the upstream."""

import time

import httpx
import orjson
from django.core.management import call_command

from billing.models import Hold
from relay import tokens
from relay.models import UsageRecord

MESSAGES = [{"role": "user", "content": "Tell me a long story"}]
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


def wait_for_record(request_id: str, timeout: float = 5.0) -> UsageRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = UsageRecord.objects.filter(request_id=request_id).first()
        if record is not None:
            return record
        time.sleep(0.02)
    raise AssertionError(f"no usage record for {request_id}")


def content_of(event: bytes) -> str:
    chunk = orjson.loads(event.removeprefix(b"data: "))
    return "".join(c["delta"].get("content") or "" for c in chunk["choices"])


def test_a_client_disconnect_stops_upstream_and_charges_what_was_produced(
    relay, channel, alice, fake
):
    fake.scenario(reply=LONG_REPLY, chunk_delay=0.02)
    before = alice.wallet.balance
    received: list[str] = []
    with httpx.stream(
        "POST",
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    ) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(content_of(line.encode()))
            if len(received) >= 6:
                break
    record = wait_for_record(request_id)
    assert record.status == UsageRecord.Status.CLIENT_CLOSED
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    # The relay stopped reading the upstream instead of draining it.
    assert fake.wait_for(lambda: fake.aborted_streams == 1)
    # Billed: the estimated prompt plus at least the text the client saw, far
    # less than the whole reply.
    assert record.completion_tokens >= tokens.count("".join(received))
    assert record.completion_tokens < tokens.count(LONG_REPLY) // 2
    assert record.prompt_tokens == tokens.estimate_prompt(MESSAGES)
    assert record.charged == record.cost > 0
    wallet = alice.wallet
    assert before - wallet.balance == record.charged
    assert wallet.held == 0
    assert not Hold.objects.exists()
    call_command("billing_audit")


def test_an_upstream_dropping_the_stream_is_charged_for_what_it_sent(
    relay, channel, alice, fake
):
    fake.scenario(reply=LONG_REPLY, drop_after_chunks=4)
    before = alice.wallet.balance
    response = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    )
    assert response.status_code == 200
    events = [e for e in response.content.split(b"\n\n") if e]
    assert b"[DONE]" not in response.content
    # The client is told the stream broke, in OpenAI's error shape.
    error = orjson.loads(events[-1].removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_stream_closed"
    text = "".join(content_of(e) for e in events[:-1])
    assert text == "word0 word1 word2 word3 "
    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    assert record.status == UsageRecord.Status.UPSTREAM_CLOSED
    assert record.usage_source == UsageRecord.Source.ESTIMATED
    assert record.completion_tokens == tokens.count(text)
    assert before - alice.wallet.balance == record.charged == record.cost
    assert alice.wallet.held == 0
    # No retry once bytes reached the client.
    assert fake.request_counts.total() == 1
    call_command("billing_audit")


def test_the_stream_ends_after_its_charge_is_written(relay, channel, alice):
    response = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    )
    assert response.content.endswith(b"data: [DONE]\n\n")
    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    assert record.status == UsageRecord.Status.OK
    assert record.usage_source == UsageRecord.Source.REPORTED
