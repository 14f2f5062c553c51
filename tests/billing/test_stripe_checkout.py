"""Opening Stripe Checkout for a top-up, and the pages Checkout returns to."""

import pytest

from billing.models import LedgerEntry, Payment
from billing.payments import (
    CheckoutFailed,
    TopUpAmountError,
    checkout_start,
    payment_reference,
    topup_amount_check,
)
from billing.selectors import wallet_drifts
from billing.stripe_api import StripeNotConfigured

NANO_PER_CENT = 10_000_000


def test_it_opens_a_checkout_session(alice, stripe_flow, fake_stripe):
    payment = stripe_flow.start(alice, 25)

    session = fake_stripe.session(payment.stripe_session_id)
    assert payment.stripe_session_id.startswith("cs_test_")
    assert payment.checkout_url == session["url"]
    assert payment.status == Payment.Status.OPEN
    assert payment.amount_cents == 2500
    assert payment.tenant == alice.tenant
    assert payment.created_by == alice.user
    assert session["amount_total"] == 2500
    assert session["currency"] == "usd"
    assert session["metadata"] == {
        "switchboard_tenant_id": str(alice.tenant.pk),
        "switchboard_payment_id": str(payment.pk),
    }
    assert session["client_reference_id"] == f"tenant-{alice.tenant.pk}"
    [request] = fake_stripe.requests
    assert request.params["mode"] == "payment"
    assert request.params["success_url"].endswith("={CHECKOUT_SESSION_ID}")
    assert request.params["customer_email"] == "alice@example.com"
    assert request.headers["idempotency-key"] == f"switchboard-checkout-{payment.pk}"


def test_a_top_up_is_credited_exactly_end_to_end(alice, stripe_flow, fake_stripe):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = fake_stripe.session_event(
        "checkout.session.completed", payment.stripe_session_id
    )

    response = stripe_flow.deliver(event)

    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "processed"}
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.paid_at is not None
    session = fake_stripe.session(payment.stripe_session_id)
    assert payment.stripe_payment_intent == session["payment_intent"]
    assert alice.wallet.balance == before + 2500 * NANO_PER_CENT
    entry = LedgerEntry.objects.get(reference=payment_reference(session["id"]))
    assert entry.kind == LedgerEntry.Kind.PAYMENT
    assert entry.amount == 25_000_000_000
    assert entry.promo_amount == 0
    assert wallet_drifts() == []


@pytest.mark.parametrize(
    "amount",
    [0, -500, 400, 1050, 10_000 * 100 + 100, 2500.0, "2500", True, None],
)
def test_it_refuses_bad_amounts(alice, stripe_flow, fake_stripe, amount):
    with pytest.raises(TopUpAmountError):
        checkout_start(
            tenant=alice.tenant,
            user=alice.user,
            amount_cents=amount,
            success_url="https://switchboard.test/ok",
            cancel_url="https://switchboard.test/cancel",
        )
    assert not Payment.objects.exists()
    assert fake_stripe.requests == []


def test_the_bounds_and_presets_are_accepted(settings):
    settings.SWITCHBOARD_TOPUP_MIN_USD = 5
    settings.SWITCHBOARD_TOPUP_MAX_USD = 500
    for usd in [5, 500, *settings.SWITCHBOARD_TOPUP_PRESETS_USD]:
        assert topup_amount_check(usd * 100) == usd * 100
    with pytest.raises(TopUpAmountError, match=r"between \$5 and \$500"):
        topup_amount_check(501 * 100)
    with pytest.raises(TopUpAmountError, match="whole dollars"):
        topup_amount_check(1099)


def test_it_needs_a_secret_key(alice, stripe_settings, fake_stripe):
    stripe_settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(StripeNotConfigured, match="STRIPE_SECRET_KEY"):
        checkout_start(
            tenant=alice.tenant,
            user=alice.user,
            amount_cents=2500,
            success_url="https://switchboard.test/ok",
            cancel_url="https://switchboard.test/cancel",
        )
    assert not Payment.objects.exists()


def test_a_refused_checkout_leaves_no_payment(alice, stripe_flow, stripe_settings):
    stripe_settings.STRIPE_SECRET_KEY = "sk_test_not_the_right_one"
    with pytest.raises(CheckoutFailed):
        stripe_flow.start(alice, 25)
    assert not Payment.objects.exists()


def test_the_success_page_shows_the_payment(alice, stripe_flow, client):
    payment = stripe_flow.pay(alice, 25)
    client.force_login(alice.user)

    response = client.get(
        "/billing/topup/success/", {"session_id": payment.stripe_session_id}
    )

    assert response.status_code == 200
    assert b'data-status="paid"' in response.content
    assert b"$25.00 has been added" in response.content


def test_the_success_page_asks_stripe_before_the_webhook(
    alice, stripe_flow, fake_stripe, client
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 10)
    fake_stripe.complete(payment.stripe_session_id)
    client.force_login(alice.user)

    response = client.get(
        "/billing/topup/success/", {"session_id": payment.stripe_session_id}
    )

    assert b'data-status="paid"' in response.content
    assert alice.wallet.balance == before + 1000 * NANO_PER_CENT
    # The webhook arriving afterwards changes nothing.
    event = fake_stripe.session_event(
        "checkout.session.completed", payment.stripe_session_id
    )
    assert stripe_flow.deliver(event).status_code == 200
    assert alice.wallet.balance == before + 1000 * NANO_PER_CENT
    assert wallet_drifts() == []


def test_the_success_page_shows_an_unpaid_session_as_open(alice, stripe_flow, client):
    payment = stripe_flow.start(alice, 10)
    client.force_login(alice.user)

    response = client.get(
        "/billing/topup/success/", {"session_id": payment.stripe_session_id}
    )

    assert response.status_code == 200
    assert b'data-status="open"' in response.content


def test_bob_cannot_see_alices_payment(alice, bob, stripe_flow, client):
    payment = stripe_flow.pay(alice, 25)
    client.force_login(bob.user)

    response = client.get(
        "/billing/topup/success/", {"session_id": payment.stripe_session_id}
    )

    assert response.status_code == 404


def test_the_success_page_needs_a_session_id(alice, stripe_flow, client):
    client.force_login(alice.user)
    assert client.get("/billing/topup/success/").status_code == 404


def test_the_return_pages_need_a_login(alice, stripe_flow, client):
    payment = stripe_flow.pay(alice, 25)
    response = client.get(
        "/billing/topup/success/", {"session_id": payment.stripe_session_id}
    )
    assert response.status_code == 302
    assert client.get("/billing/topup/cancel/").status_code == 302


def test_the_cancel_page(alice, client):
    client.force_login(alice.user)
    response = client.get("/billing/topup/cancel/")
    assert response.status_code == 200
    assert b"nothing was charged" in response.content
