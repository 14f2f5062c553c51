"""Channels: health in the console, changes in the admin, each one audited."""

import asyncio
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from console.channels import breaker_states, channels_health
from relay import breakers
from relay.models import Channel, ChannelCost, UsageRecord
from tests.console.conftest import usage_record


def management(prefix: str, total: int = 0, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def channel_form(fake, **extra) -> dict:
    return {
        "name": "new-openai",
        "kind": "openai",
        "base_url": fake.url(),
        "model_names": '["gpt-4.1-mini"]',
        "model_map": "{}",
        "api_version": "",
        "priority": 0,
        "weight": 1,
        "is_enabled": "on",
        **extra,
    }


def test_adding_a_channel_with_a_key_and_a_cost_price_is_audited(
    finance_client, finance, fake, prices
):
    response = finance_client.post(
        "/admin/relay/channel/add/",
        channel_form(
            fake,
            **management("upstream_keys", 1),
            **{
                "upstream_keys-0-label": "primary",
                "upstream_keys-0-new_secret": "sk-typed-by-staff-9876",
                "upstream_keys-0-is_enabled": "on",
            },
            **management("costs", 1),
            **{
                "costs-0-model": "gpt-4.1-mini",
                "costs-0-input_per_mtok": "0.2",
                "costs-0-output_per_mtok": "0.8",
                "costs-0-per_request_usd": "0",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    channel = Channel.objects.get(name="new-openai")
    assert channel.upstream_keys.get().secret == "sk-typed-by-staff-9876"
    cost = ChannelCost.objects.get(channel=channel)
    assert (str(cost.input_per_mtok), str(cost.output_per_mtok)) == ("0.200", "0.800")
    actions = sorted(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["channel.create", "channelcost.add", "upstreamkey.add"]
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {finance.pk}
    for event in AuditEvent.objects.all():
        assert "sk-typed-by-staff-9876" not in f"{event.summary} {event.data}"
    assert "9876" in AuditEvent.objects.get(action="upstreamkey.add").summary


def test_a_key_is_rotated_by_typing_a_new_one(finance_client, channel, fake):
    key = channel.upstream_keys.get()
    page = finance_client.get(f"/admin/relay/channel/{channel.pk}/change/")
    assert "sk-upstream-secret-1234" not in page.content.decode()
    response = finance_client.post(
        f"/admin/relay/channel/{channel.pk}/change/",
        channel_form(
            fake,
            name=channel.name,
            model_names='["gpt-4.1-mini"]',
            **management("upstream_keys", 1, 1),
            **{
                "upstream_keys-0-id": key.pk,
                "upstream_keys-0-channel": channel.pk,
                "upstream_keys-0-label": "",
                "upstream_keys-0-new_secret": "sk-rotated-5555",
                "upstream_keys-0-is_enabled": "on",
            },
            **management("costs"),
        ),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    key.refresh_from_db()
    assert key.secret == "sk-rotated-5555"
    event = AuditEvent.objects.get(action="upstreamkey.rotate")
    assert "5555" in event.summary and "sk-rotated" not in event.summary
    assert AuditEvent.objects.filter(action="channel.change").exists()


def test_a_cost_price_for_a_model_the_channel_does_not_serve_is_refused(
    finance_client, channel, fake
):
    response = finance_client.post(
        f"/admin/relay/channel/{channel.pk}/change/",
        channel_form(
            fake,
            name=channel.name,
            model_names='["gpt-4.1-mini"]',
            **management("upstream_keys"),
            **management("costs", 1),
            **{
                "costs-0-model": "claude-opus",
                "costs-0-input_per_mtok": "1",
                "costs-0-output_per_mtok": "1",
                "costs-0-per_request_usd": "0",
            },
        ),
    )
    assert response.status_code == 200
    assert "This channel does not serve claude-opus." in response.content.decode()
    assert not ChannelCost.objects.exists()
    assert not AuditEvent.objects.exists()


def test_deleting_a_channel_is_audited(finance_client, channel):
    response = finance_client.post(
        f"/admin/relay/channel/{channel.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Channel.objects.filter(pk=channel.pk).exists()
    assert (
        AuditEvent.objects.get(action="channel.delete").target
        == f"channel:{channel.pk}"
    )


def test_the_admin_test_button_reports_the_check(finance_client, channel, fake):
    response = finance_client.post(
        f"/admin/relay/channel/{channel.pk}/test/", follow=True
    )
    assert response.status_code == 200
    # The admin capitalises its messages.
    assert "Fake-openai: OK in" in response.content.decode()
    fake.scenario(status=503)
    response = finance_client.post(
        f"/admin/relay/channel/{channel.pk}/test/", follow=True
    )
    assert "Fake-openai: failed after" in response.content.decode()
    assert "HTTP 503" in response.content.decode()


def test_the_console_tests_a_channel(finance_client, channel, fake):
    response = finance_client.post(
        reverse("console:channel_test", args=[channel.pk]), follow=True
    )
    assert "Test of fake-openai: OK in" in response.content.decode()
    assert fake.requests[-1].api_key == "sk-upstream-secret-1234"


def test_disabling_and_enabling_needs_a_reason_and_is_audited(finance_client, channel):
    url = reverse("console:channel_toggle", args=[channel.pk])
    finance_client.post(url, {"toggle-reason": ""})
    channel.refresh_from_db()
    assert channel.is_enabled
    finance_client.post(url, {"toggle-reason": "upstream outage"})
    channel.refresh_from_db()
    assert not channel.is_enabled
    finance_client.post(url, {"toggle-reason": "recovered"})
    channel.refresh_from_db()
    assert channel.is_enabled
    assert list(AuditEvent.objects.order_by("pk").values_list("action", "reason")) == [
        ("channel.disable", "upstream outage"),
        ("channel.enable", "recovered"),
    ]


def test_health_counts_success_latency_errors_and_money(alice, channel):
    now = timezone.now()
    usage_record(alice, channel=channel, latency_ms=100, charged=500, upstream_cost=300)
    usage_record(
        alice, channel=channel, latency_ms=300, charged=500, upstream_cost=None
    )
    usage_record(
        alice,
        channel=channel,
        latency_ms=50,
        status=UsageRecord.Status.UPSTREAM_ERROR,
        http_status=502,
        usage_source=UsageRecord.Source.NONE,
        error="HTTP 503 upstream",
    )
    usage_record(
        alice, channel=channel, latency_ms=1000, created_at=now - timedelta(hours=5)
    )
    [row] = channels_health()
    assert (row.hour.requests, row.hour.ok) == (3, 2)
    assert row.hour.p50 == 100
    assert (row.day.requests, row.day.ok) == (4, 3)
    assert row.day.p50 == 200
    assert row.last_error == "HTTP 503 upstream"
    assert (row.spend, row.upstream_cost, row.uncosted) == (1000, 300, 2)
    assert row.state == "closed"
    assert [state for _, state in row.keys] == ["closed"]


@pytest.fixture(params=["redis", "local"])
def trip(request, settings):
    """
    Open a breaker where the relay keeps them: in Redis, shared by every
    process; or, without Redis (the embedded default), in an event loop of
    this process, kept alive here as a server's would be.
    """
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs Redis (set REDIS_URL)")

        async def in_redis(name: str) -> None:
            store = breakers.RedisStore(settings.REDIS_URL)
            await store.failure(name, trip=True)
            await store.close()

        yield lambda name: asyncio.run(in_redis(name))
        return
    settings.REDIS_URL = ""
    breakers.forget()
    serving = asyncio.new_event_loop()

    async def in_loop(name: str) -> None:
        await breakers.breakers().store.failure(name, trip=True)

    yield lambda name: serving.run_until_complete(in_loop(name))
    serving.close()
    breakers.forget()


def test_an_open_breaker_shows_on_the_channel_page(support_client, channel, trip):
    key = channel.upstream_keys.get()
    trip(breakers.channel_name(channel.pk))
    assert breaker_states(
        [breakers.channel_name(channel.pk), breakers.key_name(key.pk)]
    ) == {
        breakers.channel_name(channel.pk): "open",
        breakers.key_name(key.pk): "closed",
    }
    page = support_client.get(reverse("console:channels")).content.decode()
    assert 'class="breaker breaker-open">open<' in page
    assert "sk-…1234" in page
    assert "sk-upstream-secret-1234" not in page
