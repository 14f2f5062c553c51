"""The demo channel that `make run` sets up answers offline, metered."""

import io
import re

import httpx
import openai
import pytest
from django.core.management import call_command

from accounts.models import Tenant
from billing.models import LedgerEntry
from relay import tokens
from relay.models import UsageRecord


@pytest.fixture
def demo_secret(relay, prices, settings) -> str:
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    out = io.StringIO()
    call_command("demo_setup", base_url="http://testserver", stdout=out)
    return re.search(r"demo API key: (sk-sb-\S+)", out.getvalue()).group(1)


def test_the_printed_key_gets_a_metered_demo_answer(relay, demo_secret):
    client = openai.OpenAI(base_url=relay, api_key=demo_secret, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello!"}]
    )
    text = reply.choices[0].message.content
    assert text.startswith("Hello from Switchboard's demo channel!")
    assert reply.usage.completion_tokens == tokens.count(text)
    wallet = Tenant.objects.get(name="Demo tenant").wallet
    # $1.00 of starter credit, less exactly this request at gpt-4.1-mini prices.
    cost = reply.usage.prompt_tokens * 400 + reply.usage.completion_tokens * 1600
    assert wallet.balance == 1_000_000_000 - cost
    assert UsageRecord.objects.get().charged == cost


def test_the_demo_channel_streams(relay, demo_secret):
    client = openai.OpenAI(base_url=relay, api_key=demo_secret, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1-nano",
            messages=[{"role": "user", "content": "Stream please"}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=5,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert tokens.count(text) == 5
    assert chunks[-1].usage.completion_tokens == 5
    assert LedgerEntry.objects.filter(kind="usage").count() == 1


def test_running_setup_again_grants_credit_once_and_replaces_the_key(
    relay, demo_secret
):
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert LedgerEntry.objects.filter(kind="starter").count() == 1
    new_secret = re.search(r"demo API key: (sk-sb-\S+)", out.getvalue()).group(1)
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
    old = httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo_secret}"},
    )
    assert old.status_code == 401
    new = httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {new_secret}"},
    )
    assert new.status_code == 200


def test_demo_channels_are_ignored_unless_settings_allow_them(
    relay, demo_secret, settings
):
    settings.SWITCHBOARD_DEMO_PROVIDER = False
    response = httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {demo_secret}"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
