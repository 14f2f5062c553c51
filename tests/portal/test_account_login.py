"""Login and its throttle, logout, password reset and change."""

import re
import secrets

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import User

PASSWORD = "correct horse battery"


@pytest.fixture
def ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(250)) for _ in range(3))


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def login(client, ip, email="alice@example.com", password=PASSWORD):
    return client.post(
        "/login/", {"username": email, "password": password}, REMOTE_ADDR=ip
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_login_matches_the_address_in_any_case(client, alice, ip):
    response = login(client, ip, email="Alice@Example.com")
    assert response.status_code == 302
    assert signed_in(client)


def test_login_follows_next_within_the_site(client, alice, ip):
    response = client.post(
        "/login/?next=/account/",
        {"username": "alice@example.com", "password": PASSWORD, "next": "/account/"},
        REMOTE_ADDR=ip,
    )
    assert response["Location"] == "/account/"


def test_login_refuses_a_wrong_password_clearly(client, alice, ip):
    response = login(client, ip, password="wrong password")
    assert response.status_code == 200
    assert "The email address or the password is not right." in (
        response.content.decode()
    )
    assert not signed_in(client)


def test_failed_logins_are_throttled_per_address_and_ip(client, alice, ip, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = 3
    for _ in range(3):
        assert login(client, ip, password="wrong").status_code == 200
    # Even the right password waits now, from this network.
    response = login(client, ip)
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert not signed_in(client)
    # Another network is not affected.
    assert login(client, "192.0.2.10").status_code == 302


def test_a_successful_login_clears_the_failures(client, alice, ip, settings):
    settings.SWITCHBOARD_LOGIN_FAILURES_PER_15_MIN = 3
    login(client, ip, password="wrong")
    login(client, ip, password="wrong")
    assert login(client, ip).status_code == 302
    client.logout()
    login(client, ip, password="wrong")
    login(client, ip, password="wrong")
    assert login(client, ip).status_code == 302


def test_logout_is_a_post(client, alice):
    client.force_login(alice.user)
    assert client.get("/logout/").status_code == 405
    assert signed_in(client)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not signed_in(client)


def test_account_page_needs_a_login(client, db):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/account/")


def _reset_link(message) -> str:
    match = re.search(
        r"https?://[^/\s]+(/password-reset/[^/\s]+/[^/\s]+/)", message.body
    )
    assert match, message.body
    return match.group(1)


def test_password_reset_by_the_emailed_link(client, alice, ip):
    response = client.post("/password-reset/", {"email": "ALICE@example.com"})
    assert response["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert mail.outbox[0].subject == "Reset your Switchboard password"
    page = client.get(_reset_link(mail.outbox[0]), follow=True)
    assert "Choose a new password" in page.content.decode()
    response = client.post(
        page.redirect_chain[-1][0],
        {
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )
    assert response["Location"] == "/password-reset/done/"
    assert login(client, ip, password="a brand new passphrase").status_code == 302
    client.logout()
    assert login(client, ip).status_code == 200  # the old one no longer works
    # The link works once.
    html = client.get(_reset_link(mail.outbox[0]), follow=True).content.decode()
    assert "This password reset link was already used or has expired." in html


def test_password_reset_for_an_unknown_address_sends_nothing(client, db):
    response = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert response["Location"] == "/password-reset/sent/"
    assert not mail.outbox


def test_password_change_needs_the_old_password(client, alice):
    client.force_login(alice.user)
    response = client.post(
        "/account/password/",
        {
            "old_password": "wrong",
            "new_password1": "another long passphrase",
            "new_password2": "another long passphrase",
        },
    )
    assert response.status_code == 200
    assert 'id="id_old_password_error"' in response.content.decode()
    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another long passphrase",
            "new_password2": "another long passphrase",
        },
    )
    assert response["Location"] == "/account/"
    assert User.objects.get(pk=alice.user.pk).check_password("another long passphrase")
    assert signed_in(client)  # the session survives its own password change
