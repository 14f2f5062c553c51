"""Refusals made visible: each refusal after the key is known counts against
it, by minute and code, in memory first and in the database once flushed."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.services import api_key_create, api_key_revoke
from relay import refusals
from relay.models import RefusalCount

BODY = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(autouse=True)
def _no_pending():
    refusals.forget()
    yield
    refusals.forget()


def post(relay, secret, body=BODY):
    return httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def counts(tenant) -> dict[tuple[int, int, str], int]:
    found = {}
    for row in RefusalCount.objects.filter(tenant=tenant):
        counter = (row.api_key_id, row.status, row.code)
        found[counter] = found.get(counter, 0) + row.count
    return found


def test_each_refusal_counts_against_its_key(relay, channel, alice, bob):
    limited, limited_secret = api_key_create(
        tenant=alice.tenant, name="limited", rpm_limit=1, allowed_models=["gpt-4.1"]
    )
    revoked, revoked_secret = api_key_create(tenant=alice.tenant, name="old")
    api_key_revoke(key=revoked)
    poor_key = bob.tenant.api_keys.get()
    bob.set_balance("0")

    assert post(relay, limited_secret).status_code == 403  # model not allowed
    gpt41 = {**BODY, "model": "gpt-4.1"}
    assert post(relay, limited_secret, gpt41).status_code == 200
    assert post(relay, limited_secret, gpt41).status_code == 429
    assert post(relay, limited_secret, gpt41).status_code == 429
    assert post(relay, revoked_secret).status_code == 401
    assert post(relay, bob.secret).status_code == 402
    # Not counted: no key was identified, or not a refusal of the key.
    assert post(relay, "sk-sb-unknown").status_code == 401
    assert post(relay, alice.secret, {"model": "gpt-4.1-mini"}).status_code == 400

    refusals.flush()

    assert counts(alice.tenant) == {
        (limited.pk, 403, "model_not_allowed"): 1,
        (limited.pk, 429, "rate_limit_exceeded"): 2,
        (revoked.pk, 401, "api_key_revoked"): 1,
    }
    assert counts(bob.tenant) == {(poor_key.pk, 402, "insufficient_balance"): 1}
    # Flushed counts are not written twice.
    assert refusals.flush() == 0


def test_flushes_add_up_in_one_row_per_minute(db, alice):
    key = alice.tenant.api_keys.get()
    minute = 1_800_000_000 // 60 * 60
    for _ in range(3):
        refusals.record(key.pk, 429, "rate_limit_exceeded", at=minute + 5)
    refusals.flush()
    refusals.record(key.pk, 429, "rate_limit_exceeded", at=minute + 59)
    refusals.record(key.pk, 429, "rate_limit_exceeded", at=minute + 60)
    # Another process's counts of the same minute add to the same row.
    refusals.flush()

    rows = RefusalCount.objects.order_by("minute")
    assert [(row.minute.timestamp(), row.count) for row in rows] == [
        (minute, 4),
        (minute + 60, 1),
    ]


def test_counts_of_a_deleted_key_are_dropped(db, alice):
    key, _ = api_key_create(tenant=alice.tenant, name="gone")
    refusals.record(key.pk, 429, "rate_limit_exceeded")
    key.delete()

    refusals.flush()

    assert not RefusalCount.objects.exists()


def test_counting_touches_no_database():
    # No database access is allowed in this test: a refusal is counted in
    # memory only.
    for _ in range(1000):
        refusals.record(1, 429, "rate_limit_exceeded", at=1_800_000_000)
    assert refusals._pending == {(1, 1_800_000_000, 429, "rate_limit_exceeded"): 1000}


def test_a_failed_flush_keeps_the_counts(db, alice, monkeypatch):
    key = alice.tenant.api_keys.get()
    refusals.record(key.pk, 402, "insufficient_balance")

    def broken(*args, **kwargs):
        raise RuntimeError("database away")

    from django.db import connection

    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", broken)
        with pytest.raises(RuntimeError):
            refusals.flush()
    assert refusals.flush() == 1
    assert RefusalCount.objects.get().count == 1


def test_last_day_by_key_and_code(db, alice, bob):
    key = alice.tenant.api_keys.get()
    other, _ = api_key_create(tenant=alice.tenant, name="other")
    now = timezone.now()
    for minute, api_key, code, count in [
        (now - timedelta(minutes=3), key, "rate_limit_exceeded", 4),
        (now - timedelta(minutes=2), key, "rate_limit_exceeded", 3),
        (now - timedelta(minutes=1), key, "insufficient_balance", 1),
        (now - timedelta(minutes=1), other, "concurrency_limit_exceeded", 2),
        (now - timedelta(hours=25), key, "rate_limit_exceeded", 50),
    ]:
        RefusalCount.objects.create(
            tenant=alice.tenant,
            api_key=api_key,
            minute=minute,
            status=402 if code == "insufficient_balance" else 429,
            code=code,
            count=count,
        )
    RefusalCount.objects.create(
        tenant=bob.tenant,
        api_key=bob.tenant.api_keys.get(),
        minute=now,
        status=429,
        code="rate_limit_exceeded",
        count=9,
    )

    found = refusals.last_day(alice.tenant.pk, now=now)

    assert [(row["api_key_id"], row["code"], row["refused"]) for row in found] == [
        (key.pk, "rate_limit_exceeded", 7),
        (other.pk, "concurrency_limit_exceeded", 2),
        (key.pk, "insufficient_balance", 1),
    ]
    only = refusals.last_day(alice.tenant.pk, key_id=other.pk, now=now)
    assert [row["refused"] for row in only] == [2]
