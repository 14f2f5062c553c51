"""Circuit breakers: a failing channel is skipped, then probed, then trusted."""

import time

import httpx
import pytest

from relay import breakers, catalog
from relay.models import Channel, UpstreamKey
from tests import factories

BODY = {
    "model": "gpt-4.1-nano",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 5,
}


COOLDOWN = 30


@pytest.fixture
def fast_breakers(settings):
    settings.SWITCHBOARD_BREAKER_FAILURES = 3
    settings.SWITCHBOARD_BREAKER_COOLDOWN_SECONDS = COOLDOWN
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0


@pytest.fixture
def clock(monkeypatch):
    """Move the breakers' clocks forward: the monotonic one and the wall
    clock that Redis holds cool-downs in, together."""
    moved = [0.0]
    monkeypatch.setattr(breakers, "clock", lambda: time.monotonic() + moved[0])
    monkeypatch.setattr(breakers, "wall_clock", lambda: time.time() + moved[0])
    return moved


@pytest.fixture
def primary(channel, fake) -> Channel:
    """A preferred channel on its own fake scenario, above the `channel`."""
    fake.scenario("primary")
    return factories.channel(
        "primary", fake.url("primary"), ["gpt-4.1-nano"], key="sk-primary", priority=10
    )


def call(relay, customer) -> httpx.Response:
    return httpx.post(
        f"{relay}/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {customer.secret}"},
        timeout=10,
    )


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_failing_channel_is_skipped_then_probed_then_trusted(
    relay, alice, fake, primary, fast_breakers, clock
):
    fake.scenario("primary", status=503)
    # Every request is still served, by the backup channel.
    for _ in range(3):
        assert call(relay, alice).status_code == 200
    assert fake.request_counts["primary"] == 3
    # The third failure opened the breaker (recorded in the background, so
    # allow a request or two in flight to try it once more).
    for _ in range(2):
        assert call(relay, alice).status_code == 200
    skipped_from = fake.request_counts["primary"]
    for _ in range(5):
        assert call(relay, alice).status_code == 200
    assert fake.request_counts["primary"] == skipped_from <= 5
    # It recovers: after the cool-down a request probes it, and from then on
    # it gets the traffic again.
    fake.scenario("primary")
    clock[0] += COOLDOWN + 0.1
    wait_until(
        lambda: (
            call(relay, alice).status_code == 200
            and fake.request_counts["primary"] > skipped_from
        )
    )
    before = fake.request_counts["primary"]
    for _ in range(4):
        assert call(relay, alice).status_code == 200
    assert fake.request_counts["primary"] - before == 4


def test_a_key_the_upstream_refuses_is_disabled_with_the_reason(
    relay, alice, fake, channel
):
    channel.upstream_keys.all().delete()
    bad = channel.add_key("sk-revoked-upstream")
    good = channel.add_key("sk-valid")
    fake.scenario(require_key="sk-valid")
    for _ in range(4):
        assert call(relay, alice).status_code == 200
    wait_until(lambda: not UpstreamKey.objects.get(pk=bad.pk).is_enabled)
    bad.refresh_from_db()
    assert bad.auto_disabled
    assert bad.disabled_reason.startswith("Upstream answered 401")
    good.refresh_from_db()
    assert good.is_enabled
    # Once disabled (and the catalog reloaded) the key is never sent again.
    catalog.forget()
    sent_before = sum(r.api_key == "sk-revoked-upstream" for r in fake.requests)
    for _ in range(4):
        assert call(relay, alice).status_code == 200
    sent_after = sum(r.api_key == "sk-revoked-upstream" for r in fake.requests)
    assert sent_after == sent_before


def test_the_first_request_after_the_cool_down_probes(
    relay, alice, fake, primary, fast_breakers, clock
):
    fake.scenario("primary", status=503)
    for _ in range(3):
        assert call(relay, alice).status_code == 200
    wait_until(lambda: call(relay, alice) and fake.request_counts["primary"] == 3)
    # Open: skipped, however many requests come.
    for _ in range(3):
        assert call(relay, alice).status_code == 200
    assert fake.request_counts["primary"] == 3
    fake.scenario("primary")
    clock[0] += COOLDOWN + 0.05
    # The view of the breakers is refreshed in the background about once a
    # second; the cool-down's end is known without it.
    assert call(relay, alice).status_code == 200
    assert fake.request_counts["primary"] == 4
