"""The wallet's writes driven through the entry points the relay calls."""

import asyncio
import threading
from collections.abc import Coroutine

import pytest

import config.db
from billing.holds import hold_release_async, wallet_reserve_async
from billing.settlement import Settlement, usage_settle_async
from relay.models import UsageRecord

TIMEOUT = 30


class RelayLoop:
    """
    An event loop on its own thread, as in a relay process: coroutines sent
    from any thread run on it, and on PostgreSQL share its connection pool.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    def close(self) -> None:
        # The pool's and the database threads' connections must close before
        # the test database can be dropped.
        self.run(config.db.close_async_pool())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=TIMEOUT)
        self.loop.close()
        config.db.shutdown()


def usage_record(customer, request_id: str, cost: int) -> UsageRecord:
    """An unsaved usage record as the relay makes it, costing `cost`."""
    return UsageRecord(
        request_id=request_id,
        tenant_id=customer.tenant.pk,
        model="gpt-4.1-mini",
        status=UsageRecord.Status.OK,
        http_status=200,
        usage_source=UsageRecord.Source.REPORTED,
        prompt_tokens=10,
        completion_tokens=5,
        cost=cost,
    )


class Money:
    """A request's wallet writes, through the entry points the relay calls."""

    def __init__(self, loop: RelayLoop) -> None:
        self.loop = loop

    def reserve(
        self, customer, request_id: str, amount: int, promo_ok=True, owner=""
    ) -> bool:
        return self.loop.run(
            wallet_reserve_async(
                tenant_id=customer.tenant.pk,
                request_id=request_id,
                amount=amount,
                promo_ok=promo_ok,
                owner=owner,
            )
        )

    def release(self, customer, request_id: str) -> bool:
        return self.loop.run(
            hold_release_async(tenant_id=customer.tenant.pk, request_id=request_id)
        )

    def settle(
        self, customer, request_id: str, *, cost: int, promo_ok=True
    ) -> Settlement:
        return self.loop.run(
            usage_settle_async(
                record=usage_record(customer, request_id, cost),
                description="test request",
                promo_ok=promo_ok,
            )
        )


@pytest.fixture
def money(transactional_db):
    """
    Reserve, release and settle as the relay does: the async entry points on
    an event loop (on PostgreSQL its pool's own connections, so the test's
    data must be committed: a transactional test).
    """
    loop = RelayLoop()
    yield Money(loop)
    loop.close()
