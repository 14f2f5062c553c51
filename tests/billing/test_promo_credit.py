"""The promotional bucket: spent first, only where allowed, gone at expiry."""

from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import LedgerEntry, Wallet
from billing.money import usd_to_nano
from billing.selectors import wallet_drifts
from billing.starter import promo_expire_due
from onboarding.tenants import email_verify
from relay.models import UsageRecord
from tests import factories

ONE_USD = usd_to_nano("1")


@pytest.fixture
def carol(db, prices):
    """A customer with $1 of starter credit and $2 paid."""
    customer = factories.customer("carol", usd="2.00")
    email_verify(user=customer.user)
    return customer


def wallet_of(customer) -> Wallet:
    return Wallet.objects.get(tenant=customer.tenant)


@pytest.fixture
def settle(money):
    """Reserve `cost` for a request, then settle it at that cost."""

    def reserve_and_settle(customer, cost, *, request_id, promo_ok=True):
        assert money.reserve(customer, request_id, cost, promo_ok=promo_ok)
        return money.settle(customer, request_id, cost=cost, promo_ok=promo_ok)

    return reserve_and_settle


def test_starter_credit_is_a_promotional_part_of_the_balance(carol):
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (3 * ONE_USD, ONE_USD)
    assert wallet.promo_expires_at > timezone.now() + timedelta(days=29)
    assert wallet_drifts() == []


def test_promotional_credit_is_spent_before_paid_credit(settle, carol):
    settle(carol, 600_000_000, request_id="req-1")
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (2_400_000_000, 400_000_000)
    # The next charge takes the rest of the promo, then paid credit.
    settle(carol, 500_000_000, request_id="req-2")
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (1_900_000_000, 0)
    second = LedgerEntry.objects.get(reference="usage:req-2")
    assert (second.amount, second.promo_amount) == (-500_000_000, -400_000_000)
    assert wallet_drifts() == []


def test_a_model_promotional_credit_may_not_pay_for_uses_paid_credit_only(
    money, settle, carol
):
    settle(carol, 1_500_000_000, request_id="req-1", promo_ok=False)
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (1_500_000_000, ONE_USD)
    # $0.50 of paid credit left: a $0.60 hold is refused though the balance
    # ($1.50 with the promo) would cover it.
    assert not money.reserve(carol, "req-2", 600_000_000, promo_ok=False)
    assert money.reserve(carol, "req-3", 600_000_000, promo_ok=True)


def test_settlement_never_charges_promo_for_a_disallowed_model_beyond_paid(
    money, carol
):
    # Reserved while allowed, settled as disallowed (the allowlist changed):
    # the charge is capped at the paid credit.
    assert money.reserve(carol, "req-1", ONE_USD, promo_ok=True)
    settlement = money.settle(carol, "req-1", cost=3 * ONE_USD, promo_ok=False)
    assert (settlement.charged, settlement.uncollected) == (2 * ONE_USD, ONE_USD)
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo, wallet.held) == (ONE_USD, ONE_USD, 0)
    assert wallet_drifts() == []


def test_expiry_removes_the_unused_remainder_with_one_ledger_row(settle, carol):
    settle(carol, 300_000_000, request_id="req-1")
    Wallet.objects.filter(tenant=carol.tenant).update(
        promo_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert promo_expire_due() == 1
    assert promo_expire_due() == 0  # nothing left to expire
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (2 * ONE_USD, 0)
    assert wallet.promo_expires_at is None
    expiry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.EXPIRY)
    assert (expiry.amount, expiry.promo_amount) == (-700_000_000, -700_000_000)
    assert wallet_drifts() == []
    call_command("billing_audit")


def test_expired_promotional_credit_is_not_spendable_before_the_sweep(
    money, settle, carol
):
    Wallet.objects.filter(tenant=carol.tenant).update(
        promo_expires_at=timezone.now() - timedelta(seconds=1)
    )
    # $3 balance, but $1 of it expired: a $2.50 hold is refused.
    assert not money.reserve(carol, "req-1", 2_500_000_000)
    settlement = settle(carol, ONE_USD, request_id="req-2")
    assert settlement.charged == ONE_USD
    wallet = wallet_of(carol)
    assert (wallet.balance, wallet.promo) == (2 * ONE_USD, ONE_USD)
    promo_expire_due()
    assert (wallet_of(carol).balance, wallet_of(carol).promo) == (ONE_USD, 0)
    assert wallet_drifts() == []


def test_the_relay_spends_promo_first_and_honours_the_allowlist(
    relay, channel, carol, settings
):
    def call(model):
        return httpx.post(
            f"{relay}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {carol.secret}"},
            timeout=10,
        )

    assert call("gpt-4.1-mini").status_code == 200
    record = UsageRecord.objects.get()
    wallet = wallet_of(carol)
    assert wallet.promo == ONE_USD - record.charged > 0
    assert wallet.balance == 3 * ONE_USD - record.charged
    entry = LedgerEntry.objects.get(reference=f"usage:{record.request_id}")
    assert (entry.amount, entry.promo_amount) == (-record.charged, -record.charged)
    assert entry.description == (
        f"gpt-4.1-mini ({record.prompt_tokens} in, {record.completion_tokens} out)"
    )

    settings.SWITCHBOARD_PROMO_MODELS = frozenset({"gpt-4.1-nano"})
    assert call("gpt-4.1-mini").status_code == 200
    second = UsageRecord.objects.exclude(pk=record.pk).get()
    wallet = wallet_of(carol)
    assert wallet.promo == ONE_USD - record.charged  # untouched
    assert wallet.balance == 3 * ONE_USD - record.charged - second.charged
    assert wallet_drifts() == []
