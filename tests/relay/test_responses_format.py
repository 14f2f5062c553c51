"""
The Responses API over chat completions (to_chat, from_chat, StreamFromChat)
and the native pass-through, checked against the openai SDK's own types and
its `responses.stream()` accumulator, fed from a loopback server.
"""

import copy

import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from billing.pricing import TokenUsage
from relay.errors import RelayError
from relay.formats.responses import (
    NAME_LIMIT,
    ResponsesPassthrough,
    StreamFromChat,
    broken_event,
    from_chat,
    response_from_upstream,
    to_chat,
)
from relay.streaming import SSEBuffer, event_data, sse
from tests import factories
from tests.servers import ThreadedServer

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)

SHELL = {
    "type": "function",
    "name": "shell",
    "description": "Run a command.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        "required": ["command"],
        "additionalProperties": False,
    },
}
ISSUE_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}}
GITHUB = {
    "type": "namespace",
    "name": "mcp__github__",
    "description": "GitHub tools.",
    "tools": [
        {"type": "function", "name": "create_issue", "parameters": ISSUE_SCHEMA},
        {"type": "custom", "name": "comment", "description": "Post a comment."},
    ],
}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"},
}
TOOLS = [SHELL, GITHUB, APPLY_PATCH, {"type": "web_search"}]
# What Codex CLI sends besides the conversation (see design.md).
CODEX = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
    "tools": TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conversation-1",
}
USAGE = TokenUsage(prompt=20, cached=8, completion=7, reasoning=2)


def refused(payload: dict, *, reasoning: bool = False) -> RelayError:
    with pytest.raises(RelayError) as caught:
        to_chat(payload, reasoning=reasoning)
    assert caught.value.status == 400
    assert caught.value.body()["error"]["type"] == "invalid_request_error"
    return caught.value


def chat_tool(name: str, description: str, parameters: dict, **extra) -> dict:
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": {**function, **extra}}


def call_item(kind: str, call_id: str, name: str, **fields) -> dict:
    """A Responses input item calling a tool: `kind` is "function_call" or
    "custom_tool_call"."""
    return {"type": kind, "call_id": call_id, "name": name, **fields}


FREEFORM = "Pass the whole input, unchanged, as the `input` string."
INPUT_SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input."}},
    "required": ["input"],
    "additionalProperties": False,
}


# -- to_chat: input ------------------------------------------------------


def test_a_string_input_is_one_user_message_after_the_instructions():
    chat = to_chat(
        {"model": "m", "input": "Hi", "instructions": "Be brief.", "stream": True},
        reasoning=False,
    )
    assert chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
    }


def test_it_translates_messages_of_every_role_and_part():
    chat = to_chat(
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "Use the tools."},
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "Be kind."}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look:"},
                        {
                            "type": "input_image",
                            "image_url": "https://example.com/cat.png",
                            "detail": "high",
                        },
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,iVBO",
                            "detail": "original",
                        },
                        {
                            "type": "input_file",
                            "filename": "a.pdf",
                            "file_data": "data:application/pdf;base64,JVBE",
                        },
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "UklG", "format": "wav"},
                        },
                    ],
                },
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "phase": "final_answer",
                    "content": [
                        {"type": "output_text", "text": "I can't", "annotations": []},
                        {"type": "refusal", "refusal": " do that."},
                    ],
                },
            ],
        },
        reasoning=False,
    )
    assert chat["messages"] == [
        {"role": "system", "content": "Use the tools."},
        {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "https://example.com/cat.png",
                        "detail": "high",
                    },
                },
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64,iVBO",
                        "detail": "high",
                    },
                },
                {
                    "type": "file",
                    "file": {
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                },
                {
                    "type": "input_audio",
                    "input_audio": {"data": "UklG", "format": "wav"},
                },
            ],
        },
        {"role": "assistant", "content": "I can't do that."},
    ]


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages():
    chat = to_chat(
        {
            "model": "m",
            "tools": TOOLS,
            "input": [
                {"role": "user", "content": "List files and file an issue."},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "encrypted_content": "x",
                },
                {"role": "assistant", "content": "Checking."},
                call_item(
                    "function_call", "c1", "shell", arguments='{"command":["ls"]}'
                ),
                call_item(
                    "function_call",
                    "c2",
                    "create_issue",
                    namespace="mcp__github__",
                    arguments='{"title":"x"}',
                ),
                {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [
                        {"type": "input_text", "text": "Created"},
                        {"type": "input_text", "text": "#7"},
                    ],
                },
                {"role": "user", "content": "Thanks."},
            ],
        },
        reasoning=False,
    )
    assert chat["messages"] == [
        {"role": "user", "content": "List files and file an issue."},
        factories.assistant_calls(
            "Checking.",
            factories.tool_call("c1", "shell", '{"command":["ls"]}'),
            factories.tool_call("c2", "mcp__github__create_issue", '{"title":"x"}'),
        ),
        factories.tool_message("c1", "a.txt"),
        factories.tool_message("c2", "Created\n#7"),
        {"role": "user", "content": "Thanks."},
    ]


def test_custom_tool_calls_become_calls_of_their_input_function():
    chat = to_chat(
        {
            "model": "m",
            "tools": TOOLS,
            "input": [
                {"role": "user", "content": "Fix it."},
                call_item(
                    "custom_tool_call", "c1", "apply_patch", input="*** Begin Patch\n"
                ),
                call_item(
                    "custom_tool_call",
                    "c2",
                    "comment",
                    namespace="mcp__github__",
                    input="LGTM",
                ),
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done!"},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"},
            ],
        },
        reasoning=False,
    )
    assert chat["messages"][1:] == [
        factories.assistant_calls(
            None,
            factories.tool_call("c1", "apply_patch", '{"input":"*** Begin Patch\\n"}'),
            factories.tool_call("c2", "mcp__github__comment", '{"input":"LGTM"}'),
        ),
        factories.tool_message("c1", "Done!"),
        factories.tool_message("c2", "ok"),
    ]


def test_images_a_tool_returns_follow_the_tool_results():
    call = {"type": "function_call", "name": "shell", "arguments": "{}"}
    chat = to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "Screenshot both."},
                {**call, "call_id": "c1"},
                {**call, "call_id": "c2"},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [
                        {"type": "input_text", "text": "shot"},
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,AA",
                        },
                    ],
                },
                {"type": "function_call_output", "call_id": "c2", "output": "none"},
                {"role": "user", "content": "Next."},
            ],
        },
        reasoning=False,
    )
    roles = [message["role"] for message in chat["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "user", "user"]
    assert chat["messages"][2]["content"] == "shot"
    assert chat["messages"][4]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    ]


def test_it_drops_provider_state_and_hosted_tool_records():
    chat = to_chat(
        {
            "model": "m",
            "input": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "encrypted_content": "e",
                },
                {"type": "compaction", "encrypted_content": "e"},
                {
                    "type": "web_search_call",
                    "id": "ws_1",
                    "status": "completed",
                    "action": {"type": "search", "query": "q"},
                },
                {
                    "type": "local_shell_call",
                    "id": "ls_1",
                    "call_id": "c9",
                    "status": "completed",
                    "action": {"type": "exec", "command": ["ls"], "env": {}},
                },
                {"role": "user", "content": "Hi"},
            ],
        },
        reasoning=False,
    )
    assert chat["messages"] == [{"role": "user", "content": "Hi"}]


def user_parts(*parts) -> dict:
    return {"model": "m", "input": [{"role": "user", "content": list(parts)}]}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m", "input": 42}, "input"),
        ({"model": "m", "input": {"role": "user", "content": "Hi"}}, "input"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        (
            {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0]",
        ),
        (
            user_parts({"type": "input_image", "file_id": "file-1", "detail": "auto"}),
            "input[0].content[0]",
        ),
        (
            user_parts({"type": "input_file", "file_id": "file-1"}),
            "input[0].content[0]",
        ),
        (
            user_parts({"type": "input_file", "file_url": "https://example.com/a.pdf"}),
            "input[0].content[0]",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "developer",
                        "content": [
                            {"type": "input_image", "image_url": "https://x/y"}
                        ],
                    }
                ],
            },
            "input[0].content",
        ),
        (
            {"model": "m", "input": [{"role": "robot", "content": "Hi"}]},
            "input[0].role",
        ),
        ({"model": "m", "input": [{"type": "carrier_pigeon"}]}, "input[0]"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
            "input[0]",
        ),
        ({"model": "m", "input": "Hi", "previous_response_id": "resp_1"}, None),
        ({"model": "m", "input": "Hi", "conversation": "conv_1"}, None),
        ({"model": "m", "input": "Hi", "prompt": {"id": "pmpt_1"}}, None),
        ({"model": "m", "input": "Hi", "instructions": ["x"]}, "instructions"),
        ({"model": "m", "input": "Hi", "tools": {"type": "function"}}, "tools"),
    ],
)
def test_it_refuses_what_it_cannot_express(payload, param):
    error = refused(payload)
    stateful = {"previous_response_id", "conversation", "prompt"} & payload.keys()
    assert error.param == (param or stateful.pop())


# -- to_chat: tools and settings -----------------------------------------


def test_tools_become_chat_functions_and_hosted_tools_are_dropped():
    chat = to_chat(
        {
            "model": "m",
            "input": "Hi",
            "tools": [
                *TOOLS,
                {"type": "local_shell"},
                {"type": "file_search", "vector_store_ids": ["vs_1"]},
                {"type": "code_interpreter", "container": {"type": "auto"}},
                {"type": "image_generation"},
                {"type": "mcp", "server_label": "docs"},
            ],
        },
        reasoning=False,
    )
    assert chat["tools"] == [
        chat_tool("shell", "Run a command.", SHELL["parameters"], strict=False),
        chat_tool("mcp__github__create_issue", "GitHub tools.", ISSUE_SCHEMA),
        chat_tool(
            "mcp__github__comment", f"Post a comment.\n\n{FREEFORM}", INPUT_SCHEMA
        ),
        chat_tool(
            "apply_patch",
            f"Edit files.\n\n{FREEFORM} It must follow this lark grammar:\n"
            "start: patch",
            INPUT_SCHEMA,
        ),
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (
            {"type": "function", "name": "shell"},
            {"type": "function", "function": {"name": "shell"}},
        ),
        (
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "function": {"name": "apply_patch"}},
        ),
        (
            {"type": "function", "name": "create_issue", "namespace": "mcp__github__"},
            {"type": "function", "function": {"name": "mcp__github__create_issue"}},
        ),
        ({"type": "web_search_preview"}, "auto"),
    ],
)
def test_tool_choice_becomes_the_closest_chat_choice(choice, expected):
    chat = to_chat(
        {"model": "m", "input": "Hi", "tools": TOOLS, "tool_choice": choice},
        reasoning=False,
    )
    assert chat["tool_choice"] == expected


def test_allowed_tools_offers_only_the_allowed_ones():
    chat = to_chat(
        {
            "model": "m",
            "input": "Hi",
            "tools": TOOLS,
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [
                    {"type": "function", "name": "shell"},
                    {"type": "custom", "name": "apply_patch"},
                    {"type": "web_search"},
                ],
            },
        },
        reasoning=False,
    )
    assert [tool["function"]["name"] for tool in chat["tools"]] == [
        "shell",
        "apply_patch",
    ]
    assert chat["tool_choice"] == "required"


def test_parallel_tool_calls_and_tool_choice_need_tools_left():
    payload = {"model": "m", "input": "Hi", "tool_choice": "auto"}
    payload["parallel_tool_calls"] = False
    with_tools = to_chat({**payload, "tools": [SHELL]}, reasoning=False)
    assert with_tools["parallel_tool_calls"] is False
    assert with_tools["tool_choice"] == "auto"
    hosted_only = to_chat(
        {**payload, "tools": [{"type": "web_search"}]}, reasoning=False
    )
    assert {"tools", "tool_choice", "parallel_tool_calls"}.isdisjoint(hosted_only)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            {
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": {"type": "object"},
                    "strict": True,
                },
                "verbosity": "low",
            },
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object"},
                    "strict": True,
                },
            },
        ),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
        ({"format": {"type": "text"}}, None),
        ({"verbosity": "high"}, None),
    ],
)
def test_text_format_becomes_response_format(text, expected):
    chat = to_chat({"model": "m", "input": "Hi", "text": text}, reasoning=False)
    assert chat.get("response_format") == expected


@pytest.mark.parametrize(
    ("reasoning", "effort", "expected"),
    [
        (True, "minimal", "low"),
        (True, "low", "low"),
        (True, "medium", "medium"),
        (True, "high", "high"),
        (True, None, None),
        (False, "high", None),
    ],
)
def test_reasoning_effort_only_for_reasoning_models(reasoning, effort, expected):
    payload = {"model": "m", "input": "Hi", "reasoning": {"effort": effort}}
    chat = to_chat(payload, reasoning=reasoning)
    assert chat.get("reasoning_effort") == expected


def test_limits_sampling_and_user_carry_over():
    payload = {"model": "m", "input": "Hi", "max_output_tokens": 300}
    payload.update(temperature=0.2, top_p=0.9, user="u-1", safety_identifier="s-1")
    chat = to_chat(payload, reasoning=False)
    assert chat["max_completion_tokens"] == 300
    assert (chat["temperature"], chat["top_p"], chat["user"]) == (0.2, 0.9, "s-1")
    del payload["safety_identifier"]
    assert to_chat(payload, reasoning=False)["user"] == "u-1"


def test_the_chat_payload_never_carries_responses_only_fields():
    payload = {
        **CODEX,
        "client_metadata": {"x": "y"},
        "metadata": {"k": "v"},
        "truncation": "auto",
        "service_tier": "auto",
        "background": False,
        "stream_options": {"include_obfuscation": False},
        "text": {"verbosity": "low"},
        "max_tool_calls": 3,
        "top_logprobs": 2,
        "prompt_cache_retention": "24h",
    }
    chat = to_chat(payload, reasoning=True)
    assert set(chat) == {
        "model",
        "messages",
        "stream",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
    }
    assert chat["messages"][0] == {"role": "system", "content": "You are Codex."}


# -- tool names ----------------------------------------------------------


def calling(*names: str, content=None, finish="tool_calls") -> dict:
    calls = [
        factories.tool_call(f"call_{i}", name, '{"input":"x"}')
        for i, name in enumerate(names)
    ]
    message = {"role": "assistant", "content": content, "tool_calls": calls}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def test_flat_names_are_unique_short_and_map_back_to_their_tools():
    long_namespace, long_name = "n" * 40, "f" * 40

    def function(name):
        return {"type": "function", "name": name}

    request = {
        "model": "m",
        "input": "Hi",
        "tools": [
            {
                "type": "namespace",
                "name": "a",
                "description": "",
                "tools": [function("b")],
            },
            {
                "type": "namespace",
                "name": "a_",
                "description": "",
                "tools": [function("_b")],
            },
            function("a__b"),
            {
                "type": "namespace",
                "name": long_namespace,
                "description": "",
                "tools": [function(long_name)],
            },
        ],
    }
    names = [
        tool["function"]["name"] for tool in to_chat(request, reasoning=False)["tools"]
    ]
    assert names[:3] == ["a__b_2", "a__b_3", "a__b"]
    assert len(set(names)) == 4
    assert all(len(name) <= NAME_LIMIT for name in names)
    assert names[3].startswith(long_namespace) and len(names[3]) == NAME_LIMIT

    response = from_chat(
        calling(*names), USAGE, request=request, answer_id="resp_1", model="m"
    )
    origins = [(item.get("namespace"), item["name"]) for item in response["output"]]
    assert origins == [
        ("a", "b"),
        ("a_", "_b"),
        (None, "a__b"),
        (long_namespace, long_name),
    ]


def test_namespace_and_custom_tools_round_trip():
    chat = to_chat(CODEX, reasoning=True)
    offered = {tool["function"]["name"] for tool in chat["tools"]}
    assert {"mcp__github__create_issue", "apply_patch"} <= offered
    completion = calling("mcp__github__create_issue", "apply_patch", "shell")
    completion["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"] = (
        '{"input":"*** Begin Patch\\n*** End Patch"}'
    )
    response = from_chat(completion, USAGE, request=CODEX, answer_id="r", model="m")
    issue, patch, shell = response["output"]
    assert (issue["type"], issue["namespace"], issue["name"]) == (
        "function_call",
        "mcp__github__",
        "create_issue",
    )
    assert (patch["type"], patch["name"], patch["input"]) == (
        "custom_tool_call",
        "apply_patch",
        "*** Begin Patch\n*** End Patch",
    )
    assert "namespace" not in shell and shell["name"] == "shell"

    # The next turn sends the calls back with their outputs.
    outputs = [
        {"type": "function_call_output", "call_id": "call_0", "output": "#7"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
        {"type": "function_call_output", "call_id": "call_2", "output": "ok"},
    ]
    follow_up = {**CODEX, "input": CODEX["input"] + response["output"] + outputs}
    messages = to_chat(follow_up, reasoning=True)["messages"]
    assert (
        messages[2]["tool_calls"] == completion["choices"][0]["message"]["tool_calls"]
    )
    assert [message["role"] for message in messages[3:]] == ["tool", "tool", "tool"]


# -- from_chat -----------------------------------------------------------


def completion(message: dict, finish: str = "stop", usage: dict | None = None) -> dict:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
            }
        ],
    }
    if usage:
        body["usage"] = usage
    return body


REQUEST = {
    **CODEX,
    "temperature": 0.5,
    "top_p": 0.8,
    "max_output_tokens": 500,
    "metadata": {"k": "v"},
    "text": {"format": {"type": "text"}, "verbosity": "low"},
}


def test_from_chat_answers_a_response_the_sdk_accepts():
    body = from_chat(
        completion({"content": "Hello!"}),
        USAGE,
        request=REQUEST,
        answer_id="resp_1",
        model="public-model",
    )
    response = Response.model_validate(body)
    assert response.output_text == "Hello!"
    assert (response.id, response.model, response.status) == (
        "resp_1",
        "public-model",
        "completed",
    )
    assert response.output[0].id.startswith("msg_")
    assert response.usage.input_tokens == 20
    assert response.usage.input_tokens_details.cached_tokens == 8
    assert response.usage.output_tokens == 7
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.usage.total_tokens == 27
    for name in ("instructions", "tools", "tool_choice", "temperature", "top_p"):
        assert body[name] == REQUEST[name]
    for name in ("max_output_tokens", "parallel_tool_calls", "text", "metadata"):
        assert body[name] == REQUEST[name]
    assert body["reasoning"] == REQUEST["reasoning"]
    assert body["store"] is False
    assert body["prompt_cache_key"] == "conversation-1"


def test_from_chat_turns_tool_calls_into_call_items():
    message = calling("shell", "mcp__github__create_issue", "apply_patch")
    message["choices"][0]["message"]["content"] = "On it."
    body = from_chat(message, USAGE, request=CODEX, answer_id="r", model="m")
    response = Response.model_validate(body)
    kinds = [item.type for item in response.output]
    assert kinds == ["message", "function_call", "function_call", "custom_tool_call"]
    shell, issue, patch = response.output[1:]
    assert (shell.call_id, shell.name, shell.arguments) == (
        "call_0",
        "shell",
        '{"input":"x"}',
    )
    assert shell.id.startswith("fc_") and shell.status == "completed"
    assert (issue.name, issue.namespace) == ("create_issue", "mcp__github__")
    assert (patch.call_id, patch.name, patch.input) == ("call_2", "apply_patch", "x")


def test_from_chat_shows_a_refusal():
    body = from_chat(
        completion({"content": None, "refusal": "I can't help with that."}),
        USAGE,
        request={"model": "m", "input": "Hi"},
        answer_id="r",
        model="m",
    )
    response = Response.model_validate(body)
    assert response.output_text == ""
    assert response.output[0].content[0].type == "refusal"
    assert response.output[0].content[0].refusal == "I can't help with that."


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("length", "max_output_tokens"), ("content_filter", "content_filter")],
)
def test_from_chat_reports_a_cut_answer_as_incomplete(finish, reason):
    body = from_chat(
        completion({"content": "Once upon"}, finish=finish),
        USAGE,
        request={"model": "m", "input": "Hi"},
        answer_id="r",
        model="m",
    )
    response = Response.model_validate(body)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == reason
    assert response.output[0].status == "incomplete"
    assert response.output_text == "Once upon"


def test_from_chat_shows_reasoning_content_as_a_reasoning_item():
    body = from_chat(
        completion({"content": "4", "reasoning_content": "2+2 is 4."}),
        USAGE,
        request={"model": "m", "input": "2+2?"},
        answer_id="r",
        model="m",
    )
    response = Response.model_validate(body)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].content[0].text == "2+2 is 4."
    assert response.output_text == "4"


def test_from_chat_takes_the_completions_usage_unless_given_one():
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    answer = completion({"content": "Hi"}, usage=usage)
    request = {"model": "m", "input": "Hi"}
    own = from_chat(answer, None, request=request, answer_id="r", model="m")
    assert own["usage"]["input_tokens"] == 3
    given_usage = from_chat(answer, USAGE, request=request, answer_id="r", model="m")
    assert given_usage["usage"]["input_tokens"] == 20


# -- StreamFromChat ------------------------------------------------------


class Replay:
    """An upstream that answers every request with the bytes set last."""

    def __init__(self):
        self.body = b""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@pytest.fixture(scope="module")
def sdk():
    replay = Replay()
    server = ThreadedServer(replay).start()
    options = {"api_key": "sk-test", "base_url": f"{server.base_url}/v1"}
    clients = {
        strict: openai.OpenAI(
            **options, max_retries=0, _strict_response_validation=strict
        )
        for strict in (True, False)
    }

    def stream(body: bytes, request: dict, *, strict: bool = True):
        """Return the events the SDK's stream helper yields, and its final
        response (None when the stream did not complete)."""
        replay.body = body
        fields = {k: v for k, v in request.items() if k not in ("stream", "include")}
        with clients[strict].responses.stream(**fields) as events:
            seen = list(events)
            done = seen[-1].type == "response.completed"
            return seen, events.get_final_response() if done else None

    yield stream
    server.stop()


def frames(data: bytes) -> list[dict]:
    """Return the events in `data`, each checked against the SDK's types and
    for an `event:` line naming its type."""
    events = []
    for raw in SSEBuffer().feed(data):
        payload = orjson.loads(event_data(raw))
        assert raw.startswith(b"event: " + payload["type"].encode() + b"\n")
        checked = payload
        if payload["type"] == "response.failed":
            # The SDK lists OpenAI's own failure codes as a closed set; its
            # default (lenient) parsing and Codex take any code.
            checked = copy.deepcopy(payload)
            checked["response"]["error"]["code"] = "server_error"
        STREAM_EVENT.validate_python(checked)
        events.append(payload)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def kinds(events: list[dict]) -> list[str]:
    return [event["type"].removeprefix("response.") for event in events]


def chunk(finish: str | None = None, **delta) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def call(index: int, *, id=None, name=None, arguments=None) -> dict:
    fragment: dict = {"index": index, "function": {}}
    if id:
        fragment.update(id=id, type="function")
    if name:
        fragment["function"]["name"] = name
    if arguments is not None:
        fragment["function"]["arguments"] = arguments
    return fragment


def streamed(request: dict, chunks: list[dict], usage=USAGE, model="public-model"):
    stream = StreamFromChat(request=request, answer_id="resp_1", model=model)
    return b"".join(stream.feed(c) for c in chunks) + stream.finish(usage)


TEXT_CHUNKS = [
    chunk(role="assistant", content=""),
    chunk(content="Hel"),
    chunk(content="lo"),
    chunk(content="!"),
    chunk(finish="stop"),
]


def test_a_text_stream_has_openais_event_order(sdk):
    data = streamed(CODEX, TEXT_CHUNKS)
    events = frames(data)
    assert kinds(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    item_id = events[2]["item"]["id"]
    for event in events[3:10]:
        assert (event.get("item_id", item_id), event["output_index"]) == (item_id, 0)
    assert events[7]["text"] == "Hello!"

    seen, final = sdk(data, CODEX)
    assert len(seen) == len(events)
    assert final.output_text == "Hello!"
    assert (final.id, final.model, final.status) == (
        "resp_1",
        "public-model",
        "completed",
    )
    assert final.usage.input_tokens == 20 and final.usage.output_tokens == 7


def test_interleaved_tool_calls_become_one_item_each(sdk):
    data = streamed(
        CODEX,
        [
            chunk(tool_calls=[call(0, id="c1", name="shell", arguments="")]),
            chunk(
                tool_calls=[
                    call(1, id="c2", name="mcp__github__create_issue", arguments='{"ti')
                ]
            ),
            chunk(tool_calls=[call(0, arguments='{"command":')]),
            chunk(tool_calls=[call(1, arguments='tle":"x"}')]),
            chunk(tool_calls=[call(0, arguments='["ls"]}')]),
            chunk(finish="tool_calls"),
        ],
    )
    events = frames(data)
    assert kinds(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    shell_id, issue_id = events[2]["item"]["id"], events[3]["item"]["id"]
    deltas = [(e["item_id"], e["output_index"], e["delta"]) for e in events[4:8]]
    assert deltas == [
        (issue_id, 1, '{"ti'),
        (shell_id, 0, '{"command":'),
        (issue_id, 1, 'tle":"x"}'),
        (shell_id, 0, '["ls"]}'),
    ]

    _, final = sdk(data, CODEX)
    shell, issue = final.output
    assert (shell.call_id, shell.name, shell.arguments) == (
        "c1",
        "shell",
        '{"command":["ls"]}',
    )
    assert (issue.call_id, issue.namespace, issue.name) == (
        "c2",
        "mcp__github__",
        "create_issue",
    )
    assert issue.arguments == '{"title":"x"}'
    assert shell.status == issue.status == "completed"


def test_text_is_closed_before_a_tool_call_starts(sdk):
    data = streamed(
        CODEX,
        [
            chunk(content="Let me look."),
            chunk(
                tool_calls=[
                    call(0, id="c1", name="shell", arguments='{"command":["ls"]}')
                ]
            ),
            chunk(finish="tool_calls"),
        ],
    )
    events = frames(data)
    assert kinds(events) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    assert [e["output_index"] for e in events if "output_index" in e] == [0] * 6 + [
        1
    ] * 4

    _, final = sdk(data, CODEX)
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output_text == "Let me look."


def test_a_custom_tool_call_streams_its_input_whole(sdk):
    data = streamed(
        CODEX,
        [
            chunk(tool_calls=[call(0, id="c1", name="apply_patch", arguments='{"inp')]),
            chunk(tool_calls=[call(0, arguments='ut":"*** Begin Patch\\n"}')]),
            chunk(finish="tool_calls"),
        ],
    )
    events = frames(data)
    assert kinds(events)[2:] == [
        "output_item.added",
        "custom_tool_call_input.delta",
        "custom_tool_call_input.done",
        "output_item.done",
        "completed",
    ]
    assert events[3]["delta"] == events[4]["input"] == "*** Begin Patch\n"

    _, final = sdk(data, CODEX)
    (patch,) = final.output
    assert (patch.type, patch.call_id, patch.name) == (
        "custom_tool_call",
        "c1",
        "apply_patch",
    )
    assert patch.input == "*** Begin Patch\n"


def test_reasoning_content_streams_as_a_reasoning_item(sdk):
    data = streamed(
        CODEX,
        [
            chunk(reasoning_content="2+2"),
            chunk(reasoning_content=" is 4."),
            chunk(content="4"),
            chunk(finish="stop"),
        ],
    )
    events = frames(data)
    assert kinds(events)[2:10] == [
        "output_item.added",
        "content_part.added",
        "reasoning_text.delta",
        "reasoning_text.delta",
        "reasoning_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
    ]
    _, final = sdk(data, CODEX)
    assert final.output[0].type == "reasoning"
    assert final.output[0].content[0].text == "2+2 is 4."
    assert final.output_text == "4"


def test_a_refusal_streams_as_a_refusal_part(sdk):
    data = streamed(CODEX, [chunk(refusal="No."), chunk(finish="stop")])
    events = frames(data)
    assert kinds(events)[3:6] == ["content_part.added", "refusal.delta", "refusal.done"]
    _, final = sdk(data, CODEX)
    assert final.output[0].content[0].refusal == "No."


def test_a_stream_cut_by_the_token_limit_ends_incomplete(sdk):
    data = streamed(CODEX, [chunk(content="Once upon"), chunk(finish="length")])
    events = frames(data)
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"
    assert last["response"]["usage"]["output_tokens"] == 7
    seen, _ = sdk(data, CODEX)
    assert seen[-1].response.status == "incomplete"


def test_usage_only_chunks_send_nothing_and_the_relays_usage_wins():
    usage_chunk = {**chunk(), "choices": [], "usage": {"prompt_tokens": 1}}
    stream = StreamFromChat(request=CODEX, answer_id="r", model="m")
    data = stream.feed(TEXT_CHUNKS[1])
    assert stream.feed(usage_chunk) == b""
    completed = frames(data + stream.finish(USAGE))[-1]
    assert completed["response"]["usage"]["input_tokens"] == 20

    fallback = StreamFromChat(request=CODEX, answer_id="r", model="m")
    data = fallback.feed(usage_chunk)
    assert kinds(frames(data)) == ["created", "in_progress"]
    completed = frames(data + fallback.finish(None))[-1]
    assert completed["response"]["usage"]["input_tokens"] == 1


@pytest.mark.parametrize("end", ["finish", "fail", "broken"])
def test_each_ending_starts_the_response_when_nothing_was_fed(end):
    stream = StreamFromChat(request=CODEX, answer_id="resp_9", model="m")
    ending = {
        "finish": lambda: stream.finish(None),
        "fail": lambda: stream.fail({"message": "Overloaded.", "code": "server_error"}),
        "broken": stream.broken,
    }[end]
    events = frames(ending())
    assert kinds(events)[:2] == ["created", "in_progress"]
    assert len(events) == 3
    assert events[-1]["response"]["id"] == "resp_9"


@pytest.mark.parametrize("first", ["finish", "fail", "broken"])
def test_there_is_only_ever_one_terminal_event(first):
    stream = StreamFromChat(request=CODEX, answer_id="r", model="m")
    endings = {
        "finish": lambda: stream.finish(USAGE),
        "fail": lambda: stream.fail({"message": "Boom."}),
        "broken": stream.broken,
    }
    data = stream.feed(TEXT_CHUNKS[1]) + endings.pop(first)()
    for ending in endings.values():
        assert ending() == b""
    assert stream.feed(TEXT_CHUNKS[2]) == b""
    assert stream.finish(USAGE) == stream.fail({}) == stream.broken() == b""
    terminal = {"completed", "incomplete", "failed"}
    assert sum(kind in terminal for kind in kinds(frames(data))) == 1


def test_fail_passes_the_upstreams_error_on(sdk):
    stream = StreamFromChat(request=CODEX, answer_id="r", model="m")
    data = stream.feed(TEXT_CHUNKS[1]) + stream.fail(
        {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    )
    events = frames(data)
    error = events[-1]["response"]["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("This model's maximum context length")
    seen, final = sdk(data, CODEX, strict=False)
    assert seen[-1].type == "response.failed" and final is None
    assert seen[-1].response.error.code == "context_length_exceeded"


def test_broken_fails_the_response_keeping_what_was_produced():
    stream = StreamFromChat(request=CODEX, answer_id="r", model="m")
    data = b"".join(stream.feed(c) for c in TEXT_CHUNKS[:3])
    data += stream.feed(
        chunk(tool_calls=[call(0, id="c1", name="shell", arguments="{")])
    )
    failed = frames(data + stream.broken())[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "upstream_stream_closed"
    assert "charged" in failed["error"]["message"]
    message, shell = failed["output"]
    assert (message["status"], message["content"][0]["text"]) == ("completed", "Hello")
    assert (shell["status"], shell["arguments"]) == ("incomplete", "{")


# -- ResponsesPassthrough ------------------------------------------------


def upstream_events(*events: dict) -> list[bytes]:
    return [
        sse({**event, "sequence_number": n}, event["type"])
        for n, event in enumerate(events)
    ]


UPSTREAM_MODEL = "gpt-4.1-2025-04-14"
STARTED = {
    "id": "resp_up",
    "object": "response",
    "created_at": 1700000000,
    "status": "in_progress",
    "model": UPSTREAM_MODEL,
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "status": "in_progress",
    "role": "assistant",
    "content": [],
}
DONE_PART = {"type": "output_text", "text": "Grüße, 世界!", "annotations": []}
UPSTREAM_USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 17,
}
at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
UPSTREAM = upstream_events(
    {"type": "response.created", "response": STARTED},
    {"type": "response.in_progress", "response": STARTED},
    {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
    {
        "type": "response.content_part.added",
        **at,
        "part": {**DONE_PART, "text": ""},
    },
    {"type": "response.output_text.delta", **at, "delta": "Grüße, ", "logprobs": []},
    {"type": "response.output_text.delta", **at, "delta": "世界", "logprobs": []},
    {"type": "response.output_text.delta", **at, "delta": "!", "logprobs": []},
    {"type": "response.output_text.done", **at, "text": "Grüße, 世界!", "logprobs": []},
    {"type": "response.content_part.done", **at, "part": DONE_PART},
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {**MESSAGE, "status": "completed", "content": [DONE_PART]},
    },
    {
        "type": "response.completed",
        "response": {
            **STARTED,
            "status": "completed",
            "output": [{**MESSAGE, "status": "completed", "content": [DONE_PART]}],
            "usage": UPSTREAM_USAGE,
        },
    },
)
UPSTREAM_BYTES = b"".join(UPSTREAM)


def fed(passthrough: ResponsesPassthrough, data: bytes, cuts: list[int]) -> bytes:
    out, start = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out.append(passthrough.feed(data[start:cut]))
        start = cut
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(UPSTREAM_BYTES)), max_size=12))
def test_passthrough_survives_any_split_even_inside_a_character(cuts):
    passthrough = ResponsesPassthrough()
    out = fed(passthrough, UPSTREAM_BYTES, cuts)
    assert out + passthrough.closing == UPSTREAM_BYTES
    assert passthrough.closing == UPSTREAM[-1]
    assert passthrough.done and passthrough.end() == b""
    assert "".join(passthrough.text) == "Grüße, 世界!"
    assert passthrough.usage == TokenUsage(prompt=12, cached=4, completion=5)
    assert passthrough.prompt_usage is None
    assert (passthrough.response_id, passthrough.error) == ("resp_up", "")


def test_a_split_inside_a_utf8_sequence_passes_intact():
    cut = UPSTREAM_BYTES.index("世".encode()) + 1
    passthrough = ResponsesPassthrough()
    out = fed(passthrough, UPSTREAM_BYTES, [cut])
    assert out + passthrough.closing == UPSTREAM_BYTES


def test_passthrough_names_the_public_model_and_holds_back_the_end(sdk):
    passthrough = ResponsesPassthrough(rename=(UPSTREAM_MODEL, "public-model"))
    out = passthrough.feed(UPSTREAM_BYTES)
    assert b"response.completed" not in out
    assert UPSTREAM_MODEL.encode() not in out + passthrough.closing
    events = frames(out + passthrough.closing)
    assert events[0]["response"]["model"] == "public-model"
    assert events[-1]["response"]["model"] == "public-model"
    # Events without a response object pass byte for byte.
    assert out.endswith(b"".join(UPSTREAM[2:-1]))

    _, final = sdk(out + passthrough.closing, {"model": "public-model", "input": "Hi"})
    assert (final.model, final.output_text) == ("public-model", "Grüße, 世界!")


def test_passthrough_passes_an_error_event_and_can_end_the_stream_itself():
    error = {
        "type": "error",
        "code": "server_error",
        "message": "Overloaded.",
        "param": None,
    }
    events = upstream_events({"type": "response.created", "response": STARTED}, error)
    passthrough = ResponsesPassthrough(rename=(UPSTREAM_MODEL, "public-model"))
    out = passthrough.feed(b"".join(events))
    assert out.endswith(events[1])
    assert (passthrough.error, passthrough.done) == ("Overloaded.", False)

    (failed,) = frames(b"".join(events) + passthrough.broken)[2:]
    assert failed["sequence_number"] == 2
    assert failed["response"]["id"] == "resp_up"
    assert failed["response"]["model"] == "public-model"
    assert failed["response"]["error"]["code"] == "upstream_stream_closed"


def test_passthrough_keeps_a_failed_response_for_last():
    failed = {
        **STARTED,
        "status": "failed",
        "error": {"code": "server_error", "message": "The model crashed."},
        "usage": UPSTREAM_USAGE,
    }
    events = upstream_events(
        {"type": "response.created", "response": STARTED},
        {"type": "response.failed", "response": failed},
        {"type": "response.created", "response": STARTED},
    )
    passthrough = ResponsesPassthrough()
    assert passthrough.feed(b"".join(events)) == events[0]
    assert (passthrough.closing, passthrough.done) == (events[1], True)
    assert passthrough.error == "The model crashed."
    assert passthrough.usage.prompt == 12


def test_broken_event_alone_is_a_valid_failed_response():
    (failed,) = frames(broken_event(0))
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "upstream_stream_closed"


def test_response_from_upstream_renames_and_reads_the_usage():
    raw = orjson.dumps({**STARTED, "status": "completed", "usage": UPSTREAM_USAGE})
    body, usage, response_id = response_from_upstream(
        raw, rename=(UPSTREAM_MODEL, "public-model")
    )
    assert orjson.loads(body)["model"] == "public-model"
    assert usage == TokenUsage(prompt=12, cached=4, completion=5)
    assert response_id == "resp_up"
    assert response_from_upstream(raw, rename=None) == (raw, usage, "resp_up")


def test_tool_call_fragments_without_an_index_are_placed_by_id():
    def fragment(**fields):
        return {"type": "function", **fields}

    data = streamed(
        CODEX,
        [
            chunk(tool_calls=[fragment(id="c1", function={"name": "shell"})]),
            chunk(tool_calls=[fragment(function={"arguments": "{}"})]),
            chunk(tool_calls=[fragment(id="c2", function={"name": "shell"})]),
            chunk(tool_calls=[fragment(function={"arguments": '{"a":1}'})]),
            chunk(finish="tool_calls"),
        ],
    )
    completed = frames(data)[-1]["response"]
    calls = [(item["call_id"], item["arguments"]) for item in completed["output"]]
    assert calls == [("c1", "{}"), ("c2", '{"a":1}')]
