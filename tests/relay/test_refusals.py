"""Every refusal: OpenAI's error shape, the right status, no charge, no hold."""

from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import auth
from accounts.services import api_key_create, api_key_revoke
from billing.models import Hold, LedgerEntry
from relay.models import Channel, UsageRecord
from tests import factories

MESSAGES = [{"role": "user", "content": "Hello there"}]
BODY = {"model": "gpt-4.1-mini", "messages": MESSAGES}


def post(relay, secret, body=None, *, content=None, headers=None):
    sent = {"authorization": f"Bearer {secret}"} if secret else {}
    sent.update(headers or {})
    return httpx.post(
        f"{relay}/chat/completions",
        json=body if content is None else None,
        content=content,
        headers=sent,
        timeout=10,
    )


def assert_refused(response, status, code=None, *, customer=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert response.headers["x-request-id"].startswith("req_")
    assert not Hold.objects.exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()
    if customer is not None:
        wallet = customer.wallet
        assert (wallet.balance, wallet.held) == (10_000_000_000, 0)
    call_command("billing_audit")


@pytest.fixture
def ok_body():
    return {"model": "gpt-4.1-mini", "messages": MESSAGES}


def test_it_refuses_a_missing_key(relay, channel, alice, ok_body):
    assert_refused(post(relay, None, ok_body), 401, "missing_api_key", customer=alice)


def test_it_refuses_an_unknown_key(relay, channel, alice, ok_body):
    response = post(relay, "sk-sb-" + "x" * 48, ok_body)
    assert_refused(response, 401, "invalid_api_key", customer=alice)


def test_it_accepts_the_key_in_x_api_key(relay, channel, alice, ok_body):
    response = post(relay, None, ok_body, headers={"x-api-key": alice.secret})
    assert response.status_code == 200


def test_it_refuses_a_revoked_key(relay, channel, alice, ok_body):
    api_key_revoke(key=alice.tenant.api_keys.get())
    assert_refused(post(relay, alice.secret, ok_body), 401, "api_key_revoked")


def test_it_refuses_an_expired_key(relay, channel, alice, ok_body):
    _, secret = api_key_create(
        tenant=alice.tenant,
        name="short-lived",
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert_refused(post(relay, secret, ok_body), 401, "api_key_expired", customer=alice)


def test_it_refuses_a_suspended_tenant(relay, channel, alice, ok_body):
    alice.tenant.is_active = False
    alice.tenant.save()
    assert_refused(post(relay, alice.secret, ok_body), 403, "account_suspended")


def test_it_refuses_a_model_outside_the_keys_allowlist(relay, channel, alice, ok_body):
    _, secret = api_key_create(
        tenant=alice.tenant, name="nano only", allowed_models=["gpt-4.1-nano"]
    )
    response = post(relay, secret, ok_body)
    assert_refused(response, 403, "model_not_allowed", customer=alice)
    models = httpx.get(
        f"{relay}/models", headers={"authorization": f"Bearer {secret}"}
    ).json()
    # "auto" too: it may choose the one tier the key may use.
    assert [m["id"] for m in models["data"]] == ["auto", "gpt-4.1-nano"]


def test_it_refuses_an_unknown_model(relay, channel, alice):
    response = post(relay, alice.secret, {"model": "gpt-9", "messages": MESSAGES})
    assert_refused(response, 404, "model_not_found", customer=alice)


def test_it_refuses_a_priced_model_no_channel_serves(relay, channel, alice):
    channel.is_enabled = False
    channel.save()
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert_refused(response, 404, "model_not_found", customer=alice)


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "gpt-4.1-mini"}', "messages"),
        (b'{"model": "gpt-4.1-mini", "messages": []}', "messages"),
    ],
)
def test_it_refuses_malformed_requests(relay, channel, alice, fake, content, param):
    response = post(
        relay,
        alice.secret,
        content=content,
        headers={"content-type": "application/json"},
    )
    assert_refused(response, 400, customer=alice)
    assert response.json()["error"]["param"] == param
    assert fake.request_counts.total() == 0


def test_it_refuses_with_402_when_the_balance_cannot_cover_the_hold(
    relay, channel, alice, fake
):
    # gpt-4.1: 32,768 output tokens at $8/1M may cost $0.26; alice has $0.10.
    LedgerEntry.objects.all().delete()
    alice.tenant.wallet.__class__.objects.filter(tenant=alice.tenant).update(balance=0)
    alice.fund("0.10", reference="small")
    response = post(relay, alice.secret, {"model": "gpt-4.1", "messages": MESSAGES})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_balance"
    assert "max_tokens" in response.json()["error"]["message"]
    assert fake.request_counts.total() == 0
    assert alice.wallet.held == 0
    # A request whose worst case fits is served.
    response = post(
        relay,
        alice.secret,
        {"model": "gpt-4.1", "messages": MESSAGES, "max_tokens": 100},
    )
    assert response.status_code == 200
    call_command("billing_audit")


def test_it_answers_502_without_leaking_the_upstream(relay, channel, alice, fake):
    fake.scenario(status=503)
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert_refused(response, 502, "upstream_unavailable", customer=alice)
    assert str(fake.port) not in response.text
    assert "sk-upstream" not in response.text
    record = UsageRecord.objects.get()
    assert (record.status, record.http_status, record.charged) == (
        "upstream_error",
        502,
        0,
    )


def test_it_answers_502_when_the_upstream_is_unreachable(relay, channel, alice):
    channel.base_url = "http://127.0.0.1:9/v1"
    channel.save()
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert_refused(response, 502, "upstream_unavailable", customer=alice)
    assert "127.0.0.1" not in response.text


def test_it_answers_504_when_the_upstream_is_too_slow(
    relay, channel, alice, fake, settings
):
    settings.SWITCHBOARD_UPSTREAM_READ_TIMEOUT = 0.3
    fake.scenario(latency=1.0)
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert_refused(response, 504, "upstream_timeout", customer=alice)


def test_it_passes_an_upstream_verdict_back_uncharged(relay, channel, alice, fake):
    fake.scenario(
        status=400,
        error_body={
            "error": {
                "message": "This model's maximum context length is 1047576 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    )
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert_refused(response, 400, "context_length_exceeded", customer=alice)
    assert response.json()["error"]["param"] == "messages"
    # A verdict on the request is not retried elsewhere.
    assert fake.request_counts.total() == 1
    assert UsageRecord.objects.get().status == UsageRecord.Status.REJECTED


def test_it_fails_over_to_the_next_channel_and_charges_once(
    relay, channel, alice, fake
):
    fake.scenario("down", status=500)
    Channel.objects.filter(pk=channel.pk).update(priority=0)
    factories.channel(
        "broken", fake.url("down"), ["gpt-4.1-mini"], key="sk-other", priority=10
    )
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )
    assert response.status_code == 200
    assert fake.request_counts["down"] == 1
    assert fake.request_counts["default"] == 1
    assert LedgerEntry.objects.filter(kind="usage").count() == 1
    assert UsageRecord.objects.get().channel_id == channel.pk
    call_command("billing_audit")


def test_a_revoked_key_stops_working_within_the_cache_time(
    relay, channel, alice, settings, monkeypatch
):
    settings.SWITCHBOARD_KEY_CACHE_SECONDS = 1
    now = [1000.0]
    monkeypatch.setattr(auth, "clock", lambda: now[0])
    body = {"model": "gpt-4.1-mini", "messages": MESSAGES, "max_tokens": 5}
    assert post(relay, alice.secret, body).status_code == 200
    api_key_revoke(key=alice.tenant.api_keys.get())
    # Within the cache's second the process still trusts what it looked up.
    now[0] += 0.9
    assert post(relay, alice.secret, body).status_code == 200
    now[0] += 0.2
    assert post(relay, alice.secret, body).status_code == 401


def test_an_unknown_endpoint_is_an_openai_shaped_404(relay, alice):
    response = httpx.post(
        f"{relay}/assistants", headers={"authorization": f"Bearer {alice.secret}"}
    )
    assert_refused(response, 404, "unknown_endpoint")


def test_a_get_on_chat_completions_is_refused_with_405(relay, alice):
    response = httpx.get(
        f"{relay}/chat/completions",
        headers={"authorization": f"Bearer {alice.secret}"},
    )
    assert_refused(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_an_oversized_body_is_refused_with_413(relay, channel, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "x" * 2000}],
    }
    response = post(relay, alice.secret, body)
    assert_refused(response, 413, "request_too_large", customer=alice)
