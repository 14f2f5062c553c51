"""Reconciliation: paid sessions whose webhook never arrived are credited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing import payments
from billing.models import LedgerEntry, Payment
from billing.payments import payments_reconcile
from billing.selectors import wallet_drifts
from billing.tasks import reconcile_stripe_payments
from tests import factories

NANO_PER_CENT = 10_000_000


def payment_rows(customer) -> int:
    return LedgerEntry.objects.filter(
        tenant=customer.tenant, kind=LedgerEntry.Kind.PAYMENT
    ).count()


def test_a_lost_webhook_is_recovered(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    # checkout.session.completed is lost on the way.

    result = payments_reconcile()

    assert result.credited == [payment.stripe_session_id]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert alice.wallet.balance == before + 2500 * NANO_PER_CENT

    # A second run, and the webhook turning up after all, credit nothing more.
    assert payments_reconcile().credited == []
    event = fake_stripe.session_event(
        "checkout.session.completed", payment.stripe_session_id
    )
    assert stripe_flow.deliver(event).status_code == 200
    assert alice.wallet.balance == before + 2500 * NANO_PER_CENT
    assert payment_rows(alice) == 1
    assert wallet_drifts() == []


def test_expired_sessions_are_marked_and_open_ones_left(
    alice, stripe_flow, fake_stripe
):
    expired = stripe_flow.start(alice, 10)
    still_open = stripe_flow.start(alice, 20)
    fake_stripe.expire(expired.stripe_session_id)

    result = payments_reconcile()

    assert result.expired == [expired.stripe_session_id]
    expired.refresh_from_db()
    still_open.refresh_from_db()
    assert expired.status == Payment.Status.EXPIRED
    assert still_open.status == Payment.Status.OPEN
    assert payment_rows(alice) == 0


def test_it_pages_through_every_recent_session(
    alice, bob, stripe_flow, fake_stripe, monkeypatch
):
    monkeypatch.setattr(payments, "RECONCILE_PAGE_SIZE", 2)
    alice_before, bob_before = alice.wallet.balance, bob.wallet.balance
    paid = []
    for customer, usd in [(alice, 10), (bob, 20), (alice, 30), (bob, 40), (alice, 50)]:
        payment = stripe_flow.start(customer, usd)
        fake_stripe.complete(payment.stripe_session_id)
        paid.append(payment.stripe_session_id)

    result = payments_reconcile()

    assert sorted(result.credited) == sorted(paid)
    assert result.seen == 5
    listings = [r for r in fake_stripe.requests if r.method == "GET"]
    assert len(listings) == 3
    assert listings[1].params["starting_after"]
    assert alice.wallet.balance == alice_before + 9000 * NANO_PER_CENT
    assert bob.wallet.balance == bob_before + 6000 * NANO_PER_CENT
    assert wallet_drifts() == []


def test_it_looks_back_only_so_far(alice, stripe_flow, fake_stripe, settings):
    settings.SWITCHBOARD_RECONCILE_HOURS = 48
    before = alice.wallet.balance
    old = stripe_flow.start(alice, 10)
    fake_stripe.complete(old.stripe_session_id)
    fake_stripe.backdate(old.stripe_session_id, 49 * 3600)

    result = payments_reconcile()

    assert result.seen == 0
    listing = [r for r in fake_stripe.requests if r.method == "GET"][0]
    assert (
        int(listing.params["created"]["gte"])
        > fake_stripe.session(old.stripe_session_id)["created"]
    )
    assert alice.wallet.balance == before


def test_it_stops_at_its_bound(alice, stripe_flow, fake_stripe, monkeypatch):
    monkeypatch.setattr(payments, "RECONCILE_PAGE_SIZE", 2)
    monkeypatch.setattr(payments, "RECONCILE_MAX_SESSIONS", 3)
    for _ in range(5):
        fake_stripe.complete(stripe_flow.start(alice, 10).stripe_session_id)

    result = payments_reconcile()

    assert result.seen == 3
    assert len(result.credited) == 3
    assert wallet_drifts() == []


def test_sessions_of_other_apps_are_left_alone(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 10)
    fake_stripe.complete(payment.stripe_session_id)
    Payment.objects.filter(pk=payment.pk).update(stripe_session_id="cs_test_ours")

    result = payments_reconcile()

    assert result.seen == 1
    assert result.credited == []
    assert alice.wallet.balance == before


def test_nothing_pending_asks_stripe_nothing(alice, stripe_flow, fake_stripe):
    stripe_flow.pay(alice, 10)
    requests_before = len(fake_stripe.requests)

    assert payments_reconcile().seen == 0
    assert len(fake_stripe.requests) == requests_before


def test_the_celery_task(alice, stripe_flow, fake_stripe):
    payment = stripe_flow.start(alice, 10)
    fake_stripe.complete(payment.stripe_session_id)

    summary = reconcile_stripe_payments()

    assert summary == {"seen": 1, "credited": 1, "expired": 0}


@pytest.mark.django_db
def test_the_celery_task_without_stripe_does_nothing(settings):
    settings.STRIPE_SECRET_KEY = ""
    assert "skipped" in reconcile_stripe_payments()


def test_placeholders_that_never_reached_stripe_expire(alice, stripe_flow):
    old = factories.payment(
        alice,
        amount_cents=1000,
        stripe_session_id="pending:died-before-stripe-answered",
        created_at=timezone.now() - timedelta(hours=2),
    )
    fresh = factories.payment(
        alice,
        amount_cents=1000,
        stripe_session_id="pending:stripe-still-answering",
    )
    assert payments_reconcile().abandoned == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, fresh.status) == ("expired", "open")
    assert payment_rows(alice) == 0
