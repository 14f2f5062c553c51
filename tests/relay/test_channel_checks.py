"""Staff test a channel with one click; the probe brings refused keys back."""

from relay.models import UpstreamKey
from relay.tasks import probe_disabled_keys


def test_staff_test_a_channel_from_the_admin(admin_client, channel, fake):
    response = admin_client.post(
        "/admin/relay/channel/",
        {"action": "test_channels", "_selected_action": [channel.pk], "index": 0},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(f"{channel.name}: OK in ")
    sent = fake.last_request
    assert sent.body["max_tokens"] == 1
    assert sent.api_key == "sk-upstream-secret-1234"


def test_a_failing_channel_shows_the_error_without_secrets(admin_client, channel, fake):
    fake.scenario(status=500)
    response = admin_client.post(
        "/admin/relay/channel/",
        {"action": "test_channels", "_selected_action": [channel.pk], "index": 0},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(f"{channel.name}: failed after")
    assert "HTTP 500" in message
    assert "sk-upstream-secret-1234" not in response.content.decode()


def test_the_probe_re_enables_keys_the_upstream_accepts_again(channel, fake):
    channel.upstream_keys.all().delete()
    refused = channel.add_key("sk-was-refused")
    UpstreamKey.objects.filter(pk=refused.pk).update(
        is_enabled=False, auto_disabled=True, disabled_reason="Upstream answered 401"
    )
    by_staff = channel.add_key("sk-staff-disabled")
    UpstreamKey.objects.filter(pk=by_staff.pk).update(is_enabled=False)

    fake.scenario(require_key="something-else")
    assert probe_disabled_keys.apply().get() == 0
    refused.refresh_from_db()
    assert not refused.is_enabled

    fake.scenario(require_key="sk-was-refused")
    assert probe_disabled_keys.apply().get() == 1
    refused.refresh_from_db()
    by_staff.refresh_from_db()
    assert refused.is_enabled and not refused.auto_disabled
    assert refused.disabled_reason == ""
    assert not by_staff.is_enabled
