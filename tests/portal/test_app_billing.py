"""Billing pages: top-up through (fake) Stripe, codes, alerts, payments, ledger."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry, Payment, RedemptionBatch, Wallet
from billing.redemption import redemption_batch_create
from billing.selectors import wallet_drifts
from billing.services import wallet_credit
from tests import factories


@pytest.fixture(autouse=True)
def _no_throttle_left_over():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice.user)
    return client


def codes(alice, count=1, value=2_500_000_000):
    batch = redemption_batch_create(
        name="conference", value=value, count=count, actor=alice.user
    )
    return list(batch.codes.values_list("code", flat=True))


def test_owners_see_the_forms_and_members_only_the_figures(client, alice, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_configured"  # else a notice, no top-up
    client.force_login(alice.user)
    html = client.get(reverse("billing")).content.decode()
    for action in ("billing_topup", "billing_redeem", "billing_alert"):
        assert reverse(action) in html
    assert (
        'data-testid="billing-balance"><span title="$10.000000000">$10.00</span><'
        in html
    )
    client.force_login(factories.member(alice.tenant, "mallory@example.com"))
    response = client.get(reverse("billing"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Only the owners" in html
    assert reverse("billing_topup") not in html


def test_a_preset_top_up_goes_to_stripe_checkout(
    signed_in, alice, stripe_settings, fake_stripe
):
    response = signed_in.post(reverse("billing_topup"), {"preset": "25"})
    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == payment.checkout_url
    assert payment.checkout_url == fake_stripe.session(payment.stripe_session_id)["url"]
    assert (payment.tenant, payment.created_by) == (alice.tenant, alice.user)
    assert payment.amount_cents == 2500
    [request] = fake_stripe.requests
    assert request.params["success_url"] == (
        "http://testserver/billing/topup/success/?session_id={CHECKOUT_SESSION_ID}"
    )
    assert request.params["cancel_url"] == "http://testserver/billing/topup/cancel/"


def test_a_custom_amount_wins_over_a_preset(signed_in, stripe_settings):
    signed_in.post(reverse("billing_topup"), {"preset": "25", "custom": "7"})
    assert Payment.objects.get().amount_cents == 700


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose an amount to add."),
        ({"custom": "4"}, "Choose an amount from $5 to $10,000."),
        ({"custom": "10001"}, "Choose an amount from $5 to $10,000."),
        ({"custom": "12.50"}, "Enter a whole number."),
        ({"preset": "13"}, "Select a valid choice."),
    ],
)
def test_a_bad_amount_is_explained(
    signed_in, stripe_settings, fake_stripe, data, message
):
    response = signed_in.post(reverse("billing_topup"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Payment.objects.exists()
    assert not fake_stripe.requests


def test_without_stripe_configured_the_top_up_says_so(signed_in, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = signed_in.post(reverse("billing_topup"), {"preset": "10"})
    assert response.status_code == 503
    assert "Card payments are not available" in response.content.decode()
    assert not Payment.objects.exists()


def test_redeeming_a_code_credits_the_balance_once(signed_in, alice):
    [code] = codes(alice)
    response = signed_in.post(
        reverse("billing_redeem"), {"code": code.lower().replace("-", " ")}, follow=True
    )
    assert "Code redeemed: $2.50 added to the balance." in response.content.decode()
    assert alice.wallet.balance == 12_500_000_000
    again = signed_in.post(reverse("billing_redeem"), {"code": code})
    assert again.status_code == 400
    assert "This code has already been redeemed." in again.content.decode()
    assert alice.wallet.balance == 12_500_000_000
    assert wallet_drifts() == []


def test_unknown_and_expired_codes_are_explained(signed_in, alice):
    [code] = codes(alice)
    RedemptionBatch.objects.update(expires_at=timezone.now() - timedelta(days=1))
    unknown = signed_in.post(reverse("billing_redeem"), {"code": "NOPE-NOPE"})
    assert "This code does not exist." in unknown.content.decode()
    expired = signed_in.post(reverse("billing_redeem"), {"code": code})
    assert "This code expired on" in expired.content.decode()
    assert alice.wallet.balance == 10_000_000_000


def test_redeem_attempts_are_throttled_per_tenant(client, signed_in, alice, bob):
    [code] = codes(alice)
    for _ in range(10):
        assert (
            signed_in.post(reverse("billing_redeem"), {"code": "X"}).status_code == 400
        )
    throttled = signed_in.post(reverse("billing_redeem"), {"code": code})
    assert throttled.status_code == 429
    assert "Too many attempts" in throttled.content.decode()
    assert alice.wallet.balance == 10_000_000_000
    client.force_login(bob.user)  # another tenant keeps its own attempts
    assert client.post(reverse("billing_redeem"), {"code": code}).status_code == 302
    assert bob.wallet.balance == 12_500_000_000


def test_the_alert_threshold_is_set_and_cleared(signed_in, alice):
    response = signed_in.post(
        reverse("billing_alert"), {"threshold": "5.50"}, follow=True
    )
    assert alice.wallet.low_balance_threshold == 5_500_000_000
    assert "falls below $5.50" in response.content.decode()
    form = signed_in.get(reverse("billing")).context["alert_form"]
    assert str(form["threshold"].value()) == "5.5"
    signed_in.post(reverse("billing_alert"), {"threshold": ""})
    assert alice.wallet.low_balance_threshold is None
    bad = signed_in.post(reverse("billing_alert"), {"threshold": "-1"})
    assert bad.status_code == 400
    assert alice.wallet.low_balance_threshold is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("billing_topup", {"preset": "25"}),
        ("billing_redeem", {"code": "CODE"}),
        ("billing_alert", {"threshold": "1"}),
    ],
)
def test_members_cannot_top_up_redeem_or_set_alerts(
    client, alice, stripe_settings, fake_stripe, name, data
):
    client.force_login(factories.member(alice.tenant, "mallory@example.com"))
    assert client.post(reverse(name), data).status_code == 403
    assert not Payment.objects.exists()
    assert not fake_stripe.requests
    assert alice.wallet.low_balance_threshold is None


def test_payments_are_listed_with_their_status(signed_in, alice):
    factories.payment(
        alice,
        amount_cents=2500,
        stripe_session_id="cs_test_a",
        status=Payment.Status.PAID,
        paid_at=timezone.now(),
        refunded_cents=500,
    )
    open_ = factories.payment(
        alice,
        amount_cents=1000,
        stripe_session_id="cs_test_b",
        checkout_url="https://checkout.stripe.com/c/pay/cs_test_b",
    )
    html = signed_in.get(reverse("billing_payments")).content.decode()
    assert "$25.00" in html and "Paid" in html and "$5.00" in html
    assert "$10.00" in html and "Awaiting payment" in html
    detail = signed_in.get(reverse("billing_payment", args=[open_.pk]))
    assert "https://checkout.stripe.com/c/pay/cs_test_b" in detail.content.decode()


def test_the_ledger_shows_the_exact_balance_after_every_row(signed_in, alice):
    amounts = [1_000_000_001 * (-1) ** n * (n + 1) for n in range(54)]
    now = timezone.now()
    for n, amount in enumerate(amounts):
        wallet_credit(
            tenant_id=alice.tenant.pk,
            amount=amount,
            kind="adjustment",
            reference=f"row-{n}",
        )
    # Rows of one instant are ordered by id.
    LedgerEntry.objects.filter(tenant=alice.tenant).update(created_at=now)
    expected, running = [], 0
    for entry in LedgerEntry.objects.filter(tenant=alice.tenant).order_by("pk"):
        running += entry.amount
        expected.append((entry.reference, running))
    expected.reverse()
    shown = []
    for page in (1, 2):
        response = signed_in.get(reverse("billing_ledger"), {"page": page})
        shown += [(e.reference, e.running) for e in response.context["page"]]
    assert shown == expected
    assert shown[0][1] == Wallet.objects.get(tenant=alice.tenant).balance
    assert len(shown) == 55


def test_the_invite_link_signs_up_a_company_referred_by_this_one(
    client, alice, settings
):
    settings.SWITCHBOARD_REFERRAL_REWARD_USD = "5.00"
    client.force_login(alice.user)
    html = client.get(reverse("billing")).content.decode()
    assert '<span title="$5.000000000">$5.00</span> of credit' in html
    link = f"http://testserver/signup/?ref={alice.tenant.referral_code}"
    assert f'value="{link}"' in html
    client.logout()
    form = client.get(link).content.decode()
    assert f'name="ref" value="{alice.tenant.referral_code}"' in form


def test_no_invite_section_without_a_reward(signed_in, settings):
    settings.SWITCHBOARD_REFERRAL_REWARD_USD = "0"
    assert "Invite a company" not in signed_in.get(reverse("billing")).content.decode()
