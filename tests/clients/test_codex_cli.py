"""Codex CLI (`codex exec`, Responses API only) pointed at Switchboard."""

import pytest

from tests.clients.harness import assert_billed_once, codex_exec
from tests.fakes.anthropic import DEFAULT_REPLY as ANTHROPIC_REPLY
from tests.fakes.anthropic import plan_reply
from tests.fakes.upstream import DEFAULT_REPLY, expected_responses_usage

pytestmark = pytest.mark.clients


def test_codex_runs_on_an_openai_channel(relay, alice, channel, fake, canary, tmp_path):
    before = alice.wallet.balance
    run = codex_exec(
        tmp_path,
        base_url=relay,
        api_key=alice.secret,
        model="gpt-4.1-mini",
        proxy=canary.url,
    )
    assert run.returncode == 0, run
    assert run.reply == DEFAULT_REPLY, run
    # A channel that speaks the Responses API gets Codex's request as it is.
    [sent] = [r for r in fake.requests if r.method == "POST"]
    assert sent.path == "/v1/responses"
    assert sent.api_key == "sk-upstream-secret-1234"
    assert sent.body["stream"] is True and sent.body["model"] == "gpt-4.1-mini"
    usage = expected_responses_usage(sent.body)
    assert_billed_once(
        alice,
        before,
        run,
        endpoint="responses",
        model="gpt-4.1-mini",
        reported=(usage["input_tokens"], usage["output_tokens"]),
    )
    assert canary.seen() == []


def test_codex_runs_on_an_anthropic_channel(
    relay, alice, claude_channel, fake_anthropic, canary, tmp_path
):
    before = alice.wallet.balance
    run = codex_exec(
        tmp_path,
        base_url=relay,
        api_key=alice.secret,
        model="claude-3-5-haiku-latest",
        proxy=canary.url,
    )
    assert run.returncode == 0, run
    assert run.reply == ANTHROPIC_REPLY, run
    # Translated: Codex's namespace and hosted web_search tools, reasoning and
    # include must become a Messages request the real API accepts (the fake
    # refuses what it would).
    [sent] = fake_anthropic.requests
    assert sent.path == "/v1/messages"
    assert sent.api_key == "sk-ant-upstream"
    usage = plan_reply(sent.body, fake_anthropic.knobs)["usage"]
    assert_billed_once(
        alice,
        before,
        run,
        endpoint="responses",
        model="claude-3-5-haiku-latest",
        reported=(usage["input_tokens"], usage["output_tokens"]),
    )
    assert canary.seen() == []
