from datetime import timedelta

from billing.models import LedgerEntry, Payment
from tests.api.conftest import T0, make_payment


def test_the_ledger_is_newest_first(alice, alice_api):
    LedgerEntry.objects.filter(tenant=alice.tenant).update(created_at=T0)
    alice.fund("-0.000000123", reference="debit")
    LedgerEntry.objects.filter(reference__startswith="debit").update(
        created_at=T0 + timedelta(hours=1)
    )

    body = alice_api.get("/api/ledger/").json()

    assert [entry["amount"] for entry in body["results"]] == [
        -123,
        10_000_000_000,
    ]
    latest = body["results"][0]
    assert latest["amount_usd"] == "-0.000000123"
    assert latest["promo_amount_usd"] == "0.000000000"
    assert latest["kind"] == "grant"
    assert latest["reference"] == f"debit:{alice.tenant.pk}"


def test_one_ledger_entry(alice, alice_api):
    entry = LedgerEntry.objects.get(tenant=alice.tenant)

    body = alice_api.get(f"/api/ledger/{entry.pk}/").json()

    assert body["id"] == entry.pk
    assert body["amount_usd"] == "10.000000000"


def test_payments_are_the_tenants_newest_first(alice, bob, alice_api):
    make_payment(alice, 0, status=Payment.Status.EXPIRED)
    make_payment(alice, 1, amount_cents=1001, refunded_cents=1)
    make_payment(bob, 2)

    body = alice_api.get("/api/payments/").json()

    assert [payment["status"] for payment in body["results"]] == ["paid", "expired"]
    latest = body["results"][0]
    assert "stripe_session_id" not in latest
    assert latest["amount_cents"] == 1001
    assert latest["amount_usd"] == "10.010000000"
    assert latest["refunded_usd"] == "0.010000000"
    assert latest["currency"] == "usd"


def test_one_payment(alice, alice_api):
    payment = make_payment(alice, 0)

    response = alice_api.get(f"/api/payments/{payment.pk}/")

    assert response.status_code == 200
    assert response.json()["status"] == "paid"


def test_members_read_the_ledger_and_payments(alice, carol_api):
    make_payment(alice, 0)

    assert len(carol_api.get("/api/ledger/").json()["results"]) == 1
    assert len(carol_api.get("/api/payments/").json()["results"]) == 1
