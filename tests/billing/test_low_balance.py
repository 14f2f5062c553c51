"""Low-balance alerts: one email to the owners per crossing of the threshold."""

import pytest

from accounts.models import Membership
from billing.alerts import low_balance_alerts_send, low_balance_threshold_set
from billing.models import LedgerEntry
from billing.money import usd_to_nano
from billing.selectors import wallet_drifts
from billing.services import wallet_credit
from billing.tasks import send_low_balance_alerts
from tests import factories
from tests.billing.test_concurrent_holds import run_together

THRESHOLD = usd_to_nano("5.00")


def spend(customer, usd: str, reference: str) -> None:
    wallet_credit(
        tenant_id=customer.tenant.pk,
        amount=-usd_to_nano(usd),
        kind=LedgerEntry.Kind.USAGE,
        reference=f"{reference}:{customer.tenant.pk}",
    )


def top_up(customer, usd: str, reference: str) -> None:
    customer.fund(usd, reference=reference)


@pytest.fixture
def watched(alice):
    """Alice ($10.00) with a $5.00 threshold, a second owner and a member."""
    factories.member(alice.tenant, "carol@example.com", Membership.Role.OWNER)
    factories.member(alice.tenant, "dave@example.com")
    assert low_balance_threshold_set(tenant=alice.tenant, threshold=THRESHOLD)
    return alice


def test_crossing_the_threshold_emails_the_owners_once(watched, mailoutbox, settings):
    spend(watched, "6.00", "usage-1")

    assert send_low_balance_alerts() == 1

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert sorted(message.to) == ["alice@example.com", "carol@example.com"]
    assert "dave@example.com" not in message.to + message.cc + message.bcc
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert "Alice Corp" in message.subject
    assert "$4.00" in message.body
    assert "$5.00" in message.body
    assert watched.wallet.low_balance_alerted_at is not None


def test_repeated_sweeps_send_nothing_more_for_the_same_crossing(watched, mailoutbox):
    spend(watched, "6.00", "usage-1")
    send_low_balance_alerts()
    spend(watched, "1.00", "usage-2")

    assert [send_low_balance_alerts() for _ in range(3)] == [0, 0, 0]

    assert len(mailoutbox) == 1


def test_no_email_at_or_above_the_threshold(watched, mailoutbox):
    spend(watched, "5.00", "usage-1")
    assert watched.wallet.balance == THRESHOLD

    assert send_low_balance_alerts() == 0

    assert mailoutbox == []


def test_no_email_without_a_threshold(alice, bob, mailoutbox):
    spend(alice, "10.00", "usage-1")

    assert send_low_balance_alerts() == 0

    assert mailoutbox == []


def test_a_top_up_rearms_the_alert_for_the_next_crossing(watched, mailoutbox):
    spend(watched, "6.00", "usage-1")
    send_low_balance_alerts()
    top_up(watched, "3.00", "top-up-1")

    assert send_low_balance_alerts() == 0
    assert watched.wallet.low_balance_alerted_at is None

    spend(watched, "3.00", "usage-2")
    assert send_low_balance_alerts() == 1
    assert len(mailoutbox) == 2
    assert wallet_drifts() == []


def test_a_top_up_that_stays_below_the_threshold_does_not_rearm(watched, mailoutbox):
    spend(watched, "6.00", "usage-1")
    send_low_balance_alerts()
    top_up(watched, "0.50", "top-up-1")
    spend(watched, "0.25", "usage-2")

    assert send_low_balance_alerts() == 0

    assert len(mailoutbox) == 1


def test_only_tenants_below_their_own_threshold_are_alerted(watched, bob, mailoutbox):
    low_balance_threshold_set(tenant=bob.tenant, threshold=usd_to_nano("1.00"))
    spend(watched, "6.00", "usage-1")
    spend(bob, "6.00", "usage-1")

    assert low_balance_alerts_send() == 1

    assert [m.to for m in mailoutbox] == [["alice@example.com", "carol@example.com"]]


def test_a_new_threshold_starts_a_new_alert(watched, mailoutbox):
    spend(watched, "6.00", "usage-1")
    send_low_balance_alerts()

    unchanged = low_balance_threshold_set(tenant=watched.tenant, threshold=THRESHOLD)
    assert unchanged is False
    assert send_low_balance_alerts() == 0
    low_balance_threshold_set(tenant=watched.tenant, threshold=usd_to_nano("4.50"))
    assert send_low_balance_alerts() == 1
    low_balance_threshold_set(tenant=watched.tenant, threshold=None)
    assert send_low_balance_alerts() == 0

    assert len(mailoutbox) == 2
    assert "$4.50" in mailoutbox[1].body


def test_an_email_that_fails_to_send_is_retried_next_sweep(
    watched, mailoutbox, monkeypatch
):
    spend(watched, "6.00", "usage-1")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("accounts.mail.send_mail", refuse)
    assert send_low_balance_alerts() == 0
    assert watched.wallet.low_balance_alerted_at is None
    monkeypatch.undo()

    assert send_low_balance_alerts() == 1
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("threshold", [-1, "5", 1.5, True])
def test_it_refuses_a_bad_threshold(alice, threshold):
    with pytest.raises(ValueError, match=r"\$0 or more"):
        low_balance_threshold_set(tenant=alice.tenant, threshold=threshold)
    assert alice.wallet.low_balance_threshold is None


def test_sub_cent_amounts_are_shown_exactly(watched, mailoutbox):
    spend(watched, "5.0000001", "usage-1")

    send_low_balance_alerts()

    # Rounded to cents it reads "$5.00", which is not below a $5.00
    # threshold: the exact amount comes along.
    body = " ".join(mailoutbox[0].body.split())
    assert "is $5.00 (exactly $4.9999999), below" in body


@pytest.mark.postgres
def test_workers_sweeping_at_once_send_one_email(transactional_db, watched, mailoutbox):
    spend(watched, "6.00", "usage-1")

    sent = run_together([send_low_balance_alerts for _ in range(8)])

    assert sum(sent) == 1
    assert len(mailoutbox) == 1
