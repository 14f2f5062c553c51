"""
Holds and settlements that arrive together go to PostgreSQL as one batch
(config.db.GroupCommit), and keep every guarantee they have one by one.
"""

import asyncio

import pytest

from billing.holds import wallet_reserve_async
from billing.models import Hold, LedgerEntry
from billing.settlement import usage_settle_async
from ops.metrics import GROUP_COMMITS, GROUPED_STATEMENTS
from relay.models import UsageRecord
from tests.billing.conftest import usage_record
from tests.billing.test_concurrent_holds import assert_books_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def counted(outcome: str) -> float:
    return GROUP_COMMITS.labels(outcome=outcome)._value.get()


def reserve(customer, request_id: str, amount: int):
    return wallet_reserve_async(
        tenant_id=customer.tenant.pk, request_id=request_id, amount=amount
    )


def settle(customer, request_id: str, cost: int):
    return usage_settle_async(
        record=usage_record(customer, request_id, cost), description="test"
    )


def test_a_hundred_holds_at_once_are_batched_and_never_overdraw(money, alice, bob):
    amount = alice.wallet.balance // 10
    batches, grouped = counted("committed"), GROUPED_STATEMENTS._value.get()

    async def together():
        return await asyncio.gather(
            *(reserve(alice if n % 2 else bob, f"req-{n}", amount) for n in range(100))
        )

    results = money.loop.run(together())

    # Alice's and Bob's wallets each cover ten holds, batched or not.
    assert [results[n] for n in range(1, 100, 2)].count(True) == 10
    assert [results[n] for n in range(0, 100, 2)].count(True) == 10
    assert alice.wallet.held == bob.wallet.held == 10 * amount
    assert Hold.objects.count() == 20
    # The calls did go as batches: fewer commits than statements.
    assert counted("committed") > batches
    assert GROUPED_STATEMENTS._value.get() - grouped > counted("committed") - batches
    assert_books_balance()


def test_a_statement_that_fails_in_a_batch_fails_alone(money, alice):
    """A repeated request id breaks the batch's transaction (a duplicate
    hold): the batch is run again one by one, and each caller gets its own
    answer."""
    amount = alice.wallet.balance // 100
    rolled_back = counted("rolled_back")

    async def together():
        first = reserve(alice, "req-0", amount)
        # Queued behind the first, so they go as one batch.
        rest = [reserve(alice, f"req-{n}", amount) for n in (1, 2, 1, 3)]
        return await asyncio.gather(first, *rest)

    results = money.loop.run(together())

    assert results == [True] * 5  # a hold placed twice is placed
    assert counted("rolled_back") == rolled_back + 1
    assert set(Hold.objects.values_list("request_id", flat=True)) == {
        "req-0",
        "req-1",
        "req-2",
        "req-3",
    }
    assert alice.wallet.held == 4 * amount
    assert_books_balance()


def test_settlements_batched_across_wallets_charge_each_request_once(money, alice, bob):
    amount = alice.wallet.balance // 20
    requests = [(alice if n % 2 else bob, f"req-{n}") for n in range(40)]

    async def reserve_all():
        return await asyncio.gather(
            *(reserve(who, request_id, amount) for who, request_id in requests)
        )

    assert all(money.loop.run(reserve_all()))
    batches = counted("committed")

    async def settle_all():
        # Each request settled twice at once: a replay inside a batch.
        return await asyncio.gather(
            *(settle(who, request_id, amount) for who, request_id in requests * 2)
        )

    settlements = money.loop.run(settle_all())

    assert counted("committed") > batches
    assert sum(s.charged for s in settlements) == 40 * amount
    assert sum(s.already_settled for s in settlements) == 40
    assert not Hold.objects.exists()
    assert LedgerEntry.objects.filter(reference__startswith="usage:").count() == 40
    assert UsageRecord.objects.count() == 40
    assert alice.wallet.held == bob.wallet.held == 0
    assert_books_balance()
