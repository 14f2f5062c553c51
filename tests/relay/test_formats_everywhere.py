"""
The Responses API and Messages on the channel kinds the other format tests
leave out: Azure (Responses natively, under its own URL scheme; Messages
translated to a deployment's chat completions) and the demo channel that
`make run` sets up (both translated to its local chat completions).
"""

import io
import re

import anthropic
import openai
import pytest
from django.core.management import call_command

from accounts.models import Tenant
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes.upstream import DEFAULT_REPLY, expected_responses_usage

# gpt-4.1-mini, nano-USD per token: input, cached input, output.
INPUT, CACHED, OUTPUT = 400, 100, 1600


def cost(prompt: int, completion: int, cached: int = 0) -> int:
    return (prompt - cached) * INPUT + cached * CACHED + completion * OUTPUT


def assert_charged(customer, before: int, expected: int) -> None:
    record = UsageRecord.objects.latest("created_at")
    assert record.status == "ok" and record.usage_source == "reported"
    assert record.cost == record.charged == expected > 0
    assert before - customer.wallet.balance == expected
    assert customer.wallet.held == 0


@pytest.fixture
def azure(db, fake) -> Channel:
    return factories.azure_channel(
        "azure-east",
        fake.base_url,
        {"gpt-4.1-mini": "prod-mini"},
        api_version="2025-04-01-preview",
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_azure_serves_the_responses_api_itself(relay, alice, azure, fake, stream):
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    before = alice.wallet.balance
    if stream:
        with client.responses.stream(model="gpt-4.1-mini", input="Hello Azure") as s:
            answer = s.get_final_response()
    else:
        answer = client.responses.create(model="gpt-4.1-mini", input="Hello Azure")
    sent = fake.last_request
    assert sent.path == "/openai/responses"
    assert sent.query == "api-version=2025-04-01-preview"
    assert sent.headers["api-key"] == "azure-secret"
    assert sent.body["model"] == "prod-mini"
    # Answered under the public name, never the deployment's.
    assert answer.model == "gpt-4.1-mini"
    assert answer.output_text == DEFAULT_REPLY
    usage = expected_responses_usage(sent.body)
    assert answer.usage.input_tokens == usage["input_tokens"]
    assert_charged(alice, before, cost(usage["input_tokens"], usage["output_tokens"]))
    assert UsageRecord.objects.get().response_id == answer.id


def test_an_azure_stored_response_is_retrieved_through_azure(relay, alice, azure, fake):
    client = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    made = client.responses.create(model="gpt-4.1-mini", input="Hello Azure")
    found = client.responses.retrieve(made.id)
    assert found.id == made.id and found.model == "gpt-4.1-mini"
    sent = fake.last_request
    assert (sent.method, sent.path) == ("GET", f"/openai/responses/{made.id}")
    assert sent.query == "api-version=2025-04-01-preview"
    assert sent.headers["api-key"] == "azure-secret"
    # Retrieving is not a request for the model: not charged again.
    assert UsageRecord.objects.count() == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_azure_answers_messages_through_its_chat_deployment(
    relay_server, relay, alice, azure, fake, stream
):
    client = anthropic.Anthropic(
        base_url=relay_server.base_url, api_key=alice.secret, max_retries=0
    )
    before = alice.wallet.balance
    request = {
        "model": "gpt-4.1-mini",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hello Azure"}],
    }
    if stream:
        with client.messages.stream(**request) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**request)
    sent = fake.last_request
    assert sent.path == "/openai/deployments/prod-mini/chat/completions"
    assert message.model == "gpt-4.1-mini"
    assert message.content[0].text == DEFAULT_REPLY
    prompt = message.usage.input_tokens + message.usage.cache_read_input_tokens
    assert_charged(alice, before, cost(prompt, message.usage.output_tokens))


# -- the demo channel --------------------------------------------------------


@pytest.fixture
def demo(relay, prices, settings) -> tuple[Tenant, str]:
    """The demo tenant and the key `make run` prints for it."""
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    banner = io.StringIO()
    call_command("demo_setup", base_url=relay.removesuffix("/v1"), stdout=banner)
    secret = re.search(r"demo API key: (sk-sb-\S+)", banner.getvalue()).group(1)
    return Tenant.objects.get(name="Demo tenant"), secret


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_demo_answers_the_responses_api(relay, demo, stream):
    tenant, secret = demo
    client = openai.OpenAI(base_url=relay, api_key=secret, max_retries=0)
    if stream:
        with client.responses.stream(model="gpt-4.1-mini", input="Hi") as s:
            text = "".join(
                event.delta for event in s if event.type == "response.output_text.delta"
            )
            answer = s.get_final_response()
        assert text == answer.output_text
    else:
        answer = client.responses.create(model="gpt-4.1-mini", input="Hi")
    assert "demo channel" in answer.output_text
    record = UsageRecord.objects.get(tenant=tenant)
    assert (record.endpoint, record.usage_source) == ("responses", "reported")
    assert record.response_id == answer.id
    assert record.charged == cost(answer.usage.input_tokens, answer.usage.output_tokens)


def test_the_demo_runs_a_responses_tool_round_trip(relay, demo):
    tenant, secret = demo
    client = openai.OpenAI(base_url=relay, api_key=secret, max_retries=0)
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    asked = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.responses.create(model="gpt-4.1-mini", input=asked, tools=[tool])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in call.arguments
    second = client.responses.create(
        model="gpt-4.1-mini",
        tools=[tool],
        input=[
            *asked,
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C"},
        ],
    )
    assert "21C" in second.output_text
    assert UsageRecord.objects.filter(tenant=tenant, status="ok").count() == 2


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_demo_answers_messages(relay_server, relay, demo, stream):
    tenant, secret = demo
    client = anthropic.Anthropic(
        base_url=relay_server.base_url, api_key=secret, max_retries=0
    )
    request = {
        "model": "gpt-4.1-mini",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    if stream:
        with client.messages.stream(**request) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**request)
    assert "demo channel" in message.content[0].text
    record = UsageRecord.objects.get(tenant=tenant)
    assert (record.endpoint, record.usage_source) == ("messages", "reported")
    assert record.charged == cost(
        message.usage.input_tokens, message.usage.output_tokens
    )
