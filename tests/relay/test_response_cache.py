"""The response cache: a repeat of a deterministic request answered from the
first answer without an upstream call, charged the model's cache hit price,
kept per tenant, for its TTL, in Redis (and off without it)."""

import json
import time
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from accounts import auth
from accounts.models import ApiKey
from billing.models import Hold, LedgerEntry, ModelPrice, Plan, Wallet
from relay import catalog, response_cache
from relay.models import UsageRecord
from tests import factories
from tests.fakes.upstream import expected_usage

MESSAGES = [{"role": "user", "content": "Say hello to the cache"}]
BODY = {
    "model": "gpt-4.1-mini",
    "messages": MESSAGES,
    "max_tokens": 20,
    "temperature": 0,
}
# gpt-4.1-mini: $0.40 and $1.60 per 1M tokens.
INPUT_NANO, OUTPUT_NANO = 400, 1_600
ASK = {response_cache.HEADER: "ttl=60"}

pytestmark = pytest.mark.skipif(
    not settings.REDIS_URL, reason="the response cache lives in Redis"
)


def _clear_entries():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match="*:respcache:*"):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    response_cache.forget()
    _clear_entries()
    yield
    response_cache.forget()
    _clear_entries()


def stored_entries() -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return sum(1 for _ in client.scan_iter(match="*:respcache:*"))
    finally:
        client.close()


def wait_stored(count: int = 1) -> None:
    """The relay stores an entry in the background once the answer is out."""
    for _ in range(200):
        if stored_entries() >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"expected {count} stored entries, found {stored_entries()}")


def post(relay, secret, body=BODY, headers=ASK, path="chat/completions"):
    return httpx.post(
        f"{relay}/{path}",
        json=body,
        headers={"authorization": f"Bearer {secret}", **headers},
        timeout=30,
    )


def usage_charges(customer) -> list[int]:
    return list(
        LedgerEntry.objects.filter(
            tenant=customer.tenant, kind=LedgerEntry.Kind.USAGE
        ).values_list("amount", flat=True)
    )


def unbilled(response) -> dict:
    """The answer without its bill: a hit replays the first answer, with
    the hit's own cost."""
    answer = response.json()
    for field in ("cost", "charged", "balance"):
        answer.get("usage", {}).pop(field, None)
    return answer


def set_cache_price(model: str, usd: str) -> None:
    ModelPrice.objects.filter(model=model).update(cache_hit_usd=usd)
    catalog.forget()


def test_a_repeat_is_answered_from_the_cache_at_its_price(relay, channel, alice, fake):
    set_cache_price("gpt-4.1-mini", "0.001")
    balance = alice.wallet.balance

    first = post(relay, alice.secret)
    wait_stored()
    repeat = post(relay, alice.secret)

    assert first.status_code == repeat.status_code == 200
    assert first.headers[response_cache.HEADER] == "miss"
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert unbilled(repeat) == unbilled(first)
    assert repeat.json()["usage"]["cost"] == 0.001
    assert repeat.headers["x-switchboard-cost"] == "0.001000000"
    assert repeat.headers["content-type"] == first.headers["content-type"]
    assert len(fake.requests) == 1
    used = expected_usage(MESSAGES, max_tokens=20)
    full = used["prompt_tokens"] * INPUT_NANO + used["completion_tokens"] * OUTPUT_NANO
    served = UsageRecord.objects.get(request_id=first.headers["x-request-id"])
    hit = UsageRecord.objects.get(request_id=repeat.headers["x-request-id"])
    assert served.usage_source == UsageRecord.Source.REPORTED
    assert served.charged == full
    assert served.uncached_cost is None
    assert hit.usage_source == UsageRecord.Source.CACHE
    assert hit.status == UsageRecord.Status.OK
    assert hit.channel_id is None
    assert (hit.prompt_tokens, hit.completion_tokens) == (
        used["prompt_tokens"],
        used["completion_tokens"],
    )
    # $0.001 a hit, whatever the tokens.
    assert hit.cost == hit.charged == 1_000_000
    assert hit.per_request_price == 1_000_000
    assert (hit.input_price, hit.output_price) == (0, 0)
    assert hit.uncached_cost == full
    assert hit.upstream_cost == 0
    assert sorted(usage_charges(alice)) == sorted([-full, -1_000_000])
    assert balance - alice.wallet.balance == full + 1_000_000
    assert not Hold.objects.exists()
    call_command("billing_audit")


def test_hits_are_free_by_default(relay, channel, alice, fake):
    post(relay, alice.secret)
    wait_stored()
    balance = alice.wallet.balance

    hit = post(relay, alice.secret)

    assert hit.headers[response_cache.HEADER] == "hit"
    record = UsageRecord.objects.get(request_id=hit.headers["x-request-id"])
    assert record.usage_source == UsageRecord.Source.CACHE
    assert record.cost == record.charged == 0
    assert record.uncached_cost > 0
    assert alice.wallet.balance == balance
    assert len(usage_charges(alice)) == 1
    assert not Hold.objects.exists()


def test_the_plan_multiplier_applies_to_the_cache_price(relay, channel, alice, fake):
    set_cache_price("gpt-4.1-mini", "0.001")
    first = post(relay, alice.secret)
    wait_stored()
    plan = Plan.objects.create(name="Half", multiplier="0.5")
    Wallet.objects.filter(tenant=alice.tenant).update(plan=plan)
    auth.forget_cached_keys()

    hit = post(relay, alice.secret)

    record = UsageRecord.objects.get(request_id=hit.headers["x-request-id"])
    served = UsageRecord.objects.get(request_id=first.headers["x-request-id"])
    assert record.cost == record.charged == 500_000
    assert record.uncached_cost * 2 == served.cost


def read_stream(
    relay, secret, body, path="chat/completions"
) -> tuple[httpx.Response, bytes]:
    with httpx.stream(
        "POST",
        f"{relay}/{path}",
        json={**body, "stream": True},
        headers={"authorization": f"Bearer {secret}", **ASK},
        timeout=30,
    ) as answer:
        return answer, answer.read()


def sse_events(body: bytes) -> list[bytes]:
    return [event for event in body.split(b"\n\n") if event]


def sse_payload(event: bytes):
    """An event's data as JSON, its numbers read exactly (None: [DONE])."""
    data = b"\n".join(
        line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")
    )
    return None if data == b"[DONE]" else json.loads(data, parse_float=Decimal)


def billed_usage(payload) -> dict | None:
    """The final usage an event carries, in any of the three formats."""
    if not isinstance(payload, dict):
        return None
    if payload.get("type") == "message_delta":
        return payload["usage"]
    if payload.get("type") in ("response.completed", "response.incomplete"):
        return payload["response"]["usage"]
    usage = payload.get("usage")
    return usage if isinstance(usage, dict) else None


def without_bill(usage: dict) -> dict:
    return {k: v for k, v in usage.items() if k not in ("cost", "charged", "balance")}


def assert_replayed_with_its_own_bill(
    first: bytes, replayed: bytes, repeat: httpx.Response, customer, price: str
) -> None:
    """
    The replay is the first stream event for event, byte for byte, but for
    its final usage: the same counts, with the hit's cost (the model's cache
    hit price, as its x-switchboard-cost says) and the balance after it.
    """
    sent, again = sse_events(first), sse_events(replayed)
    assert len(sent) == len(again)
    changed = [i for i, (a, b) in enumerate(zip(sent, again, strict=True)) if a != b]
    assert len(changed) == 1
    [at] = changed
    before, after = sse_payload(sent[at]), sse_payload(again[at])
    usage, first_usage = billed_usage(after), billed_usage(before)
    assert usage is not None and first_usage is not None
    # Nothing after the final usage names one.
    assert all(billed_usage(sse_payload(event)) is None for event in again[at + 1 :])
    assert without_bill(usage) == without_bill(first_usage)
    assert first_usage["cost"] != Decimal(price)
    assert usage["cost"] == Decimal(repeat.headers["x-switchboard-cost"])
    assert usage["cost"] == Decimal(price)
    assert "charged" not in usage
    balance = Wallet.objects.get(tenant=customer.tenant).balance
    assert usage["balance"] == Decimal(balance).scaleb(-9)
    record = UsageRecord.objects.get(request_id=repeat.headers["x-request-id"])
    assert record.usage_source == UsageRecord.Source.CACHE
    assert record.cost == record.charged == nano_usd(price)


def nano_usd(usd: str) -> int:
    return int(Decimal(usd).scaleb(9))


def test_a_stream_is_replayed_from_the_cache(relay, channel, alice, fake):
    set_cache_price("gpt-4.1-mini", "0.000001")
    fake.scenario(reply="one two three four")
    body = {**BODY, "stream_options": {"include_usage": True}}
    first, events = read_stream(relay, alice.secret, body)
    assert first.headers[response_cache.HEADER] == "miss"
    assert events.endswith(b"data: [DONE]\n\n")
    wait_stored()

    repeat, replayed = read_stream(relay, alice.secret, body)

    assert repeat.status_code == 200
    assert repeat.headers["content-type"].startswith("text/event-stream")
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert_replayed_with_its_own_bill(events, replayed, repeat, alice, "0.000001")
    assert replayed.endswith(b"data: [DONE]\n\n")
    assert len(fake.requests) == 1
    hit = UsageRecord.objects.get(request_id=repeat.headers["x-request-id"])
    assert hit.stream is True
    assert hit.usage_source == UsageRecord.Source.CACHE
    assert hit.completion_tokens == 4
    # A whole answer is cached apart from the stream.
    whole = post(relay, alice.secret)
    assert whole.headers[response_cache.HEADER] == "miss"
    assert len(fake.requests) == 2
    call_command("billing_audit")


def test_a_stream_without_usage_is_replayed_byte_for_byte(relay, channel, alice, fake):
    set_cache_price("gpt-4.1-mini", "0.001")
    _, events = read_stream(relay, alice.secret, BODY)
    wait_stored()

    repeat, replayed = read_stream(relay, alice.secret, BODY)

    # No usage asked, none told: the hit's bill is in its headers alone.
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert replayed == events
    assert repeat.headers["x-switchboard-cost"] == "0.001000000"


@pytest.fixture
def chat_only(db, fake):
    """An OpenAI-compatible vendor without the Responses API: translated."""
    return factories.channel(
        "chat-only", fake.url(), factories.PRICES, responses_api=False
    )


@pytest.mark.parametrize("served", ["channel", "chat_only"])
def test_a_response_stream_hit_completes_with_its_own_bill(
    relay, alice, fake, served, request
):
    request.getfixturevalue(served)
    set_cache_price("gpt-4.1-mini", "0.0000025")
    body = {"model": "gpt-4.1-mini", "input": "Hi", "temperature": 0}
    _, events = read_stream(relay, alice.secret, body, path="responses")
    wait_stored()

    repeat, replayed = read_stream(relay, alice.secret, body, path="responses")

    assert repeat.headers[response_cache.HEADER] == "hit"
    assert sse_payload(sse_events(replayed)[-1])["type"] == "response.completed"
    assert_replayed_with_its_own_bill(events, replayed, repeat, alice, "0.0000025")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("model", ["claude-3-5-haiku-latest", "gpt-4.1-mini"])
def test_a_message_stream_hit_ends_with_its_own_bill(
    relay, claude_channel, channel, alice, model
):
    set_cache_price(model, "0.0000005")
    body = {
        "model": model,
        "max_tokens": 10,
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
    }
    _, events = read_stream(relay, alice.secret, body, path="messages")
    wait_stored()

    repeat, replayed = read_stream(relay, alice.secret, body, path="messages")

    assert repeat.headers[response_cache.HEADER] == "hit"
    kinds = [sse_payload(event)["type"] for event in sse_events(replayed)[-2:]]
    assert kinds == ["message_delta", "message_stop"]
    assert_replayed_with_its_own_bill(events, replayed, repeat, alice, "0.0000005")


def test_a_stream_cut_short_is_not_kept(relay, channel, alice, fake):
    fake.scenario(reply="one two three four five six", drop_after_chunks=2)
    _, events = read_stream(relay, alice.secret, BODY)
    assert b"[DONE]" not in events
    fake.scenario(reply="one two three four five six")

    _, again = read_stream(relay, alice.secret, BODY)

    assert again.endswith(b"data: [DONE]\n\n")
    assert len(fake.requests) == 2


def test_entries_are_the_tenants_own(relay, channel, alice, bob, fake):
    mine = post(relay, alice.secret)
    wait_stored()

    theirs = post(relay, bob.secret)

    assert theirs.headers[response_cache.HEADER] == "miss"
    assert len(fake.requests) == 2
    wait_stored(2)
    assert post(relay, bob.secret).headers[response_cache.HEADER] == "hit"
    assert unbilled(post(relay, alice.secret)) == unbilled(mine)
    assert len(fake.requests) == 2
    assert not UsageRecord.objects.filter(
        tenant=bob.tenant, request_id=mine.headers["x-request-id"]
    ).exists()


LEFT_OUT = object()


@pytest.mark.parametrize(
    "changes",
    [
        {"temperature": LEFT_OUT},  # the upstream's default: not deterministic
        {"temperature": 0.7},
        {"temperature": 0.7, "seed": None},
    ],
)
def test_non_deterministic_requests_are_never_cached(
    relay, channel, alice, fake, changes
):
    body = {**BODY, **changes}
    body = {name: value for name, value in body.items() if value is not LEFT_OUT}

    first = post(relay, alice.secret, body)
    second = post(relay, alice.secret, body)

    assert first.headers[response_cache.HEADER] == "skip"
    assert second.headers[response_cache.HEADER] == "skip"
    assert len(fake.requests) == 2
    assert stored_entries() == 0
    assert not UsageRecord.objects.filter(usage_source="cache").exists()


def test_a_seed_makes_a_request_deterministic(relay, channel, alice, fake):
    body = {**BODY, "temperature": 1, "seed": 42}
    post(relay, alice.secret, body)
    wait_stored()

    assert post(relay, alice.secret, body).headers[response_cache.HEADER] == "hit"
    assert len(fake.requests) == 1


def test_the_entry_ignores_delivery_fields_but_not_the_request(
    relay, channel, alice, fake
):
    post(relay, alice.secret, {**BODY, "user": "u1", "metadata": {"team": "a"}})
    wait_stored()
    reordered = dict(reversed(list(BODY.items())))

    same = post(relay, alice.secret, {**reordered, "user": "u2"})
    other = post(relay, alice.secret, {**BODY, "max_tokens": 21})
    elsewhere = post(
        relay,
        alice.secret,
        {"model": "gpt-4.1-mini", "prompt": "Say hello", "temperature": 0},
        path="completions",
    )

    assert same.headers[response_cache.HEADER] == "hit"
    assert other.headers[response_cache.HEADER] == "miss"
    assert elsewhere.headers[response_cache.HEADER] == "miss"
    assert len(fake.requests) == 3


def test_an_entry_lapses_after_its_ttl(relay, channel, alice, fake, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(response_cache, "wall_clock", lambda: now[0])
    post(relay, alice.secret)
    wait_stored()

    now[0] += 59
    assert post(relay, alice.secret).headers[response_cache.HEADER] == "hit"
    now[0] += 2
    lapsed = post(relay, alice.secret)

    assert lapsed.headers[response_cache.HEADER] == "miss"
    assert len(fake.requests) == 2


def test_a_request_takes_no_entry_older_than_its_ttl(
    relay, channel, alice, fake, monkeypatch
):
    now = [1_000_000.0]
    monkeypatch.setattr(response_cache, "wall_clock", lambda: now[0])
    post(relay, alice.secret, headers={response_cache.HEADER: "ttl=3600"})
    wait_stored()
    now[0] += 30

    fresh_enough = post(relay, alice.secret, headers={response_cache.HEADER: "ttl=60"})
    too_old = post(relay, alice.secret, headers={response_cache.HEADER: "ttl=10"})

    assert fresh_enough.headers[response_cache.HEADER] == "hit"
    assert fresh_enough.headers["age"] == "30"
    assert too_old.headers[response_cache.HEADER] == "miss"
    assert len(fake.requests) == 2


def redis_at(monkeypatch, url: str) -> None:
    """Point the response cache, and it alone, at `url`."""
    monkeypatch.setattr(
        response_cache,
        "settings",
        SimpleNamespace(REDIS_URL=url, CACHES=settings.CACHES),
    )
    response_cache.forget()


def test_redis_down_means_no_cache_and_no_error(
    relay, channel, alice, fake, monkeypatch
):
    redis_at(monkeypatch, "redis://127.0.0.1:1/0")  # nothing listens there

    first = post(relay, alice.secret)
    second = post(relay, alice.secret)

    assert first.status_code == second.status_code == 200
    assert first.headers[response_cache.HEADER] == "skip"
    assert second.headers[response_cache.HEADER] == "skip"
    assert len(fake.requests) == 2
    assert UsageRecord.objects.filter(usage_source="reported").count() == 2
    assert not Hold.objects.exists()


def test_without_redis_the_cache_is_off(relay, channel, alice, fake, monkeypatch):
    redis_at(monkeypatch, "")

    assert post(relay, alice.secret).headers[response_cache.HEADER] == "skip"
    assert post(relay, alice.secret).headers[response_cache.HEADER] == "skip"
    assert len(fake.requests) == 2


def set_key_ttl(customer, seconds):
    ApiKey.objects.filter(tenant=customer.tenant).update(cache_ttl=seconds)
    auth.forget_cached_keys()


def test_a_key_can_cache_every_request(relay, channel, alice, fake):
    set_key_ttl(alice, 300)

    first = post(relay, alice.secret, headers={})
    wait_stored()
    repeat = post(relay, alice.secret, headers={})
    bypassed = post(relay, alice.secret, headers={response_cache.HEADER: "no"})

    assert first.headers[response_cache.HEADER] == "miss"
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert response_cache.HEADER not in bypassed.headers
    assert len(fake.requests) == 2


def test_nothing_is_cached_unless_asked(relay, channel, alice, fake):
    first = post(relay, alice.secret, headers={})
    second = post(relay, alice.secret, headers={})

    assert response_cache.HEADER not in first.headers
    assert response_cache.HEADER not in second.headers
    assert len(fake.requests) == 2
    assert stored_entries() == 0


def test_a_request_ttl_of_zero_bypasses_the_keys(relay, channel, alice, fake):
    set_key_ttl(alice, 300)
    post(relay, alice.secret, headers={})
    wait_stored()

    again = post(relay, alice.secret, headers={response_cache.HEADER: "ttl=0"})

    assert response_cache.HEADER not in again.headers
    assert len(fake.requests) == 2


@pytest.mark.parametrize("value", ["yes", "ttl=", "ttl=-1", "ttl=abc", "ttl=9999999"])
def test_a_malformed_header_is_refused_before_any_hold(relay, channel, alice, value):
    refused = post(relay, alice.secret, headers={response_cache.HEADER: value})

    assert refused.status_code == 400
    assert response_cache.HEADER in refused.json()["error"]["message"]
    assert not UsageRecord.objects.exists()
    assert not Hold.objects.exists()


def test_answers_too_large_are_not_kept(relay, channel, alice, fake, monkeypatch):
    monkeypatch.setattr(response_cache, "MAX_STORED_BYTES", 10)

    first = post(relay, alice.secret)
    second = post(relay, alice.secret)

    assert first.headers[response_cache.HEADER] == "skip"
    assert second.headers[response_cache.HEADER] == "skip"
    assert len(fake.requests) == 2


def test_embeddings_are_always_deterministic(relay, channel, alice, fake):
    factories.model_price(
        "text-embedding-3-small",
        input_per_mtok="0.02",
        cached_input_per_mtok=None,
        context_window=8_192,
        max_output_tokens=0,
    )
    factories.also_serve(channel, "text-embedding-3-small")
    body = {"model": "text-embedding-3-small", "input": ["the quick brown fox"]}

    first = post(relay, alice.secret, body, path="embeddings")
    wait_stored()
    repeat = post(relay, alice.secret, body, path="embeddings")

    assert first.headers[response_cache.HEADER] == "miss"
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert unbilled(repeat) == unbilled(first)
    assert len(fake.requests) == 1


def test_messages_are_cached_in_anthropics_format(relay, claude_channel, alice):
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 10,
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "someone"},
    }

    first = post(relay, alice.secret, body, path="messages")
    wait_stored()
    repeat = post(relay, alice.secret, body, path="messages")

    assert first.status_code == repeat.status_code == 200
    assert repeat.headers[response_cache.HEADER] == "hit"
    assert repeat.json()["type"] == "message"
    assert unbilled(repeat) == unbilled(first)


def test_a_hit_is_refused_like_any_request_without_balance(relay, channel, alice):
    post(relay, alice.secret)
    wait_stored()
    alice.set_balance("0")

    refused = post(relay, alice.secret)

    # The hold comes first: a tenant that cannot pay is not served at all.
    assert refused.status_code == 402
    assert not UsageRecord.objects.filter(usage_source="cache").exists()


def test_entries_survive_between_event_loops(channel, alice, fake, relay):
    """The cache is Redis's, not a process's: a fresh client finds it."""
    post(relay, alice.secret)
    wait_stored()
    response_cache.forget()

    assert post(relay, alice.secret).headers[response_cache.HEADER] == "hit"
