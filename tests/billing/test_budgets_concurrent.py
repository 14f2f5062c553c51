"""Budgets under concurrent holds and settlements, on real PostgreSQL: on
separate connections, and batched by the group commit (config.db)."""

import asyncio
from collections.abc import Callable

import pytest

from accounts.models import ApiKey
from billing.budgets import BudgetExceeded, budgets_set
from billing.holds import wallet_reserve_async
from billing.models import Budget, BudgetHold, Hold
from billing.money import usd_to_nano
from billing.settlement import usage_settle_async
from ops.metrics import GROUP_COMMITS
from tests.billing.conftest import usage_record
from tests.billing.test_concurrent_holds import assert_books_balance, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AMOUNT = usd_to_nano("0.01")


def reserve(customer, key: ApiKey, request_id: str):
    return wallet_reserve_async(
        tenant_id=customer.tenant.pk,
        request_id=request_id,
        amount=AMOUNT,
        key_id=key.pk,
        with_budgets=True,
    )


async def outcome(call) -> str:
    try:
        return "held" if await call else "no balance"
    except BudgetExceeded as exceeded:
        return f"{exceeded.scope} {exceeded.period}"


def settle(customer, key: ApiKey, request_id: str, cost: int):
    record = usage_record(customer, request_id, cost)
    record.api_key_id = key.pk
    return usage_settle_async(record=record, description="test", with_budgets=True)


def test_fifty_holds_on_their_own_connections_fit_a_budget_of_ten(money, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": 10 * AMOUNT})

    def call(n: int) -> Callable[[], str]:
        return lambda: money.loop.run(outcome(reserve(alice, key, f"req-{n}")))

    results = run_together([call(n) for n in range(50)])

    assert results.count("held") == 10
    assert results.count("key daily") == 40
    daily = Budget.objects.get()
    assert (daily.held, daily.spent) == (10 * AMOUNT, 0)
    assert alice.wallet.held == 10 * AMOUNT
    assert BudgetHold.objects.count() == Hold.objects.count() == 10
    assert_books_balance()


def test_a_hundred_batched_holds_and_settlements_keep_two_tenants_budgets(
    money, alice, bob
):
    keys = {c.tenant.pk: ApiKey.objects.get(tenant=c.tenant) for c in (alice, bob)}
    budgets_set(tenant=alice.tenant, caps={"monthly": 10 * AMOUNT})
    budgets_set(tenant=bob.tenant, key=keys[bob.tenant.pk], caps={"daily": 7 * AMOUNT})
    batches = GROUP_COMMITS.labels(outcome="committed")._value.get()
    customers = [alice if n % 2 else bob for n in range(100)]

    async def together():
        return await asyncio.gather(
            *(
                outcome(reserve(c, keys[c.tenant.pk], f"req-{n}"))
                for n, c in enumerate(customers)
            )
        )

    results = money.loop.run(together())

    assert [results[n] for n in range(1, 100, 2)].count("held") == 10
    assert [results[n] for n in range(0, 100, 2)].count("held") == 7
    assert set(results) == {"held", "tenant monthly", "key daily"}
    assert GROUP_COMMITS.labels(outcome="committed")._value.get() > batches
    assert_books_balance()

    held = [(c, f"req-{n}") for n, c in enumerate(customers) if results[n] == "held"]

    async def settle_all():
        return await asyncio.gather(
            *(settle(c, keys[c.tenant.pk], r, AMOUNT - 1) for c, r in held)
        )

    money.loop.run(settle_all())

    monthly = Budget.objects.get(tenant=alice.tenant)
    daily = Budget.objects.get(tenant=bob.tenant)
    assert (monthly.held, monthly.spent) == (0, 10 * (AMOUNT - 1))
    assert (daily.held, daily.spent) == (0, 7 * (AMOUNT - 1))
    assert not BudgetHold.objects.exists()
    assert_books_balance()
