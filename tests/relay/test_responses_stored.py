"""
Stored Responses API answers through a live Switchboard: a follow-up
(previous_response_id) and GET / DELETE / cancel / input_items reach the
channel and the upstream key that made the answer, and only its tenant's.
The fake upstream keeps each answer for the key that created it, so a wrong
pick is refused as the real API refuses it.
"""

import httpx
import openai
import pytest

from billing.models import LedgerEntry
from relay.models import Channel, UsageRecord
from tests import factories
from tests.fakes.upstream import DEFAULT_REPLY, expected_responses_usage
from tests.relay.test_responses_endpoint import (
    GPT_MINI,
    QUESTION,
    Usage,
    assert_charged,
    assert_openai_error,
    assert_uncharged,
    auth,
    post,
    recorded,
)

MODEL = "gpt-4.1-mini"
# Channel -> the fake upstream scenario behind it, and its two keys.
KEYS = {
    "default": ("sk-first-a", "sk-first-b"),
    "second": ("sk-second-a", "sk-second-b"),
}


@pytest.fixture
def two_channels(relay, alice, channel, fake) -> list[Channel]:
    """Two channels of one priority serving MODEL, with two keys each."""
    channel.upstream_keys.all().delete()
    second = factories.channel("second-openai", fake.url("second"), [MODEL], key=None)
    fake.scenario("second")
    for each, scenario in ((channel, "default"), (second, "second")):
        for secret in KEYS[scenario]:
            each.add_key(secret)
    return [channel, second]


@pytest.fixture
def client(relay, alice) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)


def where(request) -> tuple[str, str]:
    """(scenario, key) of a request the fake received: who holds an answer."""
    return request.scenario, request.api_key


def reported(body: dict, previous: dict | None = None) -> Usage:
    found = expected_responses_usage(body, previous_usage=previous)
    return Usage(prompt=found["input_tokens"], completion=found["output_tokens"])


def test_a_follow_up_reaches_the_channel_and_key_that_made_the_answer(
    two_channels, alice, fake, client
):
    before = alice.wallet.balance
    # Unpinned, requests spread over both channels and all their keys.
    for _ in range(8):
        client.responses.create(model=MODEL, input=QUESTION)
    assert len({where(r) for r in fake.requests}) >= 2
    first = client.responses.create(model=MODEL, input=QUESTION)
    origin = where(fake.last_request)
    record = UsageRecord.objects.get(response_id=first.id)
    assert record.upstream_key.secret == origin[1]
    names = {"default": "fake-openai", "second": "second-openai"}
    assert record.channel.name == names[origin[0]]
    previous, usage = first.id, first.usage.model_dump()
    for turn in range(8):
        request = {
            "model": MODEL,
            "input": f"And tomorrow, turn {turn}?",
            "previous_response_id": previous,
        }
        if turn % 2:
            with client.responses.stream(**request) as events:
                answer = events.get_final_response()
        else:
            answer = client.responses.create(**request)
        sent = fake.last_request
        assert where(sent) == origin, turn
        assert answer.output_text == DEFAULT_REPLY
        # The stored context was used: its tokens are in this turn's input.
        record = UsageRecord.objects.get(response_id=answer.id)
        assert recorded(record) == reported(sent.body, usage)
        previous, usage = answer.id, answer.usage.model_dump()
    assert_charged(alice, before, list(UsageRecord.objects.all()), GPT_MINI)


def test_alice_reaches_her_stored_answer_through_its_key(two_channels, fake, client):
    first = client.responses.create(model=MODEL, input=QUESTION)
    origin = where(fake.last_request)
    made = len(fake.requests)
    fetched = client.responses.retrieve(first.id)
    assert (fetched.id, fetched.output_text) == (first.id, DEFAULT_REPLY)
    items = client.responses.input_items.list(first.id)
    assert [item.content[0].text for item in items.data] == [QUESTION]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(first.id)
    # The upstream's own verdict: it found the answer (another key gets 404).
    assert "synchronous" in caught.value.message
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    operations = fake.requests[made:]
    assert [r.method for r in operations] == ["GET", "GET", "POST", "DELETE", "GET"]
    assert {where(r) for r in operations} == {origin}
    # Only the answer itself was billed.
    assert LedgerEntry.objects.filter(kind="usage").count() == 1


def test_bob_cannot_reach_alices_stored_answer(relay, two_channels, alice, bob, fake):
    alices = openai.OpenAI(base_url=relay, api_key=alice.secret, max_retries=0)
    first = alices.responses.create(model=MODEL, input=QUESTION)
    charged = alice.wallet.balance
    bobs = openai.OpenAI(base_url=relay, api_key=bob.secret, max_retries=0)
    sent = len(fake.requests)
    response = post(
        relay,
        bob.secret,
        {"model": MODEL, "input": "hi", "previous_response_id": first.id},
    )
    assert_openai_error(
        response, 404, code="previous_response_not_found", param="previous_response_id"
    )
    for attempt in (
        lambda: bobs.responses.retrieve(first.id),
        lambda: bobs.responses.delete(first.id),
        lambda: bobs.responses.cancel(first.id),
        lambda: bobs.responses.input_items.list(first.id),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        assert caught.value.code == "response_not_found"
        # Exactly what a response that never existed gets.
        assert first.id in caught.value.message
    assert len(fake.requests) == sent
    assert_uncharged(bob, bob.wallet.balance)
    assert alice.wallet.balance == charged
    assert alices.responses.retrieve(first.id).id == first.id


def test_an_unknown_response_id_is_404(relay, alice, channel, fake, client):
    before = alice.wallet.balance
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_never_made")
    assert caught.value.code == "response_not_found"
    response = post(
        relay,
        alice.secret,
        {"model": MODEL, "input": "hi", "previous_response_id": "resp_never_made"},
    )
    assert_openai_error(response, 404, code="previous_response_not_found")
    assert fake.requests == []
    assert_uncharged(alice, before)


def test_a_follow_up_with_a_model_its_channel_does_not_serve_is_refused(
    relay, alice, channel, claude_channel, fake, fake_anthropic, client
):
    first = client.responses.create(model=MODEL, input=QUESTION)
    before = alice.wallet.balance
    response = post(
        relay,
        alice.secret,
        {
            "model": "claude-3-5-haiku-latest",
            "input": "hi",
            "previous_response_id": first.id,
        },
    )
    error = assert_openai_error(response, 400, param="previous_response_id")
    assert MODEL in error["message"]
    assert fake_anthropic.requests == [] and len(fake.requests) == 1
    assert_uncharged_since(alice, before)


def assert_uncharged_since(customer, before: int) -> None:
    wallet = customer.wallet
    assert (wallet.balance, wallet.held) == (before, 0)
    assert LedgerEntry.objects.filter(kind="usage").count() == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_translated_answer_cannot_be_continued_or_retrieved(
    relay, alice, claude_channel, fake_anthropic, client, stream
):
    request = {"model": "claude-3-5-haiku-latest", "input": QUESTION}
    if stream:
        with client.responses.stream(**request) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(**request)
    assert first.store is False
    before = alice.wallet.balance
    response = post(relay, alice.secret, {**request, "previous_response_id": first.id})
    error = assert_openai_error(response, 400, param="previous_response_id")
    assert "translated" in error["message"] and "input" in error["message"]
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(first.id)
    assert caught.value.code == "response_not_stored"
    assert "not stored" in caught.value.message
    assert len(fake_anthropic.requests) == 1
    assert_uncharged_since(alice, before)


def test_a_stored_answer_names_the_public_model(relay, alice, channel, fake, client):
    channel.model_map = {MODEL: "gpt-4.1-mini-2025-04-14"}
    channel.save()
    first = client.responses.create(model=MODEL, input=QUESTION)
    assert fake.last_request.body["model"] == "gpt-4.1-mini-2025-04-14"
    assert first.model == MODEL
    assert client.responses.retrieve(first.id).model == MODEL


def test_a_background_response_is_refused_uncharged(relay, alice, channel, fake):
    """
    A background response is made after the POST answers ("queued", no
    usage): nothing would settle what it produces, so it is refused.
    """
    before = alice.wallet.balance
    response = post(
        relay, alice.secret, {"model": MODEL, "input": QUESTION, "background": True}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "background"
    assert not fake.requests
    assert_uncharged(alice, before)


def test_an_upstream_refusing_the_holders_key_is_not_the_clients_401(
    relay, alice, channel, fake, client
):
    """
    The upstream key that holds the answer was revoked upstream: that is the
    channel's trouble (as on POST, where it is a 502), never an
    authentication error about the customer's own key.
    """
    first = client.responses.create(model=MODEL, input=QUESTION)
    fake.scenario(require_key="sk-rotated-upstream")
    response = httpx.get(f"{relay}/responses/{first.id}", headers=auth(alice.secret))
    assert response.status_code not in (401, 403), response.text
    assert_openai_error(response, 502, code="upstream_unavailable")
