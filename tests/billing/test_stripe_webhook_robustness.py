"""Stripe's webhook with signed but malformed events, and with Stripe's API
away: every delivery is recorded first, and money moves once."""

import json

import pytest

from billing import payments
from billing.models import LedgerEntry, Payment, StripeEvent
from billing.payments import STRIPE_EVENT_REQUEUE_AFTER, stripe_events_requeue
from billing.selectors import wallet_drifts
from billing.tasks import (
    STRIPE_EVENT_RETRIES,
    apply_stripe_event,
    reconcile_stripe_payments,
)

NANO_PER_CENT = 10_000_000
SESSIONS_LIST = "/v1/checkout/sessions"


def kinds(customer) -> list[str]:
    return list(
        LedgerEntry.objects.filter(tenant=customer.tenant)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def session_lookups(fake) -> int:
    """The refund path's calls: sessions listed by payment intent."""
    return sum(
        1
        for request in fake.requests
        if request.method == "GET"
        and request.path == SESSIONS_LIST
        and "payment_intent" in request.params
    )


def signed_post(stripe_flow, body: str):
    return stripe_flow.post(body, stripe_flow.fake.sign(body))


def an_event(**fields) -> dict:
    event = {
        "id": "evt_malformed_1",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_x", "object": "checkout.session"}},
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not None}


MALFORMED = {
    "a JSON array": "[]",
    "an array of events": json.dumps([an_event()]),
    "a JSON string": '"checkout.session.completed"',
    "null": "null",
    "a number": "42",
    "too deeply nested": "[" * 100_000 + "]" * 100_000,
    "no id": json.dumps({**an_event(), "id": None}),
    "no type": json.dumps(an_event(type=None)),
    "a type that is not a string": json.dumps(an_event(type=["charge.refunded"])),
    "no data": json.dumps(an_event(data=None)),
    "data that is a list": json.dumps(an_event(data=[1, 2])),
    "no data.object": json.dumps(an_event(data={})),
    "a session without id": json.dumps(an_event(data={"object": {"status": "x"}})),
    "metadata that is a list": json.dumps(
        an_event(data={"object": {"id": "cs_test_x", "metadata": ["a"]}})
    ),
    "a refund amount that is text": json.dumps(
        an_event(
            type="charge.refunded",
            data={"object": {"payment_intent": "pi_1", "amount_refunded": "abc"}},
        )
    ),
    "a dispute without id": json.dumps(
        an_event(type="charge.dispute.created", data={"object": {"amount": 5}})
    ),
    "a dispute amount that is true": json.dumps(
        an_event(
            type="charge.dispute.created",
            data={"object": {"id": "dp_1", "amount": True}},
        )
    ),
}


@pytest.fixture
def debug_client(settings, client):
    """The test client as a browser sees a debug-mode server: errors are
    answered with Django's debug page, not raised into the test."""
    settings.DEBUG = True
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_it_refuses_a_signed_payload_that_is_not_an_event(
    db, stripe_flow, fake_stripe, debug_client, body
):
    response = signed_post(stripe_flow, body)

    assert response.status_code == 400
    assert "Not a valid Stripe event" in response.json()["error"]
    assert fake_stripe.webhook_secret not in response.content.decode()
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "event",
    [
        an_event(type="customer.created", data=None),
        an_event(type="customer.created", data=[1]),
        an_event(type="invoice.paid", data={"object": "not an object"}),
    ],
    ids=["no data", "data a list", "object a string"],
)
def test_unknown_types_are_ignored_whatever_their_data(
    db, stripe_flow, fake_stripe, debug_client, event
):
    response = signed_post(stripe_flow, json.dumps(event))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert fake_stripe.webhook_secret not in response.content.decode()
    assert not StripeEvent.objects.exists()


def test_a_handler_failure_is_recorded_not_a_500(
    alice, stripe_flow, fake_stripe, debug_client, monkeypatch
):
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = fake_stripe.session_event(
        "checkout.session.completed", payment.stripe_session_id
    )

    def broken(event):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(payments._HANDLERS, "checkout.session.completed", broken)
    response = stripe_flow.deliver(event)

    assert response.status_code == 200
    assert response.json()["outcome"] == "queued"
    assert fake_stripe.webhook_secret not in response.content.decode()
    recorded = StripeEvent.objects.get(event_id=event["id"])
    assert recorded.status == StripeEvent.Status.FAILED
    assert "a bug in a handler" in recorded.error
    # Staff can see it; Stripe is not asked to deliver it again and again.
    assert stripe_flow.deliver(event).json()["outcome"] == "failed"


def test_the_secret_never_appears_in_a_response(
    alice, stripe_flow, fake_stripe, debug_client, stripe_settings
):
    payment = stripe_flow.start(alice, 25)
    fake_stripe.complete(payment.stripe_session_id)
    event = fake_stripe.session_event(
        "checkout.session.completed", payment.stripe_session_id
    )
    payload, signature = fake_stripe.signed(event)
    responses = [
        stripe_flow.post(payload, signature),
        stripe_flow.post(payload, signature),
        stripe_flow.post(payload, None),
        stripe_flow.post(payload, fake_stripe.sign(payload, secret="whsec_other")),
        stripe_flow.post("\xff not utf-8", fake_stripe.sign("\xff not utf-8")),
        *(signed_post(stripe_flow, body) for body in MALFORMED.values()),
    ]
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    responses.append(stripe_flow.post(payload, signature))

    assert {r.status_code for r in responses} <= {200, 400, 503}
    for response in responses:
        assert fake_stripe.webhook_secret not in response.content.decode()
        assert fake_stripe.api_key not in response.content.decode()


@pytest.mark.parametrize("failures", [0, 1, STRIPE_EVENT_RETRIES])
def test_a_refund_of_an_unseen_payment_is_applied_once_through_outages(
    alice, stripe_flow, fake_stripe, failures
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 40)
    fake_stripe.complete(payment.stripe_session_id)
    # checkout.session.completed never arrives; the refund does, while
    # Stripe's API fails `failures` times.
    refund = fake_stripe.charge_refunded(payment.stripe_session_id, 1000)
    fake_stripe.fail_next(failures)

    response = stripe_flow.deliver(refund)

    assert response.status_code == 200
    assert response.json()["outcome"] == "queued"
    assert fake_stripe.failures == 0
    assert session_lookups(fake_stripe) == failures + 1
    recorded = StripeEvent.objects.get(event_id=refund["id"])
    assert recorded.status == StripeEvent.Status.PROCESSED
    assert recorded.payload == refund
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.refunded_cents == 1000
    assert alice.wallet.balance == before + 3000 * NANO_PER_CENT
    assert kinds(alice) == [
        LedgerEntry.Kind.GRANT,
        LedgerEntry.Kind.PAYMENT,
        LedgerEntry.Kind.REFUND,
    ]

    # Stripe delivering it again, and the task running again, change nothing.
    assert stripe_flow.deliver(refund).json()["outcome"] == "duplicate"
    assert apply_stripe_event.delay(refund["id"]).get() == "duplicate"
    assert alice.wallet.balance == before + 3000 * NANO_PER_CENT
    assert len(kinds(alice)) == 3
    assert wallet_drifts() == []


def test_a_long_outage_leaves_the_event_recorded_for_later(
    alice, stripe_flow, fake_stripe
):
    before = alice.wallet.balance
    payment = stripe_flow.start(alice, 40)
    fake_stripe.complete(payment.stripe_session_id)
    dispute = fake_stripe.dispute_created(payment.stripe_session_id)
    fake_stripe.fail_next(1000)

    response = stripe_flow.deliver(dispute)

    # Acknowledged: the event is safe here, Stripe need not deliver it again.
    assert response.status_code == 200
    assert session_lookups(fake_stripe) == STRIPE_EVENT_RETRIES + 1
    recorded = StripeEvent.objects.get(event_id=dispute["id"])
    assert recorded.status == StripeEvent.Status.RECEIVED
    assert "503" in recorded.error or "unavailable" in recorded.error
    assert alice.wallet.balance == before
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active

    # Stripe is back; an hour later reconciliation queues the event again.
    fake_stripe.fail_next(0)
    StripeEvent.objects.filter(pk=recorded.pk).update(
        received_at=recorded.received_at - STRIPE_EVENT_REQUEUE_AFTER
    )
    reconcile_stripe_payments()

    recorded.refresh_from_db()
    assert recorded.status == StripeEvent.Status.PROCESSED
    assert recorded.error == ""
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.disputed_cents == 4000
    # Credited, then the whole of it taken back: once each.
    assert alice.wallet.balance == before
    assert kinds(alice) == [
        LedgerEntry.Kind.GRANT,
        LedgerEntry.Kind.PAYMENT,
        LedgerEntry.Kind.DISPUTE,
    ]
    alice.tenant.refresh_from_db()
    assert alice.tenant.is_active is False

    assert stripe_flow.deliver(dispute).json()["outcome"] == "duplicate"
    assert stripe_events_requeue() == 0
    assert len(kinds(alice)) == 3
    assert wallet_drifts() == []


def test_a_redelivery_during_an_outage_is_recorded_once(
    alice, stripe_flow, fake_stripe
):
    payment = stripe_flow.start(alice, 40)
    fake_stripe.complete(payment.stripe_session_id)
    refund = fake_stripe.charge_refunded(payment.stripe_session_id, 4000)
    fake_stripe.fail_next(1000)

    for _ in range(2):
        assert stripe_flow.deliver(refund).status_code == 200
    fake_stripe.fail_next(0)
    assert stripe_flow.deliver(refund).json()["outcome"] == "queued"

    assert StripeEvent.objects.filter(event_id=refund["id"]).count() == 1
    assert kinds(alice).count(LedgerEntry.Kind.REFUND) == 1
    assert wallet_drifts() == []
