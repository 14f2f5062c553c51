"""/metrics: for operators only, and what it tells after a few requests."""

import time
from ipaddress import ip_network

import httpx
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app as celery_app
from ops import metrics

MESSAGES = [{"role": "user", "content": "Hello"}]
CHAT = ("chat.completions", "gpt-4.1-mini", "fake-openai")


def get_metrics(base: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{base}/metrics", headers=headers, timeout=10)


def scrape(base: str) -> dict[str, list]:
    """Return every sample of a scrape, by sample name."""
    response = get_metrics(base)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of `name`'s samples that carry `labels` (0 without any)."""
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def chat(relay: str, secret: str, **extra) -> httpx.Response:
    return httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, **extra},
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def test_metrics_are_refused_without_the_token_from_elsewhere(relay_server, settings):
    base = relay_server.base_url
    settings.SWITCHBOARD_METRICS_ALLOW = (
        ip_network("10.0.0.0/8"),
        ip_network("fd00::/8"),
    )
    settings.SWITCHBOARD_METRICS_TOKEN = "metrics-secret"
    refused = get_metrics(base)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "metrics_forbidden"
    wrong = get_metrics(base, authorization="Bearer not-the-secret")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_metrics_token"
    served = get_metrics(base, authorization="Bearer metrics-secret")
    assert served.status_code == 200
    assert "switchboard_requests_total" in served.text


def test_a_bearer_token_is_refused_when_none_is_configured(relay_server, settings):
    settings.SWITCHBOARD_METRICS_ALLOW = (ip_network("10.0.0.0/8"),)
    settings.SWITCHBOARD_METRICS_TOKEN = ""
    assert (
        get_metrics(relay_server.base_url, authorization="Bearer x").status_code == 401
    )


def test_loopback_may_scrape_by_default(relay_server):
    assert get_metrics(relay_server.base_url).status_code == 200


def test_metrics_count_requests_and_time_them(relay, channel, alice, fake):
    base = relay.removesuffix("/v1")
    before = scrape(base)
    assert chat(relay, alice.secret).status_code == 200
    assert chat(relay, alice.secret).status_code == 200
    assert chat(relay, alice.secret, stream=True).status_code == 200
    assert chat(relay, "sk-sb-not-a-key").status_code == 401
    after = scrape(base)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    endpoint, model, channel_name = CHAT
    served = {"endpoint": endpoint, "model": model, "channel": channel_name}
    assert (
        moved("switchboard_requests_total", **served, status="200", outcome="ok") == 3
    )
    refused = {"endpoint": endpoint, "model": "", "channel": ""}
    assert (
        moved("switchboard_requests_total", **refused, status="401", outcome="refused")
        == 1
    )
    added = "switchboard_added_latency_seconds_count"
    assert moved(added, endpoint=endpoint, stream="false") == 2
    assert moved(added, endpoint=endpoint, stream="true") == 1
    upstream = "switchboard_upstream_latency_seconds"
    assert moved(f"{upstream}_count", channel=channel_name) == 3
    assert moved(f"{upstream}_sum", channel=channel_name) > 0
    # Every observation falls in the +Inf bucket.
    assert moved(f"{upstream}_bucket", channel=channel_name, le="+Inf") == 3
    assert (
        moved("switchboard_stream_first_byte_seconds_count", channel=channel_name) == 1
    )

    # Read at scrape time: nothing held once every request is settled, the
    # channel's and its key's breakers closed, the journal empty.
    assert value(after, "switchboard_holds_outstanding") == 0
    assert value(after, "switchboard_holds_outstanding_nano_usd") == 0
    assert value(after, "switchboard_wallets_held_nano_usd") == 0
    assert "switchboard_holds_oldest_age_seconds" in after
    assert "switchboard_journal_depth" in after
    breakers = {
        (s.labels["kind"], s.labels["id"]): s.value
        for s in after["switchboard_breaker_state"]
        if s.labels["channel"] == channel_name
    }
    key_id = channel.upstream_keys.get().pk
    assert breakers == {("channel", str(channel.pk)): 0, ("key", str(key_id)): 0}
    assert value(after, "switchboard_scrape_error", part="holds") == 0
    assert value(after, "switchboard_scrape_error", part="breakers") == 0
    # Counted by others: present from the start.
    for name in (
        "switchboard_settlement_retries_total",
        "switchboard_settlements_journaled_total",
    ):
        assert name in after


def test_a_hold_in_flight_shows_until_its_request_settles(relay, channel, alice, fake):
    base = relay.removesuffix("/v1")
    fake.scenario(reply=" ".join(["word"] * 40), chunk_delay=0.05)
    with httpx.stream(
        "POST",
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    ) as response:
        lines = response.iter_lines()
        next(lines)  # under way
        during = scrape(base)
        for _ in lines:
            pass
    after = scrape(base)
    assert value(during, "switchboard_holds_outstanding") == 1
    held = value(during, "switchboard_holds_outstanding_nano_usd")
    assert held > 0
    assert value(during, "switchboard_wallets_held_nano_usd") == held
    assert value(after, "switchboard_holds_outstanding") == 0
    assert value(after, "switchboard_wallets_held_nano_usd") == 0


def test_an_open_breaker_shows_as_open(relay, channel, alice, fake, settings):
    settings.SWITCHBOARD_BREAKER_FAILURES = 1
    settings.SWITCHBOARD_MAX_ATTEMPTS = 1
    base = relay.removesuffix("/v1")
    fake.scenario(status=500)
    assert chat(relay, alice.secret).status_code >= 500
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(base)
        state = value(
            samples, "switchboard_breaker_state", kind="channel", id=str(channel.pk)
        )
        if state == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state == 2
    assert (
        value(
            samples,
            "switchboard_requests_total",
            endpoint="chat.completions",
            model="gpt-4.1-mini",
            # No channel served it.
            channel="",
            outcome="upstream_error",
        )
        >= 1
    )


@celery_app.task(name="tests.ops.fails")
def fails():
    raise RuntimeError("this task fails")


def test_a_failed_celery_task_is_counted():
    failures = metrics.TASK_FAILURES.labels("tests.ops.fails")
    before = failures._value.get()
    # Run here, as a worker would run it.
    assert fails.apply(throw=False).failed()
    assert failures._value.get() == before + 1
