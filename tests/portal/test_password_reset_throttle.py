"""Password reset: throttled per address and per IP, with the same answer
whether an account uses the address or not."""

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client


@pytest.fixture(autouse=True)
def _no_throttle_left():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice_address(alice) -> str:
    return alice.user.email


def reset(email, ip="203.0.113.60"):
    return Client().post("/password-reset/", {"email": email}, REMOTE_ADDR=ip)


def test_the_answer_is_the_same_for_known_and_unknown_addresses(alice_address):
    known = reset(alice_address)
    unknown = reset("nobody@example.com")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("known", [True, False])
def test_an_address_gets_three_emails_an_hour(alice_address, known, settings):
    settings.SWITCHBOARD_PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = 3
    email = alice_address if known else "nobody@example.com"
    for i in range(3):
        assert reset(email, ip=f"198.51.100.{i}").status_code == 302
    refused = reset(email.upper(), ip="198.51.100.99")
    assert refused.status_code == 429
    assert "Several password reset emails" in refused.content.decode()
    assert len(mail.outbox) == (3 if known else 0)


def test_the_refusal_is_the_same_for_known_and_unknown_addresses(
    alice_address, settings
):
    settings.SWITCHBOARD_PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = 1
    reset(alice_address)
    reset("nobody@example.com")
    known = reset(alice_address)
    unknown = reset("nobody@example.com")
    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content


def test_one_network_asks_for_at_most_ten_an_hour(alice_address, settings):
    settings.SWITCHBOARD_PASSWORD_RESETS_PER_IP_PER_HOUR = 10
    accepted = [reset(f"someone{i}@example.com").status_code for i in range(15)]
    assert accepted == [302] * 10 + [429] * 5
    # Even a real address, from that network, waits now.
    assert reset(alice_address).status_code == 429
    assert not mail.outbox
    assert reset(alice_address, ip="192.0.2.44").status_code == 302
