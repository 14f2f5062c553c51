"""The Django admin shows money in the one format people read (whole cents
from $1, two significant digits below), the exact amount on hover."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import LedgerEntry, StarterGrant
from tests import factories

# An amount written with six or more decimals, as format_usd(places=6) did.
SIX_DECIMALS = re.compile(r"\$\d[\d,]*\.\d{6,}")
TAGS = re.compile(r"<[^>]+>")


def visible(response) -> str:
    """The page's text, attributes (such as the exact title) left out."""
    assert response.status_code == 200
    return TAGS.sub(" ", response.content.decode())


@pytest.fixture
def money(alice):
    factories.usage_record(alice, charged=4_215_000, upstream_cost=1_234_567)
    factories.payment(alice, amount_cents=2500, refunded_cents=500)
    StarterGrant.objects.create(
        email_key="alice@example.com",
        tenant=alice.tenant,
        amount=1_000_000_000,
        expires_at=timezone.now() + timedelta(days=30),
    )
    return alice


@pytest.mark.parametrize(
    "changelist",
    [
        "/admin/billing/wallet/",
        "/admin/billing/ledgerentry/",
        "/admin/billing/payment/",
        "/admin/billing/startergrant/",
        "/admin/relay/usagerecord/",
        "/admin/accounts/tenant/",
    ],
)
def test_no_admin_list_shows_six_decimal_money(admin_client, money, changelist):
    text = visible(admin_client.get(changelist))
    assert "$" in text
    assert SIX_DECIMALS.findall(text) == []


def test_amounts_are_rounded_for_people_and_exact_on_hover(admin_client, money):
    wallet = money.wallet
    wallet.refresh_from_db()
    usage = admin_client.get("/admin/relay/usagerecord/").content.decode()
    assert '<span title="$0.004215000">$0.0042</span>' in usage
    assert '<span title="$0.001234567">$0.0012</span>' in usage

    payments = admin_client.get("/admin/billing/payment/").content.decode()
    assert '<span title="$25.000000000">$25.00</span>' in payments
    assert '<span title="$5.000000000">$5.00</span>' in payments

    grants = admin_client.get("/admin/billing/startergrant/").content.decode()
    assert '<span title="$1.000000000">$1.00</span>' in grants

    entry = LedgerEntry.objects.filter(tenant=money.tenant).first()
    page = admin_client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert SIX_DECIMALS.findall(visible(page)) == []

    wallets = admin_client.get("/admin/billing/wallet/").content.decode()
    assert re.search(r'<span title="\$[\d,]+\.\d{9}">\$[\d,]+\.\d\d</span>', wallets)
