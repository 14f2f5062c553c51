"""Signup, its throttle, and email verification with the starter credit."""

import re
import secrets
import time
from unittest import mock

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import Membership, Tenant, User
from billing.models import LedgerEntry, StarterGrant, Wallet
from billing.selectors import wallet_drifts
from tests import factories


@pytest.fixture
def ip() -> str:
    """An address of this test's own, so throttles never carry over."""
    return "10." + ".".join(str(secrets.randbelow(250)) for _ in range(3))


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "1.00"
    cache.clear()  # throttle counters of earlier runs


def signup(client, ip, email="carol@example.com", **fields):
    data = {
        "email": email,
        "password": "a long enough passphrase",
        "company": "Carol Labs",
        **fields,
    }
    return client.post("/signup/", data, REMOTE_ADDR=ip)


def verification_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/verify-email/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_signup_page_has_labelled_fields(client, db):
    html = client.get("/signup/").content.decode()
    for field in ("email", "password", "company"):
        assert f'<label for="id_{field}">' in html
        assert f'id="id_{field}"' in html


def test_signup_creates_a_tenant_with_an_empty_wallet_and_signs_in(client, db, ip):
    response = signup(client, ip)
    assert response.status_code == 302
    user = User.objects.get(email="carol@example.com")
    assert user.email_verified_at is None
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.OWNER
    assert membership.tenant.name == "Carol Labs"
    wallet = Wallet.objects.get(tenant=membership.tenant)
    assert (wallet.balance, wallet.promo) == (0, 0)  # no credit before verifying
    assert not LedgerEntry.objects.filter(tenant=membership.tenant).exists()
    assert int(client.session["_auth_user_id"]) == user.pk
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["carol@example.com"]
    assert "/verify-email/" in mail.outbox[0].body


def test_signup_stores_the_address_in_lower_case(client, db, ip):
    signup(client, ip, email="  Carol@Example.COM ")
    assert User.objects.filter(email="carol@example.com").exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"password": "short"}, "password", "This password is too short."),
        ({"password": "password123"}, "password", "This password is too common."),
        ({"company": "   "}, "company", "This field is required."),
    ],
)
def test_signup_shows_errors_next_to_their_fields(
    client, db, ip, fields, field, message
):
    response = signup(client, ip, **fields)
    assert response.status_code == 200
    html = response.content.decode()
    error_list = re.search(
        rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html
    )
    assert error_list and message in error_list.group(1)
    widget = re.search(rf'<input[^>]*id="id_{field}"[^>]*>', html).group(0)
    assert re.search(rf'aria-describedby="[^"]*id_{field}_error', widget)
    assert 'aria-invalid="true"' in widget
    assert not User.objects.exists()
    assert not mail.outbox


def test_signup_refuses_an_address_already_in_use(client, db, ip):
    factories.user("carol@example.com")
    response = signup(client, ip, email="CAROL@example.com")
    assert "An account with this address already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_signup_carries_the_referral_code_through(client, db, ip):
    referrer = Tenant.objects.create(name="Referrer")
    html = client.get(f"/signup/?ref={referrer.referral_code}").content.decode()
    assert f'name="ref" value="{referrer.referral_code}"' in html
    signup(client, ip, ref=referrer.referral_code)
    tenant = Membership.objects.get(user__email="carol@example.com").tenant
    assert tenant.referred_by == referrer


def test_signup_ignores_an_unknown_referral_code(client, db, ip):
    assert signup(client, ip, ref="nope").status_code == 302
    tenant = Membership.objects.get(user__email="carol@example.com").tenant
    assert tenant.referred_by is None


def test_sixth_signup_from_one_address_in_an_hour_is_refused(client, db, ip, settings):
    settings.SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR = 5
    for n in range(5):
        client.logout()
        assert signup(client, ip, email=f"user{n}@example.com").status_code == 302
    client.logout()
    response = signup(client, ip, email="user5@example.com")
    assert response.status_code == 429
    assert "Too many accounts were created from your network" in (
        response.content.decode()
    )
    assert not User.objects.filter(email="user5@example.com").exists()
    # Another address is not affected.
    client.logout()
    assert signup(client, "192.0.2.77", email="user5@example.com").status_code == 302
    User.objects.filter(email="user5@example.com").delete()


def test_failed_signups_do_not_use_up_the_throttle(client, db, ip, settings):
    settings.SWITCHBOARD_SIGNUPS_PER_IP_PER_HOUR = 1
    for _ in range(3):
        assert signup(client, ip, password="short").status_code == 200
    assert signup(client, ip).status_code == 302


def _verify(client, message):
    return client.get(verification_link(message), follow=True)


def test_verification_link_grants_the_starter_credit_once(client, db, ip):
    signup(client, ip)
    response = _verify(client, mail.outbox[0])
    assert response.status_code == 200
    html = response.content.decode()
    assert "$1.00 of starter credit is in your balance" in html
    user = User.objects.get(email="carol@example.com")
    assert user.email_verified_at is not None
    wallet = Wallet.objects.get(tenant__memberships__user=user)
    assert (wallet.balance, wallet.promo) == (10**9, 10**9)
    # A second click confirms nothing new and gives nothing.
    again = _verify(client, mail.outbox[0]).content.decode()
    assert "already confirmed" in again
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.STARTER).count() == 1
    assert not wallet_drifts()


def test_verification_works_when_signed_out(client, db, ip):
    signup(client, ip)
    client.logout()
    response = client.get(verification_link(mail.outbox[0]))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert User.objects.get().email_verified_at is not None
    assert StarterGrant.objects.count() == 1


def _signup_and_verify(client, ip, email):
    mail.outbox.clear()
    client.logout()
    assert signup(client, ip, email=email).status_code == 302
    return _verify(client, mail.outbox[-1]).content.decode()


def test_same_address_gets_no_second_credit_after_its_account_is_deleted(
    client, db, ip
):
    _signup_and_verify(client, ip, "carol@example.com")
    User.objects.filter(email="carol@example.com").delete()
    html = _signup_and_verify(client, ip, "carol@example.com")
    assert "already received its starter credit" in html
    assert StarterGrant.objects.count() == 1
    new_tenant = Membership.objects.get(user__email="carol@example.com").tenant
    assert Wallet.objects.get(tenant=new_tenant).balance == 0


@pytest.mark.parametrize("variant", ["Carol+second@example.com", "CAROL@EXAMPLE.COM"])
def test_tag_and_case_variants_get_no_second_credit(client, db, ip, variant):
    _signup_and_verify(client, ip, "carol@example.com")
    User.objects.filter(email="carol@example.com").delete()
    html = _signup_and_verify(client, ip, variant)
    assert "already received its starter credit" in html
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.STARTER).count() == 1


def test_a_tampered_link_is_refused_clearly(client, db, ip):
    signup(client, ip)
    link = verification_link(mail.outbox[0])
    response = client.get(link[:-3] + "xx/")
    assert response.status_code == 400
    assert "This link is not valid." in response.content.decode()
    assert User.objects.get().email_verified_at is None
    assert not StarterGrant.objects.exists()


def test_an_expired_link_is_refused_clearly(client, db, ip, settings):
    signup(client, ip)
    settings.SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS = 3600
    link = verification_link(mail.outbox[0])
    later = time.time() + 3601
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = client.get(link)
    assert response.status_code == 400
    html = response.content.decode()
    assert "This confirmation link has expired." in html
    assert "Send me a new link" in html
    assert not StarterGrant.objects.exists()


def test_a_link_for_a_previous_address_is_refused(client, db, ip):
    signup(client, ip)
    User.objects.filter(email="carol@example.com").update(email="dave@example.com")
    response = client.get(verification_link(mail.outbox[0]))
    assert response.status_code == 400
    assert "no longer uses" in response.content.decode()


def test_resend_sends_a_working_link(client, db, ip):
    signup(client, ip)
    response = client.post("/verify-email/resend/")
    assert response.status_code == 302
    assert len(mail.outbox) == 2
    assert "$1.00 of starter credit" in _verify(client, mail.outbox[1]).content.decode()


def test_resend_is_limited(client, db, ip):
    signup(client, ip)
    for _ in range(5):
        client.post("/verify-email/resend/")
    html = client.post("/verify-email/resend/", follow=True).content.decode()
    assert "Several emails were sent in the last hour" in html
    assert len(mail.outbox) == 6


def test_starter_credit_is_shown_on_the_account_page(client, db, ip):
    signup(client, ip)
    _verify(client, mail.outbox[0])
    html = client.get("/account/").content.decode()
    assert re.search(
        r'data-testid="account-balance"><span title="\$1\.000000000">\$1\.00</span><',
        html,
    )
    assert re.search(
        r'data-testid="header-balance"><span title="\$1\.000000000">\$1\.00</span><',
        html,
    )
    assert "Carol Labs" in html
