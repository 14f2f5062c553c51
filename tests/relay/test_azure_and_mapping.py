"""Azure deployments and public-to-upstream model names."""

import openai

from relay.models import Channel, UsageRecord
from tests import factories

MESSAGES = [{"role": "user", "content": "Hello Azure"}]


def test_an_azure_channel_is_called_by_deployment(relay, alice, fake):
    factories.azure_channel("azure-east", fake.base_url, {"gpt-4.1-mini": "prod-mini"})
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    before = alice.wallet.balance
    reply = client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    sent = fake.last_request
    assert sent.path == "/openai/deployments/prod-mini/chat/completions"
    assert sent.query == "api-version=2024-10-21"
    assert sent.headers["api-key"] == "azure-secret"
    assert "authorization" not in sent.headers
    assert reply.usage.completion_tokens > 0
    record = UsageRecord.objects.get()
    # Billed under the public name, at its price.
    assert record.model == "gpt-4.1-mini"
    assert before - alice.wallet.balance == record.charged > 0


def test_an_openai_channel_sends_its_own_model_name(relay, alice, channel, fake):
    Channel.objects.filter(pk=channel.pk).update(
        model_map={"gpt-4.1": "vendor/gpt-4.1-2025-04-14"}
    )
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=5)
    assert fake.last_request.body["model"] == "vendor/gpt-4.1-2025-04-14"
    client.chat.completions.create(model="gpt-4.1-nano", messages=MESSAGES)
    assert fake.last_request.body["model"] == "gpt-4.1-nano"
