"""Wallet writes: credits, holds, releases and settlements keep the books."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from billing.holds import holds_release_expired
from billing.models import Hold, LedgerEntry, Wallet
from billing.money import usd_to_nano
from billing.services import wallet_credit
from relay.models import UsageRecord

ONE_USD = usd_to_nano("1")


def assert_books_balance():
    out = StringIO()
    call_command("billing_audit", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("OK")


def spendable(customer) -> int:
    wallet = customer.wallet
    return wallet.balance - wallet.held


# --- credits ---------------------------------------------------------------


def test_it_credits_the_balance_with_one_ledger_row(alice):
    before = alice.wallet.balance
    entry = wallet_credit(
        tenant_id=alice.tenant.pk,
        amount=usd_to_nano("5.25"),
        kind=LedgerEntry.Kind.GRANT,
        reference="grant:spring-promo",
        description="Spring promotion",
    )
    assert entry is not None
    assert alice.wallet.balance == before + usd_to_nano("5.25")
    row = LedgerEntry.objects.get(reference="grant:spring-promo")
    assert row.tenant_id == alice.tenant.pk
    assert row.amount == usd_to_nano("5.25")
    assert row.kind == LedgerEntry.Kind.GRANT
    assert_books_balance()


def test_it_debits_with_a_negative_amount(alice):
    before = alice.wallet.balance
    wallet_credit(
        tenant_id=alice.tenant.pk,
        amount=-ONE_USD,
        kind=LedgerEntry.Kind.ADJUSTMENT,
        reference="adjustment:refund-reversal",
    )
    assert alice.wallet.balance == before - ONE_USD
    assert_books_balance()


def test_it_ignores_a_replayed_reference(alice):
    before = alice.wallet.balance
    first = wallet_credit(
        tenant_id=alice.tenant.pk,
        amount=ONE_USD,
        kind=LedgerEntry.Kind.GRANT,
        reference="evt_123",
    )
    replay = wallet_credit(
        tenant_id=alice.tenant.pk,
        amount=ONE_USD,
        kind=LedgerEntry.Kind.GRANT,
        reference="evt_123",
    )
    assert first is not None
    assert replay is None
    assert alice.wallet.balance == before + ONE_USD
    assert LedgerEntry.objects.filter(reference="evt_123").count() == 1
    assert_books_balance()


# --- reserving ---------------------------------------------------------------


def test_it_reserves_when_the_spendable_balance_covers_the_hold(money, alice):
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", balance)
    wallet = alice.wallet
    assert wallet.held == balance
    assert wallet.balance == balance
    hold = Hold.objects.get(request_id="req-1")
    assert hold.tenant_id == alice.tenant.pk
    assert hold.amount == balance
    assert hold.expires_at > timezone.now()
    assert_books_balance()


def test_it_refuses_a_hold_the_balance_cannot_cover(money, alice):
    balance = alice.wallet.balance
    assert not money.reserve(alice, "req-1", balance + 1)
    wallet = alice.wallet
    assert wallet.held == 0
    assert wallet.balance == balance
    assert not Hold.objects.exists()
    assert_books_balance()


def test_it_counts_existing_holds(money, alice):
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", balance - ONE_USD)
    # Only one dollar is left to spend: two dollars cannot be reserved.
    assert not money.reserve(alice, "req-2", 2 * ONE_USD)
    assert money.reserve(alice, "req-3", ONE_USD)
    assert not money.reserve(alice, "req-4", 1)
    assert alice.wallet.held == balance
    assert set(Hold.objects.values_list("request_id", flat=True)) == {
        "req-1",
        "req-3",
    }
    assert_books_balance()


def test_two_holds_cannot_both_take_the_same_credit(money, alice):
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", balance)
    assert not money.reserve(alice, "req-2", balance)
    assert alice.wallet.held == balance
    assert spendable(alice) == 0
    assert_books_balance()


# --- releasing ---------------------------------------------------------------


def test_it_gives_a_released_hold_back(money, alice):
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.release(alice, "req-1")
    wallet = alice.wallet
    assert wallet.held == 0
    assert wallet.balance == usd_to_nano("10.00")
    assert not Hold.objects.exists()
    assert_books_balance()


def test_it_releases_a_hold_only_once(money, alice):
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.reserve(alice, "req-2", ONE_USD)
    assert money.release(alice, "req-1")
    again = money.release(alice, "req-1")
    assert again is False
    # req-2's credit is still held: the replay did not take it back.
    assert alice.wallet.held == ONE_USD
    assert_books_balance()


# --- settling ----------------------------------------------------------------


def test_it_settles_a_request(money, alice):
    before = alice.wallet.balance
    cost = usd_to_nano("0.123456789")
    assert money.reserve(alice, "req-1", ONE_USD)
    settlement = money.settle(alice, "req-1", cost=cost)
    assert settlement.charged == cost
    assert settlement.uncollected == 0
    assert not settlement.already_settled
    wallet = alice.wallet
    assert wallet.balance == before - cost
    assert wallet.held == 0
    assert not Hold.objects.exists()
    entry = LedgerEntry.objects.get(reference="usage:req-1")
    assert entry.tenant_id == alice.tenant.pk
    assert entry.kind == LedgerEntry.Kind.USAGE
    assert entry.amount == -cost
    assert entry.description == "test request"
    record = UsageRecord.objects.get(request_id="req-1")
    assert (record.tenant_id, record.cost, record.charged) == (
        alice.tenant.pk,
        cost,
        cost,
    )
    assert_books_balance()


def test_it_settles_a_request_only_once(money, alice):
    before = alice.wallet.balance
    cost = usd_to_nano("0.25")
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.reserve(alice, "req-2", ONE_USD)
    money.settle(alice, "req-1", cost=cost)
    again = money.settle(alice, "req-1", cost=cost)
    assert again.already_settled
    assert again.charged == 0
    wallet = alice.wallet
    assert wallet.balance == before - cost
    # The other request's hold is untouched by the replay.
    assert wallet.held == ONE_USD
    assert LedgerEntry.objects.filter(reference="usage:req-1").count() == 1
    assert UsageRecord.objects.get(request_id="req-1").charged == cost
    assert_books_balance()


def test_a_request_that_cost_nothing_is_recorded_once(money, alice):
    before = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    first = money.settle(alice, "req-1", cost=0)
    assert (first.charged, first.uncollected, first.already_settled) == (0, 0, False)
    # No ledger row: its usage record is what recognises the replay.
    assert not LedgerEntry.objects.filter(reference="usage:req-1").exists()
    assert alice.wallet.held == 0
    again = money.settle(alice, "req-1", cost=0)
    assert again.already_settled
    assert UsageRecord.objects.filter(request_id="req-1").count() == 1
    assert alice.wallet.balance == before
    assert_books_balance()


def test_a_request_that_cost_more_than_its_hold_is_charged_in_full(money, alice):
    before = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    settlement = money.settle(alice, "req-1", cost=3 * ONE_USD)
    assert settlement.charged == 3 * ONE_USD
    assert alice.wallet.balance == before - 3 * ONE_USD
    assert alice.wallet.held == 0
    assert_books_balance()


def test_it_never_overdraws_when_the_limit_is_zero(money, alice, settings):
    settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD = Decimal("0")
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    settlement = money.settle(alice, "req-1", cost=balance + ONE_USD)
    assert settlement.charged == balance
    assert settlement.uncollected == ONE_USD
    # The usage record shows the cost and, apart, what was collected.
    record = UsageRecord.objects.get(request_id="req-1")
    assert (record.cost, record.charged) == (balance + ONE_USD, balance)
    assert alice.wallet.balance == 0
    assert alice.wallet.held == 0
    assert_books_balance()


def test_it_overdraws_no_further_than_the_limit(money, alice, settings):
    settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD = Decimal("0.50")
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.reserve(alice, "req-2", ONE_USD)
    first = money.settle(alice, "req-1", cost=balance + 2 * ONE_USD)
    assert first.charged == balance + usd_to_nano("0.50")
    assert first.uncollected == usd_to_nano("1.50")
    assert alice.wallet.balance == -usd_to_nano("0.50")
    # Already at the limit: the next request cannot take the balance lower.
    second = money.settle(alice, "req-2", cost=ONE_USD)
    assert second.charged == 0
    assert second.uncollected == ONE_USD
    wallet = alice.wallet
    assert wallet.balance == -usd_to_nano("0.50")
    assert wallet.held == 0
    assert not Hold.objects.exists()
    assert_books_balance()


def test_a_settlement_that_collected_nothing_is_not_charged_again(
    money, alice, settings
):
    settings.SWITCHBOARD_OVERDRAFT_LIMIT_USD = Decimal("0")
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.reserve(alice, "req-2", ONE_USD)
    money.settle(alice, "req-1", cost=balance)
    first = money.settle(alice, "req-2", cost=ONE_USD)
    assert (first.charged, first.uncollected) == (0, ONE_USD)
    # Alice tops up; then the settlement of req-2 is replayed.
    alice.fund("20.00", reference="topup")
    replay = money.settle(alice, "req-2", cost=ONE_USD)
    assert replay.already_settled
    assert replay.charged == 0
    assert alice.wallet.balance == usd_to_nano("20.00")
    assert_books_balance()


def test_it_charges_a_request_whose_hold_already_expired(money, alice):
    before = alice.wallet.balance
    assert money.reserve(alice, "req-1", ONE_USD)
    assert money.reserve(alice, "req-2", ONE_USD)
    Hold.objects.filter(request_id="req-1").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert holds_release_expired() == 1
    assert alice.wallet.held == ONE_USD
    # The request finishes after all: it is charged, its hold is not
    # released a second time.
    settlement = money.settle(alice, "req-1", cost=usd_to_nano("0.4"))
    assert settlement.charged == usd_to_nano("0.4")
    wallet = alice.wallet
    assert wallet.balance == before - usd_to_nano("0.4")
    assert wallet.held == ONE_USD
    assert list(Hold.objects.values_list("request_id", flat=True)) == ["req-2"]
    assert_books_balance()


# --- tenant isolation --------------------------------------------------------


def test_alices_holds_never_touch_bobs_wallet(money, alice, bob):
    bob_before = Wallet.objects.values("balance", "held").get(tenant=bob.tenant)
    bob_ledger = list(LedgerEntry.objects.filter(tenant=bob.tenant).values())
    balance = alice.wallet.balance
    assert money.reserve(alice, "req-a1", balance)
    # Alice's wallet is fully held; Bob's credit is still his to spend.
    assert not money.reserve(alice, "req-a2", 1)
    assert Wallet.objects.values("balance", "held").get(tenant=bob.tenant) == (
        bob_before
    )
    money.settle(alice, "req-a1", cost=balance + ONE_USD)
    assert alice.wallet.balance == 0
    assert Wallet.objects.values("balance", "held").get(tenant=bob.tenant) == (
        bob_before
    )
    assert list(LedgerEntry.objects.filter(tenant=bob.tenant).values()) == bob_ledger
    assert money.reserve(bob, "req-b1", bob_before["balance"])
    assert_books_balance()


def test_alice_cannot_release_or_settle_bobs_hold(money, alice, bob):
    assert money.reserve(bob, "req-b1", ONE_USD)
    bob_balance = bob.wallet.balance
    released = money.release(alice, "req-b1")
    assert released is False
    assert bob.wallet.held == ONE_USD
    assert Hold.objects.filter(request_id="req-b1", tenant=bob.tenant).exists()
    assert alice.wallet.held == 0
    assert bob.wallet.balance == bob_balance
    assert_books_balance()
