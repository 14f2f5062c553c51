"""Starter credit: once per verified email address, never at signup."""

import pytest

from billing.models import LedgerEntry, StarterGrant, Wallet
from billing.money import usd_to_nano
from billing.selectors import wallet_drifts
from billing.starter import email_key
from onboarding.tenants import email_verify, tenant_create
from tests import factories

pytestmark = pytest.mark.django_db


def sign_up(email: str):
    user = factories.user(email)
    tenant = tenant_create(name=f"{email} inc", owner=user)
    return user, tenant


def balance(tenant) -> int:
    return Wallet.objects.get(tenant=tenant).balance


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Ann@Example.com", "ann@example.com"),
        ("ann+promo2@example.com", "ann@example.com"),
        ("a.n.n@gmail.com", "ann@gmail.com"),
        ("A.nn+x@googlemail.com", "ann@gmail.com"),
        ("a.nn@example.com", "a.nn@example.com"),  # dots matter elsewhere
    ],
)
def test_addresses_that_reach_one_mailbox_share_a_key(address, key):
    assert email_key(address) == key


def test_no_credit_at_signup_and_the_amount_at_verification(settings):
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "1.00"
    user, tenant = sign_up("ann@example.com")
    assert balance(tenant) == 0
    grant = email_verify(user=user)
    assert grant is not None
    assert balance(tenant) == usd_to_nano("1.00")
    user.refresh_from_db()
    assert user.email_verified_at is not None
    entry = LedgerEntry.objects.get(tenant=tenant)
    assert entry.kind == LedgerEntry.Kind.STARTER
    assert entry.promo_amount == entry.amount
    assert wallet_drifts() == []


def test_verifying_again_grants_nothing_more():
    user, tenant = sign_up("ann@example.com")
    email_verify(user=user)
    assert email_verify(user=user) is None
    assert LedgerEntry.objects.filter(tenant=tenant).count() == 1


def test_a_re_signup_with_the_same_mailbox_gets_nothing():
    first, first_tenant = sign_up("ann@example.com")
    email_verify(user=first)
    first.delete()  # the person deletes their login and signs up again
    for address in ("ann@example.com", "ANN+again@example.com"):
        user, tenant = sign_up(address)
        assert email_verify(user=user) is None
        assert balance(tenant) == 0
        user.delete()
    assert StarterGrant.objects.count() == 1
    assert wallet_drifts() == []


def test_a_tenant_gets_one_grant_whoever_verifies():
    owner, tenant = sign_up("ann@example.com")
    email_verify(user=owner)
    co_owner = factories.member(tenant, "ben@example.com", role="owner")
    assert email_verify(user=co_owner) is None
    assert balance(tenant) == usd_to_nano("1.00")


def test_a_member_who_owns_nothing_gets_no_grant_for_anyone():
    _, tenant = sign_up("ann@example.com")
    member = factories.member(tenant, "ben@example.com", role="member")
    assert email_verify(user=member) is None
    assert balance(tenant) == 0
    # ben's address stays unused: his own tenant can still get its grant.
    own = tenant_create(name="Ben inc", owner=member)
    assert email_verify(user=member) is not None
    assert balance(own) == usd_to_nano("1.00")


def test_starter_credit_can_be_switched_off(settings):
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "0"
    user, tenant = sign_up("ann@example.com")
    assert email_verify(user=user) is None
    assert balance(tenant) == 0
    assert not StarterGrant.objects.exists()
