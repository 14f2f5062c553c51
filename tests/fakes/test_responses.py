"""The fake upstream's Responses API, driven by the official SDK and httpx."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.upstream import (
    DEFAULT_REPLY,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    FakeUpstream,
    Scenario,
    expected_responses_input_tokens,
    expected_responses_usage,
    split_reply,
)

MODEL = "gpt-5-codex"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# What Codex CLI sends besides the conversation (trimmed): all of it is
# accepted, none of it changes the answer.
CODEX_EXTRAS: dict[str, Any] = {
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "reasoning": {"effort": "medium", "summary": "auto"},
    "text": {"verbosity": "low"},
    "prompt_cache_key": "0199c0de-cafe",
    "client_metadata": {"originator": "codex_cli_rs"},
    "parallel_tool_calls": False,
    "tool_choice": "auto",
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
        {
            "type": "namespace",
            "name": "mcp__files",
            "description": "File tools.",
            "tools": [{"type": "function", "name": "read", "parameters": {}}],
        },
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        {"type": "web_search", "external_web_access": False},
    ],
}


def sdk(fake: FakeUpstream, scenario: str = "default", key: str = "sk-alice"):
    return openai.OpenAI(base_url=fake.url(scenario), api_key=key, max_retries=0)


def auth(key: str = "sk-alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def read_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Decode a Responses stream, checking each block's `event:` line."""
    events = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        name, data = block.split("\n")
        assert data.startswith("data: ")
        event = orjson.loads(data[len("data: ") :])
        assert name == f"event: {event['type']}"
        events.append(event)
    return events


def test_input_tokens_count_instructions_items_and_the_previous_response() -> None:
    body = {
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Use tools wisely."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hi there"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "18 C sunny"},
            {"type": "reasoning", "summary": [], "encrypted_content": "xyz"},
        ],
    }
    expected = 3 + 2 + (3 + 3) + (3 + 2) + (3 + 1) + (3 + 3) + 3
    assert expected_responses_input_tokens(body) == expected
    previous = {"input_tokens": 20, "output_tokens": 7}
    assert expected_responses_input_tokens(body, previous) == expected + 27
    assert expected_responses_input_tokens({"input": "a b c"}) == 3 + 3 + 3


def test_create_answers_a_response_the_sdk_parses(fake: FakeUpstream) -> None:
    response = sdk(fake).responses.create(
        model=MODEL, input="Say hello", instructions="Be brief."
    )

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == MODEL
    assert response.output_text == DEFAULT_REPLY
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    body = {"input": "Say hello", "instructions": "Be brief."}
    assert response.usage.model_dump(exclude_none=True) == expected_responses_usage(
        body
    )
    assert response.usage.input_tokens == 3 + 2 + (3 + 2)
    assert response.usage.output_tokens == len(split_reply(DEFAULT_REPLY))
    assert fake.last_request.api_key == "sk-alice"
    assert fake.last_request.body["instructions"] == "Be brief."


def test_the_stream_is_the_real_event_sequence(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    body = {"model": MODEL, "input": "Hi", "stream": True}

    response = http.post(fake.url() + "/responses", json=body, headers=auth())

    assert response.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in response.text
    events = read_events(response)
    words = split_reply(DEFAULT_REPLY)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(words),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["usage"] is None
    assert [e["delta"] for e in events[4:-4]] == words
    assert events[-4]["text"] == DEFAULT_REPLY
    done = events[-1]["response"]
    assert done["id"] == events[0]["response"]["id"]
    assert done["usage"] == expected_responses_usage(body)
    assert done["output"] == [events[-2]["item"]]


def test_the_sdk_stream_accumulates_to_the_final_response(fake: FakeUpstream) -> None:
    fake.scenario("think", reasoning_tokens=12, cached_tokens=4)
    with sdk(fake, "think").responses.stream(model=MODEL, input="Hello you") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text == DEFAULT_REPLY
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.encrypted_content is None
    usage = final.usage
    assert usage.output_tokens_details.reasoning_tokens == 12
    assert usage.output_tokens == len(split_reply(DEFAULT_REPLY)) + 12
    assert usage.input_tokens_details.cached_tokens == 4
    assert usage.model_dump(exclude_none=True) == expected_responses_usage(
        {"input": "Hello you"}, fake.get_scenario("think")
    )


def test_a_codex_request_is_accepted_with_encrypted_reasoning(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("think", reasoning_tokens=3)
    body = {
        "model": MODEL,
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": "Sandbox: none."},
            {"type": "message", "role": "user", "content": "List the files."},
        ],
        **CODEX_EXTRAS,
    }

    events = read_events(
        http.post(fake.url("think") + "/responses", json=body, headers=auth())
    )

    done = events[-1]
    assert done["type"] == "response.completed"
    reasoning = done["response"]["output"][0]
    assert reasoning["type"] == "reasoning"
    assert base64.b64decode(reasoning["encrypted_content"])
    assert done["response"]["store"] is False
    assert done["response"]["usage"]["input_tokens"] == 3 + 3 + (3 + 2) + (3 + 3)


def test_max_output_tokens_makes_the_response_incomplete(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("long", reply=" ".join(f"w{i}" for i in range(30)))
    body = {"model": MODEL, "input": "Go", "max_output_tokens": 16}

    answer = sdk(fake, "long").responses.create(**body)
    events = read_events(
        http.post(
            fake.url("long") + "/responses",
            json={**body, "stream": True},
            headers=auth(),
        )
    )

    assert answer.status == "incomplete"
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.output[0].status == "incomplete"
    assert answer.usage.output_tokens == 16
    assert len(answer.output_text.split()) == 16
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["usage"]["output_tokens"] == 16
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 16


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": 5, "input": "x"}, "model"),
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": 5}, "input"),
        ({"model": MODEL, "input": ["x"]}, "input[0]"),
        ({"model": MODEL, "input": [{"role": "bot", "content": "x"}]}, "input[0].role"),
        ({"model": MODEL, "input": "x", "stream": "yes"}, "stream"),
        ({"model": MODEL, "input": "x", "max_output_tokens": 15}, "max_output_tokens"),
        (
            {"model": MODEL, "input": "x", "max_output_tokens": "20"},
            "max_output_tokens",
        ),
        ({"model": MODEL, "input": "x", "temperature": "hot"}, "temperature"),
        (
            {
                "model": MODEL,
                "input": "x",
                "tools": [{"type": "function", "function": {}}],
            },
            "tools[0].name",
        ),
    ],
)
def test_invalid_requests_get_400_with_param(
    fake: FakeUpstream, http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    response = http.post(fake.url() + "/responses", json=body, headers=auth())

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_stored_responses_belong_to_the_key_that_made_them(
    fake: FakeUpstream,
) -> None:
    alice, bob = sdk(fake), sdk(fake, key="sk-bob")
    made = alice.responses.create(model=MODEL, input="Remember me")

    assert alice.responses.retrieve(made.id).output_text == DEFAULT_REPLY
    [item] = alice.responses.input_items.list(made.id).data
    assert item.type == "message" and item.role == "user"
    assert item.content[0].text == "Remember me"
    for call in (
        lambda: bob.responses.retrieve(made.id),
        lambda: bob.responses.delete(made.id),
        lambda: bob.responses.input_items.list(made.id),
    ):
        with pytest.raises(openai.NotFoundError) as refused:
            call()
        assert refused.value.body == {
            "message": f"Response with id '{made.id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    alice.responses.delete(made.id)
    assert fake.stored_response(made.id) is None
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)


def test_delete_answers_the_deleted_object(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    made = sdk(fake).responses.create(model=MODEL, input="x")

    deleted = http.delete(f"{fake.url()}/responses/{made.id}", headers=auth())

    assert deleted.json() == {"id": made.id, "object": "response", "deleted": True}


def test_unstored_responses_cannot_be_found(fake: FakeUpstream) -> None:
    alice = sdk(fake)
    made = alice.responses.create(model=MODEL, input="x", store=False)

    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)
    with pytest.raises(openai.BadRequestError) as refused:
        alice.responses.create(model=MODEL, input="y", previous_response_id=made.id)
    assert refused.value.code == "previous_response_not_found"


def test_previous_response_adds_its_tokens_for_the_same_key_only(
    fake: FakeUpstream,
) -> None:
    alice = sdk(fake)
    first = alice.responses.create(model=MODEL, input="My name is Alice")

    second = alice.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id
    )
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(fake, key="sk-bob").responses.create(
            model=MODEL, input="What is her name?", previous_response_id=first.id
        )

    alone = expected_responses_input_tokens({"input": "What is my name?"})
    context = first.usage.input_tokens + first.usage.output_tokens
    assert second.usage.input_tokens == alone + context
    assert second.previous_response_id == first.id
    assert refused.value.status_code == 400
    assert refused.value.body == {
        "message": f"Previous response with id '{first.id}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_a_follow_up_may_carry_no_input(fake: FakeUpstream) -> None:
    alice = sdk(fake)
    first = alice.responses.create(model=MODEL, input="x")

    second = alice.responses.create(model=MODEL, previous_response_id=first.id)

    assert second.usage.input_tokens == 3 + first.usage.total_tokens


def test_background_responses_queue_and_can_be_cancelled(fake: FakeUpstream) -> None:
    alice = sdk(fake)
    queued = alice.responses.create(model=MODEL, input="slow", background=True)
    other = alice.responses.create(model=MODEL, input="slow", background=True)

    cancelled = alice.responses.cancel(queued.id)
    finished = alice.responses.retrieve(other.id)

    assert queued.status == "queued" and queued.background is True
    assert queued.usage is None and queued.output == []
    assert cancelled.status == "cancelled" and cancelled.usage is None
    assert alice.responses.retrieve(queued.id).status == "cancelled"
    assert finished.status == "completed"
    assert finished.output_text == DEFAULT_REPLY
    assert finished.usage.input_tokens == 3 + (3 + 1)
    # Cancelling what is already finished changes nothing.
    assert alice.responses.cancel(other.id).status == "completed"


def test_only_background_responses_can_be_cancelled(fake: FakeUpstream) -> None:
    alice = sdk(fake)
    made = alice.responses.create(model=MODEL, input="x")

    with pytest.raises(openai.BadRequestError) as refused:
        alice.responses.cancel(made.id)
    with pytest.raises(openai.NotFoundError):
        sdk(fake, key="sk-bob").responses.cancel(made.id)

    assert refused.value.message.endswith("Cannot cancel a synchronous response.")


def test_input_items_page_newest_first_by_default(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    items = [{"role": "user", "content": f"turn {i}"} for i in range(5)]
    made = sdk(fake).responses.create(model=MODEL, input=items)
    url = f"{fake.url()}/responses/{made.id}/input_items"

    newest = http.get(url, params={"limit": 2}, headers=auth()).json()
    oldest = http.get(url, params={"order": "asc"}, headers=auth()).json()
    after = http.get(
        url, params={"order": "asc", "after": oldest["data"][1]["id"]}, headers=auth()
    ).json()
    bad = http.get(url, params={"limit": 101}, headers=auth())

    def texts(page: dict[str, Any]) -> list[str]:
        return [item["content"][0]["text"] for item in page["data"]]

    assert texts(newest) == ["turn 4", "turn 3"] and newest["has_more"] is True
    assert newest["first_id"] == newest["data"][0]["id"]
    assert newest["last_id"] == newest["data"][-1]["id"]
    assert texts(oldest) == [f"turn {i}" for i in range(5)]
    assert oldest["has_more"] is False
    assert texts(after) == ["turn 2", "turn 3", "turn 4"]
    assert bad.status_code == 400


def test_azure_responses_routes(fake: FakeUpstream, http: httpx.Client) -> None:
    url = f"{fake.base_url}/openai/responses"
    version = {"api-version": "2025-04-01-preview"}
    key = {"api-key": "azure-key"}
    body = {"model": "my-deployment", "input": "Hello"}

    made = http.post(url, params=version, json=body, headers=key)
    no_version = http.post(url, json=body, headers=key)
    no_key = http.post(url, params=version, json=body)
    v1 = http.post(f"{fake.base_url}/openai/v1/responses", json=body, headers=key)
    response_id = made.json()["id"]
    fetched = http.get(f"{url}/{response_id}", params=version, headers=key)
    stranger = http.get(
        f"{url}/{response_id}", params=version, headers={"api-key": "other"}
    )
    listed = http.get(f"{url}/{response_id}/input_items", params=version, headers=key)
    cancel = http.post(f"{url}/{response_id}/cancel", params=version, headers=key)
    deleted = http.delete(f"{url}/{response_id}", params=version, headers=key)

    assert made.status_code == 200
    assert made.json()["model"] == "my-deployment"
    assert no_version.status_code == 404
    assert no_key.status_code == 401
    assert v1.status_code == 200
    assert fetched.json()["id"] == response_id
    assert stranger.status_code == 404
    assert listed.json()["data"][0]["content"][0]["text"] == "Hello"
    assert cancel.status_code == 400
    assert deleted.json()["deleted"] is True
    assert fake.last_request.api_key == "azure-key"


def test_failure_knobs_apply_to_responses(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("limited", status=429)
    fake.scenario("auth", require_key="sk-good")
    body = {"model": MODEL, "input": "x"}

    limited = http.post(fake.url("limited") + "/responses", json=body, headers=auth())
    wrong = http.post(fake.url("auth") + "/responses", json=body, headers=auth())
    right = http.post(
        fake.url("auth") + "/responses", json=body, headers=auth("sk-good")
    )

    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert wrong.status_code == 401
    assert right.status_code == 200


# -- tool calls --------------------------------------------------------------


def test_call_tools_answers_a_function_call(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True)

    answer = sdk(fake, "tools").responses.create(
        model=MODEL, input="Weather in Paris?", tools=[WEATHER]
    )

    [call] = answer.output
    assert call.type == "function_call" and call.status == "completed"
    assert call.name == "get_weather"
    assert call.arguments == TOOL_ARGUMENTS
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert answer.usage.output_tokens == TOOL_CALL_TOKENS
    body = {"input": "Weather in Paris?", "tools": [WEATHER]}
    assert answer.usage.model_dump(exclude_none=True) == expected_responses_usage(
        body, fake.get_scenario("tools")
    )


def test_a_streamed_function_call_and_its_round_trip(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("tools", call_tools=True, reasoning_tokens=2)
    body = {"model": MODEL, "input": "Weather?", "tools": [WEATHER], "stream": True}

    events = read_events(
        http.post(fake.url("tools") + "/responses", json=body, headers=auth())
    )
    kinds = [e["type"] for e in events]
    deltas = [e for e in events if e["type"].endswith("arguments.delta")]
    call = events[-1]["response"]["output"][-1]
    answered = [
        {"role": "user", "content": "Weather?"},
        {k: call[k] for k in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "Sunny"},
    ]
    after = sdk(fake, "tools").responses.create(
        model=MODEL, input=answered, tools=[WEATHER]
    )

    added = events[kinds.index("response.output_item.added", 3)]["item"]
    assert added["type"] == "function_call" and added["arguments"] == ""
    assert added["name"] == "get_weather" and added["call_id"] == call["call_id"]
    assert len(deltas) >= 2
    assert "".join(d["delta"] for d in deltas) == TOOL_ARGUMENTS
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-3]["arguments"] == TOOL_ARGUMENTS
    assert events[-1]["response"]["usage"]["output_tokens"] == TOOL_CALL_TOKENS + 2
    assert after.output_text == DEFAULT_REPLY
    assert after.output[-1].type == "message"


def test_the_sdk_stream_accumulates_a_function_call(fake: FakeUpstream) -> None:
    fake.scenario("tools", call_tools=True)
    client = sdk(fake, "tools")

    with client.responses.stream(model=MODEL, input="Hi", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    follow_up = client.responses.create(
        model=MODEL,
        previous_response_id=final.id,
        input=[
            {
                "type": "function_call_output",
                "call_id": final.output[0].call_id,
                "output": "Sunny",
            }
        ],
        tools=[WEATHER],
    )

    assert final.output[0].arguments == TOOL_ARGUMENTS
    assert follow_up.output_text == DEFAULT_REPLY
    previous = final.usage.input_tokens + final.usage.output_tokens
    assert follow_up.usage.input_tokens == 3 + (3 + 1) + previous


def test_tool_call_knob_names_the_call_and_namespace(fake: FakeUpstream) -> None:
    arguments = {"command": ["echo", "hi"]}
    fake.scenario(
        "shell",
        tool_call={"name": "read", "arguments": arguments, "namespace": "mcp__files"},
    )
    codex = {k: v for k, v in CODEX_EXTRAS.items() if k != "stream"}
    metadata = {"client_metadata": codex.pop("client_metadata")}

    answer = sdk(fake, "shell").responses.create(
        model=MODEL, input="Go", extra_body=metadata, **codex
    )
    declined = sdk(fake, "shell").responses.create(
        model=MODEL, input="Go", tools=[WEATHER], tool_choice="none"
    )

    [call] = [item for item in answer.output if item.type == "function_call"]
    assert call.name == "read" and call.namespace == "mcp__files"
    assert orjson.loads(call.arguments) == arguments
    assert declined.output_text == DEFAULT_REPLY


def test_call_tools_finds_namespaced_functions_and_named_choices(
    fake: FakeUpstream,
) -> None:
    fake.scenario("tools", call_tools=True)
    client = sdk(fake, "tools")
    namespaced = CODEX_EXTRAS["tools"][1]

    inner = client.responses.create(model=MODEL, input="x", tools=[namespaced])
    chosen = client.responses.create(
        model=MODEL,
        input="x",
        tools=[WEATHER, {**WEATHER, "name": "get_time"}],
        tool_choice={"type": "function", "name": "get_time"},
    )
    toolless = client.responses.create(model=MODEL, input="x")

    assert (inner.output[0].name, inner.output[0].namespace) == ("read", "mcp__files")
    assert chosen.output[0].name == "get_time"
    assert toolless.output_text == DEFAULT_REPLY


def test_default_scenario_never_calls_tools(fake: FakeUpstream) -> None:
    answer = sdk(fake).responses.create(model=MODEL, input="x", tools=[WEATHER])

    assert answer.output_text == DEFAULT_REPLY
    assert Scenario().tool_call is None and not Scenario().call_tools


# -- stream knobs --------------------------------------------------------------


def test_drop_after_chunks_cuts_a_responses_stream(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("crash", drop_after_chunks=2)
    body = {"model": MODEL, "input": "Hi", "stream": True}
    received: list[bytes] = []

    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream(
            "POST", fake.url("crash") + "/responses", json=body, headers=auth()
        ) as response,
    ):
        received.extend(response.iter_raw())
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(fake.url("crash") + "/responses", json={**body, "stream": False})

    text = b"".join(received).decode()
    assert text.count("event: response.output_text.delta") == 2
    assert "response.completed" not in text
    [created] = [line for line in text.split("\n") if '"response.created"' in line]
    response_id = orjson.loads(created[len("data: ") :])["response"]["id"]
    assert fake.stored_response(response_id) is None


def test_error_after_chunks_fails_the_response_mid_stream(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("flaky", error_after_chunks=3)
    body = {"model": MODEL, "input": "Hi", "stream": True}

    response = http.post(fake.url("flaky") + "/responses", json=body, headers=auth())

    events = read_events(response)
    assert response.status_code == 200
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-2:] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    error, failed = events[-2], events[-1]["response"]
    assert error["code"] == "server_error" and error["message"]
    assert error["param"] is None
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert failed["output"] == [] and failed["usage"] is None
    assert fake.stored_response(failed["id"])["status"] == "failed"


def test_the_sdk_reads_a_failed_stream_as_failed(fake: FakeUpstream) -> None:
    fake.scenario("flaky", error_after_chunks=1)

    with sdk(fake, "flaky").responses.stream(model=MODEL, input="Hi") as stream:
        kinds = [event.type for event in stream]
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()

    assert kinds[-2:] == ["error", "response.failed"]


def test_split_utf8_cuts_a_character_across_writes(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    fake.scenario("utf8", reply="Café 日本 ok", split_utf8=True)
    body = {"model": MODEL, "input": "Hi", "stream": True}

    with http.stream(
        "POST", fake.url("utf8") + "/responses", json=body, headers=auth()
    ) as response:
        pieces = list(response.iter_raw())

    def whole(piece: bytes) -> bool:
        try:
            piece.decode()
        except UnicodeDecodeError:
            return False
        return True

    assert not all(map(whole, pieces))
    events = read_events(httpx.Response(200, content=b"".join(pieces)))
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Café 日本 ok"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Café ", "日本 ", "ok"]
