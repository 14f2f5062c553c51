"""
A hold commits without waiting for its WAL flush (billing.holds). The
setting is the hold's transaction's own: the connection keeps waiting for
the disk for everything else, settlements included.
"""

import pytest
from django.db import connection, transaction

from billing import budgets
from billing.holds import RESERVE_BUDGETS_SQL, RESERVE_SQL, _reserve_params
from billing.models import Hold, Wallet

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _waiting_for_the_disk(transactional_db):
    # The test database's own default is not to wait (tests/conftest.py):
    # this connection waits, as a production one does.
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")


def commit_setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def reserve(sql: str, customer, request_id: str, **extra) -> str:
    """Run a hold statement in a transaction; return synchronous_commit as
    its commit will see it."""
    params = _reserve_params(
        tenant_id=customer.tenant.id,
        request_id=request_id,
        amount=1_000,
        promo_ok=True,
        owner="",
        **extra,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchone()
        return commit_setting()


def test_a_hold_commits_without_waiting_for_the_disk(alice):
    assert commit_setting() == "on"

    assert reserve(RESERVE_SQL, alice, "r-1") == "off"

    assert Hold.objects.get(request_id="r-1").amount == 1_000
    assert commit_setting() == "on"


def test_a_hold_counted_in_budgets_commits_without_waiting_for_the_disk(alice):
    budgets.budgets_set(tenant=alice.tenant, caps={"daily": 10_000})

    setting = reserve(RESERVE_BUDGETS_SQL, alice, "r-2", key_id=None, with_budgets=True)

    assert setting == "off"
    assert Hold.objects.get(request_id="r-2").amount == 1_000
    assert commit_setting() == "on"


def test_a_refused_hold_writes_nothing(alice):
    Wallet.objects.filter(tenant=alice.tenant).update(balance=0)

    reserve(RESERVE_SQL, alice, "r-3")

    assert not Hold.objects.exists()
    assert Wallet.objects.get(tenant=alice.tenant).held == 0
