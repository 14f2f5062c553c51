"""
`model: "auto"` (relay.auto): the cheapest tier that can serve a request,
by the documented heuristics; then charged, answered and recorded as the
model it chose.
"""

import httpx
import orjson
import pytest

from accounts.auth import KeyIdentity
from accounts.services import api_key_create
from billing.models import ModelPrice
from billing.pricing import UnitPrices
from relay import auto, endpoints, errors
from relay.catalog import Catalog, ModelInfo
from relay.models import AutoTiers, UsageRecord
from tests.factories import channel_info, function_tool
from tests.fakes.upstream import expected_usage

NANO, MINI, FULL = "gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"
# Published prices in nano-USD per token: input, output.
PRICE = {NANO: (100, 400), MINI: (400, 1600), FULL: (2000, 8000)}

PLAIN = "What is the capital of France?"
CODE = "Why does this fail?\n```python\nprint(1/0)\n```"
TRACE = (
    "It crashes:\nTraceback (most recent call last):\n"
    '  File "app.py", line 3, in <module>\n'
    "ZeroDivisionError: division by zero"
)
PROOF = "Prove that the square root of 2 is irrational."
STEPS = "Do these:\n" + "\n".join(f"{n}. task number {n}" for n in range(1, 6))
TOOL = function_tool("get_weather", "Weather in a city", city={"type": "string"})
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": {"type": "object"}},
}


def chat(text: str, **fields) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **fields}


def post(relay: str, secret: str, body: dict, path: str = "/chat/completions"):
    return httpx.post(
        f"{relay}{path}",
        json=body,
        headers={"authorization": f"Bearer {secret}"},
        timeout=10,
    )


def charged_at_its_price(record: UsageRecord, model: str) -> int:
    """Assert `record` was charged exactly at `model`'s prices; return it."""
    input_price, output_price = PRICE[model]
    assert (record.input_price, record.output_price) == (input_price, output_price)
    cost = record.prompt_tokens * input_price + record.completion_tokens * output_price
    assert record.charged == record.cost == cost
    return cost


# -- the heuristics, on crafted requests ---------------------------------------


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (PLAIN, set()),
        ("Tell me about `print` in Python.", set()),
        (CODE, {"code"}),
        (TRACE, {"stack trace"}),
        (
            'Exception in thread "main" java.lang.NullPointerException\n'
            "    at com.example.App.main(App.java:14)",
            {"stack trace"},
        ),
        ("panic: runtime error: index out of range", {"stack trace"}),
        (PROOF, {"reasoning"}),
        ("Solve it step by step, please.", {"reasoning"}),
        ("请一步一步地推导这个公式。", {"reasoning"}),
        (STEPS, {"steps"}),
        ("Two things:\n1. one\n2. two", set()),
        (f"{CODE}\nThink it through step by step.", {"code", "reasoning"}),
    ],
)
def test_it_finds_code_and_reasoning_cues(text, kinds):
    assert auto.cues(text) == kinds


@pytest.mark.parametrize(
    ("body", "level"),
    [
        (chat(PLAIN), 0),
        (chat(PLAIN, tools=[TOOL]), 1),
        (chat(PLAIN, response_format=SCHEMA), 1),
        (chat(PLAIN, response_format={"type": "json_object"}), 0),
        (chat(CODE), 1),
        (chat(PROOF), 1),
        (chat(CODE, tools=[TOOL]), 2),
        (chat(f"{TRACE}\nWalk me through it step by step."), 2),
        (chat(f"{CODE}\n{PROOF}\n{STEPS}", tools=[TOOL]), 2),
    ],
)
def test_complexity_levels(body, level):
    assert auto.complexity(body, endpoints.CHAT_COMPLETIONS) == level


def test_only_the_last_user_message_counts():
    body = {
        "model": "auto",
        "messages": [
            {"role": "user", "content": CODE},
            {"role": "assistant", "content": PROOF},
            {"role": "user", "content": [{"type": "text", "text": PLAIN}]},
        ],
    }
    assert auto.complexity(body, endpoints.CHAT_COMPLETIONS) == 0
    body["messages"][-1]["content"].append({"type": "text", "text": PROOF})
    assert auto.complexity(body, endpoints.CHAT_COMPLETIONS) == 1


def test_responses_and_messages_bodies_are_read_alike():
    schema = {"format": {"type": "json_schema", "name": "x", "schema": {}}}
    assert auto.complexity({"input": PLAIN}, endpoints.RESPONSES) == 0
    assert auto.complexity({"input": PLAIN, "text": schema}, endpoints.RESPONSES) == 1
    items = [{"role": "user", "content": [{"type": "input_text", "text": CODE}]}]
    assert auto.complexity({"input": items}, endpoints.RESPONSES) == 1
    turns = [{"role": "user", "content": [{"type": "text", "text": PROOF}]}]
    claude = {"messages": turns, "tools": [{"name": "Bash", "input_schema": {}}]}
    assert auto.complexity(claude, endpoints.MESSAGES) == 2


# -- choosing, on a catalog built here -----------------------------------------


def model_info(name: str, *, window: int = 128_000, max_output: int = 32_768):
    input_price, output_price = PRICE[name]
    return ModelInfo(
        name=name,
        prices=UnitPrices(
            input=input_price,
            cached_input=input_price,
            output=output_price,
            cache_write=input_price,
            image_input=0,
        ),
        max_output_tokens=max_output,
        context_window=window,
        created=1,
    )


def snapshot(*models: ModelInfo, tiers=(NANO, MINI, FULL)) -> Catalog:
    served = (channel_info(),)
    return Catalog(
        models={model.name: model for model in models},
        channels={model.name: served for model in models},
        auto_tiers=tuple(tiers),
    )


def identity(*allowed: str) -> KeyIdentity:
    return KeyIdentity(
        key_id=1,
        tenant_id=1,
        tenant_active=True,
        allowed_models=frozenset(allowed),
        expires_at=None,
        revoked=False,
    )


ALL = (model_info(NANO), model_info(MINI), model_info(FULL))


@pytest.mark.parametrize(
    ("body", "chosen"),
    [
        (chat(PLAIN), NANO),
        (chat(PLAIN, tools=[TOOL]), MINI),
        (chat(TRACE), MINI),
        (chat(CODE, tools=[TOOL]), FULL),
        (chat(f"{PROOF}\n{STEPS}"), FULL),
    ],
)
def test_it_chooses_each_tier(body, chosen):
    assert (
        auto.choose(identity(), body, endpoints.CHAT_COMPLETIONS, snapshot(*ALL))
        == chosen
    )
    assert body["model"] == chosen


def test_a_tier_whose_window_is_too_small_is_skipped():
    small = snapshot(model_info(NANO, window=50), *ALL[1:])
    long = chat("word " * 100)
    assert auto.choose(identity(), long, endpoints.CHAT_COMPLETIONS, small) == MINI
    # The output asked for counts against the window too.
    short = chat(PLAIN, max_tokens=45)
    assert auto.choose(identity(), short, endpoints.CHAT_COMPLETIONS, small) == MINI
    assert (
        auto.choose(identity(), chat(PLAIN), endpoints.CHAT_COMPLETIONS, small) == NANO
    )


def test_a_tier_that_writes_less_than_asked_is_skipped():
    catalog = snapshot(model_info(NANO, max_output=1000), *ALL[1:])
    for body, endpoint in [
        (chat(PLAIN, max_tokens=2000), endpoints.CHAT_COMPLETIONS),
        (chat(PLAIN, max_completion_tokens=2000), endpoints.CHAT_COMPLETIONS),
        (
            {"model": "auto", "input": PLAIN, "max_output_tokens": 2000},
            endpoints.RESPONSES,
        ),
        (chat(PLAIN, max_tokens=2000), endpoints.MESSAGES),
    ]:
        assert auto.choose(identity(), body, endpoint, catalog) == MINI
    assert (
        auto.choose(
            identity(),
            chat(PLAIN, max_tokens=1000),
            endpoints.CHAT_COMPLETIONS,
            catalog,
        )
        == NANO
    )


def test_on_messages_an_output_no_tier_allows_is_capped_as_for_a_named_model():
    # Claude Code asks 32,000 of every model; the relay caps it per model.
    catalog = snapshot(*(model_info(m.name, max_output=8192) for m in ALL))
    body = chat(PLAIN, max_tokens=32_000)
    assert auto.choose(identity(), body, endpoints.MESSAGES, catalog) == NANO
    with pytest.raises(errors.RelayError) as refused:
        auto.choose(
            identity(),
            chat(PLAIN, max_tokens=32_000),
            endpoints.CHAT_COMPLETIONS,
            catalog,
        )
    assert (refused.value.status, refused.value.code) == (400, "auto_no_model_fits")


def test_the_keys_allowlist_is_respected():
    catalog = snapshot(*ALL)
    body = chat(PLAIN)
    assert (
        auto.choose(identity(MINI, FULL), body, endpoints.CHAT_COMPLETIONS, catalog)
        == MINI
    )
    # Below the level asked, the best tier the key may use.
    hard = chat(CODE, tools=[TOOL])
    assert (
        auto.choose(identity(NANO, MINI), hard, endpoints.CHAT_COMPLETIONS, catalog)
        == MINI
    )
    with pytest.raises(errors.RelayError) as refused:
        auto.choose(
            identity("gpt-4o"), chat(PLAIN), endpoints.CHAT_COMPLETIONS, catalog
        )
    assert (refused.value.status, refused.value.code) == (403, "model_not_allowed")


def test_a_customer_list_replaces_the_tiers_in_its_order():
    catalog = snapshot(*ALL)
    body = chat(PLAIN, models=[MINI, FULL])
    assert auto.choose(identity(), body, endpoints.CHAT_COMPLETIONS, catalog) == MINI
    assert "models" not in body  # never forwarded
    # Two candidates: the middle (rounded down) is the first, the top the last.
    body = chat(PLAIN, tools=[TOOL], models=[MINI, FULL])
    assert auto.choose(identity(), body, endpoints.CHAT_COMPLETIONS, catalog) == MINI
    body = chat(CODE, tools=[TOOL], models=[NANO, FULL])
    assert auto.choose(identity(), body, endpoints.CHAT_COMPLETIONS, catalog) == FULL


@pytest.mark.parametrize(
    "models", [[], "gpt-4.1", [NANO, NANO], ["auto"], [1], [NANO] * 17]
)
def test_a_bad_customer_list_is_refused(models):
    with pytest.raises(errors.RelayError) as refused:
        auto.choose(
            identity(),
            chat(PLAIN, models=models),
            endpoints.CHAT_COMPLETIONS,
            snapshot(*ALL),
        )
    assert (refused.value.status, refused.value.param) == (400, "models")


def test_an_unknown_model_in_the_list_is_skipped_by_name():
    body = chat(PLAIN, models=["gpt-9", MINI])
    assert (
        auto.choose(identity(), body, endpoints.CHAT_COMPLETIONS, snapshot(*ALL))
        == MINI
    )
    with pytest.raises(errors.RelayError) as refused:
        auto.choose(
            identity(),
            chat(PLAIN, models=["gpt-9"]),
            endpoints.CHAT_COMPLETIONS,
            snapshot(*ALL),
        )
    assert (refused.value.status, refused.value.code) == (404, "model_not_found")
    assert "`gpt-9`: not served here" in refused.value.message


def test_auto_is_only_for_the_text_endpoints():
    with pytest.raises(errors.RelayError) as refused:
        auto.choose(
            identity(),
            {"model": "auto", "input": "x"},
            endpoints.EMBEDDINGS,
            snapshot(*ALL),
        )
    assert (refused.value.status, refused.value.code) == (404, "model_not_supported")


# -- through the relay ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields", "chosen"),
    [
        (PLAIN, {}, NANO),
        (PLAIN, {"tools": [TOOL]}, MINI),
        (PLAIN, {"response_format": SCHEMA}, MINI),
        (CODE, {"tools": [TOOL]}, FULL),
        (f"{TRACE}\nExplain it step by step.", {}, FULL),
    ],
)
def test_a_chat_completion_is_served_and_charged_by_the_tier_chosen(
    relay, channel, alice, fake, text, fields, chosen
):
    before = alice.wallet.balance
    body = chat(text, **fields)

    response = post(relay, alice.secret, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == chosen
    assert fake.last_request.body["model"] == chosen
    record = UsageRecord.objects.get()
    assert (record.model, record.routed_from) == (chosen, "auto")
    usage = expected_usage(body["messages"])
    assert (record.prompt_tokens, record.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert before - alice.wallet.balance == charged_at_its_price(record, chosen)


def test_a_stream_names_the_model_chosen_in_every_chunk(relay, channel, alice):
    before = alice.wallet.balance
    body = chat(PLAIN, stream=True, stream_options={"include_usage": True})
    with httpx.stream(
        "POST",
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {alice.secret}"},
        timeout=10,
    ) as streamed:
        assert streamed.status_code == 200
        lines = [line for line in streamed.iter_lines() if line.startswith("data: {")]
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines]
    assert chunks and {chunk["model"] for chunk in chunks} == {NANO}
    record = UsageRecord.objects.get()
    assert (record.model, record.routed_from, record.stream) == (NANO, "auto", True)
    assert chunks[-1]["usage"]["prompt_tokens"] == record.prompt_tokens
    assert before - alice.wallet.balance == charged_at_its_price(record, NANO)


def test_the_candidate_list_is_read_and_not_forwarded(relay, channel, alice, fake):
    response = post(relay, alice.secret, chat(PLAIN, models=[FULL, MINI]))

    assert response.json()["model"] == FULL  # their order, not ours
    assert fake.last_request.body["model"] == FULL
    assert "models" not in fake.last_request.body
    charged_at_its_price(UsageRecord.objects.get(), FULL)


def test_a_named_model_is_not_marked_as_routed(relay, channel, alice):
    post(relay, alice.secret, {**chat(PLAIN), "model": MINI})
    assert UsageRecord.objects.get().routed_from == ""


def test_staff_tiers_are_read_from_the_database(relay, channel, alice):
    AutoTiers.objects.create(pk=AutoTiers.SINGLETON, tiers=[MINI, FULL])

    response = post(relay, alice.secret, chat(PLAIN))

    assert response.json()["model"] == MINI


def test_a_key_allowlist_narrows_the_tiers(relay, channel, alice):
    _, secret = api_key_create(
        tenant=alice.tenant, name="no nano", allowed_models=[MINI, FULL]
    )
    assert post(relay, secret, chat(PLAIN)).json()["model"] == MINI
    _, other = api_key_create(tenant=alice.tenant, name="4o", allowed_models=["gpt-4o"])
    refused = post(relay, other, chat(PLAIN))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"


def test_a_request_no_tier_can_serve_is_refused_clearly(relay, channel, alice):
    ModelPrice.objects.filter(model__in=PRICE).update(context_window=20)
    before = alice.wallet.balance

    response = post(relay, alice.secret, chat("word " * 40))

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("auto_no_model_fits", "model")
    for name in (NANO, MINI, FULL):
        assert f"`{name}`: about" in error["message"]
    assert "20-token context window" in error["message"]
    assert alice.wallet.balance == before
    assert not UsageRecord.objects.exists()


def test_auto_turned_off_is_an_unknown_model(relay, channel, alice):
    AutoTiers.objects.create(pk=AutoTiers.SINGLETON, tiers=[])

    response = post(relay, alice.secret, chat(PLAIN))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    listed = post_models(relay, alice.secret)
    assert "auto" not in listed


def post_models(relay, secret) -> list[str]:
    answer = httpx.get(
        f"{relay}/models", headers={"authorization": f"Bearer {secret}"}, timeout=10
    ).json()
    return [model["id"] for model in answer["data"]]


def test_models_lists_auto_for_a_key_that_may_use_a_tier(relay, channel, alice):
    assert post_models(relay, alice.secret) == ["auto", FULL, MINI, NANO]
    _, nano_only = api_key_create(tenant=alice.tenant, name="n", allowed_models=[NANO])
    assert post_models(relay, nano_only) == ["auto", NANO]
    _, other = api_key_create(tenant=alice.tenant, name="o", allowed_models=["gpt-4o"])
    assert post_models(relay, other) == []


def test_the_responses_api(relay, channel, alice, fake):
    body = {"model": "auto", "input": PLAIN}
    plain = post(relay, alice.secret, body, "/responses")
    assert plain.status_code == 200, plain.text
    assert plain.json()["model"] == NANO
    schema = {"format": {"type": "json_schema", "name": "city", "schema": {}}}
    structured = post(relay, alice.secret, {**body, "text": schema}, "/responses")
    assert structured.json()["model"] == MINI
    records = UsageRecord.objects.order_by("created_at", "pk")
    assert [(r.model, r.routed_from, r.endpoint) for r in records] == [
        (NANO, "auto", "responses"),
        (MINI, "auto", "responses"),
    ]
    for record in records:
        charged_at_its_price(record, record.model)


def test_claude_code_may_ask_for_auto_on_messages(relay, channel, alice):
    body = {
        "model": "auto",
        "max_tokens": 32_000,
        "stream": True,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": PLAIN}]}],
    }
    headers = {"x-api-key": alice.secret, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{relay}/messages?beta=true", json=body, headers=headers, timeout=10
    ) as streamed:
        assert streamed.status_code == 200
        events = [
            orjson.loads(line.removeprefix("data: "))
            for line in streamed.iter_lines()
            if line.startswith("data: {")
        ]
    start = next(event for event in events if event["type"] == "message_start")
    assert start["message"]["model"] == MINI  # tools: the middle tier
    record = UsageRecord.objects.get()
    assert (record.model, record.routed_from, record.endpoint) == (
        MINI,
        "auto",
        "messages",
    )
    charged_at_its_price(record, MINI)

    counted = httpx.post(
        f"{relay}/messages/count_tokens",
        json={k: v for k, v in body.items() if k not in ("max_tokens", "stream")},
        headers=headers,
        timeout=10,
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["input_tokens"] > 0
