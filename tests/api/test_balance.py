from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import LedgerEntry, Plan, Wallet
from billing.money import usd_to_nano
from billing.services import wallet_credit


def test_it_shows_every_figure_in_nano_usd_and_exact_usd(alice, alice_api):
    expires = timezone.now() + timedelta(days=30)
    wallet_credit(
        tenant_id=alice.tenant.pk,
        amount=usd_to_nano("1.00"),
        promo_amount=usd_to_nano("1.00"),
        kind=LedgerEntry.Kind.STARTER,
        reference="starter:alice",
        promo_expires_at=expires,
    )
    # Figures as the relay leaves them mid-request; the API only reads them.
    Wallet.objects.filter(tenant=alice.tenant).update(
        held=123_456_789, low_balance_threshold=usd_to_nano("2.50")
    )

    response = alice_api.get("/api/balance/")

    assert response.status_code == 200
    assert response.json() == {
        "balance": 11_000_000_000,
        "balance_usd": "11.000000000",
        "promo": 1_000_000_000,
        "promo_usd": "1.000000000",
        "promo_expires_at": expires.isoformat().replace("+00:00", "Z"),
        "paid": 10_000_000_000,
        "paid_usd": "10.000000000",
        "held": 123_456_789,
        "held_usd": "0.123456789",
        "available": 10_876_543_211,
        "available_usd": "10.876543211",
        "plan": None,
        "price_multiplier": "1.0000",
        "low_balance_threshold": 2_500_000_000,
        "low_balance_threshold_usd": "2.500000000",
    }


def test_it_shows_the_plan(alice, alice_api):
    plan = Plan.objects.create(name="Scale", multiplier=Decimal("0.8500"))
    Wallet.objects.filter(tenant=alice.tenant).update(plan=plan)

    body = alice_api.get("/api/balance/").json()

    assert body["plan"] == "Scale"
    assert body["price_multiplier"] == "0.8500"
    assert body["low_balance_threshold"] is None
    assert body["low_balance_threshold_usd"] is None


def test_a_negative_balance_is_shown_exactly(bob, bob_api):
    bob.fund("-10.000000001", reference="debit")

    body = bob_api.get("/api/balance/").json()

    assert body["balance"] == -1
    assert body["balance_usd"] == "-0.000000001"


def test_members_read_the_balance(alice, carol_api):
    assert carol_api.get("/api/balance/").json()["balance"] == alice.wallet.balance
