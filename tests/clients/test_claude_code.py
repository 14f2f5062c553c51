"""Claude Code (`claude -p`, Anthropic Messages only) pointed at Switchboard."""

import pytest

from tests.clients.harness import assert_billed_once, claude_print
from tests.fakes.anthropic import DEFAULT_REPLY as ANTHROPIC_REPLY
from tests.fakes.anthropic import plan_reply
from tests.fakes.upstream import DEFAULT_REPLY, expected_usage, token_limit

pytestmark = pytest.mark.clients


def test_claude_code_runs_on_an_anthropic_channel(
    relay_server, relay, alice, claude_channel, fake_anthropic, canary, tmp_path
):
    before = alice.wallet.balance
    run = claude_print(
        tmp_path,
        base_url=relay_server.base_url,
        api_key=alice.secret,
        model="claude-3-5-haiku-latest",
        proxy=canary.url,
        key_header="x-api-key",
    )
    assert run.returncode == 0, run
    assert run.reply == ANTHROPIC_REPLY, run
    # Passed through: the relay swaps the key and keeps Claude Code's body.
    [sent] = fake_anthropic.requests
    assert sent.path == "/v1/messages"
    assert sent.api_key == "sk-ant-upstream"
    assert sent.body["stream"] is True and sent.body["tools"]
    usage = plan_reply(sent.body, fake_anthropic.knobs)["usage"]
    assert_billed_once(
        alice,
        before,
        run,
        endpoint="messages",
        model="claude-3-5-haiku-latest",
        reported=(usage["input_tokens"], usage["output_tokens"]),
    )
    assert canary.seen() == []


def test_claude_code_runs_on_an_openai_channel(
    relay_server, relay, alice, channel, fake, canary, tmp_path
):
    before = alice.wallet.balance
    run = claude_print(
        tmp_path,
        base_url=relay_server.base_url,
        api_key=alice.secret,
        model="gpt-4.1-mini",
        proxy=canary.url,
    )
    assert run.returncode == 0, run
    assert run.reply == DEFAULT_REPLY, run
    # Translated to a chat completion. For a model it does not know, Claude
    # Code asks for adaptive thinking, effort and context management, and puts
    # a system-role turn among the messages: each must be mapped or dropped.
    [sent] = [r for r in fake.requests if r.method == "POST"]
    assert sent.path == "/v1/chat/completions"
    assert sent.api_key == "sk-upstream-secret-1234"
    usage = expected_usage(sent.body["messages"], max_tokens=token_limit(sent.body))
    assert_billed_once(
        alice,
        before,
        run,
        endpoint="messages",
        model="gpt-4.1-mini",
        reported=(usage["prompt_tokens"], usage["completion_tokens"]),
    )
    assert canary.seen() == []
