"""Stripe's webhook deliveries: verified, applied once, in any order."""

import logging
import threading
import time

import httpx
import pytest

from accounts import auth
from billing.models import LedgerEntry, Payment, StripeEvent
from billing.payments import payments_reconcile, stripe_event_process
from billing.selectors import wallet_drifts
from billing.services import wallet_credit

NANO_PER_CENT = 10_000_000


def kinds(customer) -> list[str]:
    return list(
        LedgerEntry.objects.filter(tenant=customer.tenant)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def completed(fake, payment) -> dict:
    return fake.session_event("checkout.session.completed", payment.stripe_session_id)


def spend_everything(customer) -> None:
    wallet_credit(
        tenant_id=customer.tenant.pk,
        amount=-customer.wallet.balance,
        kind=LedgerEntry.Kind.USAGE,
        reference=f"usage:test-spend-{customer.tenant.pk}",
    )


def test_the_same_event_replayed_five_times_credits_once(
    alice, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 50)
    fake_stripe.complete(payment.stripe_session_id)
    event = completed(fake_stripe, payment)

    outcomes = [stripe_flow.deliver(event).json()["outcome"] for _ in range(5)]

    assert outcomes == ["processed"] + ["duplicate"] * 4
    assert alice.wallet.balance == before + 5000 * NANO_PER_CENT
    assert kinds(alice).count(LedgerEntry.Kind.PAYMENT) == 1
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert wallet_drifts() == []


def test_one_session_through_every_path_credits_once(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 20)
    session_id = payment.stripe_session_id
    fake_stripe.complete(session_id)

    for type_ in [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.completed",
    ]:
        response = stripe_flow.deliver(fake_stripe.session_event(type_, session_id))
        assert response.json()["outcome"] == "processed"
    result = payments_reconcile()

    assert result.credited == []
    assert alice.wallet.balance == before + 2000 * NANO_PER_CENT
    assert kinds(alice).count(LedgerEntry.Kind.PAYMENT) == 1
    assert wallet_drifts() == []


@pytest.mark.parametrize(
    "tamper",
    ["forged", "missing", "stale", "altered payload", "garbage header"],
)
def test_a_bad_signature_is_refused_and_changes_nothing(
    alice, stripe_flow, fake_stripe, tamper
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    payload, signature = fake_stripe.signed(completed(fake_stripe, payment))
    if tamper == "forged":
        signature = fake_stripe.sign(payload, secret="whsec_somebody_else")
    elif tamper == "missing":
        signature = None
    elif tamper == "stale":
        signature = fake_stripe.sign(payload, timestamp=int(time.time()) - 600)
    elif tamper == "altered payload":
        payload = payload.replace('"amount_total": 2500', '"amount_total": 250000')
        assert "250000" in payload
    else:
        signature = "t=not-a-time,v1=zzz"

    response = stripe_flow.post(payload, signature)

    assert response.status_code == 400
    assert "error" in response.json()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.OPEN
    assert alice.wallet.balance == before
    assert not StripeEvent.objects.exists()


def test_without_a_webhook_secret_nothing_is_accepted(
    alice, stripe_flow, fake_stripe, stripe_settings
):
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = completed(fake_stripe, payment)
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""

    response = stripe_flow.deliver(event)

    assert response.status_code == 503
    assert not StripeEvent.objects.exists()


def test_the_webhook_only_takes_posts(db, stripe_flow, client):
    assert client.get("/billing/stripe/webhook/").status_code == 405


def test_an_unpaid_completion_waits_for_the_async_payment(
    alice, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 30)
    session_id = payment.stripe_session_id
    fake_stripe.complete(session_id, paid=False)

    stripe_flow.deliver(completed(fake_stripe, payment))

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSING
    assert alice.wallet.balance == before

    fake_stripe.async_succeed(session_id)
    event = fake_stripe.session_event(
        "checkout.session.async_payment_succeeded", session_id
    )
    assert stripe_flow.deliver(event).status_code == 200

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert alice.wallet.balance == before + 3000 * NANO_PER_CENT
    assert wallet_drifts() == []


def test_a_failed_async_payment_is_marked_failed(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 30)
    session_id = payment.stripe_session_id
    fake_stripe.complete(session_id, paid=False)
    late_completion = completed(fake_stripe, payment)
    fake_stripe.async_fail(session_id)

    stripe_flow.deliver(
        fake_stripe.session_event("checkout.session.async_payment_failed", session_id)
    )
    # Stripe does not promise order: the completion arriving late does not
    # bring a failed payment back to "processing".
    stripe_flow.deliver(late_completion)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert alice.wallet.balance == before
    assert wallet_drifts() == []


def test_an_expired_session_is_marked_expired(alice, stripe_flow, fake_stripe):
    payment = stripe_flow.start(alice, 30)
    fake_stripe.expire(payment.stripe_session_id)

    stripe_flow.deliver(
        fake_stripe.session_event("checkout.session.expired", payment.stripe_session_id)
    )

    payment.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED
    assert kinds(alice) == [LedgerEntry.Kind.GRANT]


def test_refunds_claw_back_cumulatively_even_below_zero(
    alice, stripe_flow, fake_stripe
):
    payment = stripe_flow.pay(alice, 20)
    spend_everything(alice)
    assert alice.wallet.balance == 0
    session_id = payment.stripe_session_id
    partial = fake_stripe.charge_refunded(session_id, amount_refunded=500)
    full = fake_stripe.charge_refunded(session_id, amount_refunded=2000)

    assert stripe_flow.deliver(partial).status_code == 200
    assert alice.wallet.balance == -500 * NANO_PER_CENT

    assert stripe_flow.deliver(full).status_code == 200
    assert alice.wallet.balance == -2000 * NANO_PER_CENT

    # A replay, and a delayed copy of the partial refund under a new event
    # id, take nothing more.
    stripe_flow.deliver(full)
    stripe_flow.deliver(fake_stripe.charge_refunded(session_id, amount_refunded=500))
    assert alice.wallet.balance == -2000 * NANO_PER_CENT
    payment.refresh_from_db()
    assert payment.refunded_cents == 2000
    refunds = LedgerEntry.objects.filter(
        tenant=alice.tenant, kind=LedgerEntry.Kind.REFUND
    ).order_by("pk")
    assert [entry.amount for entry in refunds] == [
        -500 * NANO_PER_CENT,
        -1500 * NANO_PER_CENT,
    ]
    assert wallet_drifts() == []


def test_a_refund_whose_payment_webhook_was_lost_credits_first(
    alice, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 40)
    fake_stripe.complete(payment.stripe_session_id)
    # checkout.session.completed never arrives; the refund does.

    refund = fake_stripe.charge_refunded(payment.stripe_session_id, 1000)
    assert stripe_flow.deliver(refund).status_code == 200

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.refunded_cents == 1000
    assert alice.wallet.balance == before + 3000 * NANO_PER_CENT
    assert kinds(alice) == [
        LedgerEntry.Kind.GRANT,
        LedgerEntry.Kind.PAYMENT,
        LedgerEntry.Kind.REFUND,
    ]
    assert wallet_drifts() == []


def test_a_dispute_claws_back_and_suspends_the_tenant(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.pay(alice, 50)
    session_id = payment.stripe_session_id
    stripe_flow.deliver(fake_stripe.charge_refunded(session_id, 1000))
    dispute = fake_stripe.dispute_created(session_id)  # the whole $50

    for _ in range(2):
        assert stripe_flow.deliver(dispute).status_code == 200

    payment.refresh_from_db()
    # Only what was not refunded already can be taken back.
    assert payment.disputed_cents == 4000
    assert alice.wallet.balance == before
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.DISPUTE)
    assert entry.amount == -4000 * NANO_PER_CENT
    assert entry.reference == f"stripe:dispute:{dispute['data']['object']['id']}"
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is False
    assert dispute["data"]["object"]["id"] in alice.tenant.suspended_reason
    # A later refund cannot take back more than was paid.
    stripe_flow.deliver(fake_stripe.charge_refunded(session_id, 5000))
    assert alice.wallet.balance == before
    assert wallet_drifts() == []


def test_a_disputed_tenants_keys_are_refused(
    alice, stripe_flow, fake_stripe, relay, channel
):
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {alice.secret}"}
    payment = stripe_flow.pay(alice, 25)
    url = f"{relay}/chat/completions"
    assert httpx.post(url, json=body, headers=headers).is_success

    stripe_flow.deliver(fake_stripe.dispute_created(payment.stripe_session_id))
    auth.forget_cached_keys()

    response = httpx.post(url, json=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"
    assert wallet_drifts() == []


def test_unknown_event_types_are_acknowledged_and_ignored(db, stripe_flow, fake_stripe):
    event = fake_stripe.event("customer.created", {"id": "cus_123", "object": "x"})

    response = stripe_flow.deliver(event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert not StripeEvent.objects.exists()


def test_sessions_switchboard_did_not_create_are_ignored(
    alice, stripe_flow, fake_stripe, caplog
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = completed(fake_stripe, payment)
    event["data"]["object"]["id"] = "cs_test_from_another_app"

    with caplog.at_level(logging.WARNING, logger="billing.payments"):
        response = stripe_flow.deliver(event)

    assert response.status_code == 200
    assert "cs_test_from_another_app" in caplog.text
    assert alice.wallet.balance == before


def test_a_session_naming_another_tenant_is_not_credited(
    alice, bob, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = completed(fake_stripe, payment)
    event["data"]["object"]["metadata"]["switchboard_tenant_id"] = str(bob.tenant.pk)

    stripe_flow.deliver(event)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.OPEN
    assert alice.wallet.balance == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_session_credit_once(
    alice, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    # Four distinct events about the session, the first one delivered 4 times.
    events = [completed(fake_stripe, payment) for _ in range(4)]
    events += [events[0]] * 3
    barrier = threading.Barrier(len(events), timeout=10)
    outcomes, errors = [], []

    def deliver(event):
        from django.db import connection

        try:
            barrier.wait()
            outcomes.append(stripe_event_process(event))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(outcomes) == ["duplicate"] * 3 + ["processed"] * 4
    assert alice.wallet.balance == before + 2500 * NANO_PER_CENT
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 1
    assert wallet_drifts() == []


@pytest.mark.parametrize(("status", "returned"), [("won", 2500), ("lost", 0)])
def test_a_dispute_won_gives_the_credit_back(
    alice, stripe_flow, fake_stripe, status, returned
):
    before = alice.wallet.balance
    payment = stripe_flow.pay(alice, 25)
    created = fake_stripe.dispute_created(payment.stripe_session_id)
    stripe_flow.deliver(created)
    assert alice.wallet.balance == before

    closed = fake_stripe.dispute_closed(created, status)
    for _ in range(2):
        assert stripe_flow.deliver(closed).status_code == 200

    assert alice.wallet.balance == before + returned * NANO_PER_CENT
    payment.refresh_from_db()
    assert payment.disputed_cents == 2500 - returned
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is False  # staff decide when to resume
    assert wallet_drifts() == []
