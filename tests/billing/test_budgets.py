"""
Budgets counted by the hold, settlement and release statements, through the
entry points the relay calls: the ORM forms on SQLite, the PostgreSQL
statements when DATABASE_URL points there (the same tests).
"""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ApiKey
from accounts.services import api_key_create
from billing import budgets
from billing.budgets import BudgetExceeded, budgets_set
from billing.holds import (
    hold_release_async,
    holds_release_expired,
    wallet_reserve_async,
)
from billing.models import Budget, BudgetHold, Hold
from billing.money import usd_to_nano
from billing.settlement import usage_settle_async
from billing.workers import holds_release_dead
from tests.billing.conftest import usage_record

CENT = usd_to_nano("0.01")
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """The budgets' clock, at noon UTC on 30 November 2026 until moved."""

    class Clock:
        now = NOON

        def move_to(self, when: datetime) -> None:
            self.now = when

    fake = Clock()
    monkeypatch.setattr(budgets, "clock", lambda: fake.now)
    return fake


def key_of(customer) -> ApiKey:
    return ApiKey.objects.get(tenant=customer.tenant)


class Requests:
    """One customer's requests with budgets, as the relay makes them."""

    def __init__(self, money, customer, key: ApiKey | None = None):
        self.loop = money.loop
        self.customer = customer
        self.key = key or key_of(customer)

    def reserve(self, request_id: str, amount: int) -> bool:
        return self.loop.run(
            wallet_reserve_async(
                tenant_id=self.customer.tenant.pk,
                request_id=request_id,
                amount=amount,
                key_id=self.key.pk,
                with_budgets=True,
            )
        )

    def refusal(self, request_id: str, amount: int) -> BudgetExceeded:
        with pytest.raises(BudgetExceeded) as refused:
            self.reserve(request_id, amount)
        return refused.value

    def settle(self, request_id: str, cost: int):
        record = usage_record(self.customer, request_id, cost)
        record.api_key_id = self.key.pk
        return self.loop.run(
            usage_settle_async(
                record=record, description="test request", with_budgets=True
            )
        )

    def release(self, request_id: str) -> bool:
        return self.loop.run(
            hold_release_async(
                tenant_id=self.customer.tenant.pk,
                request_id=request_id,
                with_budgets=True,
            )
        )


def budget(customer, period: str, key: ApiKey | None = None) -> Budget:
    return Budget.objects.get(tenant=customer.tenant, api_key=key, period=period)


def assert_books_balance():
    out = StringIO()
    call_command("billing_audit", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("OK")


# --- holds ----------------------------------------------------------------


def test_a_key_budget_holds_until_its_cap_then_refuses(money, alice, clock):
    key = key_of(alice)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    wallet_before = alice.wallet

    assert requests.reserve("req-1", 6 * CENT)
    assert requests.reserve("req-2", 4 * CENT)
    refused = requests.refusal("req-3", 1)

    assert (refused.scope, refused.period, refused.cap) == ("key", "daily", 10 * CENT)
    assert refused.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    daily = budget(alice, "daily", key)
    assert (daily.held, daily.spent) == (10 * CENT, 0)
    # The refused request held nothing anywhere.
    assert alice.wallet.held == wallet_before.held + 10 * CENT
    assert set(Hold.objects.values_list("request_id", flat=True)) == {"req-1", "req-2"}
    assert not BudgetHold.objects.filter(request_id="req-3").exists()
    assert_books_balance()


def test_a_tenant_budget_counts_every_key_and_a_key_budget_only_its_own(
    money, alice, clock
):
    first = key_of(alice)
    second, _ = api_key_create(tenant=alice.tenant, name="ci", created_by=alice.user)
    budgets_set(tenant=alice.tenant, caps={"monthly": 5 * CENT})
    budgets_set(tenant=alice.tenant, key=first, caps={"daily": 2 * CENT})

    assert Requests(money, alice, first).reserve("a-1", 2 * CENT)
    refused = Requests(money, alice, first).refusal("a-2", CENT)
    assert (refused.scope, refused.period) == ("key", "daily")
    # The other key is bound by the tenant's budget only.
    assert Requests(money, alice, second).reserve("b-1", 3 * CENT)
    refused = Requests(money, alice, second).refusal("b-2", CENT)
    assert (refused.scope, refused.period) == ("tenant", "monthly")
    assert refused.resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert budget(alice, "monthly").held == 5 * CENT
    assert budget(alice, "daily", first).held == 2 * CENT
    assert_books_balance()


def test_the_wallet_still_refuses_what_it_cannot_cover(money, alice, clock):
    alice.set_balance("0.05")
    budgets_set(tenant=alice.tenant, caps={"lifetime": usd_to_nano("100")})
    requests = Requests(money, alice)

    assert not requests.reserve("req-1", 6 * CENT)

    assert budget(alice, "lifetime").held == 0
    assert not BudgetHold.objects.exists()
    assert alice.wallet.held == 0
    assert_books_balance()


def test_a_budget_refusal_names_the_one_that_resets_last(money, alice, clock):
    key = key_of(alice)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": CENT})
    budgets_set(tenant=alice.tenant, caps={"lifetime": CENT})

    refused = Requests(money, alice).refusal("req-1", 2 * CENT)

    assert (refused.scope, refused.period, refused.resets_at) == (
        "tenant",
        "lifetime",
        None,
    )


# --- settlement and release -------------------------------------------------


def test_settlement_moves_the_hold_to_spent_by_what_was_charged(money, alice, clock):
    key = key_of(alice)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": 10 * CENT})
    budgets_set(tenant=alice.tenant, caps={"monthly": 20 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 6 * CENT)

    settled = requests.settle("req-1", cost=2 * CENT + 7)

    assert settled.charged == 2 * CENT + 7
    for row in (budget(alice, "daily", key), budget(alice, "monthly")):
        assert (row.held, row.spent) == (0, 2 * CENT + 7)
    assert not BudgetHold.objects.exists()
    # What the settlement left is free for the next request, to the nano-USD.
    assert requests.reserve("req-2", 8 * CENT - 7)
    requests.refusal("req-3", 1)
    assert_books_balance()


def test_settling_again_changes_no_budget(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 3 * CENT)
    requests.settle("req-1", cost=3 * CENT)

    again = requests.settle("req-1", cost=3 * CENT)

    assert again.already_settled
    daily = budget(alice, "daily")
    assert (daily.held, daily.spent) == (0, 3 * CENT)
    assert_books_balance()


def test_a_release_gives_the_hold_back_to_its_budgets(money, alice, clock):
    key = key_of(alice)
    budgets_set(tenant=alice.tenant, key=key, caps={"daily": 10 * CENT})
    budgets_set(tenant=alice.tenant, caps={"lifetime": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 10 * CENT)

    assert requests.release("req-1")
    assert not requests.release("req-1")

    for row in (budget(alice, "daily", key), budget(alice, "lifetime")):
        assert (row.held, row.spent) == (0, 0)
    assert requests.reserve("req-2", 10 * CENT)
    assert_books_balance()


def test_the_expiry_sweep_gives_budgets_back(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 4 * CENT)
    Hold.objects.update(expires_at=NOON - timedelta(seconds=1))

    assert holds_release_expired() == 1

    assert budget(alice, "daily").held == 0
    assert not BudgetHold.objects.exists()
    assert_books_balance()


def test_the_dead_worker_sweep_gives_budgets_back(money, alice, clock, settings):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    assert money.loop.run(
        wallet_reserve_async(
            tenant_id=alice.tenant.pk,
            request_id="req-1",
            amount=4 * CENT,
            owner="gone:1:1",
            key_id=key_of(alice).pk,
            with_budgets=True,
        )
    )
    Hold.objects.update(created_at=NOON - timedelta(hours=1))

    assert holds_release_dead() == 1

    assert budget(alice, "daily").held == 0
    assert not BudgetHold.objects.exists()
    assert_books_balance()


def test_a_request_settled_after_its_hold_expired_still_counts(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 4 * CENT)
    Hold.objects.update(expires_at=NOON - timedelta(seconds=1))
    holds_release_expired()

    requests.settle("req-1", cost=3 * CENT)

    daily = budget(alice, "daily")
    assert (daily.held, daily.spent) == (0, 3 * CENT)
    assert_books_balance()


def test_a_budget_removed_with_holds_counted_in_it_leaves_the_books_clean(
    money, alice, clock
):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 4 * CENT)

    budgets_set(tenant=alice.tenant, caps={"daily": None})

    assert not Budget.objects.exists()
    assert_books_balance()
    assert requests.settle("req-1", cost=4 * CENT).charged == 4 * CENT
    assert_books_balance()


# --- periods --------------------------------------------------------------


def test_a_daily_budget_starts_again_at_midnight_utc(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 10 * CENT)
    requests.settle("req-1", cost=10 * CENT)
    clock.move_to(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    requests.refusal("req-2", 1)

    clock.move_to(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    assert requests.reserve("req-3", 10 * CENT)
    daily = budget(alice, "daily")
    assert (daily.spent, daily.held) == (0, 10 * CENT)
    assert daily.period_start == datetime(2026, 12, 1, tzinfo=UTC)
    refused = requests.refusal("req-4", 1)
    assert refused.resets_at == datetime(2026, 12, 2, tzinfo=UTC)
    assert_books_balance()


def test_a_hold_settled_in_the_next_period_counts_there(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 4 * CENT)
    assert requests.reserve("req-2", 4 * CENT)
    requests.settle("req-1", cost=4 * CENT)
    clock.move_to(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))

    requests.settle("req-2", cost=3 * CENT)

    daily = budget(alice, "daily")
    assert (daily.spent, daily.held) == (3 * CENT, 0)
    assert daily.period_start == datetime(2026, 12, 1, tzinfo=UTC)
    assert_books_balance()


def test_a_monthly_budget_starts_again_on_the_first(money, alice, clock):
    clock.move_to(datetime(2026, 12, 15, tzinfo=UTC))
    budgets_set(tenant=alice.tenant, caps={"monthly": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 10 * CENT)
    requests.settle("req-1", cost=10 * CENT)
    clock.move_to(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    refused = requests.refusal("req-2", 1)
    assert refused.resets_at == datetime(2027, 1, 1, tzinfo=UTC)

    clock.move_to(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))

    assert requests.reserve("req-3", 10 * CENT)


def test_a_lifetime_budget_never_starts_again(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"lifetime": 10 * CENT})
    requests = Requests(money, alice)
    assert requests.reserve("req-1", 10 * CENT)
    requests.settle("req-1", cost=10 * CENT)

    clock.move_to(datetime(2031, 1, 1, tzinfo=UTC))

    refused = requests.refusal("req-2", 1)
    assert (refused.period, refused.resets_at) == ("lifetime", None)
    # Raising the cap makes room.
    budgets_set(tenant=alice.tenant, caps={"lifetime": 11 * CENT})
    assert requests.reserve("req-3", CENT)


# --- without budgets --------------------------------------------------------


def test_a_request_without_budgets_touches_none(money, alice, bob, clock):
    budgets_set(tenant=bob.tenant, caps={"daily": CENT})

    assert money.reserve(alice, "req-1", 5 * CENT)
    money.settle(alice, "req-1", cost=5 * CENT)

    assert budget(bob, "daily").spent == 0
    assert not BudgetHold.objects.exists()


def test_another_tenants_budgets_do_not_bind(money, alice, bob, clock):
    budgets_set(tenant=bob.tenant, caps={"daily": 0})

    assert Requests(money, alice).reserve("req-1", 5 * CENT)


# --- the audit --------------------------------------------------------------


def test_the_audit_fails_on_a_budget_whose_held_is_not_its_holds(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    assert Requests(money, alice).reserve("req-1", 4 * CENT)
    Budget.objects.update(held=3 * CENT)

    err = StringIO()
    with pytest.raises(CommandError):
        call_command("billing_audit", stdout=StringIO(), stderr=err)

    assert "held 30000000 != sum of its holds 40000000" in err.getvalue()


def test_the_audit_fails_on_a_count_without_its_hold(money, alice, clock):
    budgets_set(tenant=alice.tenant, caps={"daily": 10 * CENT})
    assert Requests(money, alice).reserve("req-1", 4 * CENT)
    Hold.objects.all().delete()

    err = StringIO()
    with pytest.raises(CommandError):
        call_command("billing_audit", stdout=StringIO(), stderr=err)

    assert "counts 40000000 for req-1, whose hold is gone" in err.getvalue()


# --- setting budgets ----------------------------------------------------------


def test_setting_budgets_reports_what_changed(alice, clock):
    key = key_of(alice)
    assert budgets_set(
        tenant=alice.tenant, key=key, caps={"daily": CENT, "monthly": None}
    ) == {"daily": (None, CENT)}
    assert budgets_set(tenant=alice.tenant, key=key, caps={"daily": CENT}) == {}
    assert budgets_set(tenant=alice.tenant, key=key, caps={"daily": 2 * CENT}) == {
        "daily": (CENT, 2 * CENT)
    }
    assert budgets_set(tenant=alice.tenant, key=key, caps={"daily": None}) == {
        "daily": (2 * CENT, None)
    }
    assert not Budget.objects.exists()


@pytest.mark.parametrize("cap", [-1, 1.5, True, "1"])
def test_a_budget_must_be_a_whole_nano_usd_amount(alice, cap):
    with pytest.raises(ValueError):
        budgets_set(tenant=alice.tenant, caps={"daily": cap})


def test_a_key_of_another_tenant_cannot_get_a_budget(alice, bob):
    with pytest.raises(ValueError):
        budgets_set(tenant=alice.tenant, key=key_of(bob), caps={"daily": CENT})
