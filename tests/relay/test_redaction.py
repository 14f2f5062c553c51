"""An upstream's error text never shows the channel's keys or host."""

import time
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from api.services import token_create
from relay.catalog import ChannelInfo
from relay.models import UpstreamKey, UsageRecord
from relay.redaction import redact
from tests import factories

MESSAGES = [{"role": "user", "content": "Hello there"}]
# Shaped like no provider's key: only knowing the channel's keys finds it.
PLAIN_KEY = "upstream-k3y-of-no-known-shape"
VERDICT = {
    "error": {
        "message": "Your request was rejected",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_rejected",
    }
}


def post(relay, secret, body):
    return httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def hosts_of(base_url: str) -> list[str]:
    parts = urlsplit(base_url)
    return [parts.netloc, parts.hostname]


def assert_clean(text: str, base_url: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
    for host in hosts_of(base_url):
        assert host not in text


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def echoing(db, fake):
    """A channel whose upstream echoes its credentials and host when it
    refuses a request."""
    fake.scenario("echo", status=400, error_body=VERDICT, echo_credentials=True)
    base_url = fake.url("echo")
    return factories.channel("echoing", base_url, ["gpt-4.1-mini"], key=PLAIN_KEY)


def test_the_fake_really_echoes_the_credentials(echoing, fake):
    response = httpx.post(
        f"{echoing.base_url}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES},
        headers={"authorization": f"Bearer {PLAIN_KEY}"},
    )
    message = response.json()["error"]["message"]
    assert PLAIN_KEY in message
    assert urlsplit(echoing.base_url).netloc in message


def test_an_echoed_key_and_host_reach_neither_the_client_nor_the_record(
    relay, alice, echoing
):
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )

    # The verdict still passes through: status, type and code.
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_rejected"
    assert error["message"].startswith("Your request was rejected")
    assert_clean(response.text, echoing.base_url, PLAIN_KEY)

    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    assert record.status == UsageRecord.Status.REJECTED
    assert record.error.startswith("Your request was rejected")
    assert_clean(record.error, echoing.base_url, PLAIN_KEY)

    _, token = token_create(user=alice.user, tenant=alice.tenant, name="reader")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    shown = api.get(f"/api/usage/{record.request_id}/")
    assert shown.status_code == 200
    assert shown.json()["error"] == record.error
    assert_clean(shown.content.decode(), echoing.base_url, PLAIN_KEY)

    portal = Client()
    portal.force_login(alice.user)
    page = portal.get(reverse("usage_detail", args=[record.request_id]))
    assert page.status_code == 200
    assert "Your request was rejected" in page.content.decode()
    assert_clean(page.content.decode(), echoing.base_url, PLAIN_KEY)


def test_secrets_of_known_shapes_are_redacted(relay, alice, fake, channel):
    leaky = (
        "Key sk-proj-AbCdEf0123456789xyz is invalid for org; also tried "
        "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5, AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv "
        "and Authorization: Bearer abc.def-123_456"
    )
    fake.scenario(
        status=422,
        error_body={"error": {"message": leaky, "type": "bad", "code": "leaky"}},
    )
    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("bad", "leaky")
    record = UsageRecord.objects.get()
    for text in (response.text, record.error):
        for secret in (
            "sk-proj-AbCdEf0123456789xyz",
            "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv",
            "abc.def-123_456",
        ):
            assert secret not in text
        assert "is invalid for org" in text


def test_a_disabled_keys_reason_is_redacted(relay, alice, fake, settings):
    settings.SWITCHBOARD_RETRY_BACKOFF_SECONDS = 0
    fake.scenario("refusing", status=401, echo_credentials=True)
    base_url = fake.url("refusing")
    refused = factories.channel("refusing", base_url, ["gpt-4.1-mini"], key=PLAIN_KEY)

    response = post(
        relay, alice.secret, {"model": "gpt-4.1-mini", "messages": MESSAGES}
    )

    assert response.status_code == 502
    assert_clean(response.text, base_url, PLAIN_KEY)
    key = refused.upstream_keys.get()
    wait_until(lambda: not UpstreamKey.objects.get(pk=key.pk).is_enabled)
    key.refresh_from_db()
    assert key.disabled_reason.startswith("Upstream answered 401")
    assert_clean(key.disabled_reason, base_url, PLAIN_KEY)


def channel_info(**fields) -> ChannelInfo:
    values = {
        "id": 1,
        "name": "c",
        "kind": "openai",
        "base_url": "https://llm.internal.example:8443/v1",
        "api_key": "first-key-000",
        "priority": 0,
        "weight": 1,
        "api_keys": ((1, "first-key-000"), (2, "second-key-111")),
        **fields,
    }
    return ChannelInfo(**values)


def test_redact_removes_every_key_of_the_channel_and_its_host():
    text = (
        "bad key second-key-111 (first-key-000) calling "
        "https://LLM.internal.example:8443/v1/chat"
    )
    redacted = redact(text, channel_info())
    assert "second-key-111" not in redacted
    assert "first-key-000" not in redacted
    assert "internal.example" not in redacted.lower()
    assert redacted.startswith("bad key [redacted] ([redacted]) calling")


@pytest.mark.parametrize(
    "secret",
    [
        "sk-" + "a1" * 24,
        "sk-ant-api03-" + "x" * 40,
        "AIzaSy" + "B" * 33,
        "Bearer abcdefgh",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.signature",
        "0123456789abcdef0123456789abcdef0123",
    ],
)
def test_redact_removes_secrets_by_their_shape(secret):
    redacted = redact(f"It said: {secret}. Retry later.")
    assert secret not in redacted
    assert redacted.startswith("It said: ") and redacted.endswith(". Retry later.")


def test_redact_leaves_ordinary_text_alone():
    text = "This model's maximum context length is 128000 tokens (gpt-4.1-mini)."
    assert redact(text, channel_info()) == text


def test_an_error_event_mid_stream_reaches_the_client_redacted(relay, alice, fake):
    base_url = fake.url("midstream")
    factories.channel("midstream", base_url, ["gpt-4.1-mini"], key=PLAIN_KEY)
    leak = f"upstream {urlsplit(base_url).netloc} refused key {PLAIN_KEY}"
    fake.scenario(
        "midstream",
        reply="one two three four five",
        error_after_chunks=2,
        stream_error={"error": {"message": leak, "type": "server_error"}},
    )

    response = post(
        relay,
        alice.secret,
        {"model": "gpt-4.1-mini", "messages": MESSAGES, "stream": True},
    )

    assert response.status_code == 200
    assert "refused key" in response.text  # the upstream's event, passed on
    assert_clean(response.text, base_url, PLAIN_KEY)
    record = UsageRecord.objects.get(request_id=response.headers["x-request-id"])
    assert_clean(record.error, base_url, PLAIN_KEY)
