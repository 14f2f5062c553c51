"""Checkout offers the account's enabled payment methods, not only cards."""

import pytest
import stripe

from billing.payments import CURRENCY
from billing.stripe_api import stripe_client


def test_checkout_leaves_the_methods_to_the_account(alice, stripe_flow, fake_stripe):
    payment = stripe_flow.start(alice, 25)

    [request] = fake_stripe.requests
    # No card-only list: Stripe offers what the dashboard has turned on.
    assert "payment_method_types" not in request.params
    assert request.params["payment_method_options"] == {"wechat_pay": {"client": "web"}}
    session = fake_stripe.session(payment.stripe_session_id)
    assert session["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert session["amount_total"] == 2500
    assert session["currency"] == CURRENCY == "usd"


def test_an_account_with_cards_only_still_gets_a_session(
    alice, stripe_flow, fake_stripe
):
    fake_stripe.payment_methods = ("card",)

    payment = stripe_flow.start(alice, 10)

    session = fake_stripe.session(payment.stripe_session_id)
    assert session["payment_method_types"] == ["card"]
    assert session["amount_total"] == 1000


def test_wechat_pay_without_its_client_option_is_refused(stripe_settings, fake_stripe):
    """What checkout_start's option prevents: the fake refuses a session that
    would offer WeChat Pay without saying where the customer pays from."""
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1000,
                    "product_data": {"name": "Switchboard credit $10.00"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "https://switchboard.test/ok",
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client().v1.checkout.sessions.create(params)
    assert refused.value.param == "payment_method_options[wechat_pay][client]"

    fake_stripe.payment_methods = ("card", "alipay")
    session = stripe_client().v1.checkout.sessions.create(params)
    assert session.payment_method_types == ["card", "alipay"]
