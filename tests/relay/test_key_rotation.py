"""A channel's upstream keys share the load and stand in for each other."""

from collections import Counter

import httpx
import pytest
from django.db import connection

from billing.models import LedgerEntry
from relay.models import Channel

BODY = {
    "model": "gpt-4.1-nano",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 5,
}


@pytest.fixture
def three_keys(channel) -> Channel:
    channel.upstream_keys.all().delete()
    for secret in ("sk-one", "sk-two", "sk-three"):
        channel.add_key(secret)
    return channel


def call(relay, customer) -> httpx.Response:
    return httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {customer.secret}"},
        timeout=10,
    )


def test_requests_rotate_evenly_over_the_keys(relay, three_keys, alice, fake):
    for _ in range(30):
        assert call(relay, alice).status_code == 200
    used = Counter(request.api_key for request in fake.requests)
    assert used == {"sk-one": 10, "sk-two": 10, "sk-three": 10}


def test_a_rejected_key_gives_way_to_the_next(relay, three_keys, alice, fake):
    fake.scenario(require_key="sk-three")
    for _ in range(6):
        assert call(relay, alice).status_code == 200
    # Charged once per request, however many keys it took.
    assert LedgerEntry.objects.filter(kind="usage").count() == 6
    accepted = [r.api_key for r in fake.requests if r.api_key == "sk-three"]
    assert len(accepted) == 6


def test_disabled_keys_are_not_used(relay, three_keys, alice, fake):
    for key in three_keys.upstream_keys.all():
        if key.secret != "sk-three":
            key.is_enabled = False
            key.disabled_reason = "upstream answered 401"
            key.save()
    for _ in range(4):
        assert call(relay, alice).status_code == 200
    assert {r.api_key for r in fake.requests} == {"sk-three"}


def test_keys_are_encrypted_at_rest(three_keys):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM relay_upstreamkey")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 3
    assert not any("sk-" in value for value in stored)
    assert sorted(k.secret for k in three_keys.upstream_keys.all()) == [
        "sk-one",
        "sk-three",
        "sk-two",
    ]
