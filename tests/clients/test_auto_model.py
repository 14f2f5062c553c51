"""Claude Code and Codex CLI asking for `model: "auto"` (relay.auto)."""

import pytest

from tests.clients.harness import assert_billed_once, claude_print, codex_exec
from tests.fakes.upstream import (
    DEFAULT_REPLY,
    expected_responses_usage,
    expected_usage,
    token_limit,
)

pytestmark = pytest.mark.clients


def test_claude_code_runs_on_auto(
    relay_server, relay, alice, channel, fake, canary, tmp_path
):
    before = alice.wallet.balance
    run = claude_print(
        tmp_path,
        base_url=relay_server.base_url,
        api_key=alice.secret,
        model="auto",
        proxy=canary.url,
    )
    assert run.returncode == 0, run
    assert run.reply == DEFAULT_REPLY, run
    # Claude Code always sends tools: the middle of the default tiers.
    [sent] = [r for r in fake.requests if r.method == "POST"]
    assert sent.body["model"] == "gpt-4.1-mini"
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


def test_codex_runs_on_auto(relay, alice, channel, fake, canary, tmp_path):
    before = alice.wallet.balance
    run = codex_exec(
        tmp_path, base_url=relay, api_key=alice.secret, model="auto", proxy=canary.url
    )
    assert run.returncode == 0, run
    assert run.reply == DEFAULT_REPLY, run
    [sent] = [r for r in fake.requests if r.method == "POST"]
    assert sent.path == "/v1/responses"
    assert sent.body["model"] == "gpt-4.1-mini"  # tools: the middle tier
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
