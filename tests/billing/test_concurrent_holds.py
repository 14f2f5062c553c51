"""Holds and settlements racing each other on real PostgreSQL connections."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from billing.holds import holds_release_expired
from billing.models import Hold, LedgerEntry
from relay.models import UsageRecord

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30


def run_together(calls: list[Callable], timeout: float = TIMEOUT) -> list:
    """Run each call on its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(index: int, call: Callable) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(i, call), daemon=True)
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads hung"
    assert errors == []
    return results


def start(call: Callable, errors: list) -> threading.Thread:
    def worker() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread


def lock_waiters() -> int:
    """Count this database's sessions waiting for a lock."""
    with connection.cursor() as cursor:
        # pg_stat_activity is a per-transaction snapshot unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while lock_waiters() < count:
        assert time.monotonic() < deadline, f"expected {count} blocked statements"
        time.sleep(0.01)


def assert_books_balance() -> None:
    out = StringIO()
    call_command("billing_audit", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("OK")


def test_fifty_concurrent_holds_take_exactly_the_credit_there_is(money, alice, bob):
    balance = alice.wallet.balance
    amount = balance // 10
    assert amount * 10 == balance
    bob_before = (bob.wallet.balance, bob.wallet.held)

    def reserve(n: int) -> Callable[[], bool]:
        return lambda: money.reserve(alice, f"req-{n}", amount)

    results = run_together([reserve(n) for n in range(50)])

    assert results.count(True) == 10
    assert results.count(False) == 40
    wallet = alice.wallet
    assert wallet.held == 10 * amount
    assert wallet.balance - wallet.held >= 0
    won = {f"req-{n}" for n, ok in enumerate(results) if ok}
    assert set(Hold.objects.values_list("request_id", flat=True)) == won
    assert (bob.wallet.balance, bob.wallet.held) == bob_before
    assert_books_balance()

    settlements = run_together(
        [lambda r=r: money.settle(alice, r, cost=amount) for r in won]
    )

    assert [s.charged for s in settlements] == [amount] * 10
    assert all(s.uncollected == 0 for s in settlements)
    wallet = alice.wallet
    assert wallet.balance == 0
    assert wallet.held == 0
    assert not Hold.objects.exists()
    assert LedgerEntry.objects.filter(reference__startswith="usage:").count() == 10
    assert set(UsageRecord.objects.values_list("request_id", "charged")) == {
        (r, amount) for r in won
    }
    assert (bob.wallet.balance, bob.wallet.held) == bob_before
    assert_books_balance()


def test_concurrent_settles_of_one_request_charge_it_once(money, alice):
    before = alice.wallet.balance
    amount = before // 4
    assert money.reserve(alice, "req-1", amount)

    settlements = run_together(
        [lambda: money.settle(alice, "req-1", cost=amount) for _ in range(8)]
    )

    assert sum(s.charged for s in settlements) == amount
    assert sum(not s.already_settled for s in settlements) == 1
    wallet = alice.wallet
    assert wallet.balance == before - amount
    assert wallet.held == 0
    assert UsageRecord.objects.get(request_id="req-1").charged == amount
    assert_books_balance()


def test_a_settlement_racing_the_expiry_sweep_still_charges_the_request(money, alice):
    # A long request outlives its hold: the sweep releases the hold at the
    # moment the request settles. Both must finish and the books balance.
    before = alice.wallet.balance
    amount = before // 4
    cost = amount // 2
    assert money.reserve(alice, "req-slow", amount)
    Hold.objects.filter(request_id="req-slow").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    errors: list[BaseException] = []
    # Keep the hold row locked until the sweep, then the settlement, are both
    # waiting for it: this makes them meet in the same order every run.
    with transaction.atomic():
        Hold.objects.select_for_update().get(request_id="req-slow")
        sweeper = start(holds_release_expired, errors)
        wait_for_lock_waiters(1)
        settler = start(lambda: money.settle(alice, "req-slow", cost=cost), errors)
        wait_for_lock_waiters(2)
    sweeper.join(timeout=TIMEOUT)
    settler.join(timeout=TIMEOUT)
    assert not sweeper.is_alive() and not settler.is_alive(), "threads hung"

    wallet = alice.wallet
    assert wallet.balance == before - cost, f"the request went unpaid: {errors}"
    assert errors == []
    assert wallet.held == 0
    assert not Hold.objects.exists()
    assert_books_balance()
