"""
The pieces behind the cost in every answer, without a live relay: what a
settlement returns, how a bill is written into an answer, and what a
request's attribution keeps.
"""

import json
from decimal import Decimal

import orjson

from billing.models import Hold, Wallet
from billing.pricing import TokenUsage
from billing.settlement import usage_settle
from relay.answers import billed_answer
from relay.formats.usage import Bill, bill_fields, with_bill
from relay.metering import (
    END_USER_MAX,
    TAG_VALUE_MAX,
    TAGS_MAX,
    attribution,
)
from relay.models import UsageRecord
from relay.providers.anthropic import MessagesPassthrough
from relay.streaming import OpenAIStream, sse


def record(customer, request_id: str, cost: int) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        tenant=customer.tenant,
        api_key=customer.tenant.api_keys.get(),
        model="gpt-4.1-mini",
        status=UsageRecord.Status.OK,
        http_status=200,
        usage_source=UsageRecord.Source.REPORTED,
        cost=cost,
    )


# -- the settlement returns the balance after it --------------------------------


def test_a_settlement_returns_the_balance_after_its_charge(alice):
    start = alice.wallet.balance
    Hold.objects.create(
        tenant=alice.tenant,
        request_id="req_a",
        amount=5_000,
        expires_at="2999-01-01T00:00Z",
    )
    Wallet.objects.filter(tenant=alice.tenant).update(held=5_000)
    settled = usage_settle(record=record(alice, "req_a", 1_234), description="a")
    assert settled.charged == 1_234
    assert settled.balance == alice.wallet.balance == start - 1_234
    assert alice.wallet.held == 0


def test_a_free_request_returns_the_balance_unchanged(alice):
    start = alice.wallet.balance
    settled = usage_settle(record=record(alice, "req_free", 0), description="free")
    assert (settled.charged, settled.balance) == (0, start)


def test_a_capped_charge_returns_the_balance_at_the_cap(alice, settings):
    settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD = "0"
    alice.set_balance("0.000001")
    settled = usage_settle(record=record(alice, "req_capped", 3_000), description="c")
    assert (settled.charged, settled.uncollected, settled.balance) == (1_000, 2_000, 0)


# -- bills in answers --------------------------------------------------------------


def test_a_whole_answer_tells_cost_balance_and_a_capped_charge():
    answer = {"id": "x", "usage": {"prompt_tokens": 3}}
    response = billed_answer(
        orjson.dumps(answer), answer, Bill(cost=12_300, charged=10_000, balance=-2_300)
    )
    assert response["x-switchboard-cost"] == "0.000012300"
    assert response["x-switchboard-charged"] == "0.000010000"
    assert response["x-switchboard-balance"] == "-0.000002300"
    usage = json.loads(response.content, parse_float=Decimal)["usage"]
    assert usage == {
        "prompt_tokens": 3,
        "cost": Decimal("0.000012300"),
        "charged": Decimal("0.000010000"),
    }


def test_a_journaled_settlement_tells_the_cost_alone():
    answer = {"usage": None}
    response = billed_answer(orjson.dumps(answer), answer, Bill(cost=7))
    assert response["x-switchboard-cost"] == "0.000000007"
    assert "x-switchboard-balance" not in response
    assert "x-switchboard-charged" not in response
    assert orjson.loads(response.content)["usage"] == {"cost": 7e-9}


def test_a_bill_is_exact_whatever_its_size():
    for amount in (0, 1, 999_999_999, 10**9, 123_456_789_012_345_678):
        text = orjson.dumps(bill_fields(Bill(cost=amount)))
        cost = json.loads(text, parse_float=Decimal)["cost"]
        assert cost * 10**9 == amount
        assert text.decode().count(".") == 1 and len(text.split(b".")[1]) == 10


def test_with_bill_leaves_the_usage_it_was_given_alone():
    usage = {"prompt_tokens": 1}
    billed = with_bill(usage, Bill(cost=5, charged=5, balance=100), stream=True)
    assert usage == {"prompt_tokens": 1}
    assert set(billed) == {"prompt_tokens", "cost", "balance"}
    assert with_bill(usage, None) is usage


def chunk(**fields) -> bytes:
    return sse({"id": "c1", "object": "chat.completion.chunk", **fields})


def test_the_usage_chunk_waits_for_the_bill():
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    stream = OpenAIStream(forward_usage=True)
    out = stream.feed(
        chunk(choices=[{"index": 0, "delta": {"content": "Hi"}}])
        + chunk(choices=[], usage=usage)
        + b"data: [DONE]\n\n"
    )
    assert b"prompt_tokens" not in out
    closing = stream.close(stream.usage, Bill(cost=1_000, charged=1_000, balance=9))
    final, done = closing.split(b"\n\n", 1)
    assert done == b"data: [DONE]\n\n"
    assert json.loads(final[6:], parse_float=Decimal)["usage"] == {
        **usage,
        "cost": Decimal("0.000001000"),
        "balance": Decimal("0.000000009"),
    }


def test_a_usage_chunk_that_is_not_the_last_is_sent_on():
    usage = {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    stream = OpenAIStream(forward_usage=True)
    first = stream.feed(chunk(choices=[], usage=usage))
    assert first == b""
    later = stream.feed(chunk(choices=[{"index": 0, "delta": {"content": "!"}}]))
    assert later.startswith(chunk(choices=[], usage=usage))


def test_a_stream_that_reported_no_usage_ends_with_what_was_charged():
    stream = OpenAIStream(forward_usage=True, model="public")
    stream.feed(
        chunk(model="upstream", choices=[{"index": 0, "delta": {"content": "Hi"}}])
        + b"data: [DONE]\n\n"
    )
    closing = stream.close(TokenUsage(prompt=5, completion=1), Bill(cost=3))
    final = orjson.loads(closing.split(b"\n\n")[0][6:])
    assert (final["id"], final["model"], final["choices"]) == ("c1", "public", [])
    assert final["usage"]["total_tokens"] == 6
    assert final["usage"]["cost"] == 3e-9


def test_a_messages_stream_holds_its_delta_for_the_bill():
    stream = MessagesPassthrough()
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 7},
    }
    out = stream.feed(
        sse(
            {"type": "message_start", "message": {"usage": {"input_tokens": 3}}},
            "message_start",
        )
        + sse(delta, "message_delta")
        + sse({"type": "message_stop"}, "message_stop")
    )
    assert b"message_delta" not in out and stream.done
    closing = stream.close(stream.usage, Bill(cost=31_000, balance=1))
    assert closing.endswith(sse({"type": "message_stop"}, "message_stop"))
    event = closing.split(b"\n\n")[0]
    assert event.startswith(b"event: message_delta\n")
    sent = json.loads(event.split(b"data: ", 1)[1], parse_float=Decimal)
    assert sent["usage"] == {
        "output_tokens": 7,
        "cost": Decimal("0.000031000"),
        "balance": Decimal("0.000000001"),
    }


# -- attribution -------------------------------------------------------------------


def test_openai_user_and_metadata_attribute_a_request():
    payload = {"user": "u1", "metadata": {"team": "search", "tier": "gold"}}
    assert attribution(payload, "chat.completions") == (
        "u1",
        {"team": "search", "tier": "gold"},
    )


def test_the_responses_safety_identifier_stands_for_user():
    assert attribution({"safety_identifier": "h1"}, "responses") == ("h1", {})
    assert attribution({"user": "u", "safety_identifier": "h"}, "responses")[0] == "u"


def test_anthropics_user_id_is_the_end_user_and_not_a_tag():
    payload = {"metadata": {"user_id": "user_1"}, "user": "ignored"}
    assert attribution(payload, "messages") == ("user_1", {})


def test_attribution_is_bounded_and_keeps_only_text():
    metadata = {f"k{n}": f"v{n}" for n in range(TAGS_MAX + 4)}
    metadata = {"n": 3, "x" * 65: "too long a key", "long": "v" * 600, **metadata}
    end_user, tags = attribution(
        {"user": "u" * (END_USER_MAX + 10), "metadata": metadata}, "chat.completions"
    )
    assert end_user == "u" * END_USER_MAX
    assert len(tags) == TAGS_MAX
    assert "n" not in tags and "x" * 65 not in tags
    assert tags["long"] == "v" * TAG_VALUE_MAX


def test_what_is_not_attribution_is_ignored():
    assert attribution({"user": 5, "metadata": ["a"]}, "chat.completions") == ("", {})
    assert attribution({}, "embeddings") == ("", {})
