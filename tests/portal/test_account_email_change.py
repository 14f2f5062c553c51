"""Changing one's email address: by a link sent to the new address."""

import re
import time
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import User
from billing.models import LedgerEntry, StarterGrant
from onboarding.tenants import email_verify
from tests import factories

PASSWORD = "correct horse battery"


@pytest.fixture
def verified_alice(alice, settings):
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "1.00"
    assert email_verify(user=alice.user) is not None  # her starter credit
    alice.user.refresh_from_db()
    return alice


def request_change(client, new_email, password=PASSWORD):
    return client.post(
        "/account/email/", {"new_email": new_email, "password": password}
    )


def change_link() -> str:
    message = next(m for m in mail.outbox if "/account/email/confirm/" in m.body)
    return re.search(
        r"https?://[^/\s]+(/account/email/confirm/[^/\s]+/)", message.body
    )[1]


def test_email_change_needs_a_login(client, db):
    assert client.get("/account/email/")["Location"].startswith("/login/")


def test_email_change_needs_the_current_password(client, alice):
    client.force_login(alice.user)
    response = request_change(client, "new@example.com", password="wrong")
    assert response.status_code == 200
    assert 'id="id_password_error"' in response.content.decode()
    assert not mail.outbox


def test_email_change_refuses_an_address_in_use(client, alice, bob):
    client.force_login(alice.user)
    response = request_change(client, "BOB@example.com")
    assert "Another account uses this address." in response.content.decode()
    assert not mail.outbox


def test_email_changes_only_when_the_new_address_follows_the_link(
    client, verified_alice
):
    client.force_login(verified_alice.user)
    response = request_change(client, "Alice.New@Example.com")
    assert response["Location"] == "/account/"
    user = User.objects.get(pk=verified_alice.user.pk)
    assert user.email == "alice@example.com"  # not yet
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == ["alice.new@example.com", "alice@example.com"]
    notice = next(m for m in mail.outbox if m.to == ["alice@example.com"])
    assert "alice.new@example.com" in notice.body
    assert "/account/email/confirm/" not in notice.body  # the link goes only to the new

    page = client.get(change_link(), follow=True).content.decode()
    assert "Your email address is now alice.new@example.com." in page
    user.refresh_from_db()
    assert user.email == "alice.new@example.com"
    assert user.email_verified_at is not None
    # The tenant had its starter credit: the new address brings none.
    assert StarterGrant.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.STARTER).count() == 1
    assert "starter credit was added" not in page


def test_an_unverified_account_gets_its_credit_with_the_new_address(
    client, alice, settings
):
    settings.SWITCHBOARD_STARTER_CREDIT_USD = "1.00"
    client.force_login(alice.user)
    request_change(client, "alice2@example.com")
    page = client.get(change_link(), follow=True).content.decode()
    assert "$1.00 of starter credit was added." in page
    assert StarterGrant.objects.get().tenant == alice.tenant


def test_a_change_link_works_once(client, verified_alice):
    client.force_login(verified_alice.user)
    request_change(client, "alice.new@example.com")
    link = change_link()
    client.get(link)
    response = client.get(link)
    assert response.status_code == 400
    assert "already used" in response.content.decode()


def test_an_expired_change_link_is_refused(client, verified_alice, settings):
    client.force_login(verified_alice.user)
    request_change(client, "alice.new@example.com")
    settings.SWITCHBOARD_VERIFY_EMAIL_MAX_AGE_SECONDS = 3600
    with mock.patch("django.core.signing.time.time", return_value=time.time() + 3601):
        response = client.get(change_link())
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    assert User.objects.get(pk=verified_alice.user.pk).email == "alice@example.com"


def test_an_address_taken_meanwhile_is_refused(client, verified_alice):
    client.force_login(verified_alice.user)
    request_change(client, "alice.new@example.com")
    factories.user("alice.new@example.com")
    response = client.get(change_link())
    assert response.status_code == 409
    assert "Another account now uses alice.new@example.com." in (
        response.content.decode()
    )
    assert User.objects.get(pk=verified_alice.user.pk).email == "alice@example.com"


def test_a_tampered_change_link_is_refused(client, verified_alice):
    client.force_login(verified_alice.user)
    request_change(client, "alice.new@example.com")
    response = client.get(change_link().replace(":", ":x", 1))
    assert response.status_code == 400
    assert User.objects.get(pk=verified_alice.user.pk).email == "alice@example.com"


def test_verified_at_moves_to_the_change(client, verified_alice):
    before = verified_alice.user.email_verified_at
    client.force_login(verified_alice.user)
    request_change(client, "alice.new@example.com")
    client.get(change_link())
    after = User.objects.get(pk=verified_alice.user.pk).email_verified_at
    assert before < after <= timezone.now()
