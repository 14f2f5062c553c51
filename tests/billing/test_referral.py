"""Referral reward: paid once, after the invitee's first paid top-up."""

from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from billing.payments import payments_reconcile
from billing.selectors import wallet_drifts
from tests import factories
from tests.factories import Customer


@pytest.fixture
def carol(alice) -> Customer:
    """A tenant that signed up through Alice's invite link."""
    return factories.customer("carol", usd="", referred_by=alice.tenant)


def rewards(customer) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(
            tenant=customer.tenant, kind=LedgerEntry.Kind.REFERRAL
        )
    )


def test_the_inviter_is_rewarded_after_the_first_paid_top_up(
    alice, carol, stripe_flow, settings
):
    settings.SWITCHBOARD_REFERRAL_REWARD_USD = Decimal("7.50")
    before = alice.wallet.balance

    stripe_flow.pay(carol, 10)

    [reward] = rewards(alice)
    assert reward.amount == 7_500_000_000
    assert reward.reference == f"referral:{carol.tenant.pk}"
    assert alice.wallet.balance == before + 7_500_000_000
    assert carol.wallet.balance == 10 * 10**9
    assert rewards(carol) == []
    assert wallet_drifts() == []


def test_a_second_top_up_rewards_nothing_more(alice, carol, stripe_flow):
    stripe_flow.pay(carol, 10)
    after_first = alice.wallet.balance

    stripe_flow.pay(carol, 25)

    assert len(rewards(alice)) == 1
    assert alice.wallet.balance == after_first
    assert wallet_drifts() == []


def test_no_reward_before_money_comes_in(alice, carol, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    unpaid = stripe_flow.start(carol, 10)
    fake_stripe.complete(unpaid.stripe_session_id, paid=False)
    stripe_flow.deliver(
        fake_stripe.session_event(
            "checkout.session.completed", unpaid.stripe_session_id
        )
    )
    expired = stripe_flow.start(carol, 10)
    fake_stripe.expire(expired.stripe_session_id)
    stripe_flow.deliver(
        fake_stripe.session_event("checkout.session.expired", expired.stripe_session_id)
    )

    assert rewards(alice) == []
    assert alice.wallet.balance == before

    # The delayed payment clearing is the first paid top-up.
    fake_stripe.async_succeed(unpaid.stripe_session_id)
    stripe_flow.deliver(
        fake_stripe.session_event(
            "checkout.session.async_payment_succeeded", unpaid.stripe_session_id
        )
    )
    assert len(rewards(alice)) == 1
    assert wallet_drifts() == []


def test_a_top_up_credited_by_reconciliation_rewards_once(
    alice, carol, stripe_flow, fake_stripe
):
    payment = stripe_flow.start(carol, 10)
    fake_stripe.complete(payment.stripe_session_id)

    payments_reconcile()
    payments_reconcile()
    stripe_flow.deliver(
        fake_stripe.session_event(
            "checkout.session.completed", payment.stripe_session_id
        )
    )

    assert len(rewards(alice)) == 1
    assert wallet_drifts() == []


def test_tenants_nobody_invited_reward_nobody(alice, bob, stripe_flow):
    stripe_flow.pay(bob, 10)
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFERRAL).exists()


def test_a_zero_reward_is_switched_off(alice, carol, stripe_flow, settings):
    settings.SWITCHBOARD_REFERRAL_REWARD_USD = Decimal("0")
    stripe_flow.pay(carol, 10)
    assert rewards(alice) == []
