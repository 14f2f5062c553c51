"""Budgets through the relay: concurrent requests never overshoot one, and a
refusal says which budget ran out and when it resets."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from django.core.management import call_command

from accounts.models import ApiKey
from billing import budgets
from billing.budgets import budgets_set
from billing.models import Budget, BudgetHold, LedgerEntry
from relay.models import UsageRecord
from tests.relay.test_concurrency import COST, HOLD, MAX_TOKENS, MESSAGES, fire

pytestmark = pytest.mark.postgres


def assert_exactly_ten_served(responses, scope: str, period: str) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 90, statuses
    for response in responses:
        if response.status_code == 402:
            error = response.json()["error"]
            assert error["code"] == "budget_exceeded"
            assert error["type"] == "insufficient_quota"
            assert f"{scope} {period} budget" in error["message"]


def assert_spent_exactly(budget: Budget, customer) -> None:
    charges = LedgerEntry.objects.filter(
        tenant=customer.tenant, kind=LedgerEntry.Kind.USAGE
    )
    assert charges.count() == 10
    budget.refresh_from_db()
    # Each served request is counted at its cost, to the nano-USD, and
    # nothing stays held.
    assert budget.spent == -sum(c.amount for c in charges) == 10 * COST
    assert budget.held == 0
    assert not BudgetHold.objects.exists()
    call_command("billing_audit")


def test_a_hundred_requests_against_a_key_budget_of_ten_serve_ten(
    relay, channel, alice, fake
):
    # Slow enough that the requests overlap: holds, not settled charges, are
    # what stops the eleventh.
    fake.scenario(latency=0.2)
    key = ApiKey.objects.get(tenant=alice.tenant)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": 10 * HOLD})

    responses = asyncio.run(fire(relay, alice.secret, 100))

    assert_exactly_ten_served(responses, "key's", "daily")
    assert_spent_exactly(Budget.objects.get(api_key=key), alice)
    assert UsageRecord.objects.filter(status="ok").count() == 10


def test_a_hundred_requests_against_a_tenant_budget_of_ten_serve_ten(
    relay, channel, alice, fake
):
    fake.scenario(latency=0.2)
    budgets_set(tenant=alice.tenant, caps={"monthly": 10 * HOLD})

    responses = asyncio.run(fire(relay, alice.secret, 100))

    assert_exactly_ten_served(responses, "tenant's", "monthly")
    assert_spent_exactly(Budget.objects.get(api_key=None), alice)


def test_the_refusal_says_when_the_budget_resets(relay, channel, alice, monkeypatch):
    monkeypatch.setattr(
        budgets, "clock", lambda: datetime(2026, 11, 30, 18, 5, tzinfo=UTC)
    )
    key = ApiKey.objects.get(tenant=alice.tenant)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": HOLD - 1})
    body = {"model": "gpt-4.1-mini", "messages": MESSAGES, "max_tokens": MAX_TOKENS}

    answer = httpx.post(
        f"{relay}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {alice.secret}"},
    )

    assert answer.status_code == 402
    error = answer.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "this key's daily budget" in error["message"]
    assert "It resets at 2026-12-01T00:00:00Z." in error["message"]
    assert not UsageRecord.objects.filter(status="ok").exists()


def test_a_lifetime_refusal_on_messages_is_anthropics_billing_error(
    relay, channel, alice
):
    budgets_set(tenant=alice.tenant, caps={"lifetime": 0})

    answer = httpx.post(
        f"{relay}/messages",
        json={
            "model": "gpt-4.1-mini",
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        headers={"x-api-key": alice.secret, "anthropic-version": "2023-06-01"},
    )

    assert answer.status_code == 402
    body = answer.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "billing_error"
    assert "the tenant's lifetime budget" in body["error"]["message"]
    assert "It never resets" in body["error"]["message"]


@pytest.fixture
def statements(monkeypatch):
    """The hold and settlement statements the relay sends, in order."""
    import billing.holds
    import billing.settlement

    sent: list[str] = []
    for module in (billing.holds, billing.settlement):
        original = module.pg_fetchone_grouped

        async def spy(sql, params, key, original=original):
            sent.append(sql)
            return await original(sql, params, key)

        monkeypatch.setattr(module, "pg_fetchone_grouped", spy)
    return sent


def chat(relay: str, customer) -> httpx.Response:
    return httpx.post(
        f"{relay}/chat/completions",
        json={"model": "gpt-4.1-mini", "messages": MESSAGES, "max_tokens": 6},
        headers={"authorization": f"Bearer {customer.secret}"},
    )


def test_a_key_without_budgets_runs_the_statements_it_ran_before(
    relay, channel, alice, bob, statements
):
    from billing.holds import RESERVE_SQL
    from billing.settlement import _settle_sql

    # Another tenant's budget is not this key's.
    budgets_set(tenant=bob.tenant, caps={"daily": 0})

    assert chat(relay, alice).status_code == 200

    assert statements == [RESERVE_SQL, _settle_sql(UsageRecord)]
    assert "budget" not in " ".join(statements)


def test_a_key_with_budgets_runs_the_statements_that_count_them(
    relay, channel, alice, statements
):
    from billing.holds import RESERVE_BUDGETS_SQL
    from billing.settlement import _settle_sql

    budgets_set(tenant=alice.tenant, caps={"daily": 10 * HOLD})

    assert chat(relay, alice).status_code == 200

    assert statements == [RESERVE_BUDGETS_SQL, _settle_sql(UsageRecord, True)]
    daily = Budget.objects.get()
    assert (daily.held, daily.spent) == (0, UsageRecord.objects.get().charged)
